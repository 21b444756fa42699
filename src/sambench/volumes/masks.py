"""Sparse 3D predictions and scoring on a crop, so a large (zarr, streamed) volume never needs a
full-size mask.

- :class:`~sambench.volumes.sparse.SparseMask` (its own module): an SxHxW bool prediction kept
  as its non-empty slices.
- :func:`score_object`: the 3D metrics of one prediction against one object, computed on the
  crop that is the union of the object's bounding box (from ``volumes3d.parquet``) and the
  prediction's, padded by 1 voxel and clipped to the volume. Only the label slices of the crop are
  read. The values equal those on the full arrays exactly: :func:`sambench.metrics.volume.
  volume_metrics` itself works on that same padded union crop (every foreground voxel and the
  one-voxel background shell around it, which the boundary and distance transforms need, lie
  inside it), and the empty-prediction worst case (the volume's diagonal) is given the full
  volume's shape (``extent``). Both storage formats (NIfTI read whole, zarr read lazily) go
  through this one path.
"""

from __future__ import annotations

import numpy as np

from sambench.errors import DataError
from sambench.metrics.volume import volume_metrics
from sambench.volumes.sparse import SparseMask, dense_bbox, union_crop
from sambench.volumes.types import Object3D, Volume3D


def score_object(
    pred: np.ndarray | SparseMask,
    volume: Volume3D,
    obj: Object3D,
    *,
    nsd_tolerance_mm: float = 2.0,
    empty: str = "worst",
) -> dict[str, float | int | bool]:
    """:func:`~sambench.metrics.volume.volume_metrics` of ``pred`` (SxHxW bool, dense or sparse)
    against ``volume.label == obj.label_value``, on their union crop (see the module docstring).

    DataError naming the volume when the label holds a different voxel count inside the object's
    bounding box than ``volumes3d.parquet`` lists (a label changed since prepare)."""
    shape = volume.shape
    if tuple(pred.shape) != shape:
        raise ValueError(f"pred: expected shape {shape} (S, H, W), got {tuple(pred.shape)}")
    if isinstance(pred, SparseMask):
        pbox = pred.bbox()
    else:
        pred = np.asarray(pred)
        if pred.dtype != np.bool_:
            raise ValueError(f"pred: expected a bool mask, got {pred.dtype}")
        pbox = dense_bbox(pred)
    box = union_crop(obj.bbox, pbox, shape)
    gt = np.asarray(volume.label[box]) == obj.label_value
    if int(np.count_nonzero(gt)) != obj.voxel_count:
        raise DataError(
            volume.path or volume.volume_id,
            f"label {obj.label_value} has {int(np.count_nonzero(gt))} voxels in its bounding box, "
            f"{obj.voxel_count} listed in volumes3d.parquet; prepare the dataset again",
        )
    p = pred.crop(box) if isinstance(pred, SparseMask) else pred[box]
    return volume_metrics(
        p, gt, volume.spacing, nsd_tolerance_mm=nsd_tolerance_mm, empty=empty, extent=shape
    )
