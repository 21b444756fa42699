"""Native 3D models in evaluate-3d: the source intensities of a non-RAS file, nnInteractive's
tiny random folder end to end through the CLI on the spinal-cord MRI (tests/data/sct-spinalcord,
stored P, S, R), the saved masks replayed through the adapter, and the one-line errors."""

from __future__ import annotations

import json
import shutil
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

SOURCE = Path(__file__).parent / "data" / "sct-spinalcord"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("native")
    src = root / "src"
    shutil.copytree(SOURCE, src)
    out = root / "prepared"
    assert main(["prepare", str(src), "--out", str(out), "--config",
                 str(src / "dataset.yaml")]) == 0  # fmt: skip
    return out


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


@pytest.mark.slow  # about 90 s on a shared CPU: a 55x60x52 volume, three interactions, the report
def test_cli_nninteractive_interactive_3d_on_the_cord(
    prepared: Path, tiny: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    args = ["evaluate-3d", str(prepared), "--out", str(run), "--model", "nninteractive",
            "--checkpoint", str(tiny), "--protocol", "interactive-3d", "--steps", "2",
            "--save-masks", "--device", "cpu", "--time-cap-s", "3600"]  # fmt: skip
    assert main(args) == 0
    df = pd.read_parquet(run / "results3d.parquet")
    assert list(df["step"]) == [0, 1, 2] and (df["status"] == "ok").all()
    assert (df["model_kind"] == "3d").all() and (df["model"] == "nninteractive").all()
    assert df["box_kind"].iloc[0] == "box3d" and not df["over_time_cap"].any()
    assert (df["seconds"] > 0).all() and df["cumulative_seconds"].is_monotonic_increasing
    cfg = json.loads((run / "config-3d.json").read_text())
    assert cfg["model_info"]["license"] == "CC BY-NC-SA 4.0"
    assert cfg["protocol"]["options"]["time_cap_s"] == 3600.0

    # replay the recorded prompts through the adapter on the source intensities: the saved
    # NIfTI masks (source grid, the file's P, S, R voxel order) are exactly its masks
    from sambench.models.volume_registry import build_volume_model

    vol = _volume(prepared)
    model = build_volume_model("nninteractive", tiny, device="cpu")
    model.open(VolumeImage(read_source_intensities(vol), vol.spacing))
    rng = _rng(0, vol.volume_id, int(df["label_value"].iloc[0]), "interactive-3d")
    model.reset(seed=int(rng.integers(2**32)))
    z0, z1, x0, y0, x1, y1 = json.loads(df["box_zyx"].iloc[0])
    masks = [model.apply(BoxInteraction(z0, y0, x0, z1, y1, x1))]
    for click, label in zip(df["click_zyx"].iloc[1:], df["click_label"].iloc[1:], strict=True):
        z, y, x = json.loads(click)
        masks.append(model.apply(PointInteraction(z, y, x, bool(label))))
    src_affine = nib.load(SOURCE / "labels" / "t2.nii.gz").affine
    for (_, row), mask in zip(df.iterrows(), masks, strict=True):
        img = nib.load(run / row["mask_path"])
        assert np.allclose(img.affine, src_affine)
        saved = np.asanyarray(img.dataobj).astype(bool)  # (x, y, z) of the file
        np.testing.assert_array_equal(saved.transpose(2, 1, 0), vol.to_file_zyx(mask))
    assert 0 < masks[-1].sum() < masks[-1].size

    # the report: the 3D section with the licence
    assert main(["report", str(run), "--no-overlays"]) == 0
    html = next((run / "report").glob("*.html")).read_text()
    assert "CC BY-NC-SA 4.0" in html and "CVPR 2025 interactive 3D" in html


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
