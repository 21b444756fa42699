"""The 3D prepared form: each volume and its label in the source geometry, plus a 3D manifest.

``sambench prepare`` of a volume source writes, beside the 2D slices (``OUT/<dataset>/``)::

    volumes/images/<volume_id>.nii.gz   uint8, the standardized slices stacked back (equal to the
                                        PNGs), on the source image's grid: spacing, origin, direction
    volumes/labels/<volume_id>.nii.gz   uint8 label map in the prepared pixel values (label PNGs')
    .parts3d/<unit>.parquet             the case's 3D rows (written before the 2D part: resume)
    volumes3d.parquet                   one row per (volume, object), :data:`VOLUME_COLUMNS`

``volume_id`` is ``<dataset>_<case>`` (``-t<t>`` for a 4D frame, ``_<channel>`` for a channel).
Every slice is stored, also those the 2D form drops (<= 50 foreground pixels), and every label
value present is an object (no 2D size filter). Axes in the manifest are those of
:class:`sambench.volumes.types.Volume3D`: z = the slice axis prepare cut along (``slice_axis``),
y = rows, x = columns of the prepared slices; ``spacing_z/y/x`` in mm. 2D sources and instance
datasets (objects are per-slice connected components) get no 3D form.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from sambench.data.atomic import write_atomic, write_parquet_atomic
from sambench.data.readers import Slice2D, _Volume
from sambench.data.standardize import LabelMapping, remap_labels, standard_image

VOLUMES_DIR = "volumes"
PARTS3D_DIR = ".parts3d"
VOLUMES3D_NAME = "volumes3d.parquet"
VOLUME_COLUMNS: tuple[str, ...] = (
    "dataset",
    "case",
    "volume_id",
    "image_path",
    "label_path",
    "source_image",
    "source_label",
    "modality",
    "object_name",
    "label_value",
    "voxel_count",
    "n_slices",
    "key_slice",
    "key_area",
    "bbox_z_min",
    "bbox_y_min",
    "bbox_x_min",
    "bbox_z_max",
    "bbox_y_max",
    "bbox_x_max",
    "depth",
    "height",
    "width",
    "spacing_z",
    "spacing_y",
    "spacing_x",
    "slice_axis",
    "spacing_known",
)


def spacing_known(path: Path, spacing: tuple[float, ...]) -> bool:
    """False when the source carries no physical spacing: a non-finite or non-positive value, or
    a NIfTI whose header sets no coordinate system (``qform_code == sform_code == 0``) and no
    spatial unit (its pixdim are then placeholders, read as 1 mm)."""
    if not all(math.isfinite(v) and v > 0 for v in spacing[:3]):
        return False
    name = path.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        return True
    import nibabel as nib

    header: Any = nib.load(path).header  # type: ignore[attr-defined]
    no_frame = int(header["qform_code"]) == 0 and int(header["sform_code"]) == 0
    return not (no_frame and header.get_xyzt_units()[0] == "unknown")


def write_nifti(path: Path, file_zyx: np.ndarray, grid: _Volume) -> Path:
    """Write a (z, y, x) array (the file's voxel order) as NIfTI on ``grid``'s geometry, atomically."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(file_zyx))
    img.SetSpacing([float(v) if math.isfinite(v) else 1.0 for v in grid.spacing[:3]])
    img.SetOrigin([float(v) for v in grid.origin[:3]])
    img.SetDirection([float(v) for v in np.asarray(grid.direction).ravel()])
    return write_atomic(
        path, lambda p: sitk.WriteImage(img, str(p), useCompression=True), ".nii.gz"
    )


def object_rows(label: np.ndarray, names: dict[int, str]) -> list[dict[str, object]]:
    """Object statistics of an SxHxW uint8 label: value, voxel count, inclusive bbox
    (z, y, x), key slice (largest area, lowest index on ties), area there, slices holding it."""
    rows = []
    for v in (int(x) for x in np.unique(label) if x != 0):
        m = label == v
        areas = m.sum(axis=(1, 2))
        zs = np.flatnonzero(areas)
        ys = np.flatnonzero(m.any(axis=(0, 2)))
        xs = np.flatnonzero(m.any(axis=(0, 1)))
        key = int(np.argmax(areas))
        rows.append(
            {
                "object_name": names.get(v, f"label_{v}"),
                "label_value": v,
                "voxel_count": int(areas.sum()),
                "n_slices": int(zs.size),
                "key_slice": key,
                "key_area": int(areas[key]),
                "bbox_z_min": int(zs[0]),
                "bbox_y_min": int(ys[0]),
                "bbox_x_min": int(xs[0]),
                "bbox_z_max": int(zs[-1]),
                "bbox_y_max": int(ys[-1]),
                "bbox_x_max": int(xs[-1]),
            }
        )
    return rows


class VolumeCollector:
    """Collect the standardized slices of one case's volumes during prepare, then write them.

    ``add`` takes every slice in order (frames of a 4D volume one after another); ``finish``
    writes the last volume and returns the 3D rows of all of them. ``written`` lists the files
    written so far (the caller removes them when the case fails).
    """

    def __init__(
        self,
        root: Path,
        dataset: str,
        case: str,
        tag: str,
        image_path: Path,
        label_path: Path,
        modality: str,
        window: tuple[float, float] | None,
    ) -> None:
        self.root, self.dataset, self.case, self.tag = root, dataset, case, tag
        self.image_path, self.label_path = image_path, label_path
        self.modality, self.window = modality, window
        self.written: list[Path] = []
        self.rows: list[dict[str, object]] = []
        self._frame: int | None = None
        self._images: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._names: dict[int, str] = {}
        self._slice: Slice2D | None = None
        self._grid: _Volume | None = None

    def add(self, s: Slice2D, mapping: LabelMapping) -> None:
        """One slice (``slice_axis >= 0``) with the label mapping used for its 2D label."""
        if self._images and s.frame != self._frame:
            self._write()
        self._frame, self._slice = s.frame, s
        self._images.append(standard_image(s.image, from_2d_file=False, window=self.window))
        self._labels.append(remap_labels(s.label, mapping))
        for v, p in mapping.pixel.items():
            self._names[p] = mapping.name[v]

    def finish(self) -> list[dict[str, object]]:
        if self._images:
            self._write()
        return self.rows

    def _write(self) -> None:
        s = self._slice
        assert s is not None
        if self._grid is None:
            self._grid = _Volume(self.image_path)  # header only: origin and direction
        case = self.case if self._frame is None else f"{self.case}-t{self._frame}"
        vid = f"{self.dataset}_{case}" + (f"_{self.tag}" if self.tag else "")
        image, label = np.stack(self._images), np.stack(self._labels)
        self._images, self._labels = [], []
        to_file = 2 - s.slice_axis  # slice-major -> the file's (z, y, x)
        rel_img = f"{self.dataset}/{VOLUMES_DIR}/images/{vid}.nii.gz"
        rel_lab = f"{self.dataset}/{VOLUMES_DIR}/labels/{vid}.nii.gz"
        for rel, arr in ((rel_img, image), (rel_lab, label)):
            self.written.append(self.root / rel)
            write_nifti(self.root / rel, np.moveaxis(arr, 0, to_file), self._grid)
        col_sp, row_sp, slice_sp = s.spacing
        common = {
            "dataset": self.dataset,
            "case": case,
            "volume_id": vid,
            "image_path": rel_img,
            "label_path": rel_lab,
            "source_image": str(self.image_path),
            "source_label": str(self.label_path),
            "modality": self.modality,
            "depth": int(image.shape[0]),
            "height": int(image.shape[1]),
            "width": int(image.shape[2]),
            "spacing_z": float(slice_sp),
            "spacing_y": float(row_sp),
            "spacing_x": float(col_sp),
            "slice_axis": int(s.slice_axis),
            "spacing_known": spacing_known(self.image_path, self._grid.spacing),
        }
        for obj in object_rows(label, self._names):
            self.rows.append({**common, **obj})


def volumes_frame(rows: list[dict[str, object]] | pd.DataFrame) -> pd.DataFrame:
    """Rows as a DataFrame with exactly :data:`VOLUME_COLUMNS`, in that order."""
    df = pd.DataFrame(rows)
    for c in VOLUME_COLUMNS:
        if c not in df.columns:
            df[c] = pd.Series(dtype=object)
    return df[list(VOLUME_COLUMNS)].reset_index(drop=True)


def write_part3d(ds_dir: Path, unit: str, rows: list[dict[str, object]]) -> Path:
    return write_parquet_atomic(ds_dir / PARTS3D_DIR / f"{unit}.parquet", volumes_frame(rows))


def part3d_complete(root: Path, ds_dir: Path, unit: str) -> bool:
    """True when the case's 3D part is absent (nothing 3D for it) or all its files exist; False
    when a part lists a missing NIfTI or cannot be read (the case is then redone)."""
    path = ds_dir / PARTS3D_DIR / f"{unit}.parquet"
    if not path.is_file():
        return True
    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError):
        return False
    files = set(df["image_path"]) | set(df["label_path"])
    return all((root / f).is_file() for f in files)


def write_volumes_manifest(ds_dir: Path, units: list[str]) -> pd.DataFrame | None:
    """Gather the 3D parts of ``units`` into ``volumes3d.parquet``; None (and no file, an old
    one removed) when no unit has a 3D form."""
    frames = []
    for unit in units:
        path = ds_dir / PARTS3D_DIR / f"{unit}.parquet"
        if path.is_file():
            frames.append(pd.read_parquet(path))
    target = ds_dir / VOLUMES3D_NAME
    if not frames:
        target.unlink(missing_ok=True)
        return None
    df = volumes_frame(pd.concat(frames, ignore_index=True))
    df = df.sort_values(["volume_id", "label_value"], kind="stable").reset_index(drop=True)
    write_parquet_atomic(target, df)
    return df
