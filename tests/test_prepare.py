"""``prepare_dataset`` end to end: seed samples, synthetic volumes with known answers, bad input,
resume and interruption, the demo dataset. Everything is written under ``tmp_path`` only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage.exposure import rescale_intensity
from skimage.measure import regionprops

import sambench.data.prepare as prep
from sambench.data.manifest import load_manifest
from sambench.data.prepare import PARTS_DIR, REPORT_NAME, prepare_dataset
from sambench.data.records import DATASET_JSON_NAME, MANIFEST_COLUMNS
from sambench.demo.source import demo_label, prepare_demo, write_demo_source
from sambench.errors import DataError

from shared_data import SEED


def _png(path: Path) -> np.ndarray:
    return np.array(Image.open(path))


def _nifti(path: Path, arr: np.ndarray, spacing: tuple[float, ...]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(arr, np.diag([*spacing[:3], 1.0]))
    img.header.set_zooms(spacing)
    nib.save(img, path)


def _ref_norm(a: np.ndarray) -> np.ndarray:
    return np.rint(rescale_intensity(a.astype(np.float64), out_range=(0.0, 255.0))).astype(np.uint8)


def _ct(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-1000, 2000, size=shape).astype(np.int16)


def _synthetic_case(src: Path, name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x=40, y=48, z=6 CT at (0.8, 0.8, 3.0) mm: known slices/objects (see the test)."""
    img = _ct((40, 48, 6), seed)
    lab = np.zeros(img.shape, np.int16)
    lab.reshape(-1, 6)[:50, 1] = 1  # z=1: exactly 50 px -> slice dropped
    lab[5:15, 20:30, 2] = 1  # z=2: 100 px Liver (x 5..14, y 20..29)
    lab[30:35, 0:6, 2] = 2  # z=2: 30 px Tumor -> object dropped
    lab[10:18, 10:18, 3] = 2  # z=3: 64 px Tumor
    img[:, :, 3] = 7  # z=3: constant slice -> all-zero image PNG
    _nifti(src / "images" / f"{name}.nii.gz", img, (0.8, 0.8, 3.0))
    _nifti(src / "labels" / f"{name}.nii.gz", lab, (0.8, 0.8, 3.0))
    return img, lab


def _config(path: Path, extra: str = "") -> Path:
    path.write_text(f"name: Synth\nmodality: CT\nclasses: {{Liver: 1, Tumor: 2}}\n{extra}")
    return path


# --------------------------------------------------------------------------- seed samples
def _n_images(ds: str) -> int:
    """Image files of a seed dataset (every seed image has a label with an object > 50 px)."""
    return len(list((SEED / ds / "images").glob("*.png")))


def _n_objects(ds: str) -> int:
    """Objects of a seed dataset counted from its label PNGs: label values with area > 50 px."""
    return sum(
        sum(p.area > 50 for p in regionprops(_png(f))) for f in (SEED / ds / "labels").glob("*.png")
    )


def test_seed_samples_side_by_side(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r1 = prepare_dataset(SEED / "22_Heart", out, modality="MRI", progress=False)
    r2 = prepare_dataset(SEED / "6_Pancreas", out, modality="CT", progress=False)
    assert (r1.slices_kept, r2.slices_kept) == (_n_images("22_Heart"), _n_images("6_Pancreas"))
    manifest = load_manifest(out)
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    assert set(manifest["dataset"]) == {"22_Heart", "6_Pancreas"}
    assert list(load_manifest(out, ["6_Pancreas"])["dataset"].unique()) == ["6_Pancreas"]
    with pytest.raises(
        DataError, match="no prepared dataset named 'Nope'; available: 22_Heart, 6_Pancreas"
    ):
        load_manifest(out, ["Nope"])
    n_rows = 0
    for ds, modality in (("22_Heart", "MRI"), ("6_Pancreas", "CT")):
        info = json.loads((SEED / ds / "info.json").read_text())
        meta = json.loads((out / ds / DATASET_JSON_NAME).read_text())
        assert meta["info"] == info["info"] and meta["color"] == info["color"]
        assert meta["modality"] == modality and meta["source"] == str((SEED / ds).resolve())
        name_of = {info["color"][k]: info["info"][k] for k in info["info"]}
        for src_img in sorted((SEED / ds / "images").glob("*.png")):
            stem = src_img.stem
            lab = _png(out / ds / "labels" / f"{stem}.png")
            np.testing.assert_array_equal(lab, _png(SEED / ds / "labels" / src_img.name))
            np.testing.assert_array_equal(_png(out / ds / "images" / f"{stem}.png"), _png(src_img))
            rows = manifest[manifest["image_id"] == stem].set_index("label_value")
            props = [p for p in regionprops(lab) if p.area > 50]
            assert sorted(rows.index) == sorted(p.label for p in props)
            for p in props:
                row = rows.loc[p.label]
                y0, x0, y1, x1 = p.bbox
                assert (row.bbox_x_min, row.bbox_y_min, row.bbox_x_max, row.bbox_y_max) == (
                    x0,
                    y0,
                    x1 - 1,
                    y1 - 1,
                )
                assert row.area == p.area and row.object_name == name_of[p.label]
                assert row.image_path == f"{ds}/images/{stem}.png" and row.modality == modality
            n_rows += len(props)
    assert len(manifest) == n_rows
    row = manifest[manifest["image_id"] == "6_Pancreas_10_43_0"].iloc[0]
    assert (row.case, row.slice_index, row.slice_axis) == ("10", 43, -1)


# --------------------------------------------------------------------------- synthetic volumes


def test_synthetic_3d_known_answers(tmp_path: Path) -> None:
    src = tmp_path / "src"
    img, lab = _synthetic_case(src, "ct_001")
    out = tmp_path / "out"
    report = prepare_dataset(src, out, config=_config(tmp_path / "d.yaml"), progress=False)
    assert report.slices_read == 6 and report.slices_kept == 2
    assert report.slices_dropped == {"slice<=50px": 4}
    assert report.objects_kept == 2 and report.objects_dropped == {"object<=50px": 1}
    m = load_manifest(out)
    assert list(m["image_id"]) == ["Synth_ct-001_2", "Synth_ct-001_3"]
    assert list(m["object_name"]) == ["Liver", "Tumor"] and list(m["label_value"]) == [128, 255]
    first = m.iloc[0]
    assert (first.bbox_x_min, first.bbox_y_min, first.bbox_x_max, first.bbox_y_max) == (
        5,
        20,
        14,
        29,
    )
    assert (first.area, first.height, first.width, first.slice_axis) == (100, 48, 40, 2)
    assert (first.spacing_x, first.spacing_y, first.spacing_z) == pytest.approx((0.8, 0.8, 3.0))
    png = _png(out / "Synth" / "images" / "Synth_ct-001_2.png")
    np.testing.assert_array_equal(png, _ref_norm(img[:, :, 2].T))  # rows = y, columns = x
    assert png.min() == 0 and png.max() == 255
    assert not _png(out / "Synth" / "images" / "Synth_ct-001_3.png").any()  # constant slice
    label2 = _png(out / "Synth" / "labels" / "Synth_ct-001_2.png")
    expected = np.select([lab[:, :, 2].T == 1, lab[:, :, 2].T == 2], [128, 255], 0)
    np.testing.assert_array_equal(label2, expected)  # the dropped 30 px object stays in the PNG
    meta = json.loads((out / "Synth" / DATASET_JSON_NAME).read_text())
    assert meta["info"] == {"1": "Liver", "2": "Tumor"} and meta["color"] == {"1": 128, "2": 255}
    assert json.loads((out / "Synth" / REPORT_NAME).read_text())["slices_kept"] == 2


def test_anisotropic_volume_sliced_along_largest_spacing(tmp_path: Path) -> None:
    src = tmp_path / "src"
    img = _ct((5, 30, 20), 2)  # x, y, z; x has the coarse spacing -> sagittal slices
    lab = np.zeros(img.shape, np.uint8)
    lab[1:4, 5:25, 4:12] = 1  # 160 px on each of x=1..3; 60 px on each of z=4..11
    _nifti(src / "images" / "sp.nii.gz", img, (3.0, 0.7, 0.7))
    _nifti(src / "labels" / "sp.nii.gz", lab, (3.0, 0.7, 0.7))
    out = tmp_path / "out"
    prepare_dataset(src, out, modality="MRI", progress=False)
    m = load_manifest(out)
    assert list(m["image_id"]) == ["src_sp_1", "src_sp_2", "src_sp_3"]
    assert set(m["slice_axis"]) == {0} and set(m["area"]) == {160}
    assert (m.iloc[0].height, m.iloc[0].width) == (20, 30)  # rows = z, columns = y
    assert (m.iloc[0].spacing_x, m.iloc[0].spacing_z) == pytest.approx((0.7, 3.0))
    assert m.iloc[0].object_name == "label_1" and m.iloc[0].label_value == 1  # auto classes
    np.testing.assert_array_equal(
        _png(out / "src" / "images" / "src_sp_2.png"), _ref_norm(img[2].T)
    )
    # the axis override slices axially instead
    cfg = tmp_path / "ax.yaml"
    cfg.write_text("name: ax\nmodality: MRI\naxis: 2\n")
    prepare_dataset(src, out, config=cfg, progress=False)
    ax = load_manifest(out, ["ax"])
    assert sorted(ax["slice_index"]) == list(range(4, 12)) and set(ax["slice_axis"]) == {2}
    assert (ax.iloc[0].height, ax.iloc[0].width, ax.iloc[0].area) == (30, 5, 60)


def test_4d_volume_frames_become_cases(tmp_path: Path) -> None:
    src = tmp_path / "src"
    img = _ct((20, 24, 3, 2), 3)
    lab = np.zeros(img.shape, np.uint8)
    lab[2:12, 2:12, 1, 0] = 1
    lab[4:14, 4:14, 2, 1] = 1
    _nifti(src / "images" / "heart_01.nii.gz", img, (1.2, 1.2, 8.0, 1.0))
    _nifti(src / "labels" / "heart_01.nii.gz", lab, (1.2, 1.2, 8.0, 1.0))
    out = tmp_path / "out"
    report = prepare_dataset(src, out, modality="MRI", progress=False)
    assert report.slices_read == 6
    m = load_manifest(out)
    assert list(m["image_id"]) == ["src_heart-01-t0_1", "src_heart-01-t1_2"]
    assert list(m["case"]) == ["heart-01-t0", "heart-01-t1"]
    png = _png(out / "src" / "images" / "src_heart-01-t1_2.png")
    np.testing.assert_array_equal(png, _ref_norm(img[:, :, 2, 1].T))


def test_instance_map_with_300_instances_split_in_two(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "labels").mkdir()
    label = np.zeros((150, 120), np.uint16)
    label.ravel()[: 300 * 60] = np.repeat(np.arange(1001, 1301), 60).astype(np.uint16)
    Image.fromarray(label).save(src / "labels" / "img_1.png")
    gray = np.random.default_rng(5).integers(0, 256, (150, 120)).astype(np.uint8)
    Image.fromarray(gray).save(src / "images" / "img_1.png")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: Cells\nmodality: Microscopy\ninstance: true\ninstance_name: Cell\n")
    out = tmp_path / "out"
    report = prepare_dataset(src, out, config=cfg, progress=False)
    m = load_manifest(out)
    assert report.slices_kept == 2 and len(m) == 300 and set(m["object_name"]) == {"Cell"}
    assert m.groupby("image_id").size().to_dict() == {
        "Cells_img-1_0-p1": 255,
        "Cells_img-1_0-p2": 45,
    }
    for part, first in ((1, 1001), (2, 1256)):
        iid = f"Cells_img-1_0-p{part}"
        lab = _png(out / "Cells" / "labels" / f"{iid}.png")
        np.testing.assert_array_equal(_png(out / "Cells" / "images" / f"{iid}.png"), gray)
        np.testing.assert_array_equal(lab == 1, label == first)
        assert set(m[m["image_id"] == iid]["area"]) == {60}


# --------------------------------------------------------------------------- bad input


def _bad_source(tmp_path: Path, kind: str) -> tuple[Path, Path, str]:
    """Source with a good case 'a' and a bad case 'b'; returns (source, config, bad file name)."""
    src = tmp_path / "src"
    _synthetic_case(src, "a")
    img, lab = _synthetic_case(src, "b", seed=1)
    bad = "b.nii.gz"
    if kind == "unknown_value":
        lab[20:30, 30:40, 5] = 7  # a later slice: earlier slices of b are written first
        _nifti(src / "labels" / bad, lab, (0.8, 0.8, 3.0))
    elif kind == "empty_label":
        _nifti(src / "labels" / bad, np.zeros_like(lab), (0.8, 0.8, 3.0))
    elif kind == "constant_image":
        _nifti(src / "images" / bad, np.full_like(img, 40), (0.8, 0.8, 3.0))
    elif kind == "missing_label":
        (src / "labels" / bad).unlink()
    elif kind == "corrupt":
        (src / "images" / bad).write_bytes(b"not a nifti file")
    elif kind == "shape_mismatch":
        _nifti(src / "labels" / bad, lab[:, :, :5], (0.8, 0.8, 3.0))
    elif kind == "nonfinite":
        f = img.astype(np.float32)
        f[0, 0, 2] = np.nan
        _nifti(src / "images" / bad, f, (0.8, 0.8, 3.0))
    return src, _config(tmp_path / "d.yaml"), bad


BAD = {
    "unknown_value": (
        "labels",
        r"label value\(s\) 7 not in the dataset description; allowed: 1, 2",
    ),
    "empty_label": ("labels", "empty label"),
    "constant_image": ("images", "constant image: every voxel is 40"),
    "missing_label": ("images", "no label named 'b'"),
    "nonfinite": ("images", "non-finite"),
    "corrupt": ("images", "cannot be read"),
    "shape_mismatch": ("labels", "label size .* differs from image size"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_input_raises_or_is_skipped(tmp_path: Path, kind: str) -> None:
    src, cfg, bad = _bad_source(tmp_path, kind)
    folder, match = BAD[kind]
    out = tmp_path / "out"
    prepare_dataset(SEED / "22_Heart", out, modality="MRI", progress=False)
    before = {p: p.read_bytes() for p in (out / "22_Heart").rglob("*") if p.is_file()}
    with pytest.raises(DataError, match=match) as e:
        prepare_dataset(src, out, config=cfg, progress=False)
    assert str(e.value).startswith(str(src.resolve() / folder / bad))
    assert not list((out / "Synth" / "images").glob("Synth_b_*"))  # rolled back
    report = prepare_dataset(src, out, config=cfg, skip_bad=True, progress=False)
    assert [b["case"] for b in report.bad_cases] in (["b"], ["b.nii.gz"])
    assert bad in report.bad_cases[0]["path"] and "bad case" in report.to_text()
    m = load_manifest(out, ["Synth"])
    assert set(m["case"]) == {"a"} and not list((out / "Synth" / "images").glob("Synth_b_*"))
    after = {p: p.read_bytes() for p in (out / "22_Heart").rglob("*") if p.is_file()}
    assert after == before


def test_nonfinite_replaced_on_request(tmp_path: Path) -> None:
    src, _, _ = _bad_source(tmp_path, "nonfinite")
    cfg = _config(tmp_path / "r.yaml", "replace_nonfinite: 0\n")
    report = prepare_dataset(src, tmp_path / "out", config=cfg, progress=False)
    assert report.cases_done == 2 and not report.bad_cases


def test_other_source_with_same_name_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare_dataset(SEED / "22_Heart", out, modality="MRI", progress=False)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    copy = tmp_path / "copy" / "22_Heart"
    shutil.copytree(SEED / "22_Heart", copy)
    for skip in (False, True):
        with pytest.raises(DataError, match=r"was prepared from .*seed-samples/22_Heart'") as e:
            prepare_dataset(copy, out, modality="MRI", skip_bad=skip, progress=False)
        assert str(e.value).startswith(str(out / "22_Heart"))
    with pytest.raises(DataError, match="different settings"):
        prepare_dataset(SEED / "22_Heart", out, modality="CT", progress=False)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


# --------------------------------------------------------------------------- resume, interruption


def _three_cases(tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "src"
    for i, name in enumerate(("a", "b", "c")):
        _synthetic_case(src, name, seed=i)
    return src, _config(tmp_path / "d.yaml")


def test_resume_redoes_only_a_damaged_case(tmp_path: Path) -> None:
    src, cfg = _three_cases(tmp_path)
    out = tmp_path / "out"
    first = prepare_dataset(src, out, config=cfg, progress=False)
    m1 = pd.read_parquet(out / "Synth" / "manifest.parquet")
    png = out / "Synth" / "images" / "Synth_b_2.png"
    pixels = _png(png)
    png.unlink()
    again = prepare_dataset(src, out, config=cfg, progress=False)
    assert (again.cases_done, again.cases_resumed) == (1, 2)
    assert again.slices_kept == first.slices_kept and again.objects_kept == first.objects_kept
    np.testing.assert_array_equal(_png(png), pixels)
    m2 = pd.read_parquet(out / "Synth" / "manifest.parquet")
    pd.testing.assert_frame_equal(m1, m2)
    assert not m2.duplicated(["image_id", "label_value"]).any()
    third = prepare_dataset(src, out, config=cfg, progress=False)
    assert (third.cases_done, third.cases_resumed) == (0, 3)


def test_interrupted_run_leaves_no_half_written_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, cfg = _three_cases(tmp_path)
    out = tmp_path / "out"
    real = prep.write_png_atomic
    calls = {"n": 0}

    def flaky(path: Path, array: np.ndarray) -> Path:
        calls["n"] += 1
        if calls["n"] == 6:  # case b, after its first PNG pair
            raise KeyboardInterrupt
        return real(path, array)

    monkeypatch.setattr(prep, "write_png_atomic", flaky)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(src, out, config=cfg, progress=False)
    ds = out / "Synth"
    assert not (ds / "manifest.parquet").exists()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    assert sorted(p.stem for p in (ds / PARTS_DIR).iterdir()) == ["a"]
    assert not list((ds / "images").glob("Synth_b_*"))
    monkeypatch.setattr(prep, "write_png_atomic", real)
    report = prepare_dataset(src, out, config=cfg, progress=False)
    assert (report.cases_done, report.cases_resumed) == (2, 1)
    clean = tmp_path / "clean"
    prepare_dataset(src, clean, config=cfg, progress=False)
    pd.testing.assert_frame_equal(load_manifest(out), load_manifest(clean))


def test_concurrent_prepare_of_one_dataset_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second prepare of the same dataset folder while one runs deleted the first one's live
    temporary files; now it is refused (the folder's lock, as for evaluate), nothing touched."""
    from sambench.store.runlock import RunLockedError

    src, cfg = _three_cases(tmp_path)
    out = tmp_path / "out"
    real = prep.write_png_atomic
    seen: dict[str, object] = {}

    def second_prepare_meanwhile(path: Path, array: np.ndarray) -> Path:
        if "error" not in seen:
            live = out / "Synth" / ".Synth_a_0.png.abcd1234.tmp.png"  # the first run's
            live.write_bytes(b"half written")
            try:
                prepare_dataset(src, out, config=cfg, progress=False)
                seen["error"] = None
            except RunLockedError as e:
                seen["error"] = e
            seen["live_kept"] = live.exists()
            live.unlink(missing_ok=True)
        return real(path, array)

    monkeypatch.setattr(prep, "write_png_atomic", second_prepare_meanwhile)
    report = prepare_dataset(src, out, config=cfg, progress=False)
    err = seen["error"]
    assert isinstance(err, RunLockedError) and Path(err.path).parent == out / "Synth"
    assert "in use by prepare pid" in str(err) and "--wait-lock" not in str(err), str(err)
    assert seen["live_kept"] and report.cases_done == 3
    assert not (out / "Synth" / ".sambench.lock").exists()  # released at the end


@pytest.mark.slow
def test_parallel_workers_give_the_same_manifest(tmp_path: Path) -> None:
    src, cfg = _three_cases(tmp_path)
    prepare_dataset(src, tmp_path / "one", config=cfg, progress=False)
    report = prepare_dataset(src, tmp_path / "two", config=cfg, workers=2, progress=False)
    assert report.cases_done == 3
    pd.testing.assert_frame_equal(load_manifest(tmp_path / "one"), load_manifest(tmp_path / "two"))


def test_cli_prepare(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sambench.cli import app

    res = CliRunner().invoke(
        app, ["prepare", str(SEED / "22_Heart"), "--out", str(tmp_path), "--modality", "MRI"]
    )
    assert res.exit_code == 0, res.output
    assert f"{_n_images('22_Heart')} image/label pairs kept" in res.output
    assert len(load_manifest(tmp_path)) == _n_objects("22_Heart")


# --------------------------------------------------------------------------- demo


def test_demo_source_cropped(tmp_path: Path) -> None:
    crop = (slice(40, 150), slice(50, 190), slice(90, 96))
    src = write_demo_source(tmp_path / "src", crop=crop)
    assert (src / "dataset.yaml").is_file()
    out = tmp_path / "out"
    report = prepare_dataset(src, out, config=src / "dataset.yaml", progress=False)
    assert report.slices_read == 6 and report.modality == "MRI"
    from importlib import resources

    data = resources.files("nilearn.datasets") / "data"
    gm, wm = (
        np.asanyarray(
            nib.load(str(data / f"mni_icbm152_{k}_tal_nlin_sym_09a_converted.nii.gz")).dataobj
        )[crop]
        for k in ("gm", "wm")
    )
    lab = demo_label(gm, wm)
    assert set(np.unique(lab)) == {0, 1, 2}
    m = load_manifest(out)
    assert set(m["object_name"]) == {"GreyMatter", "WhiteMatter"} and set(m["slice_axis"]) == {2}
    for iid, k in zip(m["image_id"].unique(), sorted(m["slice_index"].unique()), strict=True):
        png = _png(out / "MNI152" / "labels" / f"{iid}.png")
        np.testing.assert_array_equal(
            png, np.select([lab[:, :, k].T == 1, lab[:, :, k].T == 2], [128, 255], 0)
        )


def test_full_demo_prepare(tmp_path: Path) -> None:
    tissues, brain, heart, pancreas = prepare_demo(tmp_path / "prepared", progress=False)
    assert tissues.slices_read == 189 and tissues.slices_kept > 100
    assert brain.slices_read == 189 and brain.slices_kept >= tissues.slices_kept
    assert (heart.slices_kept, pancreas.slices_kept) == (14, 16)  # the shipped seed slices
    m = load_manifest(tmp_path / "prepared")
    assert set(m.loc[m["dataset"].str.startswith("MNI152"), "object_name"]) == {
        "GreyMatter", "WhiteMatter", "WholeBrain"}  # fmt: skip
    again = prepare_demo(tmp_path / "prepared", progress=False)
    assert [r.cases_resumed for r in again][:2] == [1, 1]
    assert all(r.cases_resumed > 0 for r in again[2:])


def test_cli_prepare_refuses_a_dicom_gap_unless_allow_slice_gaps(
    tmp_path: Path, capsys, caplog
) -> None:
    """A series with a missing slice: two lines naming the series folder and the gap, exit 2;
    ``--allow-slice-gaps`` prepares it (issue 28 item 5)."""
    from sambench.cli import main
    from test_readers import _dicom_series, _label, _sitk_write, _vol

    src = tmp_path / "src"
    series = _dicom_series(src / "images" / "c1", _vol((6, 5, 6)), (0.7, 0.8, 2.0), "1.2.3.4.9999")
    (series / "9999_003.dcm").unlink()
    (src / "labels").mkdir()
    _sitk_write(src / "labels" / "c1.nii.gz", _label((6, 5, 5)), (0.7, 0.8, 2.5))
    args = ["prepare", str(src), "--out", str(tmp_path / "out"), "--modality", "CT"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(series) in err and "not evenly spaced" in err and "--allow-slice-gaps" in err
    with caplog.at_level("WARNING", logger="sambench.data.readers"):
        assert main([*args, "--allow-slice-gaps"]) == 0
    assert "not evenly spaced" in caplog.text and str(series) in caplog.text  # a warning


@pytest.mark.parametrize("value", [300, -2])
def test_label_value_outside_1_255_is_one_short_line_with_the_fix(
    tmp_path: Path, value: int
) -> None:
    """Before: the message listed all 255 allowed values (1,400 characters)."""
    src = tmp_path / "src"
    _synthetic_case(src, "a")
    _img, lab = _synthetic_case(src, "b", seed=1)
    lab = lab.astype(np.int16)
    lab[20:30, 30:40, 5] = value
    _nifti(src / "labels" / "b.nii.gz", lab, (0.8, 0.8, 3.0))
    with pytest.raises(DataError) as e:
        prepare_dataset(src, tmp_path / "out", progress=False, modality="CT")
    msg = str(e.value)
    assert len(msg.splitlines()) == 1 and len(msg) < 400, msg
    assert f"label value(s) {value} outside 1..255" in msg
    assert "'classes'" in msg and "--config" in msg


def test_orphan_labels_and_symlink_loops_are_counted_and_named(tmp_path: Path) -> None:
    """Before: skipped without a word (issue 28 item 14)."""
    import os

    src = tmp_path / "src"
    _synthetic_case(src, "a")
    _img, lab = _synthetic_case(src, "b", seed=1)
    _nifti(src / "labels" / "c.nii.gz", lab, (0.8, 0.8, 3.0))  # no image c
    os.symlink("loop.nii.gz", src / "images" / "loop.nii.gz")  # points to itself
    os.symlink("gone.nii.gz", src / "labels" / "d.nii.gz")  # broken
    report = prepare_dataset(src, tmp_path / "out", config=_config(tmp_path / "d.yaml"),
                             progress=False)  # fmt: skip
    assert report.cases_done == 2
    got = {Path(f["path"]).name: f["reason"] for f in report.skipped_files}
    assert got["c.nii.gz"].startswith("orphan label: no image")
    assert got["loop.nii.gz"] == "symlink loop"
    assert got["d.nii.gz"].startswith("broken symlink")
    assert len(got) == 3
    text = report.to_text()
    assert "skipped files: 3" in text and "c.nii.gz: orphan label" in text
    assert "loop.nii.gz: symlink loop" in text
    saved = json.loads((tmp_path / "out" / "Synth" / REPORT_NAME).read_text())
    assert len(saved["skipped_files"]) == 3
