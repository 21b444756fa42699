"""Read one case (image + label) as a stream of 2D slices with their source values and spacing.

Conventions
-----------
* Volumes (NIfTI ``.nii/.nii.gz``, MetaImage ``.mha/.mhd``, NRRD ``.nrrd/.nhdr``, DICOM series
  folders) are read with SimpleITK (headers, all voxels except NIfTI's: SimpleITK's NIfTI reader
  silently zeroes NaN/Inf and zero-fills truncated files, so NIfTI voxels come from nibabel in the
  same voxel order). Voxel axes are named in SimpleITK/ITK index order **(x, y, z)**
  (the transpose of ``sitk.GetArrayFromImage``, which is (z, y, x)); ``slice_axis`` 0/1/2 means
  x/y/z and the volume spacing is ``image.GetSpacing()`` = (sx, sy, sz) of the file.
* Before slicing, every volume is brought to the canonical RAS voxel order from its direction
  matrix (:mod:`sambench.data.orientation`, nibabel's ``as_closest_canonical``): in a
  ``Slice2D``, ``slice_axis`` and ``spacing`` are **canonical** axes, x = R-L, y = A-P, z = S-I,
  whatever the file's voxel order (P, S, R for the bundled spinal cord). ``_Volume``'s header
  fields (size, spacing, origin, direction) stay the file's: the grid checks and the 3D form work
  on the source grid, and :meth:`Orientation.from_canonical_zyx` puts canonical arrays back.
* A slice taken along ``slice_axis`` keeps the two other axes; the returned 2D array has
  **rows = the higher-index remaining axis, columns = the lower-index remaining axis**. An axial
  slice (axis 2) is therefore ``rows = y (P -> A), columns = x (L -> R)`` (for an RAS file exactly
  ``GetArrayFromImage(img)[k]``); axis 1 (coronal) gives rows = z, columns = x; axis 0
  (sagittal) gives rows = z, columns = y. ``Slice2D.spacing = (column, row, slice spacing)``.
* 4D volumes (x, y, z, t) are read one 3D frame at a time (SimpleITK extraction, nibabel proxy).
* 2D files (PNG, JPEG, BMP, TIFF) keep their stored orientation (rows = y). They carry no physical
  spacing here: DPI tags are print metadata, not acquisition spacing, so they are ignored and the
  spacing is (1.0, 1.0, nan). A 2D MetaImage/NIfTI (dimension 2) keeps its header spacing (sx, sy, nan).
* Images keep their source dtype and values; labels become integer arrays of source label values.
* A DICOM series must be whole: slice positions (ImagePositionPatient along the slice normal)
  evenly spaced, and every DICOM file of the folder part of the series. A gap (a missing slice:
  ITK would spread the slices over the average spacing, so every mm metric is wrong), a file GDCM
  left out of the series (truncated, damaged) is a :class:`DataError` naming the series folder and
  the gap or the files, unless ``allow_slice_gaps`` (``prepare --allow-slice-gaps``), which turns
  it into a warning. Other (non-DICOM) files in the folder are named in a warning, never dropped
  silently.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from sambench.data.geometry import SPACING_RTOL  # also the main-plane tie tolerance
from sambench.data.geometry import check_pair as _check_pair
from sambench.data.geometry import resample_label as _resample_label
from sambench.data.orientation import Orientation, PlaneChoice, choose_plane, orientation_of
from sambench.errors import DataError

log = logging.getLogger(__name__)

IMAGE_2D_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".ppm")
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr")
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485  # PIL's default Image.MAX_IMAGE_PIXELS (about 0.25 GiB RGB)
_SUPPORTED = ", ".join((*IMAGE_2D_SUFFIXES, *VOLUME_SUFFIXES)) + ", or a DICOM series folder"


@dataclass
class Slice2D:
    """One 2D image + label pair of a case.

    ``image``: HxW or HxWx3 (RGB), source dtype and values (not normalized).
    ``label``: HxW integer array of source label values (0 = background).
    ``slice_index``/``slice_axis``: index and canonical (RAS x, y, z) axis of the slice in the
    reoriented volume; -1 for 2D. ``spacing``: (sx, sy, sz) in mm, sx = column spacing, sy = row
    spacing, sz = slice spacing (NaN for 2D sources). ``frame``: index t of a 4D volume's frame;
    None for 3D/2D sources. ``plane``: how the plane was chosen (None for 2D sources);
    ``orientation``: the file's axis codes (e.g. ``"PSR"``; "" for 2D sources).
    """

    image: np.ndarray
    label: np.ndarray
    slice_index: int
    slice_axis: int
    spacing: tuple[float, float, float]
    frame: int | None
    channel: int | None = None  # channel index of a multi-channel 4D image (``channel=`` read)
    plane: PlaneChoice | None = None
    orientation: str = ""


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _is_dicom_dir(path: Path, max_files: int = 10) -> bool:
    """True when one of the first ``max_files`` files of ``path`` is DICOM (.dcm or 'DICM' magic)."""
    if not path.is_dir():
        return False
    files = (p for p in sorted(path.iterdir()) if p.is_file())
    for _, f in zip(range(max_files), files, strict=False):
        if f.suffix.lower() == ".dcm":
            return True
        with f.open("rb") as fh:
            head = fh.read(132)
        if head[128:132] == b"DICM":
            return True
    return False


def is_volume_path(path: Path) -> bool:
    """True for a volume file (by suffix, see ``VOLUME_SUFFIXES``) or a folder holding DICOM files."""
    path = Path(path)
    return _suffix(path) in VOLUME_SUFFIXES or _is_dicom_dir(path)


def main_plane_axis(spacing_xyz: tuple[float, float, float]) -> int:
    """The slice axis (0/1/2 = canonical x/y/z) of SPEC 2.1: the axis with the largest spacing.

    The two remaining (in-plane) axes then have the smallest spacing. Spacings within a relative
    ``SPACING_RTOL`` of the largest count as ties; ties go to the anatomical default (axial, z)
    when it is among them, else to the last tied axis, so an isotropic volume is sliced axially
    (:func:`sambench.data.orientation.choose_plane`, which also says why).
    """
    if len(spacing_xyz) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing_xyz):
        raise ValueError(f"spacing_xyz: expected 3 positive finite spacings, got {spacing_xyz}")
    return choose_plane(spacing_xyz, (2, 2, 2), rtol=SPACING_RTOL).axis


# ----------------------------------------------------------------------------------------------
# value checks


def _check_finite(arr: np.ndarray, path: Path, replace_nonfinite: float | None) -> np.ndarray:
    """Raise on NaN/Inf voxels, or replace them in place by ``replace_nonfinite``."""
    if not np.issubdtype(arr.dtype, np.floating):
        return arr
    bad = ~np.isfinite(arr)
    count = int(np.count_nonzero(bad))
    if count:
        if replace_nonfinite is None:
            raise DataError(
                path,
                f"{count} non-finite (NaN/Inf) voxels; expected finite values "
                "(ask to replace them, e.g. replace_nonfinite=0.0)",
            )
        if not arr.flags.writeable:
            arr = arr.copy()
        arr[bad] = replace_nonfinite
    return arr


def _collapse_channels(arr: np.ndarray, path: Path, channel_axis: int = -1) -> np.ndarray:
    """A label with identical channels (alpha dropped) -> one channel; colour-coded -> DataError."""
    channels = arr.shape[channel_axis]
    if channels == 4:  # RGBA: drop alpha
        arr = np.take(arr, [0, 1, 2], axis=channel_axis)
    elif channels == 2:  # gray + alpha
        return np.take(arr, 0, axis=channel_axis)
    first = np.take(arr, [0], axis=channel_axis)
    if not np.array_equal(np.broadcast_to(first, arr.shape), arr):
        raise DataError(
            path,
            "colour-coded label (channels differ); expected a single-channel label map or "
            "identical channels. Colour-coded labels need a colour -> value mapping, "
            "which is not supported yet",
        )
    return np.take(arr, 0, axis=channel_axis)


def _to_int_labels(arr: np.ndarray, path: Path) -> np.ndarray:
    """Integer label values: bool -> uint8, integral floats -> smallest fitting integer dtype."""
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        return arr
    if not np.issubdtype(arr.dtype, np.floating):
        raise DataError(
            path, f"label dtype {arr.dtype} is not supported; expected integer or float"
        )
    finite = np.isfinite(arr)
    if not finite.all():
        raise DataError(path, f"label has {int(np.count_nonzero(~finite))} NaN/Inf voxels")
    rounded = np.round(arr)
    if not np.array_equal(rounded, arr):
        n = int(np.count_nonzero(rounded != arr))
        raise DataError(path, f"label has {n} non-integral values; expected integer label values")
    if arr.size == 0:
        return arr.astype(np.uint8)
    lo, hi = int(rounded.min()), int(rounded.max())
    return rounded.astype(np.result_type(np.min_scalar_type(lo), np.min_scalar_type(hi)))


# ----------------------------------------------------------------------------------------------
# 2D files


def _png_is_16bit_colour(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(26)
    # PNG signature (8) + IHDR length/type (8) + width/height (8), then bit depth, colour type.
    return head[:8] == b"\x89PNG\r\n\x1a\n" and head[24:26] in (b"\x10\x02", b"\x10\x06")


def _check_pixels(path: Path, width: int, height: int, limit: int | None) -> None:
    """DataError when ``width * height`` exceeds ``limit`` (None: no limit)."""
    if limit is not None and width * height > limit:
        raise DataError(
            path,
            f"{width} x {height} = {width * height} pixels exceeds the limit of {limit} pixels "
            "(a decompression bomb guard); raise it with --max-image-pixels N if the image is "
            "genuine",
        )


def tiff_pages(path: Path) -> int:
    """Pages of a TIFF file (1 for a plain 2D TIFF); 1 when it cannot be parsed (the 2D reader
    then names the problem)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return len(tif.pages)
    except (OSError, ValueError, tifffile.TiffFileError):
        return 1


def _read_tiff(path: Path, max_pixels: int | None) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if len(tif.pages) != 1:
            raise DataError(
                path, f"multi-page TIFF ({len(tif.pages)} pages); expected one 2D image"
            )
        page = tif.pages[0]
        shape = tuple(page.shape)
        hw = shape[1:3] if page.axes.startswith("S") and len(shape) == 3 else shape[:2]
        _check_pixels(path, int(hw[-1]), int(hw[0]), max_pixels)
        arr = np.asarray(page.asarray())
        axes = page.axes  # e.g. "YX", "YXS", "SYX"
    if axes.startswith("S") and arr.ndim == 3:
        arr = np.moveaxis(arr, 0, -1)
    return arr


def _read_pil(path: Path, is_label: bool, max_pixels: int | None) -> np.ndarray:
    from PIL import Image

    if _png_is_16bit_colour(path):  # PIL reduces 16-bit colour PNG to 8 bit; OpenCV keeps it
        import cv2

        with path.open("rb") as fh:
            ihdr = fh.read(24)[16:24]
        _check_pixels(
            path, int.from_bytes(ihdr[:4], "big"), int.from_bytes(ihdr[4:], "big"), max_pixels
        )

        bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if bgr is None:
            raise DataError(path, "cannot be read as a 16-bit colour PNG")
        return np.ascontiguousarray(bgr[..., [2, 1, 0, 3][: bgr.shape[2]]])
    # PIL's own guard (a warning above MAX_IMAGE_PIXELS, DecompressionBombError above twice it)
    # is replaced by the explicit check below, which names the file and the option.
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        opened = Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    with opened:
        _check_pixels(path, opened.size[0], opened.size[1], max_pixels)
        opened.load()
        im: Image.Image = opened
        if im.mode in ("P", "PA") and not is_label:  # labels keep palette indices (the values)
            im = im.convert("RGBA")
        elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            im = im.convert("RGB")
        elif im.mode == "1" and not is_label:
            im = im.convert("L")
        return np.array(im)


def _read_2d(
    path: Path,
    is_label: bool,
    replace_nonfinite: float | None,
    max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
) -> np.ndarray:
    """HxW or HxWx3 array of a 2D file (alpha dropped); labels collapsed to HxW integers.

    A file with more than ``max_pixels`` pixels (None: no limit) is a ``DataError`` raised from
    its header, before any pixel is decoded.
    """
    from PIL import Image

    try:
        if _suffix(path) in (".tif", ".tiff"):
            arr = _read_tiff(path, max_pixels)
        else:
            arr = _read_pil(path, is_label, max_pixels)
    except DataError:
        raise
    except Image.DecompressionBombError as e:
        raise DataError(path, f"{e}; raise the limit with --max-image-pixels N") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(path, f"cannot be read as a 2D image ({e})") from None
    if arr.ndim == 3 and is_label:
        arr = _collapse_channels(arr, path)
    elif arr.ndim == 3:
        if arr.shape[2] == 4:
            arr = arr[..., :3]
        elif arr.shape[2] == 2:
            arr = arr[..., 0]
        elif arr.shape[2] != 3:
            raise DataError(path, f"{arr.shape[2]} channels; expected gray, RGB or RGBA")
    if arr.ndim not in (2, 3):
        raise DataError(path, f"array of shape {arr.shape}; expected HxW or HxWx3")
    if is_label:
        return _to_int_labels(arr, path)
    return _check_finite(arr, path, replace_nonfinite)


# ----------------------------------------------------------------------------------------------
# volumes


def _itk_message(e: Exception) -> str:
    """The end of an ITK exception text (its reason), on one line."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 300 else "..." + text[-300:]


def _read_nifti(path: Path, t: int | None, size: tuple[int, ...]) -> np.ndarray:
    """The (x, y, z[, c]) voxels of a NIfTI file (frame ``t`` of a 4D one), read with nibabel.

    SimpleITK's NIfTI reader (niftilib) silently turns NaN/Inf voxels into 0 and zero-fills a
    truncated payload, so NIfTI voxels come from nibabel, which keeps both visible; its voxel
    order (i, j, k) is the same as ITK's (x, y, z). Scaling (scl_slope/inter) applies as in ITK.
    """
    import nibabel as nib

    try:
        proxy = nib.load(path).dataobj  # type: ignore[attr-defined]
        arr = np.asanyarray(proxy[..., t] if t is not None else proxy)
    except (OSError, EOFError, ValueError, zlib.error) as e:  # nibabel / gzip failures
        raise DataError(path, f"cannot be read as a volume ({e})") from None
    n = int(np.prod(size))
    if arr.size % n:
        raise DataError(path, f"nibabel voxel shape {arr.shape} does not match ITK size {size}")
    return arr.reshape(size if arr.size == n else (*size, arr.size // n))  # drops singletons only


class _Volume:
    """Header of one volume (file or DICOM series) and on-demand reading of its 3D frames.

    ``size``: (X, Y, Z) voxels; ``spacing``: (sx, sy, sz) mm (sz NaN for a 2D file);
    ``frames``: T for a 4D volume, else None; ``ndim``: the file's dimension (2, 3 or 4).

    ``slice_gaps`` (DICOM series): ``"refuse"`` a series with a gap or a file left out
    (DataError), ``"warn"`` (log it and go on), ``"accept"`` (no check: a series checked already).
    """

    def __init__(
        self, path: Path, slice_gaps: str = "refuse", series_uid: str | None = None
    ) -> None:
        self.path = path
        self.slice_gaps = slice_gaps
        self.series_uid = series_uid
        self._dicom: sitk.Image | None = None
        try:
            if path.is_dir():
                # kept until read_frame: read once
                self._dicom = self._read_dicom(path, slice_gaps, series_uid)
                header: sitk.Image | sitk.ImageFileReader = self._dicom
            else:
                header = sitk.ImageFileReader()
                header.SetFileName(str(path))
                header.ReadImageInformation()
            size, spacing = tuple(header.GetSize()), tuple(header.GetSpacing())
            dim = header.GetDimension()
            origin, direction = tuple(header.GetOrigin()), tuple(header.GetDirection())
        except RuntimeError as e:
            raise DataError(path, f"cannot be read as a volume ({_itk_message(e)})") from None
        if dim not in (2, 3, 4):
            raise DataError(path, f"{dim}-D image; expected a 2D, 3D or 4D volume")
        self.ndim = dim
        self.size = (*size[:3], *(1,) * (3 - min(dim, 3)))
        self.spacing = (*spacing[:3], *(math.nan,) * (3 - min(dim, 3)))
        self.frames: int | None = size[3] if dim == 4 else None
        k = min(dim, 3)  # the spatial part of a 4D header; a 2D header is padded to 3D
        self.origin = (*(float(v) for v in origin[:k]), *(0.0,) * (3 - k))
        rows = [direction[i * dim : i * dim + k] for i in range(k)]
        d3 = np.eye(3)
        d3[:k, :k] = np.asarray(rows, dtype=float)
        self.direction = d3
        self.orientation = orientation_of(d3)  # file axes -> canonical RAS (one place)
        if _suffix(path) in (".tif", ".tiff"):
            # a multi-page TIFF stack (EM) has no patient axes: pages keep their stored order
            self.orientation = Orientation((0, 1, 2), (False, False, False))

    @staticmethod
    def _read_dicom(
        path: Path, slice_gaps: str = "refuse", series_uid: str | None = None
    ) -> sitk.Image:
        """The series of folder ``path`` (``series_uid``: the one to read when it holds
        several; a folder with one series needs none)."""
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(path))
        if not ids:
            raise DataError(path, "no DICOM series found in this folder")
        several = len(ids) > 1  # files of the other series are not "left out" of this one
        if series_uid is not None:
            if series_uid not in ids:
                raise DataError(path, f"no series {series_uid} here; its series: {', '.join(ids)}")
            ids = (series_uid,)
        if len(ids) > 1:
            raise DataError(
                path,
                f"{len(ids)} DICOM series in one folder ({', '.join(ids)}); expected exactly one "
                "(put each series in its own folder)",
            )
        names = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path), ids[0]))
        if slice_gaps != "accept" and not several:
            _check_left_out(path, names, slice_gaps)
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(names)
        reader.MetaDataDictionaryArrayUpdateOn()
        shown = sitk.ProcessObject.GetGlobalWarningDisplay()
        sitk.ProcessObject.SetGlobalWarningDisplay(False)  # ITK's raw "non uniform sampling"
        try:
            img = reader.Execute()
        finally:
            sitk.ProcessObject.SetGlobalWarningDisplay(shown)
        if slice_gaps != "accept":
            _check_slice_gaps(path, names, reader, img, slice_gaps)
        return img

    def read_frame(self, t: int | None) -> np.ndarray:
        """The (z, y, x[, c]) array of the volume (or of frame ``t`` of a 4D volume)."""
        t = t if self.frames is not None else None
        if _suffix(self.path) in (".nii", ".nii.gz"):
            xyz = _read_nifti(self.path, t, self.size)
            return xyz.transpose(2, 1, 0, *range(3, xyz.ndim))  # (z, y, x[, c]) view
        try:
            if self._dicom is not None:
                img, self._dicom = self._dicom, None
            elif self.path.is_dir():
                img = self._read_dicom(self.path, "accept", self.series_uid)  # checked
            else:
                reader = sitk.ImageFileReader()
                reader.SetFileName(str(self.path))
                if t is not None:
                    reader.SetExtractIndex([0, 0, 0, t])
                    reader.SetExtractSize([*self.size, 0])  # size 0 collapses the t axis
                img = reader.Execute()
        except RuntimeError as e:
            raise DataError(self.path, f"cannot be read as a volume ({_itk_message(e)})") from None
        arr = sitk.GetArrayFromImage(img)
        return arr if self.ndim != 2 else arr[np.newaxis]

    def read_canonical(self, t: int | None) -> np.ndarray:
        """:meth:`read_frame` in the canonical RAS voxel order, (S-I, A-P, R-L[, c]) (a view)."""
        return self.orientation.to_canonical_zyx(self.read_frame(t))


class _MergedVolume(_Volume):
    """One label map from one binary volume per structure (e.g. TotalSegmentator's
    ``segmentations/<structure>.nii.gz``): ``parts`` (value, file), every file on the first one's
    grid. A voxel non-zero in a file takes that file's value; where files overlap, the higher
    value wins (``parts`` are merged in ascending value order, later ones overwrite)."""

    def __init__(self, parts: tuple[tuple[int, Path], ...], slice_gaps: str = "refuse") -> None:
        super().__init__(parts[0][1], slice_gaps)
        self.parts = parts
        for _, path in parts[1:]:
            other = _Volume(path, slice_gaps)
            if other.size != self.size or other.frames != self.frames:
                raise DataError(
                    path,
                    f"structure file size {other.size} differs from {self.path.name}'s {self.size}",
                )

    def read_frame(self, t: int | None) -> np.ndarray:
        merged: np.ndarray | None = None
        for value, path in self.parts:
            part = _Volume(path, "accept").read_frame(t)
            if merged is None:
                dtype = np.uint8 if max(v for v, _ in self.parts) <= 255 else np.int32
                merged = np.zeros(part.shape[:3], dtype)
            merged[part.reshape(merged.shape) != 0] = value
        assert merged is not None
        return merged


def _slice_files(path: Path) -> list[Path]:
    """The 2D image files of a folder (a label given slice by slice), sorted by name."""
    return sorted(
        f
        for f in path.iterdir()
        if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_2D_SUFFIXES
    )


def is_slice_folder(path: Path) -> bool:
    """True for a folder of 2D label files without DICOM files (CHAOS's ``Ground/``)."""
    return path.is_dir() and not _is_dicom_dir(path) and bool(_slice_files(path))


class _SliceStack(_Volume):
    """A label volume given as one 2D file per slice (CHAOS's ``Ground/*.png``) for a DICOM series
    image: the i-th label file in name order labels the i-th DICOM file in name order (CHAOS's own
    convention), and is put at that file's place in the series (ITK's order by slice position).
    The label has the image's grid (it has no header of its own)."""

    def __init__(self, path: Path, image: _Volume) -> None:
        self.path, self.slice_gaps, self._dicom = path, "accept", None
        if not image.path.is_dir() or image.frames is not None:
            raise DataError(path, "a folder of label slices pairs with a DICOM series folder only")
        self.ndim, self.size, self.spacing, self.frames = 3, image.size, image.spacing, None
        self.origin, self.direction, self.orientation = (
            image.origin,
            image.direction,
            image.orientation,
        )
        self.files = _slice_files(path)
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(image.path))
        self.series = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(image.path), ids[0]))
        if len(self.files) != len(self.series):
            raise DataError(
                path,
                f"{len(self.files)} label slices for {len(self.series)} DICOM files in "
                f"{image.path}; expected one label file per DICOM file",
            )

    def read_frame(self, t: int | None) -> np.ndarray:
        place = {f: i for i, f in enumerate(self.series)}
        by_name = sorted(self.series, key=lambda f: Path(f).name)
        out: np.ndarray | None = None
        for lab_file, dcm in zip(self.files, by_name, strict=True):
            a = _read_2d(lab_file, True, None, None)
            if out is None:
                out = np.zeros((len(self.series), *a.shape[:2]), a.dtype)
            if a.shape[:2] != out.shape[1:]:
                raise DataError(
                    lab_file, f"label slice shape {a.shape[:2]} differs from {out.shape[1:]}"
                )
            out[place[dcm]] = a
        assert out is not None
        if out.shape[1:] != (self.size[1], self.size[0]):
            raise DataError(
                self.path,
                f"label slices are {out.shape[1]} x {out.shape[2]} (rows x columns); the DICOM "
                f"series is {self.size[1]} x {self.size[0]}",
            )
        return out


def merge_2d_parts(parts: tuple[tuple[int, Path], ...], max_pixels: int | None) -> np.ndarray:
    """One HxW label from one binary 2D file per structure (e.g. Montgomery's leftMask/ and
    rightMask/): non-zero pixels take the file's value; the higher value wins where they overlap."""
    merged: np.ndarray | None = None
    for value, path in parts:
        part = _read_2d(path, True, None, max_pixels)
        if merged is None:
            merged = np.zeros(part.shape[:2], np.int32)
        elif part.shape[:2] != merged.shape:
            raise DataError(
                path, f"structure file shape {part.shape[:2]} differs from {merged.shape}"
            )
        merged[part != 0] = value
    assert merged is not None
    return merged


_GAP_HINT = "pass --allow-slice-gaps to prepare it anyway"


def _looks_dicom(f: Path) -> bool:
    if f.suffix.lower() == ".dcm":
        return True
    try:
        with f.open("rb") as fh:
            return fh.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _listing(files: list[Path], limit: int = 5) -> str:
    shown = ", ".join(f.name for f in files[:limit])
    return shown + (f" and {len(files) - limit} more" if len(files) > limit else "")


def _check_left_out(folder: Path, names: list[str], slice_gaps: str) -> None:
    """Name every file of a DICOM series folder that is not part of the series: DICOM files
    (truncated or damaged, left out by GDCM) refuse the series unless ``slice_gaps == "warn"``;
    other files are named in a warning."""
    used = {Path(n).name for n in names}
    rest = [
        p
        for p in sorted(folder.iterdir())
        if p.name not in used and p.is_file() and not p.name.startswith(".")
    ]
    dicom = [p for p in rest if p.name.upper() != "DICOMDIR" and _looks_dicom(p)]
    other = [p for p in rest if p not in dicom]
    if other:
        log.warning(
            "%s: ignoring %d file(s) that are not DICOM: %s", folder, len(other), _listing(other)
        )
    if not dicom:
        return
    problem = (
        f"{len(dicom)} DICOM file(s) could not be read as part of the series (truncated or "
        f"damaged?): {_listing(dicom)}; the series would have a missing slice"
    )
    if slice_gaps != "warn":
        raise DataError(folder, f"{problem}; replace or remove them, or {_GAP_HINT}")
    log.warning("%s: %s; left out (--allow-slice-gaps)", folder, problem)


def _check_slice_gaps(
    folder: Path, names: list[str], reader: sitk.ImageSeriesReader, img: sitk.Image, mode: str
) -> None:
    """Refuse (or warn about) a series whose slice positions are not evenly spaced."""
    if len(names) < 3:
        return
    try:
        pos = np.array(
            [
                [float(v) for v in reader.GetMetaData(i, "0020|0032").split("\\")[:3]]
                for i in range(len(names))
            ]
        )
    except (RuntimeError, ValueError):
        return  # no ImagePositionPatient: nothing to check against
    if pos.shape != (len(names), 3) or not np.isfinite(pos).all():
        return
    normal = np.asarray(img.GetDirection(), dtype=float).reshape(3, 3)[:, 2]
    z = pos @ normal
    order = np.argsort(z, kind="stable")
    z = z[order]
    d = np.diff(z)
    step = float(np.median(d))
    tol = max(0.01 * abs(step), 1e-3)
    bad = np.flatnonzero(np.abs(d - step) > tol)
    if step <= tol:
        problem = f"slices share one position ({z[0]:g} mm along the slice normal)"
    elif bad.size:
        i = int(bad[0])
        a, b = (Path(names[int(order[j])]).name for j in (i, i + 1))
        problem = (
            f"slice positions are not evenly spaced: {d[i]:g} mm between {a} ({z[i]:g} mm) and "
            f"{b} ({z[i + 1]:g} mm), expected {step:g} mm (a missing slice?"
            + (f" {bad.size} gaps in all" if bad.size > 1 else "")
            + f"); the series would be read with {img.GetSpacing()[2]:g} mm between every slice"
        )
    else:
        return
    if mode != "warn":
        raise DataError(folder, f"{problem}; {_GAP_HINT}")
    log.warning("%s: %s (--allow-slice-gaps)", folder, problem)


def _volume_slices(
    image: _Volume,
    label: _Volume,
    axis: int | None,
    replace_nonfinite: float | None,
    channel: int | None = None,
    resample_labels: bool = False,
) -> Iterator[Slice2D]:
    if channel is not None:
        if image.frames is None:
            if channel != 0:
                raise DataError(
                    image.path, f"has one channel (a 3D image); channel {channel} was asked for"
                )
            channel = None  # a one-channel source: the 3D image itself
        elif not 0 <= channel < image.frames:
            raise DataError(
                image.path,
                f"channel {channel} asked for; the image has {image.frames} channels "
                f"(0..{image.frames - 1} along its 4th axis)",
            )
        elif label.frames is not None:
            raise DataError(
                label.path, "4D label for a multi-channel image; expected one 3D label per case"
            )
    resample = _check_pair(image, label, resample_labels)
    orient = image.orientation  # the label lies on the image grid (checked or resampled)
    if image.ndim == 2:
        orient = Orientation((0, 1, 2), (False, False, False))  # a 2D file keeps its own order
    size_c = orient.canonical_xyz(image.size)
    spacing_c = orient.canonical_xyz(tuple(image.spacing))
    if axis is not None and axis not in (0, 1, 2):
        raise ValueError(f"axis: expected 0, 1 or 2 (x, y, z) or None, got {axis!r}")
    if image.ndim == 2:
        choice = PlaneChoice(2, "one-slice", "a 2D file")
    elif axis is None and not all(math.isfinite(v) and v > 0 for v in spacing_c):
        # no usable spacing: the plane cannot be measured, so the anatomical default
        choice = choose_plane((1.0, 1.0, 1.0), size_c)
    else:
        choice = choose_plane(spacing_c, size_c, axis, rtol=SPACING_RTOL)
    axis = choice.axis
    lower, higher = (i for i in range(3) if i != axis)
    sp = [float(v) for v in spacing_c]
    spacing = (sp[lower], sp[higher], sp[axis])
    zyx_axis = 2 - axis
    label_3d: np.ndarray | None = None
    if channel is not None:
        frames: list[int | None] = [channel]
    else:
        frames = list(range(image.frames)) if image.frames is not None else [None]
    for t in frames:
        img = _check_finite(image.read_frame(t), image.path, replace_nonfinite)
        img = orient.to_canonical_zyx(img)
        if label_3d is None or label.frames is not None:
            lab = label.read_frame(t)
            if lab.ndim == 4:
                lab = _collapse_channels(lab, label.path)
            lab = _to_int_labels(lab, label.path)
            if resample:
                lab = _resample_label(lab, label, image)
            lab = orient.to_canonical_zyx(lab)
            if label.frames is None:
                label_3d = lab  # a 3D label applies to every frame: read it once
        else:
            lab = label_3d
        # Views moved so the slice axis is first: img_s[k] is the (rows, cols) slice, no copy.
        img_s, lab_s = np.moveaxis(img, zyx_axis, 0), np.moveaxis(lab, zyx_axis, 0)
        for k in range(img_s.shape[0]):
            yield Slice2D(
                image=np.ascontiguousarray(img_s[k]),
                label=np.ascontiguousarray(lab_s[k]),
                slice_index=-1 if image.ndim == 2 else k,
                slice_axis=-1 if image.ndim == 2 else axis,
                spacing=spacing,
                frame=None if channel is not None else t,
                channel=channel,
                plane=None if image.ndim == 2 else choice,
                orientation="" if image.ndim == 2 else orient.codes,
            )
        del img, lab, img_s, lab_s


def _kind(path: Path) -> str:
    """'2d' or 'volume'; DataError for a missing path or an unsupported suffix."""
    if not path.exists():
        raise DataError(path, "file is missing")
    if _suffix(path) in IMAGE_2D_SUFFIXES:
        if _suffix(path) in (".tif", ".tiff") and tiff_pages(path) > 1:
            return "volume"  # a stack of pages (EPFL-EM, ssTEM): sliced page by page
        return "2d"
    if is_volume_path(path):
        return "volume"
    if path.is_dir():
        raise DataError(path, "folder holds no DICOM files; expected a DICOM series folder")
    raise DataError(path, f"unsupported file type {_suffix(path)!r}; expected one of {_SUPPORTED}")


def read_pair_slices(
    image_path: Path,
    label_path: Path,
    *,
    axis: int | None = None,
    replace_nonfinite: float | None = None,
    channel: int | None = None,
    resample_labels: bool = False,
    max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
    allow_slice_gaps: bool = False,
    label_parts: tuple[tuple[int, Path], ...] | None = None,
) -> Iterator[Slice2D]:
    """Yield every 2D slice of one case (image + label), streaming.

    At most one 3D volume (one 4D frame) of the image, plus its label, is in memory at a time;
    nothing is read before the first ``next()``. A 2D file yields exactly one ``Slice2D``. A volume
    is brought to the canonical RAS order, then yields every slice along ``axis`` (0/1/2 =
    canonical x/y/z = sagittal/coronal/axial; when None, chosen by
    :func:`sambench.data.orientation.choose_plane`: the coarsest spacing, the anatomical default
    (axial) for ties, the singleton axis of a one-slice volume); a 4D volume yields each 3D frame in turn
    (``frame=t``), with a label that is either 4D with the same frames or 3D (applied to every
    frame). NaN/Inf image voxels raise ``DataError`` unless ``replace_nonfinite`` is given.
    Raises ``DataError`` (naming the file) for missing, unreadable or mismatched inputs.

    ``channel``: the 4th axis of a 4D image holds channels (MSD multi-channel MRI), not time;
    only that channel's 3D volume is read, the label must be 3D, and slices carry ``frame=None``,
    ``channel=channel`` (``channel=0`` of a 3D image is the image itself). Image and label must
    share their 3D grid (size, spacing, origin, direction, see :func:`geometry_difference`);
    ``resample_labels`` resamples a 3D label lying on another grid onto the image's instead
    (nearest neighbour). ``max_image_pixels`` caps 2D files (None: no cap).
    ``allow_slice_gaps``: a DICOM series with a gap or a file left out is read with a warning
    instead of refused (see the module docstring). ``label_parts``: (value, file) per structure,
    one binary file each, merged into the label (``label_path`` is then the first of them).
    """
    image_path, label_path = Path(image_path), Path(label_path)
    kind = _kind(image_path)
    if kind == "volume" and label_parts is None and is_slice_folder(label_path):
        image_vol = _Volume(image_path, "warn" if allow_slice_gaps else "refuse")
        yield from _volume_slices(
            image_vol,
            _SliceStack(label_path, image_vol),
            axis,
            replace_nonfinite,
            channel=channel,
            resample_labels=resample_labels,
        )
        return
    if _kind(label_path) != kind:
        expected = "a 2D image file" if kind == "2d" else "a volume"
        raise DataError(label_path, f"label must be {expected}, like its image {image_path}")
    if kind == "volume":
        gaps = "warn" if allow_slice_gaps else "refuse"
        yield from _volume_slices(
            _Volume(image_path, gaps),
            _MergedVolume(label_parts, gaps) if label_parts else _Volume(label_path, gaps),
            axis,
            replace_nonfinite,
            channel=channel,
            resample_labels=resample_labels,
        )
        return
    if channel not in (None, 0):
        raise DataError(image_path, f"a 2D file has one channel; channel {channel} was asked for")
    image = _read_2d(image_path, False, replace_nonfinite, max_image_pixels)
    if label_parts:
        label = merge_2d_parts(label_parts, max_image_pixels)
    else:
        label = _read_2d(label_path, True, None, max_image_pixels)
    if image.shape[:2] != label.shape:
        raise DataError(
            label_path,
            f"label shape {label.shape} (H, W) differs from image shape {image.shape[:2]}",
        )
    yield Slice2D(image, label, -1, -1, (1.0, 1.0, math.nan), None)
