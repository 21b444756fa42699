"""The 3D prepared form: volumes and labels in the source geometry, ``volumes3d.parquet`` with
known objects, reading it back (geometry, spacing checks) and masks written as NIfTI."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from PIL import Image

from sambench.data.prepare import prepare_dataset
from sambench.data.volumes3d import VOLUMES3D_NAME
from sambench.errors import DataError, OptionError
from sambench.volumes.io import load_volume_table, object_from_row, read_volume, write_mask_nifti
from volume_data import prepare_synthetic as _prepare

from shared_data import SEED


def test_prepare_writes_volumes_and_objects_with_known_answers(tmp_path: Path) -> None:
    out, lab = _prepare(tmp_path)
    table = load_volume_table(out)
    assert list(table["object_name"]) == ["Liver", "Tumor"]
    liver, tumor = (table.iloc[i].to_dict() for i in range(2))
    assert liver["voxel_count"] == int((lab == 1).sum()) and liver["key_slice"] == 3
    assert liver["key_area"] == 16 * 16 and liver["n_slices"] == 5
    # Axial slicing in RAS (issue 27; before, the file's own x/y were columns/rows): the file's
    # x runs A and its y runs L (volume_data.DIRECTION), so rows = A-P = the file's x (voxels
    # 7..22) and columns = R-L = the file's y reversed (35 - 25 .. 35 - 10)
    assert (liver["bbox_z_min"], liver["bbox_z_max"]) == (1, 5)
    assert (liver["bbox_y_min"], liver["bbox_y_max"]) == (7, 22)
    assert (liver["bbox_x_min"], liver["bbox_x_max"]) == (10, 25)
    assert tumor["n_slices"] == 1 and tumor["voxel_count"] == 12
    assert (liver["spacing_z"], liver["spacing_y"], liver["spacing_x"]) == pytest.approx(
        (3, 0.8, 0.7)
    )
    assert (liver["plane"], liver["orientation"]) == ("axial", "ALS")
    # the NIfTI lies on the source grid
    src_img = sitk.ReadImage(str(tmp_path / "src/images/c1.nii.gz"))
    vol_img = sitk.ReadImage(str(out / liver["image_path"]))
    assert vol_img.GetSpacing() == pytest.approx(src_img.GetSpacing())
    assert vol_img.GetOrigin() == pytest.approx(src_img.GetOrigin())
    assert vol_img.GetDirection() == pytest.approx(src_img.GetDirection())
    vol = read_volume(liver, out)
    assert vol.shape == (7, 30, 36) and vol.spacing == pytest.approx((3.0, 0.8, 0.7))
    obj = object_from_row(liver)
    assert int(vol.mask(obj).sum()) == obj.voxel_count
    # the stacked slices are the prepared PNGs (label PNG values = the 3D label's)
    manifest = pd.read_parquet(out / "Synth" / "manifest.parquet")
    row = manifest[manifest.slice_index == 3].iloc[0]
    assert np.array_equal(np.asarray(Image.open(out / row.image_path)), vol.image[3])
    assert np.array_equal(np.asarray(Image.open(out / row.label_path)), vol.label[3])
    # a mask written back overlays the source: same grid, same voxels as the source label
    path = write_mask_nifti(tmp_path / "m.nii.gz", vol.mask(obj), vol)
    back = sitk.ReadImage(str(path))
    assert back.GetSpacing() == pytest.approx(src_img.GetSpacing())
    assert back.GetDirection() == pytest.approx(src_img.GetDirection())
    assert np.array_equal(
        sitk.GetArrayFromImage(back).transpose(2, 1, 0), (lab == 1).astype(np.uint8)
    )


@pytest.mark.parametrize("fmt", ["nifti", "zarr"])
def test_coarse_axis_volume_is_slice_major(tmp_path: Path, fmt: str) -> None:
    # The file's x has the largest spacing and runs A (volume_data.DIRECTION): cut across A-P,
    # i.e. coronal, the coarse axis. Before issue 27 this test read "sagittal" (file axis 0) and
    # expected the file's own order; the plane is now named after the anatomy.
    out, lab = _prepare(tmp_path, spacing=(4.0, 0.7, 0.8), volume_format=fmt)
    row = load_volume_table(out).iloc[0].to_dict()
    assert row["slice_axis"] == 1 and (row["depth"], row["height"], row["width"]) == (30, 7, 36)
    assert row["plane"] == "coronal"
    vol = read_volume(row, out)
    assert vol.spacing == pytest.approx((4.0, 0.8, 0.7))  # (A-P, S-I rows, R-L columns)
    assert str(row["image_path"]).endswith(".zarr" if fmt == "zarr" else ".nii.gz")
    liver = np.asarray(vol.label) == row["label_value"]  # the prepared value (128 of 2 classes)
    # (x=A, y=L, z) -> (A, S rows, R columns): the file's y reversed to run towards R
    assert np.array_equal(liver, (lab == 1)[:, ::-1, :].transpose(0, 2, 1))
    back = write_mask_nifti(tmp_path / "m.nii.gz", liver, vol)
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(back))).transpose(2, 1, 0)
    assert np.array_equal(arr, (lab == 1).astype(np.uint8))


def test_resumed_prepare_keeps_the_3d_form(tmp_path: Path) -> None:
    out, _ = _prepare(tmp_path)
    first = pd.read_parquet(out / "Synth" / VOLUMES3D_NAME)
    (out / first.iloc[0]["label_path"]).unlink()  # a lost volume makes the case redo
    report = prepare_dataset(tmp_path / "src", out, config=tmp_path / "src/d.yaml", progress=False)
    assert report.cases_resumed == 0 and report.cases_done == 1
    pd.testing.assert_frame_equal(pd.read_parquet(out / "Synth" / VOLUMES3D_NAME), first)
    again = prepare_dataset(tmp_path / "src", out, config=tmp_path / "src/d.yaml", progress=False)
    assert again.cases_resumed == 1


def test_geometry_mismatch_and_missing_spacing_are_errors(tmp_path: Path) -> None:
    out, _ = _prepare(tmp_path)
    row = load_volume_table(out).iloc[0].to_dict()
    lab_path = out / row["label_path"]
    img = sitk.ReadImage(str(lab_path))
    img.SetOrigin((50.0, 0.0, 0.0))
    sitk.WriteImage(img, str(lab_path))
    with pytest.raises(DataError, match=r"labels/Synth_c1\.nii\.gz.*origin"):
        read_volume(row, out)

    out2, _ = _prepare(tmp_path / "nospacing", frame=False)
    row2 = load_volume_table(out2).iloc[0].to_dict()
    assert not row2["spacing_known"]
    with pytest.raises(DataError, match=r"c1\.nii\.gz.*--assume-spacing"):
        read_volume(row2, out2)
    vol = read_volume(row2, out2, assume_spacing=(2.0, 0.5, 0.5))
    assert vol.spacing == (2.0, 0.5, 0.5)
    with pytest.raises(OptionError, match="--assume-spacing"):
        read_volume(row2, out2, assume_spacing=(2.0, 0.0))


def test_2d_sources_get_no_3d_form(tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare_dataset(SEED / "22_Heart", out, modality="MRI", progress=False)
    assert not (out / "22_Heart" / VOLUMES3D_NAME).exists()
    with pytest.raises(DataError, match="2D slices only"):
        load_volume_table(out)


@pytest.mark.parametrize("fmt", ["nifti", "zarr"])
def test_4d_frames_are_separate_volumes(tmp_path: Path, fmt: str) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    img = np.random.default_rng(1).integers(0, 500, size=(20, 24, 5, 2)).astype(np.int16)
    lab = np.zeros(img.shape, np.uint8)
    lab[4:14, 5:15, 1:4, 0] = 1  # frame 0: 3 slices
    lab[4:14, 5:15, 2, 1] = 1  # frame 1: one slice
    for sub, arr in (("images", img), ("labels", lab)):
        (src / sub).mkdir(parents=True)
        nib.save(nib.Nifti1Image(arr, np.diag([0.9, 0.9, 2.0, 1.0])), src / sub / "h.nii.gz")
    (src / "d.yaml").write_text("name: Cine\nmodality: MRI\nclasses: {LV: 1}\n")
    prepare_dataset(src, out, config=src / "d.yaml", progress=False, volume_format=fmt)
    table = load_volume_table(out)
    assert list(table["volume_id"]) == ["Cine_h-t0", "Cine_h-t1"]
    assert table["image_path"].str.endswith(".zarr" if fmt == "zarr" else ".nii.gz").all()
    assert list(table["n_slices"]) == [3, 1] and list(table["voxel_count"]) == [300, 100]
    vol = read_volume(table.iloc[1].to_dict(), out)
    assert vol.case == "h-t1" and np.array_equal(vol.label[2] > 0, (lab[:, :, 2, 1] > 0).T)
