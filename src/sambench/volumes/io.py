"""Read the prepared 3D form into :class:`Volume3D` / :class:`Object3D`; write masks as NIfTI.

The prepared form is described in :mod:`sambench.data.volumes3d` (``volumes3d.parquet`` beside
each dataset's ``manifest.parquet``, NIfTI volumes or zarr stores under ``volumes/``; a zarr
volume is opened lazily, :mod:`sambench.data.zarr_volumes`). Checks made when reading:
image and label on the same grid (:func:`sambench.data.geometry.geometry_difference`, as prepare),
the label holding the manifest's values, a known spacing (or ``assume_spacing``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from sambench.data.geometry import geometry_difference
from sambench.data.orientation import orientation_of
from sambench.data.readers import _Volume
from sambench.data.records import MANIFEST_NAME
from sambench.data.volumes3d import VOLUMES3D_NAME
from sambench.data.zarr_volumes import SliceArray, is_zarr_path, open_volume_store
from sambench.errors import DataError, OptionError
from sambench.store.atomic import write_atomic
from sambench.volumes.types import Object3D, Volume3D


def load_volume_table(prepared: Path | str) -> pd.DataFrame:
    """Every dataset's ``volumes3d.parquet`` under a prepared folder (or one dataset folder).

    DataError naming the folder when none holds a 3D form (2D sources have none)."""
    root = Path(prepared)
    if not root.is_dir():
        raise DataError(root, "is not a folder; expected a `sambench prepare` output folder")
    files = [root / VOLUMES3D_NAME] if (root / VOLUMES3D_NAME).is_file() else []
    files = files or sorted(root.glob(f"*/{VOLUMES3D_NAME}"))
    if not files:
        has_2d = (root / MANIFEST_NAME).is_file() or any(root.glob(f"*/{MANIFEST_NAME}"))
        why = "it holds 2D slices only (2D sources" if has_2d else "(a 2D source or an old prepare"
        raise DataError(
            root,
            f"no {VOLUMES3D_NAME} found: {why} have no 3D form); prepare a volume source "
            "(NIfTI, MetaImage, NRRD, DICOM) with this version of `sambench prepare`",
        )
    frames = []
    for f in files:
        df = pd.read_parquet(f)
        base = f.parent.parent  # paths in the table are relative to the prepared root
        df["_root"] = str(base)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def object_from_row(row: Mapping[Any, Any]) -> Object3D:
    """The :class:`Object3D` of one ``volumes3d.parquet`` row."""
    b = tuple(int(row[f"bbox_{a}_{e}"]) for e in ("min", "max") for a in ("z", "y", "x"))
    return Object3D(
        volume_id=str(row["volume_id"]),
        label_value=int(row["label_value"]),
        object_name=str(row["object_name"]),
        voxel_count=int(row["voxel_count"]),
        bbox=(b[0], b[1], b[2], b[3], b[4], b[5]),
        key_slice=int(row["key_slice"]),
        key_area=int(row["key_area"]),
        n_slices=int(row["n_slices"]),
    )


def check_assume_spacing(value: Sequence[float] | None) -> tuple[float, float, float] | None:
    """``--assume-spacing Z,Y,X``: three finite numbers > 0 (mm), or None."""
    if value is None:
        return None
    try:
        sp = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        sp = ()
    if len(sp) != 3 or not all(math.isfinite(v) and v > 0 for v in sp):
        raise OptionError(
            "--assume-spacing", f"expected three numbers > 0 'Z,Y,X' in mm, got {value!r}"
        )
    return sp[0], sp[1], sp[2]


def read_volume(
    row: Mapping[Any, Any], root: Path | str, assume_spacing: Sequence[float] | None = None
) -> Volume3D:
    """The :class:`Volume3D` of one ``volumes3d.parquet`` row (any row of that volume).

    ``root``: the prepared folder the row's paths are relative to. A volume whose source carries
    no spacing (``spacing_known`` False) raises DataError naming the source file unless
    ``assume_spacing`` (slice, row, column mm) is given; ``assume_spacing`` otherwise overrides
    nothing. Image/label grids that disagree raise DataError naming the label file. A NIfTI
    volume is read whole (numpy arrays); a zarr one is opened lazily (``image``/``label`` are
    :class:`~sambench.data.zarr_volumes.SliceArray`: nothing is decoded until a slice is indexed).
    """
    root = Path(root)
    img_path, lab_path = root / str(row["image_path"]), root / str(row["label_path"])
    assumed = check_assume_spacing(assume_spacing)
    spacing = (float(row["spacing_z"]), float(row["spacing_y"]), float(row["spacing_x"]))
    known = bool(row.get("spacing_known", True)) and all(
        math.isfinite(v) and v > 0 for v in spacing
    )
    if not known:
        if assumed is None:
            raise DataError(
                str(row["source_image"]),
                "has no physical spacing in its header (mm needed for NSD/HD95); fix the header "
                "or pass --assume-spacing Z,Y,X (mm, slice/row/column)",
            )
        spacing = assumed
    axis = int(row["slice_axis"])
    zarr = is_zarr_path(img_path)
    if zarr != is_zarr_path(lab_path):
        raise DataError(lab_path, f"image {img_path} and label are stored in different formats")
    grids: list[Any] = []
    arrays: list[np.ndarray | SliceArray] = []
    for p in (img_path, lab_path):
        if zarr:
            grid, lazy = open_volume_store(p)
            if grid.slice_axis != axis:
                raise DataError(
                    p, f"slice_axis {grid.slice_axis} differs from {VOLUMES3D_NAME}'s {axis}"
                )
            grids.append(grid)
            arrays.append(lazy)
            continue
        if not p.is_file():
            raise DataError(p, f"file is missing (listed in {VOLUMES3D_NAME})")
        grids.append(_Volume(p))
    diff = geometry_difference(grids[0], grids[1])
    if diff is not None:
        raise DataError(lab_path, f"does not lie on the grid of its image {img_path}: {diff}")
    if not zarr:  # the NIfTI keeps the source's voxel order: canonical RAS, then slice-major
        arrays = [slice_major(g.read_canonical(None), axis) for g in grids]
    image, label = arrays
    for arr, p in ((image, img_path), (label, lab_path)):
        if arr.dtype != np.uint8:
            raise DataError(p, f"expected a uint8 prepared volume, got {arr.dtype}")
    expect = (int(row["depth"]), int(row["height"]), int(row["width"]))
    for arr, p in ((image, img_path), (label, lab_path)):
        if tuple(arr.shape) != expect:
            raise DataError(p, f"shape {tuple(arr.shape)} differs from {VOLUMES3D_NAME}'s {expect}")
    g = grids[0]
    return Volume3D(
        volume_id=str(row["volume_id"]),
        dataset=str(row["dataset"]),
        case=str(row["case"]),
        image=image,
        label=label,
        spacing=spacing,
        slice_axis=axis,
        origin=(float(g.origin[0]), float(g.origin[1]), float(g.origin[2])),
        direction=np.asarray(g.direction, dtype=float),
        path=str(img_path),
        source_image=str(row["source_image"]),
        modality=str(row.get("modality", "")),
    )


def slice_major(canonical_zyx: np.ndarray, slice_axis: int) -> np.ndarray:
    """A canonical RAS (z, y, x) array (:meth:`sambench.data.readers._Volume.read_canonical`) in
    the slice-major (S, H, W) order of :class:`Volume3D` (axis 0 = canonical axis
    ``slice_axis``); the one place both the prepared volume and the source intensities are
    ordered (contiguous copy)."""
    return np.ascontiguousarray(np.moveaxis(canonical_zyx, 2 - slice_axis, 0))


def read_source_intensities(volume: Volume3D) -> np.ndarray:
    """The SOURCE intensities of ``volume`` (the user's file ``volume.source_image``: raw HU for
    CT, scanner units for MRI; not the prepared uint8 slices) as SxHxW float32 on the prepared
    grid and voxel order (reoriented to RAS, then slice-major, exactly as the prepared volume:
    :func:`slice_major`). DataError naming the file when it is missing, 4D or multi-channel,
    or not on the prepared volume's grid (e.g. prepare cropped it)."""
    src = Path(volume.source_image)
    if not volume.source_image or not src.exists():
        raise DataError(
            src, f"the source image of {volume.volume_id} is missing (native 3D models read the "
            "source intensities, not the prepared slices); restore it or prepare again"
        )  # fmt: skip
    grid = _Volume(src, "accept")
    if grid.frames is not None or grid.ndim != 3:
        raise DataError(
            src, f"{grid.ndim}-D source; native 3D models read 3D sources only (a 4D frame or a "
            "2D file is evaluated with the 2D models' protocols)"
        )  # fmt: skip
    arr = grid.read_canonical(None)
    if arr.ndim != 3:
        raise DataError(
            src, f"has {arr.shape[3]} channels per voxel; expected one (a 3D scalar volume)"
        )
    out = slice_major(arr, volume.slice_axis).astype(np.float32, copy=False)
    if tuple(out.shape) != volume.shape:
        raise DataError(
            src, f"shape {tuple(out.shape)} (slice-major) differs from the prepared volume's "
            f"{volume.shape}; native 3D models need the source on the prepared grid"
        )  # fmt: skip
    return out


def write_mask_nifti(path: Path | str, mask: Any, volume: Volume3D) -> Path:
    """Write an SxHxW mask (bool or uint8; dense or a
    :class:`~sambench.volumes.sparse.SparseMask`) as uint8 NIfTI on the volume's source grid
    (spacing, origin, direction of the prepared image, itself the source's), atomically, so it
    overlays the original image in 3D Slicer / ITK-SNAP. The mask is in the canonical RAS order
    prepare sliced in (:mod:`sambench.data.orientation`); it is written back in the source file's
    voxel order, so it is voxel-equal to a source label of the same object. NIfTI needs the whole
    array: a sparse mask is expanded to one full-size uint8 array (plus ITK's copy) while it is
    written."""
    arr = np.asarray(mask, dtype=np.uint8)  # a sparse mask: built as uint8 directly
    if arr.shape != volume.shape:
        raise ValueError(f"mask: expected shape {volume.shape} (S, H, W), got {arr.shape}")
    orient = orientation_of(volume.direction)  # the same rule prepare used on the same header
    img = sitk.GetImageFromArray(np.ascontiguousarray(volume.to_file_zyx(arr)))
    can_sp = [0.0, 0.0, 0.0]  # the canonical (x, y, z) spacing from the slice-major one
    s, r, c = volume.spacing
    lower, higher = (i for i in range(3) if i != volume.slice_axis)
    can_sp[volume.slice_axis], can_sp[higher], can_sp[lower] = s, r, c
    img.SetSpacing([float(v) for v in orient.file_xyz(tuple(can_sp))])
    img.SetOrigin(volume.origin)
    img.SetDirection([float(v) for v in volume.direction.ravel()])
    return write_atomic(
        path, lambda p: sitk.WriteImage(img, str(p), useCompression=True), ".nii.gz"
    )
