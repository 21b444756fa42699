"""Layouts usable without a recipe: one binary file per structure merged into one label map (the
higher class value wins where files overlap), pairing by a regex group on the path, noisy masks
binarized by a threshold, and excluded structures counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sambench.data.prepare import prepare_dataset
from sambench.errors import DataError


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _parts_source(root: Path) -> Path:
    src = root / "xr"
    for stem in ("a", "b"):
        _png(
            src / "img" / f"{stem}.png",
            np.full((30, 30), 100, np.uint8) + np.eye(30, dtype=np.uint8),
        )
        one = np.zeros((30, 30), np.uint8)
        one[2:20, 2:20] = 255  # 18 x 18
        two = np.zeros((30, 30), np.uint8)
        two[10:28, 10:28] = 1  # 18 x 18, overlapping "one" on 10 x 10
        _png(src / "first" / f"{stem}.png", one)
        _png(src / "second" / f"{stem}.png", two)
    return src


def test_one_file_per_structure_merged_higher_value_wins(tmp_path: Path):
    src = _parts_source(tmp_path)
    cfg = {"modality": "X-ray", "images": "img", "labels": {"First": "first", "Second": "second"}}
    report = prepare_dataset(src, tmp_path / "out", config=cfg, progress=False)
    m = pd.read_parquet(tmp_path / "out" / "xr" / "manifest.parquet")
    assert report.cases_done == 2
    areas = m[m["case"] == "a"].set_index("object_name")["area"]
    assert areas["Second"] == 18 * 18  # value 2 wins the overlap
    assert areas["First"] == 18 * 18 - 10 * 10
    lab = np.array(Image.open(tmp_path / "out" / m["label_path"].iloc[0]))
    assert sorted(np.unique(lab)) == [0, 128, 255]  # 2 classes spread to 128, 255


def test_missing_structure_file_is_a_bad_case_naming_it(tmp_path: Path):
    src = _parts_source(tmp_path)
    (src / "second" / "b.png").unlink()
    cfg = {"modality": "X-ray", "images": "img", "labels": {"First": "first", "Second": "second"}}
    with pytest.raises(DataError, match=r"no 'Second' file 'b' in .*second"):
        prepare_dataset(src, tmp_path / "out", config=cfg, progress=False)
    report = prepare_dataset(src, tmp_path / "out", config=cfg, progress=False, skip_bad=True)
    assert report.cases_done == 1 and len(report.bad_cases) == 1


def test_key_regex_threshold_and_exclude(tmp_path: Path):
    src = tmp_path / "k"
    for c in ("case_1", "case_2"):
        _png(src / c / "image.png", np.arange(900, dtype=np.uint8).reshape(30, 30))
        lab = np.zeros((30, 30), np.uint8)
        lab[2:12, 2:12] = 200  # kept after threshold: value 1
        lab[15:25, 15:25] = 90  # below the threshold: background
        _png(src / c / "mask.png", lab)
    cfg = {
        "modality": "X-ray",
        "images": "*/image.png",
        "labels": "*/mask.png",
        "pairing": {"key_regex": r"(case_\d+)/"},
        "label_threshold": 127,
        "classes": {"Thing": 1},
    }
    prepare_dataset(src, tmp_path / "out", config=cfg, progress=False)
    m = pd.read_parquet(tmp_path / "out" / "k" / "manifest.parquet")
    assert sorted(m["case"]) == ["case-1", "case-2"] and set(m["area"]) == {100}
    # exclude: the structure is dropped and counted, per slice where it has > 50 px
    src2 = tmp_path / "e"
    lab = np.zeros((30, 30), np.uint8)
    lab[2:12, 2:12] = 1
    lab[15:25, 15:25] = 3
    _png(src2 / "images" / "x.png", np.arange(900, dtype=np.uint8).reshape(30, 30))
    _png(src2 / "labels" / "x.png", lab)
    cfg2 = {"modality": "CT", "classes": {"Kidney": 1}, "exclude": {"Ureter": 3}}
    report = prepare_dataset(src2, tmp_path / "out", config=cfg2, progress=False)
    assert report.objects_excluded == {"Ureter": 1}
    assert "excluded structures" in report.to_text()
    with pytest.raises(DataError, match=r"exclude: label value\(s\) \[1\] are also in classes"):
        prepare_dataset(src2, tmp_path / "o2", config={**cfg2, "exclude": {"U": 1}}, progress=False)


def test_multipage_tiff_is_a_volume_sliced_page_by_page_in_stored_order(tmp_path: Path):
    import tifffile

    src = tmp_path / "em"
    (src / "images").mkdir(parents=True)
    (src / "labels").mkdir()
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 255, (4, 30, 40), dtype=np.uint8)
    lab = np.zeros_like(stack)
    lab[:, 3:13, 5:25] = 1  # 200 px, towards the top left of every page
    lab[2, 3:13, 5:25] = 0  # page 2 has no object
    tifffile.imwrite(src / "images" / "v.tif", stack, photometric="minisblack")
    tifffile.imwrite(src / "labels" / "v.tif", lab, photometric="minisblack")
    prepare_dataset(
        src, tmp_path / "out", config={"modality": "EM", "classes": {"M": 1}}, progress=False
    )
    m = pd.read_parquet(tmp_path / "out" / "em" / "manifest.parquet").sort_values("slice_index")
    assert m["slice_index"].tolist() == [0, 1, 3] and set(m["plane"]) == {"axial"}
    for k, row in zip([0, 1, 3], m.itertuples(), strict=True):
        img = np.array(Image.open(tmp_path / "out" / row.image_path)).astype(float)
        page = stack[k].astype(float)
        expected = np.rint(255 * (page - page.min()) / (page.max() - page.min()))
        np.testing.assert_array_equal(img, expected)  # the page as stored: no flip, no transpose
        assert (row.bbox_x_min, row.bbox_y_min, row.bbox_x_max, row.bbox_y_max) == (5, 3, 24, 12)


def test_label_slices_follow_their_dicom_files_not_the_array_order(tmp_path: Path):
    """CHAOS layout: Ground/*.png labels the DICOM files in name order; here the file names run
    against the slice positions, so only a placement by file puts the label on its slice."""
    from recipe_replicas import write_dicom_series

    src = tmp_path / "chaos"
    nx, ny, nz = 24, 20, 4
    img = np.zeros((nx, ny, nz), np.int16)
    for z in range(nz):
        img[:, :, z] = 100 * z + np.arange(nx)[:, None]  # each slice its own intensities
    names = [f"i{nz - 1 - z:04d},0000b.dcm" for z in range(nz)]  # slice z in file nz-1-z
    write_dicom_series(src / "CT" / "1" / "DICOM_anon", img, (1.0, 1.0, 3.0), names)
    for i in range(nz):  # label only the first file in name order: slice z = nz - 1
        lab = np.zeros((ny, nx), np.uint8)
        if i == 0:
            lab[2:12, 3:13] = 255
        _png(src / "CT" / "1" / "Ground" / f"liver_GT_{i:03d}.png", lab)
    cfg = {
        "modality": "CT",
        "images": "CT/*/DICOM_anon",
        "labels": "CT/*/Ground",
        "pairing": {"key_regex": r"CT/(\d+)/"},
        "label_threshold": 127,
        "classes": {"Liver": 1},
        "plane": "axial",
    }
    prepare_dataset(src, tmp_path / "out", config=cfg, progress=False)
    m = pd.read_parquet(tmp_path / "out" / "chaos" / "manifest.parquet")
    assert len(m) == 1 and m["area"].iloc[0] == 100
    z = int(m["slice_index"].iloc[0])
    assert z == nz - 1  # canonical S-I index of the slice in file i0000 (the last position)
    # wrong count of label slices: named, with both numbers
    (src / "CT" / "1" / "Ground" / "liver_GT_003.png").unlink()
    with pytest.raises(DataError, match="3 label slices for 4 DICOM files"):
        prepare_dataset(src, tmp_path / "out2", config=cfg, progress=False)
