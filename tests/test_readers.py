"""Dataset readers: slicing convention, spacing, 4D frames, formats, and every bad-input error.

Reference data are written here with independent libraries (nibabel, SimpleITK writers, PIL,
tifffile, OpenCV) and compared with what ``read_pair_slices`` yields.
"""

from __future__ import annotations

import gzip
import inspect
import math
import pickle
from pathlib import Path

import cv2
import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import tifffile
from PIL import Image

from sambench.data.readers import (
    IMAGE_2D_SUFFIXES,
    VOLUME_SUFFIXES,
    is_volume_path,
    main_plane_axis,
    read_pair_slices,
)
from sambench.errors import DataError

# ---------------------------------------------------------------------------------------------
# local helpers


def _vol(shape: tuple[int, ...], seed: int = 0, dtype: type = np.int16) -> np.ndarray:
    """A volume in nibabel's (x, y, z[, t]) voxel order with distinct values."""
    rng = np.random.default_rng(seed)
    return rng.integers(-1000, 1000, size=shape).astype(dtype)


def _label(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4, size=shape).astype(np.uint8)


def _nii(path: Path, arr: np.ndarray, zooms: tuple[float, ...]) -> Path:
    img = nib.Nifti1Image(arr, np.diag([*zooms[:3], 1.0]))
    img.header.set_zooms(zooms)
    nib.save(img, path)
    return path


def _lps(arr_xyz: np.ndarray, k: int, *frame: int) -> np.ndarray:
    """The axial slice ``k`` of an (x, y[, z, t]) array stored with ITK's identity direction, i.e.
    L, P, S: issue 27 reorients every volume to RAS before slicing (the file's x runs towards L,
    its y towards P), so the slice is the file's slice flipped in both in-plane axes. Before
    issue 27 these tests expected the file's own order (``arr[:, :, k].T``)."""
    return arr_xyz[(slice(None, None, -1), slice(None, None, -1), k, *frame)].T


def _sitk_write(path: Path, arr_xyz: np.ndarray, spacing: tuple[float, float, float]) -> Path:
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr_xyz.transpose(2, 1, 0)))
    img.SetSpacing(spacing)
    sitk.WriteImage(img, str(path))
    return path


def _dicom_series(folder: Path, arr_xyz: np.ndarray, spacing, series_uid: str) -> Path:
    """Write a (x, y, z) int16 volume as a DICOM series (one file per z slice), SimpleITK way.

    GDCM's writer sets the process locale to "C" (Python's default encoding becomes ASCII for the
    rest of the test session): the locale is put back afterwards."""
    import locale

    saved = locale.setlocale(locale.LC_ALL)
    try:
        return _write_dicom_series(folder, arr_xyz, spacing, series_uid)
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def _write_dicom_series(folder: Path, arr_xyz: np.ndarray, spacing, series_uid: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    vol = sitk.GetImageFromArray(np.ascontiguousarray(arr_xyz.transpose(2, 1, 0)))
    vol.SetSpacing(spacing)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for z in range(vol.GetDepth()):
        sl = vol[:, :, z]
        pos = vol.TransformIndexToPhysicalPoint((0, 0, z))
        tags = {
            "0008|0060": "CT",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0020|000e": series_uid,
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0032": "\\".join(map(str, pos)),
            "0020|0013": str(z + 1),
            "0008|0018": f"{series_uid}.{z + 1}",
            "0018|0050": str(spacing[2]),
        }
        for key, value in tags.items():
            sl.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"{series_uid[-4:]}_{z:03d}.dcm"))
        writer.Execute(sl)
    return folder


def _all(image: Path, label: Path, **kw):
    return list(read_pair_slices(image, label, **kw))


# ---------------------------------------------------------------------------------------------
# main plane and suffixes


@pytest.mark.parametrize(
    ("spacing", "axis"),
    [
        ((0.8, 0.8, 5.0), 2),
        ((5.0, 0.7, 0.7), 0),
        ((0.7, 3.0, 0.7), 1),
        ((1.0, 1.0, 1.0), 2),  # tie -> last axis
        ((2.0, 2.0, 1.0), 1),  # tie between x and y -> y
        ((0.7, 0.7000001, 0.7), 2),  # header float noise is still a tie
    ],
)
def test_main_plane_axis(spacing, axis):
    assert main_plane_axis(spacing) == axis


def test_main_plane_axis_rejects_bad_spacing():
    with pytest.raises(ValueError, match="spacing_xyz"):
        main_plane_axis((1.0, 0.0, 1.0))


def test_is_volume_path(tmp_path):
    for suffix in VOLUME_SUFFIXES:
        assert is_volume_path(tmp_path / f"a{suffix}")
    assert is_volume_path(tmp_path / "CASE.NII.GZ")
    for suffix in IMAGE_2D_SUFFIXES:
        assert not is_volume_path(tmp_path / f"a{suffix}")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not is_volume_path(empty)
    dcm = _dicom_series(tmp_path / "dcm", _vol((4, 3, 2)), (1.0, 1.0, 2.0), "1.2.3.4.1001")
    assert is_volume_path(dcm)
    # DICOM detected by the 'DICM' magic even without a .dcm suffix
    nosuffix = tmp_path / "nosuffix"
    nosuffix.mkdir()
    (nosuffix / "IM0001").write_bytes((dcm / "1001_000.dcm").read_bytes())
    assert is_volume_path(nosuffix)


# ---------------------------------------------------------------------------------------------
# 3D volumes


def test_nifti_3d_axial_slices_match_nibabel(tmp_path):
    data, lab = _vol((6, 5, 4)), _label((6, 5, 4))
    img_p = _nii(tmp_path / "img.nii.gz", data, (0.8, 0.9, 5.0))
    lab_p = _nii(tmp_path / "lab.nii.gz", lab, (0.8, 0.9, 5.0))
    gen = read_pair_slices(img_p, lab_p)
    assert inspect.isgenerator(gen)
    slices = list(gen)
    assert len(slices) == 4
    ref_img = np.asanyarray(nib.load(img_p).dataobj)
    for k, s in enumerate(slices):
        assert (s.slice_index, s.slice_axis, s.frame) == (k, 2, None)
        # rows = y, columns = x: the transpose of nibabel's [x, y] slice
        assert s.image.shape == (5, 6) and s.image.dtype == np.int16
        np.testing.assert_array_equal(s.image, ref_img[:, :, k].T)
        np.testing.assert_array_equal(s.label, lab[:, :, k].T)
        assert np.issubdtype(s.label.dtype, np.integer)
        assert s.image.flags.c_contiguous and s.label.flags.c_contiguous
        assert s.spacing == pytest.approx((0.8, 0.9, 5.0))


def test_nifti_sagittal_main_plane_and_override(tmp_path):
    data, lab = _vol((3, 5, 4)), _label((3, 5, 4))
    img_p = _nii(tmp_path / "img.nii", data, (5.0, 0.7, 0.6))
    lab_p = _nii(tmp_path / "lab.nii", lab, (5.0, 0.7, 0.6))
    slices = _all(img_p, lab_p)
    assert [s.slice_index for s in slices] == [0, 1, 2]
    for s in slices:
        # axis 0 slice: rows = z, columns = y; sx = y spacing, sy = z spacing, sz = x spacing
        assert s.slice_axis == 0 and s.image.shape == (4, 5)
        np.testing.assert_array_equal(s.image, data[s.slice_index].T)
        np.testing.assert_array_equal(s.label, lab[s.slice_index].T)
        assert s.spacing == pytest.approx((0.7, 0.6, 5.0))
    coronal = _all(img_p, lab_p, axis=1)
    assert len(coronal) == 5
    for s in coronal:
        assert s.slice_axis == 1 and s.image.shape == (4, 3)  # rows = z, columns = x
        np.testing.assert_array_equal(s.image, data[:, s.slice_index, :].T)
        assert s.spacing == pytest.approx((5.0, 0.6, 0.7))
    with pytest.raises(ValueError, match="axis"):
        _all(img_p, lab_p, axis=3)


def test_single_slice_volume_uses_its_singleton_axis(tmp_path):
    data, lab = _vol((6, 5, 1)), _label((6, 5, 1))
    img_p = _nii(tmp_path / "i.nii.gz", data, (0.5, 0.5, 0.4))  # largest spacing would say x
    lab_p = _nii(tmp_path / "l.nii.gz", lab, (0.5, 0.5, 0.4))
    (s,) = _all(img_p, lab_p)
    assert s.slice_axis == 2 and s.image.shape == (5, 6)


def test_float_label_integral_is_converted_and_fractional_rejected(tmp_path):
    data = _vol((4, 4, 2))
    img_p = _nii(tmp_path / "i.nii.gz", data, (1.0, 1.0, 1.0))
    lab = _label((4, 4, 2)).astype(np.float32) * 100
    lab_p = _nii(tmp_path / "l.nii.gz", lab, (1.0, 1.0, 1.0))
    slices = _all(img_p, lab_p)
    assert all(np.issubdtype(s.label.dtype, np.integer) for s in slices)
    np.testing.assert_array_equal(slices[1].label, lab[:, :, 1].T.astype(int))
    lab[0, 0, 0] = 1.5
    bad = _nii(tmp_path / "bad.nii.gz", lab, (1.0, 1.0, 1.0))
    with pytest.raises(DataError, match=r"bad\.nii\.gz: label has 1 non-integral"):
        _all(img_p, bad)


@pytest.mark.parametrize("suffix", [".mha", ".nrrd", ".mhd", ".nhdr"])
def test_metaimage_and_nrrd_round_trip(tmp_path, suffix):
    data, lab = _vol((5, 4, 3)).astype(np.float32), _label((5, 4, 3))
    img_p = _sitk_write(tmp_path / f"img{suffix}", data, (0.5, 0.6, 2.5))
    lab_p = _sitk_write(tmp_path / f"lab{suffix}", lab, (0.5, 0.6, 2.5))
    slices = _all(img_p, lab_p)
    assert len(slices) == 3
    for s in slices:
        assert s.image.dtype == np.float32
        np.testing.assert_array_equal(s.image, _lps(data, s.slice_index))
        np.testing.assert_array_equal(s.label, _lps(lab, s.slice_index))
        assert s.spacing == pytest.approx((0.5, 0.6, 2.5))
        assert s.orientation == "LPS" and s.plane is not None and s.plane.plane == "axial"


def test_dicom_series_round_trip(tmp_path):
    data, lab = _vol((6, 5, 4)), _label((6, 5, 4))
    folder = _dicom_series(tmp_path / "ct", data, (0.7, 0.8, 3.0), "1.2.826.0.1.3680043.2.1125.7")
    # The label on the same physical grid (identity direction, origin 0; a nibabel diag affine
    # would be RAS, i.e. x and y flipped in ITK's LPS and refused as mis-registered).
    lab_p = _sitk_write(tmp_path / "lab.nii.gz", lab, (0.7, 0.8, 3.0))
    slices = _all(folder, lab_p)
    assert len(slices) == 4
    for s in slices:
        np.testing.assert_array_equal(s.image, _lps(data, s.slice_index))
        assert s.spacing == pytest.approx((0.7, 0.8, 3.0))


def test_dicom_folder_with_two_series_lists_uids(tmp_path):
    folder = tmp_path / "mixed"
    _dicom_series(folder, _vol((4, 4, 2)), (1.0, 1.0, 2.0), "1.2.3.4.5551")
    _dicom_series(folder, _vol((4, 4, 3)), (1.0, 1.0, 2.0), "1.2.3.4.5552")
    lab_p = _nii(tmp_path / "lab.nii.gz", _label((4, 4, 2)), (1.0, 1.0, 2.0))
    with pytest.raises(DataError, match="2 DICOM series") as err:
        _all(folder, lab_p)
    assert "1.2.3.4.5551" in str(err.value) and "1.2.3.4.5552" in str(err.value)
    assert str(folder) in str(err.value)


# ---------------------------------------------------------------------------------------------
# 4D volumes


def test_4d_volume_yields_each_frame_with_4d_label(tmp_path):
    data, lab = _vol((4, 3, 2, 3)), _label((4, 3, 2, 3))
    img_p = _nii(tmp_path / "img.nii.gz", data, (1.0, 1.0, 4.0, 1.0))
    lab_p = _nii(tmp_path / "lab.nii.gz", lab, (1.0, 1.0, 4.0, 1.0))
    slices = _all(img_p, lab_p)
    assert len(slices) == 3 * 2
    assert [(s.frame, s.slice_index) for s in slices] == [
        (t, k) for t in range(3) for k in range(2)
    ]
    for s in slices:
        np.testing.assert_array_equal(s.image, data[:, :, s.slice_index, s.frame].T)
        np.testing.assert_array_equal(s.label, lab[:, :, s.slice_index, s.frame].T)
        assert s.spacing == pytest.approx((1.0, 1.0, 4.0))


def test_4d_volume_with_3d_label_applies_label_to_every_frame(tmp_path):
    data, lab = _vol((4, 3, 2, 2)), _label((4, 3, 2))
    img_p = _nii(tmp_path / "img.nii.gz", data, (1.0, 1.0, 4.0, 1.0))
    lab_p = _nii(tmp_path / "lab.nii.gz", lab, (1.0, 1.0, 4.0))
    slices = _all(img_p, lab_p)
    assert len(slices) == 4
    for s in slices:
        np.testing.assert_array_equal(s.image, data[:, :, s.slice_index, s.frame].T)
        np.testing.assert_array_equal(s.label, lab[:, :, s.slice_index].T)


def test_4d_label_frame_count_mismatch(tmp_path):
    img_p = _nii(tmp_path / "img.nii.gz", _vol((4, 3, 2, 3)), (1.0, 1.0, 4.0, 1.0))
    lab_p = _nii(tmp_path / "lab.nii.gz", _label((4, 3, 2, 2)), (1.0, 1.0, 4.0, 1.0))
    with pytest.raises(DataError, match=r"lab\.nii\.gz: 4D label with 2 frames; image has 3"):
        _all(img_p, lab_p)


# ---------------------------------------------------------------------------------------------
# 2D files


def test_16bit_tif_keeps_values(tmp_path):
    img = (np.arange(30).reshape(5, 6) * 2000).astype(np.uint16)
    lab = (np.arange(30).reshape(5, 6) % 3).astype(np.uint8)
    tifffile.imwrite(tmp_path / "i.tif", img)
    Image.fromarray(lab).save(tmp_path / "l.png")
    (s,) = _all(tmp_path / "i.tif", tmp_path / "l.png")
    assert s.image.dtype == np.uint16
    np.testing.assert_array_equal(s.image, img)
    np.testing.assert_array_equal(s.label, lab)
    assert (s.slice_index, s.slice_axis, s.frame) == (-1, -1, None)
    assert s.spacing[:2] == (1.0, 1.0) and math.isnan(s.spacing[2])


def test_rgb_png_and_rgba_drop_alpha_and_gray_rgb_label(tmp_path):
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
    rgba = np.dstack([rgb, np.full((5, 6), 7, np.uint8)])
    lab = rng.integers(0, 3, size=(5, 6), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "i.png")
    Image.fromarray(np.dstack([lab] * 3), "RGB").save(tmp_path / "l.png")  # 3 equal channels
    (s,) = _all(tmp_path / "i.png", tmp_path / "l.png")
    np.testing.assert_array_equal(s.image, rgb)
    assert s.label.shape == (5, 6)
    np.testing.assert_array_equal(s.label, lab)


def test_16bit_rgb_png_and_rgb_tif_keep_all_bits(tmp_path):
    rgb16 = (np.arange(90).reshape(5, 6, 3) * 700).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "i.png"), rgb16[..., ::-1])  # OpenCV writes BGR
    tifffile.imwrite(tmp_path / "i.tif", rgb16, photometric="rgb")
    Image.fromarray(np.zeros((5, 6), np.uint8)).save(tmp_path / "l.png")
    for name in ("i.png", "i.tif"):
        (s,) = _all(tmp_path / name, tmp_path / "l.png")
        assert s.image.dtype == np.uint16
        np.testing.assert_array_equal(s.image, rgb16)


def test_jpeg_and_bmp_and_palette_label(tmp_path):
    gray = np.tile(np.arange(6, dtype=np.uint8) * 40, (5, 1))
    Image.fromarray(gray).save(tmp_path / "i.bmp")
    Image.fromarray(gray).save(tmp_path / "i.jpg", quality=100)
    lab = (np.arange(30).reshape(5, 6) % 4).astype(np.uint8)
    pal = Image.fromarray(lab, "P")
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    pal.save(tmp_path / "l.png")
    (s,) = _all(tmp_path / "i.bmp", tmp_path / "l.png")
    np.testing.assert_array_equal(s.image, gray)
    np.testing.assert_array_equal(s.label, lab)  # palette indices, not colours
    (s,) = _all(tmp_path / "i.jpg", tmp_path / "l.png")
    assert s.image.shape == (5, 6)
    assert np.abs(s.image.astype(int) - gray).max() <= 8  # lossy but close


def test_colour_coded_label_rejected(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "i.png")
    col = np.zeros((4, 4, 3), np.uint8)
    col[1, 1] = (255, 0, 0)
    Image.fromarray(col, "RGB").save(tmp_path / "l.png")
    with pytest.raises(DataError, match=r"l\.png: colour-coded label.*mapping"):
        _all(tmp_path / "i.png", tmp_path / "l.png")


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.fixture
def nii_pair(tmp_path):
    shape, zooms = (4, 4, 3), (1.0, 1.0, 2.0)
    return (
        _nii(tmp_path / "img.nii.gz", _vol(shape), zooms),
        _nii(tmp_path / "lab.nii.gz", _label(shape), zooms),
    )


def test_truncated_nifti(tmp_path, nii_pair):
    img_p, lab_p = nii_pair
    raw = gzip.decompress(img_p.read_bytes())
    bad = tmp_path / "trunc.nii.gz"
    bad.write_bytes(gzip.compress(raw[: len(raw) - 40]))
    with pytest.raises(DataError, match=r"trunc\.nii\.gz: cannot be read"):
        _all(bad, lab_p)
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(img_p.read_bytes()[:60])  # broken gzip stream
    with pytest.raises(DataError, match=r"cut\.nii\.gz: cannot be read"):
        _all(cut, lab_p)


def test_garbage_png_and_tif(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "l.png")
    for name in ("junk.png", "junk.tif", "junk.jpg"):
        (tmp_path / name).write_bytes(b"not an image at all" * 5)
        with pytest.raises(DataError, match=rf"{name}: cannot be read as a 2D image"):
            _all(tmp_path / name, tmp_path / "l.png")


def test_shape_mismatch(tmp_path, nii_pair):
    img_p, _ = nii_pair
    lab_p = _nii(tmp_path / "other.nii.gz", _label((4, 5, 3)), (1.0, 1.0, 2.0))
    with pytest.raises(DataError, match=r"other\.nii\.gz: .*label size \(4, 5, 3\)"):
        _all(img_p, lab_p)
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(tmp_path / "i.png")
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(tmp_path / "l.png")
    with pytest.raises(DataError, match=r"l\.png: label shape \(5, 4\)"):
        _all(tmp_path / "i.png", tmp_path / "l.png")


def test_spacing_mismatch_beyond_tolerance(tmp_path, nii_pair):
    img_p, _ = nii_pair
    close = _nii(tmp_path / "close.nii.gz", _label((4, 4, 3)), (1.0, 1.0, 2.0005))
    assert len(_all(img_p, close)) == 3  # within 1e-3 relative
    far = _nii(tmp_path / "far.nii.gz", _label((4, 4, 3)), (1.0, 1.0, 2.01))
    with pytest.raises(DataError, match=r"far\.nii\.gz: .*label spacing"):
        _all(img_p, far)


def test_nonfinite_voxels_error_or_replace(tmp_path, nii_pair):
    _, lab_p = nii_pair
    data = _vol((4, 4, 3)).astype(np.float32)
    data[0, 0, 0], data[1, 2, 2], data[3, 3, 1] = np.nan, np.inf, -np.inf
    img_p = _nii(tmp_path / "nan.nii.gz", data, (1.0, 1.0, 2.0))
    with pytest.raises(DataError, match=r"nan\.nii\.gz: 3 non-finite"):
        _all(img_p, lab_p)
    slices = _all(img_p, lab_p, replace_nonfinite=-5.0)
    assert slices[0].image[0, 0] == -5.0 and slices[2].image[2, 1] == -5.0
    assert slices[1].image[3, 3] == -5.0
    expected = np.where(np.isfinite(data), data, -5.0)
    for s in slices:
        np.testing.assert_array_equal(s.image, expected[:, :, s.slice_index].T)
    tifffile.imwrite(tmp_path / "f.tif", np.array([[np.nan, 1.0], [2.0, 3.0]], np.float32))
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "l.png")
    with pytest.raises(DataError, match=r"f\.tif: 1 non-finite"):
        _all(tmp_path / "f.tif", tmp_path / "l.png")


def test_missing_label_and_unsupported_suffix(tmp_path, nii_pair):
    img_p, lab_p = nii_pair
    with pytest.raises(DataError, match=r"nope\.nii\.gz: file is missing"):
        _all(img_p, tmp_path / "nope.nii.gz")
    odd = tmp_path / "img.xyz"
    odd.write_bytes(b"x")
    with pytest.raises(DataError, match=r"img\.xyz: unsupported file type '\.xyz'") as err:
        _all(odd, lab_p)
    for suffix in (*IMAGE_2D_SUFFIXES, *VOLUME_SUFFIXES, "DICOM"):
        assert suffix in str(err.value)


def test_label_kind_must_match_image(tmp_path, nii_pair):
    img_p, _ = nii_pair
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "l.png")
    with pytest.raises(DataError, match=r"l\.png: label must be a volume"):
        _all(img_p, tmp_path / "l.png")


def test_error_is_valueerror_with_parts_and_picklable(tmp_path):
    err = DataError(tmp_path / "a.png", "broken")
    assert isinstance(err, ValueError)
    assert str(err) == f"{tmp_path / 'a.png'}: broken"
    assert err.path == tmp_path / "a.png" and err.problem == "broken"
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.problem == "broken"


# ---------------------------------------------------------------------------------------------
# streaming


def test_streaming_is_lazy_and_reads_one_case(tmp_path, nii_pair):
    img_p, lab_p = nii_pair
    # Nothing is opened before the first next(): a missing file fails only then.
    gen = read_pair_slices(tmp_path / "missing.nii.gz", lab_p)
    assert inspect.isgenerator(gen)
    with pytest.raises(DataError, match="missing"):
        next(gen)
    # A case reads only its own two files, even with a corrupt sibling in the folder.
    (tmp_path / "corrupt.nii.gz").write_bytes(b"junk")
    gen = read_pair_slices(img_p, lab_p)
    first = next(gen)
    assert first.slice_index == 0
    assert len(list(gen)) == 2


def test_4d_frames_are_read_one_at_a_time(tmp_path, monkeypatch):
    import sambench.data.readers as readers

    data, lab = _vol((4, 3, 2, 3)), _label((4, 3, 2, 3))
    img_p = _nii(tmp_path / "img.nii.gz", data, (1.0, 1.0, 4.0, 1.0))
    lab_p = _nii(tmp_path / "lab.nii.gz", lab, (1.0, 1.0, 4.0, 1.0))
    calls: list[tuple[str, int | None]] = []
    real = readers._read_nifti

    def spy(path, t, size):
        calls.append((path.name, t))
        return real(path, t, size)

    monkeypatch.setattr(readers, "_read_nifti", spy)
    gen = read_pair_slices(img_p, lab_p)
    assert calls == []
    next(gen), next(gen)  # both slices of frame 0
    assert calls == [("img.nii.gz", 0), ("lab.nii.gz", 0)]
    assert next(gen).frame == 1
    assert calls[2:] == [("img.nii.gz", 1), ("lab.nii.gz", 1)]


def test_4d_metaimage_uses_streamed_extraction(tmp_path):
    data = _vol((4, 3, 2, 3))  # (x, y, z, t)
    img = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(3, 2, 1, 0)), isVector=False)
    img.SetSpacing((0.5, 0.6, 3.0, 1.0))
    sitk.WriteImage(img, str(tmp_path / "img.mha"))
    lab = _label((4, 3, 2))
    _sitk_write(tmp_path / "lab.mha", lab, (0.5, 0.6, 3.0))
    slices = _all(tmp_path / "img.mha", tmp_path / "lab.mha")
    assert [(s.frame, s.slice_index) for s in slices] == [
        (t, k) for t in range(3) for k in range(2)
    ]
    for s in slices:
        np.testing.assert_array_equal(s.image, _lps(data, s.slice_index, s.frame))
        np.testing.assert_array_equal(s.label, _lps(lab, s.slice_index))
        assert s.spacing == pytest.approx((0.5, 0.6, 3.0))


def test_2d_metaimage_keeps_header_spacing(tmp_path):
    arr = _vol((5, 4))  # (x, y)
    for name, a in (("i.mha", arr), ("l.mha", (arr > 0).astype(np.uint8))):
        img = sitk.GetImageFromArray(np.ascontiguousarray(a.T))
        img.SetSpacing((0.3, 0.4))
        sitk.WriteImage(img, str(tmp_path / name))
    (s,) = _all(tmp_path / "i.mha", tmp_path / "l.mha")
    np.testing.assert_array_equal(s.image, arr.T)
    np.testing.assert_array_equal(s.label, (arr.T > 0).astype(np.uint8))
    assert (s.slice_index, s.slice_axis, s.frame) == (-1, -1, None)
    assert s.spacing[:2] == pytest.approx((0.3, 0.4)) and math.isnan(s.spacing[2])


def test_nonfinite_in_metaimage(tmp_path):
    data = _vol((4, 4, 2)).astype(np.float64)
    data[2, 1, 0] = np.nan
    img_p = _sitk_write(tmp_path / "nan.mha", data, (1.0, 1.0, 1.0))
    lab_p = _sitk_write(tmp_path / "lab.mha", _label((4, 4, 2)), (1.0, 1.0, 1.0))
    with pytest.raises(DataError, match=r"nan\.mha: 1 non-finite"):
        _all(img_p, lab_p)


def test_folder_without_dicom_files(tmp_path, nii_pair):
    _, lab_p = nii_pair
    folder = tmp_path / "notdicom"
    folder.mkdir()
    (folder / "readme.txt").write_text("hello")
    with pytest.raises(DataError, match=r"notdicom: folder holds no DICOM files"):
        _all(folder, lab_p)


# ---------------------------------------------------------------------------------------------
# DICOM series with a missing or unreadable slice (issue 28 item 5)


def _gap_case(tmp_path):
    data = _vol((6, 5, 6))
    folder = _dicom_series(tmp_path / "ct", data, (0.7, 0.8, 2.0), "1.2.3.4.7777")
    lab = _sitk_write(tmp_path / "lab.nii.gz", _label((6, 5, 5)), (0.7, 0.8, 2.0))
    return folder, lab


def _avg_label(tmp_path):
    """A label on the grid ITK reads a 6-slice series with one slice gone: 5 slices, 2.5 mm."""
    return _sitk_write(tmp_path / "lab25.nii.gz", _label((6, 5, 5)), (0.7, 0.8, 2.5))


def test_dicom_series_with_a_missing_slice_is_refused_naming_the_gap(tmp_path, capfd, caplog):
    """Before: accepted with ITK's raw 'non uniform sampling' warning, 5 slices at 2.4 mm."""
    folder, lab = _gap_case(tmp_path)
    (folder / "7777_003.dcm").unlink()
    with pytest.raises(DataError) as err:
        _all(folder, lab)
    msg = str(err.value)
    assert msg.startswith(f"{folder}: slice positions are not evenly spaced: 4 mm between ")
    assert "7777_002.dcm (4 mm) and 7777_004.dcm (8 mm), expected 2 mm" in msg
    assert "--allow-slice-gaps" in msg and len(msg.splitlines()) == 1
    assert "non uniform" not in capfd.readouterr().err.lower()
    # accepted on request, with one warning naming the series
    with caplog.at_level("WARNING", logger="sambench.data.readers"):
        slices = _all(folder, _avg_label(tmp_path), allow_slice_gaps=True)
    assert len(slices) == 5
    assert str(folder) in caplog.text and "not evenly spaced" in caplog.text


def test_dicom_truncated_file_is_named_never_dropped_silently(tmp_path, caplog):
    """Before: GDCM left the truncated file out of the series without a word."""
    folder, lab = _gap_case(tmp_path)
    bad = folder / "7777_004.dcm"
    bad.write_bytes(bad.read_bytes()[:300])
    (folder / "notes.txt").write_text("scanner notes")
    with caplog.at_level("WARNING", logger="sambench.data.readers"):
        with pytest.raises(DataError) as err:
            _all(folder, lab)
    assert str(err.value).startswith(f"{folder}: 1 DICOM file(s) could not be read")
    assert "7777_004.dcm" in str(err.value) and "--allow-slice-gaps" in str(err.value)
    assert "notes.txt" in caplog.text  # a non-DICOM file: named, ignored
    with caplog.at_level("WARNING", logger="sambench.data.readers"):
        caplog.clear()
        assert len(_all(folder, _avg_label(tmp_path), allow_slice_gaps=True)) == 5
    assert "7777_004.dcm" in caplog.text and "not evenly spaced" in caplog.text


def test_whole_dicom_series_reads_without_a_warning(tmp_path, caplog):
    folder = _dicom_series(tmp_path / "ct", _vol((6, 5, 4)), (0.7, 0.8, 3.0), "1.2.3.4.8888")
    lab = _sitk_write(tmp_path / "lab.nii.gz", _label((6, 5, 4)), (0.7, 0.8, 3.0))
    with caplog.at_level("WARNING", logger="sambench.data.readers"):
        assert len(_all(folder, lab)) == 4
    assert not caplog.records
