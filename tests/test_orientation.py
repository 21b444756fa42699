"""Issue 27, item 2: every volume is read into one canonical orientation (RAS) from its direction
matrix before the slicing plane is chosen; prepare says which plane and why, records it, and masks
go back to the source grid voxel for voxel."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from PIL import Image

from sambench.data.describe import describe_source
from sambench.data.orientation import choose_plane, orientation_of
from sambench.data.prepare import prepare_dataset
from sambench.data.readers import _Volume, read_pair_slices
from sambench.errors import DataError
from sambench.volumes.io import load_volume_table, object_from_row, read_volume, write_mask_nifti

# Affines (RAS, nibabel) of files stored in various voxel orders, 1 mm or anisotropic.
PSR = np.array([[0, 0, 1, 0], [-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1.0]])  # the spinal cord's
LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
LAS = np.diag([-2.0, 1.0, 1.5, 1.0])
OBLIQUE = np.eye(4)
_c, _s = np.cos(0.3), np.sin(0.3)  # 17 degrees about S: the closest canonical axes are R, A, S
OBLIQUE[:2, :2] = [[_c, -_s], [_s, _c]]


def _write(path: Path, arr: np.ndarray, affine: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(arr, affine), path)
    return path


@pytest.mark.parametrize("affine", [PSR, LPS, LAS, OBLIQUE, np.eye(4)])
def test_canonical_order_equals_nibabel_and_inverts(tmp_path: Path, affine: np.ndarray) -> None:
    arr = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    path = _write(tmp_path / "v.nii.gz", arr, affine)
    vol = _Volume(path)
    canonical = vol.read_canonical(None)  # (z, y, x)
    expected = np.asanyarray(nib.as_closest_canonical(nib.load(path)).dataobj)  # (x, y, z)
    assert np.array_equal(canonical, expected.transpose(2, 1, 0))
    assert vol.orientation.codes == "".join(nib.aff2axcodes(affine))
    back = vol.orientation.from_canonical_zyx(canonical)
    assert np.array_equal(back, vol.read_frame(None))  # the inverse: the file's own order


def test_canonical_order_equals_simpleitk_dicomorient(tmp_path: Path) -> None:
    # An independent check on an ITK-written file: DICOMOrient(..., "RAS") reorders the voxels.
    arr = np.random.default_rng(0).integers(0, 100, size=(3, 4, 5)).astype(np.int16)  # (z, y, x)
    img = sitk.GetImageFromArray(arr)
    img.SetDirection((0, 0, 1, -1, 0, 0, 0, 1, 0))  # x -> S, y -> R (LPS -1), z -> P... in LPS
    sitk.WriteImage(img, str(tmp_path / "v.mha"))
    vol = _Volume(tmp_path / "v.mha")
    ref = sitk.GetArrayFromImage(sitk.DICOMOrient(sitk.ReadImage(str(tmp_path / "v.mha")), "RAS"))
    assert np.array_equal(vol.read_canonical(None), ref)


def test_orientation_codes_of_itk_directions() -> None:
    assert orientation_of(np.eye(3)).codes == "LPS"  # ITK's identity is LPS
    assert orientation_of(np.diag([-1.0, -1.0, 1.0])).codes == "RAS"
    assert orientation_of(np.diag([-1.0, -1.0, 1.0])).is_canonical


@pytest.mark.parametrize(
    ("spacing", "size", "override", "plane", "rule"),
    [
        ((1.0, 1.0, 1.0), (5, 5, 5), None, "axial", "default"),  # isotropic: anatomical default
        ((0.7, 0.7, 3.0), (5, 5, 5), None, "axial", "coarsest"),
        ((4.0, 0.7, 0.8), (5, 5, 5), None, "sagittal", "coarsest"),
        ((0.8, 4.0, 0.8), (5, 5, 5), None, "coronal", "coarsest"),
        ((3.0, 1.0, 3.0), (5, 5, 5), None, "axial", "default"),  # R-L and S-I tie: axial
        ((3.0, 3.0, 1.0), (5, 5, 5), None, "coronal", "coarsest"),  # R-L and A-P tie: the later
        ((1.0, 1.0, 1.0), (5, 1, 5), None, "coronal", "one-slice"),
        ((0.7, 0.7, 3.0), (5, 5, 5), 0, "sagittal", "dataset"),  # the dataset's plane wins
    ],
)
def test_choose_plane(spacing, size, override, plane, rule) -> None:
    choice = choose_plane(spacing, size, override)
    assert (choice.plane, choice.rule) == (plane, rule)


def test_choose_plane_says_why() -> None:
    iso = choose_plane((1.0, 1.0, 1.0), (5, 5, 5))
    assert iso.describe("MRI") == "axial (isotropic 1 mm: default for MRI)"
    aniso = choose_plane((0.8, 0.7, 3.0), (5, 5, 5)).describe("CT")
    assert aniso == "axial (coarsest spacing 3 mm along S-I, in-plane 0.8 mm x 0.7 mm)"


def _psr_case(src: Path, spacing: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """An isotropic volume stored P, S, R (as the bundled spinal cord): file x runs P, y runs S,
    z runs R. The object is a rod along S-I: an 8x8 square on each of 9 axial slices (S 2..10)."""
    rng = np.random.default_rng(1)
    img = rng.integers(0, 1000, size=(12, 14, 10)).astype(np.int16)  # (P, S, R) voxels
    lab = np.zeros(img.shape, np.uint8)
    lab[2:10, 2:11, 1:9] = 1  # P 2..9, S 2..10, R 1..8
    affine = PSR.copy()
    affine[:3, :3] *= spacing
    _write(src / "images" / "c.nii.gz", img, affine)
    _write(src / "labels" / "c.nii.gz", lab, affine)
    (src / "d.yaml").write_text("name: Cord\nmodality: MRI\nclasses: {Rod: 1}\n")
    return img, lab


def test_isotropic_non_ras_volume_is_cut_axially_and_prepare_says_so(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    _, lab = _psr_case(src)
    report = prepare_dataset(src, out, config=src / "d.yaml", progress=False)
    assert "plane: axial (isotropic 1 mm: default for MRI)" in report.to_text().splitlines()
    assert report.planes == {"axial (isotropic 1 mm: default for MRI)": 1}
    m = pd.read_parquet(out / "Cord" / "manifest.parquet")
    # 9 axial slices hold the rod (S 2..10; before issue 27 the file's last axis, R-L, was cut:
    # 8 sagittal slices)
    assert sorted(m["slice_index"]) == list(range(2, 11))
    assert set(m["slice_axis"]) == {2} and set(m["plane"]) == {"axial"}
    assert set(m["area"]) == {64}
    # the axial PNG is the canonical slice: rows = A-P (the file's x reversed: P -> A), columns =
    # R-L (the file's z, already towards R)
    row = m[m.slice_index == 5].iloc[0]
    png = np.asarray(Image.open(out / row.label_path)) > 0
    assert np.array_equal(png, lab[::-1, 5, :] > 0)
    v = load_volume_table(out).iloc[0]
    assert (v["plane"], v["orientation"], v["slice_axis"]) == ("axial", "PSR", 2)
    assert (v["depth"], v["height"], v["width"]) == (14, 12, 10)
    meta = (out / "Cord" / "sambench-dataset.json").read_text()
    assert '"planes": [\n    "axial"\n  ]' in meta or '"planes": ["axial"]' in meta


def test_written_mask_overlays_the_source_label_voxel_for_voxel(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    _, lab = _psr_case(src)
    prepare_dataset(src, out, config=src / "d.yaml", progress=False)
    row = load_volume_table(out).iloc[0].to_dict()
    vol = read_volume(row, out)
    assert vol.plane == "axial" and vol.shape == (14, 12, 10)
    path = write_mask_nifti(tmp_path / "m.nii.gz", vol.mask(object_from_row(row)), vol)
    back = nib.load(path)
    assert np.allclose(back.affine, nib.load(src / "labels" / "c.nii.gz").affine)
    assert np.array_equal(np.asanyarray(back.dataobj), lab)  # voxel-equal after the round trip
    # the prepared NIfTI itself is on the source grid, in the source's voxel order
    prepared = nib.load(out / row["label_path"])
    assert np.array_equal(np.asanyarray(prepared.dataobj) > 0, lab > 0)


def test_anisotropic_non_ras_volume_still_cuts_the_coarse_axis(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    _psr_case(src)
    for sub in ("images", "labels"):  # 3 mm along the file's z (R-L), 1 mm elsewhere
        p = src / sub / "c.nii.gz"
        im = nib.load(p)
        affine = im.affine.copy()
        affine[:3, 2] *= 3
        _write(p, np.asanyarray(im.dataobj), affine)
    report = prepare_dataset(src, out, config=src / "d.yaml", progress=False)
    (plane,) = report.planes
    assert plane.startswith("sagittal (coarsest spacing 3 mm along R-L")
    m = pd.read_parquet(out / "Cord" / "manifest.parquet")
    assert set(m["plane"]) == {"sagittal"} and set(m["slice_axis"]) == {0}


def test_dataset_plane_overrides_and_bad_values_are_refused(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    _psr_case(src)
    (src / "d.yaml").write_text("name: Cord\nmodality: MRI\nclasses: {Rod: 1}\nplane: sagittal\n")
    report = prepare_dataset(src, out, config=src / "d.yaml", progress=False)
    assert report.planes == {"sagittal (set by the dataset's plane)": 1}
    m = pd.read_parquet(out / "Cord" / "manifest.parquet")
    assert set(m["plane"]) == {"sagittal"} and sorted(m["slice_index"]) == list(range(1, 9))
    for text, msg in (
        ("plane: oblique\n", "plane: expected one of sagittal, coronal, axial"),
        ("plane: axial\naxis: 0\n", "plane: axial and axis: 0 disagree"),
    ):
        (src / "bad.yaml").write_text("modality: MRI\n" + text)
        with pytest.raises(DataError, match=msg) as e:
            describe_source(src, src / "bad.yaml")
        assert "bad.yaml" in str(e.value)


def test_readers_slice_canonically_for_every_reader(tmp_path: Path) -> None:
    # The same voxels stored P, S, R as NIfTI and as MetaImage (ITK) give the same slices.
    src = tmp_path / "src"
    _psr_case(src)
    nii = list(read_pair_slices(src / "images" / "c.nii.gz", src / "labels" / "c.nii.gz"))
    itk_img = sitk.ReadImage(str(src / "images" / "c.nii.gz"))
    itk_lab = sitk.ReadImage(str(src / "labels" / "c.nii.gz"))
    sitk.WriteImage(itk_img, str(tmp_path / "i.mha"))
    sitk.WriteImage(itk_lab, str(tmp_path / "l.mha"))
    mha = list(read_pair_slices(tmp_path / "i.mha", tmp_path / "l.mha"))
    assert len(nii) == len(mha) == 14
    for a, b in zip(nii, mha, strict=True):
        assert a.slice_axis == b.slice_axis == 2 and a.orientation == b.orientation == "PSR"
        assert np.array_equal(a.image, b.image) and np.array_equal(a.label, b.label)


def test_volume_cases_prepared_before_the_canonical_orientation_are_redone(
    tmp_path: Path,
) -> None:
    # A folder prepared before issue 27 keeps its settings hash (2D cases resume), but its volume
    # cases were cut along the file's own axes and recorded no plane: they are redone, and the
    # slices the old plane named are removed.
    import pyarrow.parquet as pq

    src, out = tmp_path / "src", tmp_path / "out"
    _psr_case(src)
    prepare_dataset(src, out, config=src / "d.yaml", progress=False)
    ds = out / "Cord"
    part = ds / ".parts" / "c.parquet"
    table = pq.read_table(part)
    old = table.to_pandas().drop(columns=["plane"])
    stale = old.iloc[[0]].assign(slice_index=99, image_id="Cord_c_99",
                                 image_path="Cord/images/Cord_c_99.png",
                                 label_path="Cord/labels/Cord_c_99.png")  # fmt: skip
    for rel in ("images", "labels"):
        (ds / rel / "Cord_c_99.png").write_bytes((ds / rel / "Cord_c_5.png").read_bytes())
    import pyarrow as pa

    old_table = pa.Table.from_pandas(pd.concat([old, stale]), preserve_index=False)
    pq.write_table(old_table.replace_schema_metadata(table.schema.metadata), part)
    part3d = ds / ".parts3d" / "c.parquet"
    pd.read_parquet(part3d).drop(columns=["plane", "orientation"]).to_parquet(part3d)
    report = prepare_dataset(src, out, config=src / "d.yaml", progress=False)
    assert (report.cases_resumed, report.cases_done) == (0, 1)
    m = pd.read_parquet(ds / "manifest.parquet")
    assert set(m["plane"]) == {"axial"} and 99 not in set(m["slice_index"])
    assert not (ds / "images" / "Cord_c_99.png").exists()
    assert not (ds / "labels" / "Cord_c_99.png").exists()
    again = prepare_dataset(src, out, config=src / "d.yaml", progress=False)
    assert again.cases_resumed == 1
