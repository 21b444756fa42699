"""Real dataset layouts in ``prepare``: MSD / nnU-Net v2 folders (dataset.json, 4D channels,
``_0000`` channel files), folder-pair discovery, CT windows, regions of interest, label geometry,
the pixel limit, temporary-file clean-up and the renamed dataset description. Synthetic data only.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from PIL import Image

from sambench.data.describe import describe_source
from sambench.data.layouts import WINDOW_PRESETS, parse_window
from sambench.data.manifest import load_manifest
from sambench.data.pairs import find_pairs
from sambench.data.prepare import prepare_dataset
from sambench.data.records import DATASET_JSON_NAME, LEGACY_DATASET_JSON_NAME
from sambench.data.roi import apply_roi, read_roi
from sambench.data.standardize import apply_window
from sambench.errors import DataError
from sambench.finetune.split import split_cases

SHAPE = (24, 20, 4)  # x, y, z


def _png(path: Path) -> np.ndarray:
    return np.array(Image.open(path))


def _nii(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(arr, np.eye(4)), path)


def _label() -> np.ndarray:
    lab = np.zeros(SHAPE, np.uint8)
    lab[2:12, 3:13, 1] = 1  # 100 px
    lab[14:22, 5:15, 2] = 2  # 80 px
    return lab


def _channels(case_seed: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(case_seed)
    return [rng.integers(0, 1000 * (c + 1), size=SHAPE).astype(np.int16) for c in range(n)]


def _norm(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    return np.rint(255 * (a - a.min()) / (a.max() - a.min())).astype(np.uint8)


def _msd(tmp_path: Path, cases: int = 3) -> tuple[Path, dict[str, list[np.ndarray]]]:
    """An MSD BrainTumour-like folder: 4D (x, y, z, 3 channels) images, 3D labels, imagesTs."""
    src = tmp_path / "Task01_BrainTumour"
    data = {}
    for i in range(cases):
        name = f"BRATS_{i:03d}"
        chans = _channels(i, 3)
        data[name] = chans
        _nii(src / "imagesTr" / f"{name}.nii.gz", np.stack(chans, axis=-1))
        _nii(src / "labelsTr" / f"{name}.nii.gz", _label())
    _nii(src / "imagesTs" / "BRATS_900.nii.gz", np.stack(_channels(9, 3), axis=-1))
    meta = {
        "name": "BRATS",
        "modality": {"0": "FLAIR", "1": "T1w", "2": "T2w"},
        "labels": {"0": "background", "1": "edema", "2": "enhancing tumour"},
        "numTraining": cases,
    }
    (src / "dataset.json").write_text(json.dumps(meta))
    return src, data


def test_msd_folder_keeps_label_names_and_takes_the_first_channel(tmp_path: Path) -> None:
    src, data = _msd(tmp_path)
    out = tmp_path / "out"
    report = prepare_dataset(src, out, progress=False)
    assert report.cases_seen == 3 and report.cases_done == 3  # imagesTs ignored
    m = load_manifest(out)
    assert set(m["object_name"]) == {"edema", "enhancing tumour"}
    assert set(m["case"]) == {"BRATS-000", "BRATS-001", "BRATS-002"}  # no -t<frame> cases
    assert set(m["modality"]) == {"FLAIR"} and set(m["channel"]) == {"FLAIR"}
    row = m[(m["case"] == "BRATS-001") & (m["slice_index"] == 1)].iloc[0]
    np.testing.assert_array_equal(
        _png(out / row["image_path"]), _norm(data["BRATS_001"][0][:, :, 1].T)
    )
    meta = json.loads((out / src.name / DATASET_JSON_NAME).read_text())
    assert meta["channels"] == {"names": ["FLAIR", "T1w", "T2w"], "selected": "first"}
    assert not (out / src.name / LEGACY_DATASET_JSON_NAME).exists()


def test_msd_channel_by_name_and_all_channels_stay_one_case(tmp_path: Path) -> None:
    src, data = _msd(tmp_path, cases=5)
    one = tmp_path / "one"
    prepare_dataset(src, one, channel="t2w", progress=False)
    m1 = load_manifest(one)
    row = m1[(m1["case"] == "BRATS-003") & (m1["slice_index"] == 2)].iloc[0]
    np.testing.assert_array_equal(
        _png(one / row["image_path"]), _norm(data["BRATS_003"][2][:, :, 2].T)
    )

    out = tmp_path / "all"
    report = prepare_dataset(src, out, channel="all", progress=False)
    m = load_manifest(out)
    assert report.cases_done == 15  # 5 cases x 3 channels
    assert set(m["case"]) == {f"BRATS-{i:03d}" for i in range(5)}
    assert m.groupby("case")["channel"].nunique().eq(3).all()
    assert m["image_id"].nunique() == 30  # 5 cases x 3 channels x 2 kept slices
    assert "Task01_BrainTumour_BRATS-000_1_T1w" in set(m["image_id"])
    for c, name in enumerate(("FLAIR", "T1w", "T2w")):
        r = m[(m["case"] == "BRATS-004") & (m["channel"] == name) & (m["slice_index"] == 1)]
        np.testing.assert_array_equal(
            _png(out / r.iloc[0]["image_path"]), _norm(data["BRATS_004"][c][:, :, 1].T)
        )
    split = split_cases(m, seed=3)
    joined = m.merge(split, on=["dataset", "case"])
    assert joined.groupby("case")["split"].nunique().eq(1).all()  # a patient in one split
    with pytest.raises(DataError, match=r"channel: 'PD' names no channel.*0=FLAIR, 1=T1w, 2=T2w"):
        prepare_dataset(src, tmp_path / "bad", channel="PD", progress=False)


def _nnunet(tmp_path: Path) -> tuple[Path, dict[str, list[np.ndarray]]]:
    src = tmp_path / "Dataset005_Prostate"
    data = {}
    for i in range(2):
        chans = _channels(10 + i, 2)
        data[f"prostate_{i:02d}"] = chans
        for c, arr in enumerate(chans):
            _nii(src / "imagesTr" / f"prostate_{i:02d}_{c:04d}.nii.gz", arr)
        _nii(src / "labelsTr" / f"prostate_{i:02d}.nii.gz", _label())
    meta = {
        "channel_names": {"0": "T2", "1": "ADC"},
        "labels": {"background": 0, "PZ": 1, "TZ": 2},
        "numTraining": 2,
        "file_ending": ".nii.gz",
    }
    (src / "dataset.json").write_text(json.dumps(meta))
    return src, data


def test_nnunet_v2_channel_files_are_channels_of_one_case(tmp_path: Path) -> None:
    src, data = _nnunet(tmp_path)
    desc = describe_source(src)
    assert desc.source_json == "nnunetv2" and desc.classes == {"PZ": 1, "TZ": 2}
    pairs, missing = find_pairs(desc)
    assert missing == [] and [p.image.name for p in pairs] == [
        "prostate_00_0000.nii.gz",
        "prostate_01_0000.nii.gz",
    ]
    out = tmp_path / "out"
    prepare_dataset(src, out, channel="all", progress=False)
    m = load_manifest(out)
    assert set(m["case"]) == {"prostate-00", "prostate-01"}
    assert set(m["object_name"]) == {"PZ", "TZ"} and set(m["modality"]) == {"T2", "ADC"}
    r = m[(m["case"] == "prostate-01") & (m["channel"] == "ADC") & (m["slice_index"] == 2)]
    np.testing.assert_array_equal(
        _png(out / r.iloc[0]["image_path"]), _norm(data["prostate_01"][1][:, :, 2].T)
    )
    # --modality wins over the channel names; the channel column still tells them apart
    out2 = tmp_path / "out2"
    prepare_dataset(src, out2, modality="MRI", channel="1", progress=False)
    m2 = load_manifest(out2)
    assert set(m2["modality"]) == {"MRI"} and set(m2["channel"]) == {"ADC"}


def test_missing_channel_file_is_a_bad_case(tmp_path: Path) -> None:
    src, _ = _nnunet(tmp_path)
    (src / "imagesTr" / "prostate_01_0001.nii.gz").unlink()
    with pytest.raises(DataError, match=r"prostate_01_0000.*no file for channel\(s\) \[1\]"):
        prepare_dataset(src, tmp_path / "out", channel="ADC", progress=False)
    report = prepare_dataset(src, tmp_path / "out", channel="ADC", skip_bad=True, progress=False)
    assert report.cases_done == 1 and len(report.bad_cases) == 1


@pytest.mark.parametrize(
    ("images", "labels"),
    [
        ("volumes", "segs"),
        ("img", "seg"),
        ("image", "mask"),
        ("img", "gt"),
        ("imagesTr", "labelsTr"),
    ],
)
def test_folder_pairs_found_without_a_config(tmp_path: Path, images: str, labels: str) -> None:
    src = tmp_path / "ds"
    (src / images).mkdir(parents=True)
    (src / labels).mkdir()
    img = np.random.default_rng(0).integers(0, 255, (30, 30), dtype=np.uint8)
    lab = np.zeros((30, 30), np.uint8)
    lab[5:15, 5:15] = 1
    Image.fromarray(img).save(src / images / "a.png")
    Image.fromarray(lab).save(src / labels / "a.png")
    desc = describe_source(src, modality="XR")
    assert (desc.images, desc.labels) == (images, labels)
    report = prepare_dataset(src, tmp_path / "out", modality="XR", progress=False)
    assert report.objects_kept == 1


# ---------------------------------------------------------------------------------- windowing


def test_window_presets_and_hand_computed_values(tmp_path: Path) -> None:
    assert parse_window("x", "abdomen") == (40.0, 400.0) == WINDOW_PRESETS["abdomen"]
    assert parse_window("x", "lung") == (-600.0, 1500.0)
    assert parse_window("x", "bone") == (400.0, 1800.0)
    assert parse_window("x", "brain") == (40.0, 80.0)
    assert parse_window("x", "-600, 1500") == (-600.0, 1500.0)
    assert parse_window("x", [50, 350]) == (50.0, 350.0)
    for bad in ("40", "40,0", "40,-5", "soft", "a,b"):
        with pytest.raises(DataError, match=r"window: .*expected LEVEL,WIDTH"):
            parse_window("--window", bad)
    # abdomen: lo = -160, hi = 240; 255 * (I + 160) / 400, rounded half to even
    hu = np.array([[-1000, -160, 0, 40], [100, 240, 3000, -159]], np.int16)
    expected = np.array([[0, 0, 102, 128], [166, 255, 255, 1]], np.uint8)
    np.testing.assert_array_equal(apply_window(hu, 40, 400), expected)

    src = tmp_path / "ct"
    vol = np.zeros(SHAPE, np.int16) - 1000
    vol[:2, :4, 1] = hu  # x 0..1, y 0..3 of slice z = 1 -> PNG rows y, columns x
    _nii(src / "images" / "c1.nii.gz", vol)
    _nii(src / "labels" / "c1.nii.gz", _label())
    out = tmp_path / "out"
    report = prepare_dataset(src, out, modality="CT", window="abdomen", progress=False)
    assert report.window == [40.0, 400.0]
    png = _png(out / "ct" / "images" / "ct_c1_1.png")
    np.testing.assert_array_equal(png[:4, :2], expected.T)
    assert (png[4:, :] == 0).all()
    meta = json.loads((out / "ct" / DATASET_JSON_NAME).read_text())
    assert meta["window"] == {"level": 40.0, "width": 400.0}
    with pytest.raises(DataError, match="different settings"):  # window is part of the settings
        prepare_dataset(src, out, modality="CT", progress=False)


# ---------------------------------------------------------------------------------- ROI


def _drive_like(tmp_path: Path) -> Path:
    src = tmp_path / "DRIVE"
    for folder in ("images", "labels", "mask"):
        (src / folder).mkdir(parents=True)
    rng = np.random.default_rng(1)
    for stem in ("21_training", "22_training"):
        Image.fromarray(rng.integers(0, 255, (32, 40, 3), dtype=np.uint8)).save(
            src / "images" / f"{stem}.png"
        )
        lab = np.zeros((32, 40), np.uint8)
        lab[4:20, 6:16] = 255
        Image.fromarray(lab).save(src / "labels" / f"{stem}.png")
        fov = np.zeros((32, 40), np.uint8)
        fov[2:30, 3:37] = 255
        Image.fromarray(fov).save(src / "mask" / f"{stem}_mask.gif")
    return src


def test_roi_folder_is_found_stored_and_applied(tmp_path: Path) -> None:
    src = _drive_like(tmp_path)
    out = tmp_path / "out"
    prepare_dataset(src, out, modality="Fundus", progress=False)
    m = load_manifest(out)
    assert (m["roi_path"] == "DRIVE/roi/" + m["image_id"] + ".png").all()
    roi = read_roi(out / m.iloc[0]["roi_path"])
    assert roi.shape == (32, 40) and roi.sum() == 28 * 34 and roi[2, 3] and not roi[1, 3]
    pred = np.ones((32, 40), np.uint8)
    np.testing.assert_array_equal(apply_roi(pred, roi), roi)
    np.testing.assert_array_equal(apply_roi(pred, None), pred.astype(bool))
    with pytest.raises(ValueError, match="roi: shape"):
        apply_roi(pred, roi[:10])
    # without an ROI folder the column is empty; --roi-dir names another folder
    (src / "mask").rename(src / "fov_masks")
    out2 = tmp_path / "out2"
    prepare_dataset(src, out2, modality="Fundus", progress=False)
    assert (load_manifest(out2)["roi_path"] == "").all()
    out3 = tmp_path / "out3"
    prepare_dataset(src, out3, modality="Fundus", roi_dir=Path("fov_masks"), progress=False)
    assert (load_manifest(out3)["roi_path"] != "").all()


# ---------------------------------------------------------------------------------- geometry


def _sitk(path: Path, arr_xyz: np.ndarray, origin=(0.0, 0.0, 0.0), direction=None) -> Path:
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr_xyz.transpose(2, 1, 0)))
    img.SetSpacing((0.8, 0.8, 2.0))
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(direction)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))
    return path


def test_misregistered_label_refused_or_resampled(tmp_path: Path) -> None:
    src = tmp_path / "mis"
    img = _channels(0, 1)[0]
    lab = _label()
    _sitk(src / "images" / "c.nii.gz", img)
    _sitk(src / "labels" / "c.nii.gz", lab, origin=(0.8, 0.0, 0.0))  # one voxel along x
    with pytest.raises(DataError) as e:
        prepare_dataset(src, tmp_path / "out", modality="CT", progress=False)
    msg = str(e.value)
    assert "labels/c.nii.gz" in msg and "images/c.nii.gz" in msg
    assert "origin (0.8, 0, 0) mm differs from image origin (0, 0, 0) mm by up to 0.8 mm" in msg
    assert "--resample-labels" in msg
    out = tmp_path / "out"
    prepare_dataset(src, out, modality="CT", resample_labels=True, progress=False)
    shifted = np.zeros_like(lab)
    shifted[1:] = lab[:-1]  # image voxel x = label voxel x - 1
    m = load_manifest(out)
    for _, r in m.drop_duplicates("image_id").iterrows():
        got = _png(out / r["label_path"]) > 0
        # identity direction = L, P, S: sliced in RAS since issue 27, so x and y are reversed
        np.testing.assert_array_equal(got, shifted[::-1, ::-1, r["slice_index"]].T > 0)
    # a flipped direction (same size, spacing, origin) is refused too
    src2 = tmp_path / "flip"
    _sitk(src2 / "images" / "c.nii.gz", img)
    _sitk(src2 / "labels" / "c.nii.gz", lab, direction=(-1, 0, 0, 0, -1, 0, 0, 0, 1))
    with pytest.raises(DataError, match=r"label direction .* differs from image direction"):
        prepare_dataset(src2, tmp_path / "out2", modality="CT", progress=False)


# ---------------------------------------------------------------------------------- pixel limit


def test_pixel_limit_is_a_data_error_and_can_be_raised(tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "big"
    (src / "images").mkdir(parents=True)
    (src / "labels").mkdir()
    lab = np.zeros((64, 64), np.uint8)
    lab[10:30, 10:30] = 1
    for stem in ("a", "b"):
        Image.fromarray(np.full((64, 64), 7, np.uint8) + lab).save(src / "images" / f"{stem}.png")
        Image.fromarray(lab).save(src / "labels" / f"{stem}.png")
    with pytest.raises(
        DataError, match=r"images/a\.png: 64 x 64 = 4096 pixels exceeds the limit of 1000"
    ):
        prepare_dataset(src, tmp_path / "o1", modality="XR", max_image_pixels=1000, progress=False)
    report = prepare_dataset(
        src, tmp_path / "o2", modality="XR", max_image_pixels=1000, skip_bad=True, progress=False
    )
    assert len(report.bad_cases) == 2 and "--max-image-pixels" in report.bad_cases[0]["reason"]
    # PIL's own guard (DecompressionBombError above 2 x MAX_IMAGE_PIXELS) gives way to ours
    from PIL import Image as PILImage

    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 100)
    report = prepare_dataset(
        src, tmp_path / "o3", modality="XR", max_image_pixels=5000, progress=False
    )
    assert report.objects_kept == 2 and PILImage.MAX_IMAGE_PIXELS == 100


# ---------------------------------------------------------------------------------- resume


def test_rerun_removes_temporary_files_of_a_killed_run(tmp_path: Path) -> None:
    src = _drive_like(tmp_path)
    out = tmp_path / "out"
    prepare_dataset(src, out, modality="Fundus", progress=False)
    ds = out / "DRIVE"
    stale = [
        ds / "images" / ".DRIVE_21-training_0.png.k3j_x9q2.tmp.png",
        ds / ".parts" / ".21-training.parquet.abcdefgh.tmp.parquet",
        ds / f".{DATASET_JSON_NAME}.zz11yy22.tmp",
    ]
    for p in stale:
        p.write_bytes(b"")
    user = ds / "images" / "notes.tmp.png"
    user.write_bytes(b"x")
    report = prepare_dataset(src, out, modality="Fundus", progress=False)
    assert report.temp_files_removed == 3 and report.cases_resumed == 2
    assert not any(p.exists() for p in stale) and user.exists()


def test_folder_prepared_with_the_old_description_name_resumes(tmp_path: Path) -> None:
    src = _drive_like(tmp_path)
    out = tmp_path / "out"
    prepare_dataset(src, out, modality="Fundus", progress=False)
    ds = out / "DRIVE"
    (ds / DATASET_JSON_NAME).rename(ds / LEGACY_DATASET_JSON_NAME)
    manifest = ds / "manifest.parquet"
    old = pd.read_parquet(manifest).drop(columns=["roi_path", "channel"])
    old.to_parquet(manifest, index=False)  # a manifest written before the new columns
    assert (load_manifest(out)["roi_path"] == "").all()
    report = prepare_dataset(src, out, modality="Fundus", progress=False)
    assert report.cases_resumed == 2
    assert (ds / DATASET_JSON_NAME).is_file() and not (ds / LEGACY_DATASET_JSON_NAME).exists()


def test_cli_prepare_new_options(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sambench.cli import app

    src, _ = _msd(tmp_path, cases=2)
    res = CliRunner().invoke(
        app,
        [
            "prepare",
            str(src),
            "--out",
            str(tmp_path / "o"),
            "--channel",
            "all",
            "--window",
            "brain",
            "--max-image-pixels",
            "1000000",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "window: level 40, width 80" in res.output
    assert load_manifest(tmp_path / "o")["channel"].nunique() == 3


@pytest.mark.parametrize(
    ("labels", "got"),
    [
        (["background", "edema"], 'labels: a list (["background", "edema"])'),
        ("edema", 'labels: a str ("edema")'),
        (None, "labels: missing"),
    ],
)
def test_malformed_msd_labels_name_dataset_json_and_the_field(
    tmp_path: Path, labels: object, got: str
) -> None:
    """Before: ignored silently (names lost, or a modality error not naming dataset.json)."""
    src, _ = _msd(tmp_path, cases=1)
    meta = json.loads((src / "dataset.json").read_text())
    if labels is None:
        del meta["labels"]
    else:
        meta["labels"] = labels
    (src / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(DataError) as e:
        prepare_dataset(src, tmp_path / "out", progress=False)
    assert str(e.value).startswith(f"{src / 'dataset.json'}: {got}; expected a mapping")
    assert len(str(e.value).splitlines()) == 1
