"""3D metrics in physical units: DSC, NSD at a tolerance in mm, HD, HD95, ASSD (mm), volume error.

The definitions are those of :mod:`sambench.metrics.distance`, in three dimensions:

- Boundary of a DxHxW bool mask M: ``M XOR binary_erosion(M)`` with the 6-connected cross
  (``generate_binary_structure(3, 1)``), voxels outside the array counted as background (MONAI's
  ``get_mask_edges`` without subvoxels; medpy ``connectivity=1``).
- Directed distances from every boundary voxel of one mask to the nearest boundary voxel of the
  other, ``distance_transform_edt(..., sampling=spacing)``, ``spacing`` = (axis 0, 1, 2) voxel size
  in mm, so every distance is in mm.
- HD = max of both directions (MONAI ``compute_hausdorff_distance``); HD95 = 95th percentile of
  the concatenated directed distances (medpy ``hd95``; MONAI's ``percentile=95`` takes the max of
  the two directed percentiles instead); ASSD = mean of the concatenation (MONAI
  ``compute_average_surface_distance(symmetric=True)``); NSD in % = share of boundary voxels of both
  masks within ``tolerance_mm`` (``<=``, MONAI ``compute_surface_dice``, CVPR 2024 challenge).
- Volume error: ``100 * (|P| - |G|) / |G|`` (signed %, > 0 over-segmentation) and the absolute
  difference in ml (voxel volume = product of the spacing, mm^3 / 1000).

Both masks are cropped to their union bounding box padded by 1 voxel first (same values, see
:mod:`sambench.metrics.distance`). Empty ground truth: :class:`EmptyMaskError`. Empty prediction:
DSC = NSD = 0 and HD = HD95 = ASSD = the volume's diagonal in mm (or NaN with ``empty="nan"``),
flagged ``empty_prediction``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.ndimage import binary_erosion, distance_transform_edt, generate_binary_structure

from sambench.metrics.distance import (
    EmptyMaskError,
    assd_from_distances,
    check_tolerance,
    hd95_from_distances,
    hd_from_distances,
    nsd_from_distances,
)
from sambench.metrics.overlap import MaskError

VOLUME_METRIC_NAMES = (
    "dsc",
    "nsd",
    "hd",
    "hd95",
    "assd",
    "volume_error",
    "volume_diff_ml",
    "pred_voxels",
    "gt_voxels",
    "empty_prediction",
)


def check_spacing_nd(spacing: Sequence[float], ndim: int) -> tuple[float, ...]:
    """Validate an ``ndim``-long voxel spacing (finite, > 0), in axis order."""
    try:
        sp = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise ValueError(f"spacing: expected {ndim} numbers, got {spacing!r}") from None
    if len(sp) != ndim or not all(math.isfinite(s) and s > 0 for s in sp):
        raise ValueError(f"spacing: expected {ndim} finite numbers > 0, got {spacing!r}")
    return sp


def _check_masks(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, g = np.asarray(pred), np.asarray(gt)
    if p.shape != g.shape:
        raise MaskError(f"pred, gt: shapes differ, {p.shape} vs {g.shape}")
    if p.dtype != np.bool_ or g.dtype != np.bool_:
        raise MaskError(f"pred, gt: expected bool masks, got {p.dtype} and {g.dtype}")
    return p, g


def _union_crop(p: np.ndarray, g: np.ndarray) -> tuple[slice, ...]:
    union = p | g
    crop = []
    for axis in range(union.ndim):
        other = tuple(a for a in range(union.ndim) if a != axis)
        idx = np.flatnonzero(union.any(axis=other))
        if idx.size == 0:
            raise EmptyMaskError("pred, gt: both masks are empty")
        crop.append(slice(max(int(idx[0]) - 1, 0), min(int(idx[-1]) + 2, union.shape[axis])))
    return tuple(crop)


def boundary_nd(mask: np.ndarray) -> np.ndarray:
    """Boundary of an n-D bool mask: ``mask XOR erosion(mask)`` with the connectivity-1 cross;
    voxels outside the array count as background."""
    cross = generate_binary_structure(mask.ndim, 1)
    return np.asarray(mask ^ binary_erosion(mask, structure=cross, iterations=1, border_value=0))


def surface_distances_nd(
    pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Directed boundary distances ``(d(pred->gt), d(gt->pred))`` of two n-D bool masks, 1-D
    float64 arrays in the unit of ``spacing`` (one value per axis). Empty mask: EmptyMaskError."""
    p, g = _check_masks(pred, gt)
    sp = check_spacing_nd(spacing, p.ndim)
    for name, m in (("pred", p), ("gt", g)):
        if not m.any():
            raise EmptyMaskError(f"{name}: the mask is empty; surface distances need foreground")
    crop = _union_crop(p, g)
    bp, bg = boundary_nd(p[crop]), boundary_nd(g[crop])
    d_pg = np.asarray(distance_transform_edt(~bg, sampling=sp)[bp], dtype=np.float64)
    d_gp = np.asarray(distance_transform_edt(~bp, sampling=sp)[bg], dtype=np.float64)
    return d_pg, d_gp


def volume_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing: Sequence[float],
    *,
    nsd_tolerance_mm: float = 2.0,
    empty: str = "worst",
    extent: Sequence[int] | None = None,
) -> dict[str, float | int | bool]:
    """Every 3D metric of one object (keys :data:`VOLUME_METRIC_NAMES`).

    ``pred``, ``gt``: DxHxW bool (any n-D works); ``spacing``: voxel size per axis, mm. DSC and
    NSD in %, HD/HD95/ASSD in mm, ``volume_error`` in % of the ground-truth volume (signed),
    ``volume_diff_ml`` = |pred - gt| volume in ml. ``extent``: the shape of the whole volume
    when ``pred``/``gt`` are a crop of it holding all foreground plus a 1-voxel margin (the
    empty-prediction worst case is the whole volume's diagonal); default their own shape.
    """
    p, g = _check_masks(pred, gt)
    sp = check_spacing_nd(spacing, p.ndim)
    tol = check_tolerance(nsd_tolerance_mm)
    if empty not in ("worst", "nan"):
        raise ValueError(f"empty: expected 'worst' or 'nan', got {empty!r}")
    n_g, n_p = int(np.count_nonzero(g)), int(np.count_nonzero(p))
    if n_g == 0:
        raise EmptyMaskError("gt: the ground-truth mask is empty; an object must have voxels")
    tp = int(np.count_nonzero(p & g))
    voxel_ml = float(np.prod(sp)) / 1000.0
    out: dict[str, float | int | bool] = {
        "dsc": 100.0 * 2 * tp / (n_p + n_g),
        "volume_error": 100.0 * (n_p - n_g) / n_g,
        "volume_diff_ml": abs(n_p - n_g) * voxel_ml,
        "pred_voxels": n_p,
        "gt_voxels": n_g,
    }
    dims = tuple(p.shape) if extent is None else tuple(int(n) for n in extent)
    if len(dims) != p.ndim:
        raise ValueError(f"extent: expected {p.ndim} sizes, got {extent!r}")
    if n_p == 0:
        worst = (
            math.sqrt(sum((n * s) ** 2 for n, s in zip(dims, sp, strict=True)))
            if empty == "worst"
            else math.nan
        )
        out.update(nsd=0.0, hd=worst, hd95=worst, assd=worst, empty_prediction=True)
        return out
    d_pg, d_gp = surface_distances_nd(p, g, sp)
    out.update(
        nsd=nsd_from_distances(d_pg, d_gp, tol),
        hd=hd_from_distances(d_pg, d_gp),
        hd95=hd95_from_distances(d_pg, d_gp),
        assd=assd_from_distances(d_pg, d_gp),
        empty_prediction=False,
    )
    return out
