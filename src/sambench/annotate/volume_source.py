"""What ``sambench annotate-volume`` opens: NIfTI files, a DICOM series, a prepared 3D form, or
2D images, each with or without a reference label.

:func:`list_items` turns the user's SOURCE into :class:`VolumeItem` records (one per volume);
:func:`open_item` reads one into an :class:`OpenVolume`: the image in the canonical RAS voxel
order of :mod:`sambench.data.orientation` (read once, by :class:`sambench.data.readers._Volume`,
the reader ``prepare`` uses), the reference label when there is one, and the source grid
(``grid``: size, spacing, origin, direction of the file) that every export is written on.

Array convention: canonical arrays are (z, y, x) = (S-I, A-P, R-L) index order, i.e.
``GetArrayFromImage`` order of a RAS volume. A 2D image is a volume of depth 1 (spacing 1 mm).

SOURCE kinds (checked in this order):

- a prepared folder with ``volumes3d.parquet`` (NIfTI form): its volumes, their label maps as the
  reference, object names from the table;
- a folder holding DICOM files: one series (``series``: the SeriesInstanceUID to open when the
  folder holds several; refused otherwise with the list of series and their descriptions);
- a ``.nii``/``.nii.gz`` file, or a folder of them (``images/`` inside it when present, with the
  references in ``labels/`` of the same names, the layout of a raw dataset folder);
- a 2D image file (PNG, JPEG, TIFF, BMP) or a folder of them, no labels needed.

``reference``: a label file (or, for a folder source, a folder of label files with the image
files' names) read as the reference for the report; it must lie on the image's grid.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sambench.data.orientation import Orientation, orientation_of
from sambench.errors import DataError, OptionError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
BYTES_PER_VOXEL = 4 + 1 + 1 + 1
"""Memory per voxel the annotator holds: float32 image, uint8 label map, uint8 reference, and one
uint8 slice-normalized copy's worth of headroom (undo slabs, exports)."""


def suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


@dataclass(frozen=True)
class VolumeItem:
    """One volume to annotate: ``item_id`` (unique in the session, file-name safe), ``kind``
    (``nifti``, ``dicom``, ``prepared``, ``image2d``), the image ``path`` (a DICOM folder for
    ``dicom``), the ``series_uid`` of a DICOM series, the ``reference`` label file or None, and
    ``names`` (label value -> object name) known from the source."""

    item_id: str
    kind: str
    path: Path
    series_uid: str | None = None
    reference: Path | None = None
    names: dict[int, str] = field(default_factory=dict)
    modality: str = ""


@dataclass(frozen=True)
class Grid:
    """The source file's grid (ITK conventions): ``size`` (x, y, z) voxels, ``spacing`` (x, y, z)
    mm, ``origin`` (x, y, z) mm (LPS), ``direction`` 3x3 (columns = the file's axes)."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray

    @property
    def orientation(self) -> Orientation:
        return orientation_of(self.direction)

    @property
    def canonical_spacing(self) -> tuple[float, float, float]:
        """(x, y, z) spacing in canonical RAS axis order (R-L, A-P, S-I)."""
        sp = self.orientation.canonical_xyz(self.spacing)
        return float(sp[0]), float(sp[1]), float(sp[2])


@dataclass
class OpenVolume:
    """One volume in memory. ``image``: canonical (z, y, x) float32; ``reference``: canonical
    (z, y, x) uint8 label map or None; ``grid``: the source grid; ``dicom_files``: the series'
    files in the order of the file's z axis (DICOM sources), else empty."""

    item: VolumeItem
    image: np.ndarray
    reference: np.ndarray | None
    grid: Grid
    dicom_files: list[Path] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        z, y, x = self.image.shape
        return int(z), int(y), int(x)


# ---------------------------------------------------------------------------------------- DICOM
def dicom_series(folder: Path) -> list[tuple[str, str, int]]:
    """(SeriesInstanceUID, description, number of files) of each series in ``folder``."""
    import pydicom
    import SimpleITK as sitk

    out = []
    for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)):
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)
        desc = ""
        try:
            ds = pydicom.dcmread(files[0], stop_before_pixels=True)
            desc = " ".join(
                str(v) for v in (ds.get("Modality", ""), ds.get("SeriesDescription", "")) if v
            )
        except Exception:
            desc = ""
        out.append((uid, desc, len(files)))
    return out


def _holds_dicom(folder: Path) -> bool:
    from sambench.data.readers import _looks_dicom

    files = [p for p in sorted(folder.iterdir())[:50] if p.is_file()]
    return any(_looks_dicom(p) for p in files)


def _dicom_item(folder: Path, series: str | None, reference: Path | None) -> VolumeItem:
    found = dicom_series(folder)
    if not found:
        raise DataError(folder, "no DICOM series found in this folder")
    listing = "; ".join(f"{uid} ({desc or 'no description'}, {n} files)" for uid, desc, n in found)
    if series is None and len(found) > 1:
        raise OptionError(
            "--series", f"{folder} holds {len(found)} DICOM series; choose one: {listing}"
        )
    if series is not None and series not in [f[0] for f in found]:
        raise OptionError("--series", f"{series!r} is not in {folder}; its series: {listing}")
    uid = series or found[0][0]
    modality = next(d for u, d, _ in found if u == uid).split(" ")[0]
    return VolumeItem(_safe_id(folder.name or "series"), "dicom", folder, uid, reference,
                      modality=modality)  # fmt: skip


def dicom_files(folder: Path, series_uid: str) -> list[Path]:
    """The series' files in the order SimpleITK stacks them (the file's z axis)."""
    import SimpleITK as sitk

    return [Path(p) for p in sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_uid)]


# ---------------------------------------------------------------------------------------- listing
def _safe_id(name: str) -> str:
    for s in (*NIFTI_SUFFIXES, *IMAGE_SUFFIXES):
        if name.lower().endswith(s):
            name = name[: -len(s)]
            break
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._")
    return keep or "volume"


def _reference_for(image: Path, reference: Path | None, folder_source: bool) -> Path | None:
    if reference is None:
        return None
    if folder_source:
        cand = reference / image.name
        return cand if cand.is_file() else None
    return reference


def _prepared_items(folder: Path) -> list[VolumeItem]:
    from sambench.volumes.io import load_volume_table

    table = load_volume_table(folder)
    items = []
    for vid, rows in table.groupby("volume_id", sort=True):
        row = rows.iloc[0]
        root = Path(str(row["_root"]))  # the table's paths are relative to the prepared root
        img, lab = root / str(row["image_path"]), root / str(row["label_path"])
        if suffix(img) not in NIFTI_SUFFIXES:
            raise DataError(img, "a zarr prepared volume; the annotator reads the NIfTI form only")
        names = {int(r["label_value"]): str(r["object_name"]) for _, r in rows.iterrows()}
        items.append(
            VolumeItem(
                _safe_id(str(vid)), "prepared", img, None, lab, names, str(row.get("modality", ""))
            )
        )
    return items


def _dataset_names(folder: Path) -> tuple[dict[int, str], str]:
    """Class names and modality from a raw dataset folder's ``dataset.yaml``, if any."""
    y = folder / "dataset.yaml"
    if not y.is_file():
        return {}, ""
    import yaml

    try:
        doc = yaml.safe_load(y.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return {}, ""
    classes = doc.get("classes") or {}
    names = {int(v): str(k) for k, v in classes.items() if isinstance(v, int)}
    return names, str(doc.get("modality", ""))


def is_volume_source(path: Path) -> bool:
    """True when ``sambench annotate PATH`` hands off to the volume annotator: a NIfTI file, a
    DICOM series folder, a prepared 3D form (a folder holding ``volumes3d.parquet``, e.g.
    ``OUT/<dataset>``), a folder of NIfTI files (``images/`` inside it when present), or 2D
    image files with no ``prepare`` step. False for a ``sambench prepare`` output folder (it
    holds ``<dataset>/manifest.parquet``: the 2D tool opens it, as before) and for anything
    that is none of these (the 2D tool's own error names it). Reads names only, no voxels."""
    path = Path(path)
    if path.is_file():
        return suffix(path) in (*NIFTI_SUFFIXES, *IMAGE_SUFFIXES)
    if not path.is_dir() or any(path.glob("*/manifest.parquet")):
        return False
    if (path / "volumes3d.parquet").is_file() or any(path.glob("*/volumes3d.parquet")):
        return True
    folder = path / "images" if (path / "images").is_dir() else path
    if any(p.is_file() and suffix(p) in (*NIFTI_SUFFIXES, *IMAGE_SUFFIXES)
           for p in folder.iterdir()):  # fmt: skip
        return True
    return _holds_dicom(path)


def list_items(
    source: Path, *, series: str | None = None, reference: Path | None = None
) -> list[VolumeItem]:
    """The volumes of ``source`` in name order (see the module docstring); DataError/OptionError
    naming the path or option when there is nothing to annotate."""
    source = Path(source)
    if not source.exists():
        raise DataError(source, "does not exist")
    if reference is not None and not reference.exists():
        raise OptionError("--reference", f"{reference} does not exist")
    if series is not None and not source.is_dir():
        raise OptionError("--series", "given, but SOURCE is not a DICOM folder")
    if source.is_file():
        sfx = suffix(source)
        if sfx in NIFTI_SUFFIXES:
            return [VolumeItem(_safe_id(source.name), "nifti", source, None, reference)]
        if sfx in IMAGE_SUFFIXES:
            return [VolumeItem(_safe_id(source.name), "image2d", source, None, reference)]
        raise DataError(
            source, f"expected a NIfTI file, a 2D image ({', '.join(IMAGE_SUFFIXES)}) or a folder"
        )
    if (source / "volumes3d.parquet").is_file() or any(source.glob("*/volumes3d.parquet")):
        return _prepared_items(source)
    if _holds_dicom(source):
        return [_dicom_item(source, series, reference)]
    names, modality = _dataset_names(source)
    folder = source / "images" if (source / "images").is_dir() else source
    if reference is None and folder != source and (source / "labels").is_dir():
        reference = source / "labels"
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    vols = [p for p in files if suffix(p) in NIFTI_SUFFIXES]
    kind = "nifti"
    if not vols:
        vols, kind = [p for p in files if suffix(p) in IMAGE_SUFFIXES], "image2d"
    if not vols:
        raise DataError(
            folder, "holds no NIfTI file, DICOM series or 2D image (.png, .jpg, .tif) to annotate"
        )
    items = [
        VolumeItem(
            _safe_id(p.name), kind, p, None, _reference_for(p, reference, True), names, modality
        )
        for p in vols
    ]
    ids = [i.item_id for i in items]
    if len(set(ids)) != len(ids):
        raise DataError(folder, "two files have the same name once the extension is dropped")
    return items


# ---------------------------------------------------------------------------------------- memory
def available_bytes() -> int:
    """Memory available now (``MemAvailable`` of /proc/meminfo; else the physical memory)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def check_memory(path: Path, size: tuple[int, ...], limit_bytes: int) -> None:
    """Refuse (DataError naming ``path``) a volume of ``size`` voxels whose annotation would need
    more than ``limit_bytes`` (:data:`BYTES_PER_VOXEL` per voxel)."""
    n = int(np.prod([int(v) for v in size]))
    need = n * BYTES_PER_VOXEL
    if need > limit_bytes:
        dims = "x".join(str(int(v)) for v in size)
        raise DataError(
            path,
            f"{dims} voxels need about {_gb(need)} in memory to annotate, over the limit of "
            f"{_gb(limit_bytes)}; crop or downsample it first (e.g. SimpleITK/3D Slicer Crop "
            "Volume), or raise --max-memory-gb if this machine has the memory",
        )


def default_limit() -> int:
    """The default memory limit: half the memory available now."""
    return available_bytes() // 2


# ---------------------------------------------------------------------------------------- reading
def _read_2d(item: VolumeItem) -> tuple[np.ndarray, Grid]:
    from PIL import Image

    with Image.open(item.path) as im:
        arr = np.asarray(im.convert("L") if im.mode not in ("L", "I", "I;16", "F") else im)
    arr = arr.astype(np.float32)
    # a 2D image is one axial slice with ITK's identity direction (LPS): canonical RAS flips its
    # rows and columns, and the page's radiological axial view flips them back, so the page
    # shows the image as the file has it, and the export's file order is the image's
    h, w = arr.shape
    grid = Grid((w, h, 1), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    canon = grid.orientation.to_canonical_zyx(arr[np.newaxis])
    return np.ascontiguousarray(canon), grid


def _read_volume(
    path: Path, series_uid: str | None, limit_bytes: int
) -> tuple[np.ndarray, Grid, object]:
    from sambench.data.readers import _Volume

    vol = _Volume(path, slice_gaps="warn", series_uid=series_uid)
    if vol.frames is not None:
        raise DataError(path, f"a 4D volume ({vol.frames} frames); annotate one 3D frame at a time")
    check_memory(path, vol.size, limit_bytes)
    arr = vol.read_canonical(None)
    if arr.ndim != 3:
        raise DataError(path, f"expected one grey value per voxel, got shape {arr.shape}")
    sp = tuple(float(v) if math.isfinite(v) and v > 0 else 1.0 for v in vol.spacing)
    grid = Grid(
        (int(vol.size[0]), int(vol.size[1]), int(vol.size[2])),
        (sp[0], sp[1], sp[2]),
        (float(vol.origin[0]), float(vol.origin[1]), float(vol.origin[2])),
        np.asarray(vol.direction, dtype=float),
    )
    return np.ascontiguousarray(arr, dtype=np.float32), grid, vol


def _same_grid(a: Grid, b: Grid, atol: float = 1e-3) -> str | None:
    if a.size != b.size:
        return f"size {b.size} differs from the image's {a.size}"
    for name, x, y in (("spacing", a.spacing, b.spacing), ("origin", a.origin, b.origin)):
        if not np.allclose(x, y, atol=atol):
            return f"{name} {tuple(round(v, 4) for v in y)} differs from the image's"
    if not np.allclose(a.direction, b.direction, atol=atol):
        return "direction differs from the image's"
    return None


def reference_on_grid(path: Path, grid: Grid) -> np.ndarray:
    """The label file ``path`` in canonical (z, y, x) uint8 on ``grid``. A label on the same
    grid is read as it is; one on another grid of the same voxels (axes permuted or flipped,
    e.g. a NIfTI beside the DICOM series it came from: DICOM stacks slices along the normal) is
    resampled onto ``grid`` by nearest neighbour, which moves voxels without changing them; any
    other grid is refused (DataError naming ``path``)."""
    import SimpleITK as sitk

    try:
        ref = sitk.ReadImage(str(path))
    except RuntimeError as e:
        raise DataError(path, f"cannot be read as a label volume ({e})") from None
    if ref.GetDimension() != 3 or ref.GetNumberOfComponentsPerPixel() != 1:
        raise DataError(path, "expected a 3D label volume with one value per voxel")
    lgrid = Grid(
        tuple(int(v) for v in ref.GetSize()),  # type: ignore[arg-type]
        tuple(float(v) for v in ref.GetSpacing()),  # type: ignore[arg-type]
        tuple(float(v) for v in ref.GetOrigin()),  # type: ignore[arg-type]
        np.asarray(ref.GetDirection(), float).reshape(3, 3),
    )
    diff = _same_grid(grid, lgrid)
    if diff is not None:
        for corner in np.ndindex(2, 2, 2):
            idx = [int(c * (n - 1)) for c, n in zip(corner, grid.size, strict=True)]
            pt = np.asarray(grid.origin) + grid.direction @ (np.asarray(grid.spacing) * idx)
            j = np.asarray(ref.TransformPhysicalPointToContinuousIndex([float(v) for v in pt]))
            inside = (j > -1e-2).all() and (j < np.asarray(lgrid.size) - 1 + 1e-2).all()
            if not inside or not np.allclose(j, np.rint(j), atol=1e-2):
                raise DataError(path, f"does not lie on the image's grid: {diff}")
        target = sitk.Image([int(v) for v in grid.size], ref.GetPixelID())
        target.SetSpacing([float(v) for v in grid.spacing])
        target.SetOrigin([float(v) for v in grid.origin])
        target.SetDirection([float(v) for v in grid.direction.ravel()])
        ref = sitk.Resample(ref, target, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    arr = sitk.GetArrayFromImage(ref)
    if (arr < 0).any() or (arr > 255).any() or (arr != np.rint(arr)).any():
        raise DataError(path, "expected integer label values 0..255")
    return np.ascontiguousarray(grid.orientation.to_canonical_zyx(arr.astype(np.uint8)))


def open_item(item: VolumeItem, *, limit_bytes: int | None = None) -> OpenVolume:
    """Read ``item`` (image, reference, grid); a volume over ``limit_bytes`` (default
    :func:`default_limit`) is refused before its voxels are read."""
    limit = default_limit() if limit_bytes is None else int(limit_bytes)
    if item.kind == "image2d":
        image, grid = _read_2d(item)
        check_memory(item.path, grid.size, limit)
        ref = None
        if item.reference is not None:
            lab, _ = _read_2d(VolumeItem(item.item_id, "image2d", item.reference))
            if lab.shape != image.shape:
                raise DataError(item.reference, f"shape {lab.shape[1:]} differs from the image's")
            ref = lab.astype(np.uint8)
        return OpenVolume(item, image, ref, grid)
    if item.kind == "dicom":  # ITK reads a series whole: check its size from one header first
        import pydicom

        assert item.series_uid is not None
        names = dicom_files(item.path, item.series_uid)
        ds = pydicom.dcmread(str(names[0]), stop_before_pixels=True)
        cols, rows = int(ds.get("Columns", 0)), int(ds.get("Rows", 0))
        check_memory(item.path, (cols, rows, len(names)), limit)
    image, grid, _ = _read_volume(item.path, item.series_uid, limit)
    ref = None if item.reference is None else reference_on_grid(item.reference, grid)
    files = []
    if item.kind == "dicom":
        assert item.series_uid is not None
        files = dicom_files(item.path, item.series_uid)
    return OpenVolume(item, image, ref, grid, files)
