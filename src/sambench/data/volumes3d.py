"""The 3D prepared form: each volume and its label in the source geometry, plus a 3D manifest.

``sambench prepare`` of a volume source writes, beside the 2D slices (``OUT/<dataset>/``)::

    volumes/images/<volume_id>.nii.gz   uint8, the standardized slices stacked back (equal to the
                                        PNGs), on the source image's grid: spacing, origin, direction
    volumes/labels/<volume_id>.nii.gz   uint8 label map in the prepared pixel values (label PNGs')
    .parts3d/<unit>.parquet             the case's 3D rows (written before the 2D part: resume)
    volumes3d.parquet                   one row per (volume, object), :data:`VOLUME_COLUMNS`

With ``--volume-format zarr`` (or ``auto`` for a volume over ``--zarr-above-mb``) the two volumes
are ``volumes/{images,labels}/<volume_id>.zarr`` stores instead, (S, H, W) slice-major, chunked
by slice and written slice by slice as prepare reads them (:mod:`sambench.data.zarr_volumes`).

``volume_id`` is ``<dataset>_<case>`` (``-t<t>`` for a 4D frame, ``_<channel>`` for a channel).
Every slice is stored, also those the 2D form drops (<= 50 foreground pixels), and every label
value present is an object (no 2D size filter). Axes in the manifest are those of
:class:`sambench.volumes.types.Volume3D`: z = the slice axis prepare cut along (``slice_axis``,
a canonical RAS axis: 0 sagittal, 1 coronal, 2 axial, see :mod:`sambench.data.orientation`),
y = rows, x = columns of the prepared slices; ``spacing_z/y/x`` in mm. ``plane`` names the plane
(``axial``...), ``orientation`` the source file's axis codes (``PSR``...). The NIfTI volumes keep
the source file's voxel order and header (the canonical slices are put back with
:meth:`~sambench.data.orientation.Orientation.from_canonical_zyx`); a zarr store is slice-major
(canonical slices). 2D sources and instance datasets (objects are per-slice connected components)
get no 3D form.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from sambench.data.readers import Slice2D, _Volume
from sambench.data.standardize import LabelMapping, remap_labels, standard_image
from sambench.data.zarr_volumes import (
    DEFAULT_ZARR_ABOVE_MB,
    ZARR_SUFFIX,
    ZarrSliceWriter,
    choose_format,
    geometry_attrs,
    store_complete,
)
from sambench.errors import DataError
from sambench.store.atomic import write_atomic, write_parquet_atomic

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
    "plane",
    "orientation",
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


class VolumeObjectStats:
    """Object statistics of an SxHxW uint8 label, added slice by slice (``add(k, HxW label)``,
    so a zarr volume is never stacked): per label value the voxel count, the inclusive bbox
    (z, y, x), the key slice (largest area, lowest index on ties), its area and the slices
    holding it; :meth:`rows` gives them as ``volumes3d.parquet`` columns."""

    def __init__(self) -> None:
        self._s: dict[int, dict[str, int]] = {}

    def add(self, k: int, label: np.ndarray) -> None:
        counts = np.bincount(np.asarray(label, dtype=np.uint8).ravel(), minlength=256)
        for v in (int(x) for x in np.flatnonzero(counts[1:]) + 1):
            m = label == v
            ys, xs = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
            area = int(counts[v])
            st = self._s.get(v)
            if st is None:
                self._s[v] = {"voxel_count": area, "n_slices": 1, "key_slice": k,
                              "key_area": area, "bbox_z_min": k, "bbox_y_min": int(ys[0]),
                              "bbox_x_min": int(xs[0]), "bbox_z_max": k,
                              "bbox_y_max": int(ys[-1]), "bbox_x_max": int(xs[-1])}  # fmt: skip
                continue
            st["voxel_count"] += area
            st["n_slices"] += 1
            if area > st["key_area"] or (area == st["key_area"] and k < st["key_slice"]):
                st["key_slice"], st["key_area"] = k, area
            st["bbox_z_min"], st["bbox_z_max"] = min(st["bbox_z_min"], k), max(st["bbox_z_max"], k)
            st["bbox_y_min"] = min(st["bbox_y_min"], int(ys[0]))
            st["bbox_x_min"] = min(st["bbox_x_min"], int(xs[0]))
            st["bbox_y_max"] = max(st["bbox_y_max"], int(ys[-1]))
            st["bbox_x_max"] = max(st["bbox_x_max"], int(xs[-1]))

    def rows(self, names: dict[int, str]) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for v in sorted(self._s):
            st = self._s[v]
            out.append({"object_name": names.get(v, f"label_{v}"), "label_value": v, **st})
        return out


class VolumeCollector:
    """Collect the standardized slices of one case's volumes during prepare, then write them.

    ``add`` takes every slice in order (frames of a 4D volume one after another); ``finish``
    writes the last volume and returns the 3D rows of all of them. ``written`` lists the files
    and stores written so far; :meth:`discard` removes them (the caller's cleanup when the case
    fails). ``volume_format``: ``nifti``, ``zarr`` or ``auto`` (zarr when a volume's uint8 size
    exceeds ``zarr_above_mb`` MB); a NIfTI volume is stacked in memory and written whole, a zarr
    one is written slice by slice as it arrives (only the current slice held).
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
        volume_format: str = "nifti",
        zarr_above_mb: float = DEFAULT_ZARR_ABOVE_MB,
    ) -> None:
        self.root, self.dataset, self.case, self.tag = root, dataset, case, tag
        self.image_path, self.label_path = image_path, label_path
        self.modality, self.window = modality, window
        self.volume_format, self.zarr_above_mb = volume_format, zarr_above_mb
        self.written: list[Path] = []
        self.rows: list[dict[str, object]] = []
        self._frame: int | None = None
        self._n = 0  # slices of the current frame so far
        self._images: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._names: dict[int, str] = {}
        self._slice: Slice2D | None = None
        self._grid: _Volume | None = None
        self._zarr: tuple[ZarrSliceWriter, ZarrSliceWriter] | None = None
        self._stats = VolumeObjectStats()

    def _vid(self, frame: int | None) -> tuple[str, str]:
        case = self.case if frame is None else f"{self.case}-t{frame}"
        return case, f"{self.dataset}_{case}" + (f"_{self.tag}" if self.tag else "")

    def _rel(self, vid: str, kind: str, suffix: str) -> str:
        return f"{self.dataset}/{VOLUMES_DIR}/{kind}/{vid}{suffix}"

    def _start_zarr(self, s: Slice2D, shape_hw: tuple[int, int]) -> None:
        """Open the two stores of the frame starting with slice ``s`` when it goes to zarr."""
        if self._grid is None:
            # header only: size, origin and direction (a DICOM series checked by the slice reader)
            self._grid = _Volume(self.image_path, "accept")
        g = self._grid
        depth = int(g.orientation.canonical_xyz(g.size)[s.slice_axis])
        if (
            choose_format(self.volume_format, depth * shape_hw[0] * shape_hw[1], self.zarr_above_mb)
            != "zarr"
        ):
            return
        attrs = geometry_attrs(g.size, g.spacing, g.origin, g.direction, s.slice_axis)
        attrs.update(plane=s.plane.plane if s.plane else "", orientation=s.orientation)
        _, vid = self._vid(s.frame)
        shape = (depth, shape_hw[0], shape_hw[1])
        img = ZarrSliceWriter(self.root / self._rel(vid, "images", ZARR_SUFFIX), shape, attrs)
        try:
            lab = ZarrSliceWriter(self.root / self._rel(vid, "labels", ZARR_SUFFIX), shape, attrs)
        except BaseException:
            img.abort()
            raise
        self._zarr = (img, lab)

    def add(self, s: Slice2D, mapping: LabelMapping) -> None:
        """One slice (``slice_axis >= 0``) with the label mapping used for its 2D label."""
        if self._n and s.frame != self._frame:
            self._write()
        image = standard_image(s.image, from_2d_file=False, window=self.window)
        label = remap_labels(s.label, mapping)
        if self._n == 0:
            self._start_zarr(s, (int(image.shape[0]), int(image.shape[1])))
        self._frame, self._slice = s.frame, s
        self._stats.add(self._n, label)
        if self._zarr is not None:
            self._zarr[0].write(self._n, image)
            self._zarr[1].write(self._n, label)
        else:
            self._images.append(image)
            self._labels.append(label)
        self._n += 1
        for v, p in mapping.pixel.items():
            self._names[p] = mapping.name[v]

    def finish(self) -> list[dict[str, object]]:
        if self._n:
            self._write()
        return self.rows

    def discard(self) -> None:
        """Remove what was written (files and stores) and any store being written."""
        if self._zarr is not None:
            for w in self._zarr:
                w.abort()
            self._zarr = None
        for f in self.written:
            if f.is_dir() and not f.is_symlink():
                shutil.rmtree(f, ignore_errors=True)
            else:
                f.unlink(missing_ok=True)

    def _write(self) -> None:
        s = self._slice
        assert s is not None
        if self._grid is None:
            self._grid = _Volume(self.image_path, "accept")  # header only: origin and direction
        case, vid = self._vid(self._frame)
        if self._zarr is not None:
            img_w, lab_w = self._zarr
            if self._n != img_w.shape[0]:
                raise DataError(
                    self.image_path, f"{self._n} slices read, the header says {img_w.shape[0]}"
                )
            self._zarr = None
            rel_img = self._rel(vid, "images", ZARR_SUFFIX)
            rel_lab = self._rel(vid, "labels", ZARR_SUFFIX)
            for rel, w in ((rel_img, img_w), (rel_lab, lab_w)):
                self.written.append(self.root / rel)
                w.commit()
            shape = img_w.shape
        else:
            image, label = np.stack(self._images), np.stack(self._labels)
            to_canonical = 2 - s.slice_axis  # slice-major -> canonical (z, y, x)
            back = self._grid.orientation.from_canonical_zyx  # -> the file's (z, y, x)
            rel_img = self._rel(vid, "images", ".nii.gz")
            rel_lab = self._rel(vid, "labels", ".nii.gz")
            for rel, arr in ((rel_img, image), (rel_lab, label)):
                self.written.append(self.root / rel)
                write_nifti(self.root / rel, back(np.moveaxis(arr, 0, to_canonical)), self._grid)
            shape = (int(image.shape[0]), int(image.shape[1]), int(image.shape[2]))
            del image, label
        objects = self._stats.rows(self._names)
        self._images, self._labels, self._n, self._stats = [], [], 0, VolumeObjectStats()
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
            "depth": int(shape[0]),
            "height": int(shape[1]),
            "width": int(shape[2]),
            "spacing_z": float(slice_sp),
            "spacing_y": float(row_sp),
            "spacing_x": float(col_sp),
            "slice_axis": int(s.slice_axis),
            "plane": s.plane.plane if s.plane else "",
            "orientation": s.orientation,
            "spacing_known": spacing_known(self.image_path, self._grid.spacing),
        }
        for obj in objects:
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
    when a part lists a missing NIfTI or zarr store, cannot be read, or was written before the
    canonical orientation (no ``plane`` column): the case is then redone."""
    path = ds_dir / PARTS3D_DIR / f"{unit}.parquet"
    if not path.is_file():
        return True
    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError):
        return False
    if "plane" not in df.columns:  # prepared before the canonical orientation: redo the case
        return False
    files = set(df["image_path"]) | set(df["label_path"])
    return all((root / f).is_file() or store_complete(root / f) for f in files)


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
