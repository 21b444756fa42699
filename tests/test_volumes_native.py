"""Native 3D models in evaluate-3d: the source intensities of a non-RAS file, nnInteractive's
tiny random folder end to end through the CLI (``--protocol interactive-3d,effort``) on the
spinal-cord MRI (tests/data/sct-spinalcord, stored P, S, R) and on an MSD Task09_Spleen replica
(CT in HU, one case stored L, P, S): rows, the saved masks on the source grid (replayed through
the adapter), the report's 3D section; and the one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from sambench.cli import main
from sambench.errors import OptionError
from sambench.models.volume_base import BoxInteraction, PointInteraction, VolumeImage
from sambench.volumes.evaluate import Run3DConfig, _rng, evaluate_3d
from sambench.volumes.io import load_volume_table, read_source_intensities, read_volume
from sambench.volumes.native import apply_time_cap
from sambench.volumes.sparse import SparseMask
from sambench.volumes.types import StepResult
from volume_data import prepare_cord

SOURCE = Path(__file__).parent / "data" / "sct-spinalcord"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_cord(tmp_path_factory.mktemp("native"))


def _volume(prepared: Path):
    row = load_volume_table(prepared).iloc[0].to_dict()
    return read_volume(row, Path(row["_root"]))


def test_source_intensities_of_a_non_ras_file(prepared: Path) -> None:
    """The source (int16, stored P, S, R) reoriented by nibabel's own as_closest_canonical:
    the same voxels, in the prepared slices' order; the label lines up with them."""
    vol = _volume(prepared)
    src = nib.load(SOURCE / "images" / "t2.nii.gz")
    assert nib.aff2axcodes(src.affine) == ("P", "S", "R")
    ras = np.asanyarray(nib.as_closest_canonical(src).dataobj)  # (x, y, z) RAS
    expect = ras.transpose(2, 1, 0).astype(np.float32)  # (z, y, x): axial slice-major
    got = read_source_intensities(vol)
    assert got.dtype == np.float32 and got.shape == vol.shape
    np.testing.assert_array_equal(got, expect)
    lab = np.asanyarray(nib.as_closest_canonical(nib.load(SOURCE / "labels" / "t2.nii.gz")).dataobj)
    np.testing.assert_array_equal(np.asarray(vol.label) > 0, lab.transpose(2, 1, 0) > 0)
    assert got.max() > 255  # raw scanner units, not the prepared uint8


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("nnInteractive.inference.inference_session")
    from nninteractive_tiny import make_tiny_folder

    return make_tiny_folder(tmp_path_factory.mktemp("m") / "tiny", license_text="CC BY-NC-SA 4.0")


BUDGETS = (1, 3)  # effort's budgets in the CLI tests (box + 2 clicks), to keep them short


def _evaluate_both(prepared: Path, tiny: Path, run: Path) -> pd.DataFrame:
    """``evaluate-3d --protocol interactive-3d,effort`` with the tiny folder through the CLI;
    the rows, checked for both protocols (interactive-3d steps 0-2, effort at ``BUDGETS``)."""
    args = ["evaluate-3d", str(prepared), "--out", str(run), "--model", "nninteractive",
            "--checkpoint", str(tiny), "--protocol", "interactive-3d,effort", "--steps", "2",
            "--protocol-option", f"budgets={list(BUDGETS)}", "--save-masks", "--device", "cpu",
            "--time-cap-s", "3600"]  # fmt: skip
    assert main(args) == 0
    df = pd.read_parquet(run / "results3d.parquet")
    assert (df["status"] == "ok").all() and set(df["protocol"]) == {"interactive-3d", "effort"}
    assert (df["model_kind"] == "3d").all() and (df["model"] == "nninteractive").all()
    assert not df["over_time_cap"].any() and (df["seconds"] > 0).all()
    for _, g in df.groupby(["volume_id", "label_value", "protocol"]):
        expect = [0, 1, 2] if g["protocol"].iloc[0] == "interactive-3d" else list(BUDGETS)
        assert sorted(g["step"]) == expect
        assert g.sort_values("step")["cumulative_seconds"].is_monotonic_increasing
    eff = df[df["protocol"] == "effort"]
    assert (eff["interactions"] == eff["step"]).all()
    assert (eff[eff["step"] == 1]["box_kind"] == "box3d").all()  # interaction 1: the box
    cfg = json.loads((run / "config-3d.json").read_text())
    assert cfg["model_info"]["license"] == "CC BY-NC-SA 4.0"
    assert cfg["protocol"]["options"]["budgets"] == list(BUDGETS)
    assert cfg["protocol"]["options"]["time_cap_s"] == 3600.0
    return df


def _check_saved_masks(run: Path, df: pd.DataFrame, label_file: dict[str, Path]) -> None:
    """Every row's NIfTI mask (both protocols) is on the source label file's grid (its affine,
    its shape) and scores the row's DSC against that file's label, computed here with numpy."""
    for _, row in df.iterrows():
        img = nib.load(run / row["mask_path"])
        src = nib.load(label_file[row["volume_id"]])
        assert np.allclose(img.affine, src.affine) and img.shape == src.shape
        pred = np.asanyarray(img.dataobj) > 0
        gt = np.asanyarray(src.dataobj) > 0
        dsc = 200.0 * (pred & gt).sum() / (pred.sum() + gt.sum())
        assert dsc == pytest.approx(row["dice"], abs=1e-6)
        assert 0 < pred.sum() < pred.size


def _replay_interactive_3d(run: Path, df: pd.DataFrame, vol, tiny: Path) -> None:
    """Replay one object's recorded interactive-3d prompts through the adapter on the source
    intensities: the saved NIfTI masks (source grid, the file's voxel order) are its masks."""
    from sambench.models.volume_registry import build_volume_model

    df = df[(df["protocol"] == "interactive-3d") & (df["volume_id"] == vol.volume_id)]
    df = df.sort_values("step")
    model = build_volume_model("nninteractive", tiny, device="cpu")
    model.open(VolumeImage(read_source_intensities(vol), vol.spacing))
    rng = _rng(0, vol.volume_id, int(df["label_value"].iloc[0]), "interactive-3d")
    model.reset(seed=int(rng.integers(2**32)))
    z0, z1, x0, y0, x1, y1 = json.loads(df["box_zyx"].iloc[0])
    masks = [model.apply(BoxInteraction(z0, y0, x0, z1, y1, x1))]
    for click, label in zip(df["click_zyx"].iloc[1:], df["click_label"].iloc[1:], strict=True):
        z, y, x = json.loads(click)
        masks.append(model.apply(PointInteraction(z, y, x, bool(label))))
    for (_, row), mask in zip(df.iterrows(), masks, strict=True):
        saved = np.asanyarray(nib.load(run / row["mask_path"]).dataobj).astype(bool)  # (x, y, z)
        np.testing.assert_array_equal(saved.transpose(2, 1, 0), vol.to_file_zyx(mask))


def _check_effort_auc(run: Path, df: pd.DataFrame) -> None:
    """The report's effort table: DSC_AUC / NSD_AUC by the CVPR 2025 formula (trapezoids over
    unit steps of the budget points, 0-1 scale), computed here from the rows, mean per model."""
    eff = df[df["protocol"] == "effort"].sort_values("step")
    per_obj = eff.groupby(["volume_id", "label_value"])
    dsc_auc = per_obj["challenge_dsc_01"].apply(lambda v: np.trapezoid(v, dx=1.0)).mean()
    nsd_auc = per_obj["challenge_nsd_01"].apply(lambda v: np.trapezoid(v, dx=1.0)).mean()
    table = pd.read_csv(run / "report" / "tables" / "3d_effort.csv")
    assert list(table["model"]) == ["nninteractive"] and list(table["model_kind"]) == ["3d"]
    assert table["DSC_AUC"].iloc[0] == pytest.approx(dsc_auc)
    assert table["NSD_AUC"].iloc[0] == pytest.approx(nsd_auc)
    assert table["DSC_Final"].iloc[0] == pytest.approx(per_obj["challenge_dsc_01"].last().mean())


def _check_report(run: Path, df: pd.DataFrame) -> None:
    """``sambench report RUN``: the 3D section with the licence, the effort table and curve."""
    assert main(["report", str(run), "--no-overlays"]) == 0
    html = (run / "report" / "report.html").read_text()
    assert "CC BY-NC-SA 4.0" in html and "CVPR 2025 interactive 3D" in html
    assert "Equal effort: 1, 3 interactions" in html
    assert 'alt="3D DICE and NSD against interactions' in html  # the effort curve
    _check_effort_auc(run, df)


@pytest.mark.slow  # 50-100 s on a shared CPU: a 55x60x52 volume, six interactions, the report
def test_cli_nninteractive_interactive_3d_and_effort_on_the_cord(
    prepared: Path, tiny: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    df = _evaluate_both(prepared, tiny, run)
    assert df["box_kind"].dropna().eq("box3d").all()
    vol = _volume(prepared)
    _check_saved_masks(run, df, {vol.volume_id: SOURCE / "labels" / "t2.nii.gz"})
    _replay_interactive_3d(run, df, vol, tiny)
    _check_report(run, df)


def _spleen_ct(seed: int, shape: tuple[int, int, int] = (24, 28, 20)):
    """A CT-like (x, y, z) volume in HU (int16: air -1000, body 30, spleen 55, noise sd 10) and
    its spleen label (uint8 1: an ellipsoid of radii 6, 5, 6 voxels near the centre)."""
    rng = np.random.default_rng(seed)
    x, y, z = np.indices(shape)
    c = np.asarray(shape) / 2 + rng.uniform(-2, 2, 3)
    body = ((x - shape[0] / 2) / 11) ** 2 + ((y - shape[1] / 2) / 13) ** 2 <= 1
    spleen = ((x - c[0]) / 6) ** 2 + ((y - c[1]) / 5) ** 2 + ((z - c[2]) / 6) ** 2 <= 1
    hu = np.where(body, 30.0, -1000.0) + 25.0 * spleen + rng.normal(0, 10, shape)
    return hu.astype(np.int16), spleen.astype(np.uint8)


@pytest.fixture(scope="module")
def msd_spleen(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An MSD Task09_Spleen replica (tests/recipe_replicas.py's MSD writer) of two 24x28x20 CT
    cases in HU: case 1 stored L, P, S (x and y flipped, as CT converted from DICOM often is),
    case 2 R, A, S; prepared with ``sambench prepare --recipe MSD-Spleen``."""
    from recipe_replicas import write_msd

    root = tmp_path_factory.mktemp("msd")
    img, lab = _spleen_ct(1)
    lps = np.array([[-0.8, 0, 0, 10.0], [0, -0.8, 0, 20.0], [0, 0, 2.5, -30.0], [0, 0, 0, 1]])
    img2, lab2 = _spleen_ct(2)
    cases = [(img[::-1, ::-1].copy(), lab[::-1, ::-1].copy(), lps),
             (img2, lab2, np.diag([0.8, 0.8, 2.5, 1.0]))]  # fmt: skip
    task = write_msd(root / "src", "Task09_Spleen", "spleen", cases, {"0": "CT"}, {"1": "spleen"})
    out = root / "prepared"
    assert main(["prepare", str(task), "--out", str(out), "--recipe", "MSD-Spleen"]) == 0
    return task, out


# about 16 s on a shared CPU (two 24x28x20 volumes, ten interactions, the report): not slow
def test_cli_nninteractive_interactive_3d_and_effort_on_an_msd_sample(
    msd_spleen: tuple[Path, Path], tiny: Path, tmp_path: Path
) -> None:
    task, prepared = msd_spleen
    table = load_volume_table(prepared)
    assert list(table["orientation"]) == ["LPS", "RAS"]
    rows = [r.to_dict() for _, r in table.iterrows()]
    vols = {r["volume_id"]: read_volume(r, Path(r["_root"])) for r in rows}
    lps = vols["MSD-Spleen_spleen-1"]
    # the model reads raw HU, reoriented to the prepared slices (nibabel's own RAS as reference)
    src = nib.load(task / "imagesTr" / "spleen_1.nii.gz")
    ras = np.asanyarray(nib.as_closest_canonical(src).dataobj).transpose(2, 1, 0)
    got = read_source_intensities(lps)
    np.testing.assert_array_equal(got, ras.astype(np.float32))
    assert got.min() < -900 and got.shape == lps.shape == (20, 28, 24)

    run = tmp_path / "run"
    df = _evaluate_both(prepared, tiny, run)
    assert set(df["volume_id"]) == set(vols) and set(df["dataset"]) == {"MSD-Spleen"}
    labels = {v: task / "labelsTr" / f"spleen_{v[-1]}.nii.gz" for v in vols}
    _check_saved_masks(run, df, labels)
    _replay_interactive_3d(run, df, lps, tiny)  # the flipped (L, P, S) file
    _check_report(run, df)


def _err(capsys: pytest.CaptureFixture[str], args: list[str]) -> list[str]:
    assert main(args) == 2
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


def test_one_line_errors(
    prepared: Path, tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["evaluate-3d", str(prepared), "--model", "nninteractive", "--device", "cpu"]
    run = tmp_path / "r1"
    err = _err(capsys, [*base, "--out", str(run), "--checkpoint", str(tiny), "--protocol",
                        "propagate"])  # fmt: skip
    assert "--protocol" in err[0] and "propagate" in err[0] and "native 3D" in err[0]
    assert not run.exists()  # a refused command leaves nothing behind
    bad = tmp_path / "bad"
    bad.mkdir()
    err = _err(capsys, [*base, "--out", str(tmp_path / "r2"), "--checkpoint", str(bad),
                        "--protocol", "interactive-3d"])  # fmt: skip
    assert str(bad) in err[0] and "plans.json" in err[0] and "fold_<k>" in err[0]
    assert not (tmp_path / "r2").exists()
    err = _err(capsys, [*base, "--out", str(tmp_path / "r3"), "--checkpoint", str(tiny),
                        "--protocol", "propagate", "--time-cap-s", "90"])  # fmt: skip
    assert "--time-cap-s" in err[0]


class _SmallCropModel:
    """A native model whose crop is smaller than the cord volume (never called)."""

    name = "small_crop"
    model_kind = "3d"
    supports = frozenset({"point", "box2d"})
    max_shape = (32, 32, 32)

    def open(self, image):  # pragma: no cover - refused before
        raise AssertionError("opened a volume too large for the crop")

    apply = reset = open

    def info(self):
        return {"model": self.name}


def test_volume_too_large_for_the_crop(prepared: Path, tmp_path: Path) -> None:
    cfg = Run3DConfig(prepared=str(prepared), model="small_crop", protocols=("interactive-3d",))
    with pytest.raises(OptionError, match="--model") as e:
        evaluate_3d(cfg, tmp_path / "run", model=_SmallCropModel())
    assert not (tmp_path / "run").exists()  # refused before anything was written
    msg = str(e.value)
    assert "(32, 32, 32)" in msg and "(55, 60, 52)" in msg and "t2.nii.gz" in msg
    assert "\n" not in msg


def test_time_cap_zeroes_the_steps_over_it() -> None:
    shape = (2, 4, 4)
    full = np.ones(shape, bool)
    steps = [StepResult(k, full, s, 2, {"challenge_dsc": 1.0}) for k, s in
             enumerate([40.0, 30.0, 25.0, 1.0])]  # fmt: skip
    out = apply_time_cap(steps, 90.0, shape)
    assert [st.extras["over_time_cap"] for st in out] == [False, False, True, True]
    assert [st.extras["cumulative_seconds"] for st in out] == [40.0, 70.0, 95.0, 96.0]
    assert np.asarray(out[1].mask).all() and isinstance(out[2].mask, SparseMask)
    assert not out[2].mask.any() and out[3].extras["challenge_dsc"] == 0.0
    assert [st.seconds for st in out] == [40.0, 30.0, 25.0, 1.0]
    assert apply_time_cap(steps, None, shape)[3].mask is full
