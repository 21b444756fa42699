"""Boundary-distance metrics: HD, HD95, ASSD (medpy definitions) and NSD (MONAI definition).

Conventions (all functions take two HxW bool masks ``pred`` and ``gt`` of the same shape):

- Boundary of a mask M: ``M XOR binary_erosion(M)`` with the 4-connected cross structuring element
  (``scipy.ndimage.generate_binary_structure(2, 1)``) and pixels outside the image counted as
  background, so object pixels on the image border are boundary pixels. This is medpy's
  ``__surface_distances`` with ``connectivity=1`` and MONAI's ``get_mask_edges`` (scipy's default
  structure), without MONAI's subvoxel option.
- Directed surface distances ``d(P->G)``: for each boundary pixel of P (row-major order), the
  Euclidean distance to the nearest boundary pixel of G, computed with
  ``scipy.ndimage.distance_transform_edt(..., sampling=spacing)``. ``spacing`` is (row, col), the
  physical size of a pixel along axis 0 and axis 1 (medpy's ``voxelspacing``); the default (1, 1)
  gives distances in pixels of the original image.
- HD = ``max(max d(P->G), max d(G->P))`` (medpy ``hd``; MONAI ``compute_hausdorff_distance``).
- HD95 = ``np.percentile(concat(d(P->G), d(G->P)), 95)`` with numpy's linear interpolation
  (medpy ``hd95``). MONAI's ``compute_hausdorff_distance(percentile=95)`` differs: it takes
  ``max(percentile(d(P->G), 95), percentile(d(G->P), 95))``, which is >= medpy's value.
- ASSD = ``mean(concat(d(P->G), d(G->P)))``: the mean over all boundary pixels of both masks
  (medpy >= 0.5 ``assd``, equal to MONAI ``compute_average_surface_distance(symmetric=True)``).
  medpy < 0.5 averaged the two directed means instead; the two agree when both boundaries have the
  same number of pixels.
- NSD (normalized surface Dice, Nikolov et al. 2021) in % =
  ``100 * (#{d(P->G) <= tau} + #{d(G->P) <= tau}) / (|dP| + |dG|)``, boundary size counted in
  pixels (MONAI ``compute_surface_dice`` with ``use_subvoxels=False``; note ``<=``). ``tau`` is in
  the unit of the distances (pixels with the default spacing).

Speed: both masks are cropped to their union bounding box padded by 1 pixel (clipped at the image
border) before erosion and the distance transform. This changes no value: erosion inside the crop
sees the same neighbourhood (the padding row/column is background, or the image border, which
erosion treats as background too), and every boundary pixel of both masks lies inside the crop, so
the nearest one is found there.

Empty masks: these functions raise :class:`EmptyMaskError` (a ValueError) naming the empty
argument; :func:`sambench.metrics.segmentation_metrics` applies the benchmark's empty-prediction
convention.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.ndimage import binary_erosion, distance_transform_edt, generate_binary_structure

from sambench.metrics.overlap import MaskError, check_pair

_CROSS = generate_binary_structure(2, 1)


class EmptyMaskError(MaskError):
    """A distance metric was asked for a mask without foreground pixels."""


def check_spacing(spacing: Sequence[float]) -> tuple[float, float]:
    """Validate a (row, col) pixel spacing: two finite numbers > 0."""
    try:
        sp = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise ValueError(f"spacing: expected two numbers (row, col), got {spacing!r}") from None
    if len(sp) != 2 or not all(math.isfinite(s) and s > 0 for s in sp):
        raise ValueError(f"spacing: expected two finite numbers > 0 (row, col), got {spacing!r}")
    return sp[0], sp[1]


def check_tolerance(tolerance: float) -> float:
    """Validate an NSD tolerance: a finite number >= 0."""
    t = float(tolerance)
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"tolerance: expected a finite number >= 0, got {tolerance!r}")
    return t


def union_crop(pred: np.ndarray, gt: np.ndarray) -> tuple[slice, slice]:
    """Row and column slices of the union bounding box of two HxW bool masks, padded by 1 pixel
    and clipped to the image. The union must not be empty."""
    union = pred | gt
    rows = np.flatnonzero(union.any(axis=1))
    cols = np.flatnonzero(union.any(axis=0))
    if rows.size == 0:
        raise EmptyMaskError("pred, gt: both masks are empty")
    h, w = union.shape
    return (
        slice(max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, h)),
        slice(max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, w)),
    )


def boundary(mask: np.ndarray) -> np.ndarray:
    """HxW bool boundary of an HxW bool mask: ``mask XOR erosion(mask)`` with the 4-connected cross;
    pixels outside the array count as background."""
    return mask ^ binary_erosion(mask, structure=_CROSS, iterations=1, border_value=0)


def _directed(
    src_border: np.ndarray, dst_border: np.ndarray, sp: tuple[float, float]
) -> np.ndarray:
    dt = distance_transform_edt(~dst_border, sampling=sp)
    return np.asarray(dt[src_border], dtype=np.float64)


def surface_distances(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing: Sequence[float] = (1.0, 1.0),
    *,
    crop: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Directed boundary distances ``(d(pred->gt), d(gt->pred))`` of two HxW bool masks.

    Returns two 1-D float64 arrays: the distance from each boundary pixel of ``pred`` (row-major
    order) to the nearest boundary pixel of ``gt``, and vice versa, in the unit of ``spacing``
    ((row, col); pixels by default). ``crop=False`` computes on the whole image (same values,
    slower; kept for verification). Raises :class:`EmptyMaskError` when either mask is empty.
    """
    p, g = check_pair(pred, gt)
    sp = check_spacing(spacing)
    for name, m in (("pred", p), ("gt", g)):
        if not m.any():
            raise EmptyMaskError(f"{name}: the mask is empty; surface distances need foreground")
    if crop:
        rs, cs = union_crop(p, g)
        p, g = p[rs, cs], g[rs, cs]
    bp, bg = boundary(p), boundary(g)
    return _directed(bp, bg, sp), _directed(bg, bp, sp)


def hd_from_distances(d_pg: np.ndarray, d_gp: np.ndarray) -> float:
    """Symmetric Hausdorff distance from the two directed distance arrays."""
    return float(max(d_pg.max(), d_gp.max()))


def hd95_from_distances(d_pg: np.ndarray, d_gp: np.ndarray) -> float:
    """95th percentile (linear interpolation) of the concatenated directed distances (medpy)."""
    return float(np.percentile(np.concatenate((d_pg, d_gp)), 95))


def assd_from_distances(d_pg: np.ndarray, d_gp: np.ndarray) -> float:
    """Mean of the concatenated directed distances (medpy >= 0.5; MONAI symmetric ASD)."""
    return float(np.concatenate((d_pg, d_gp)).mean())


def nsd_from_distances(d_pg: np.ndarray, d_gp: np.ndarray, tolerance: float) -> float:
    """NSD in %: the share of boundary pixels of both masks within ``tolerance`` (``<=``)."""
    t = check_tolerance(tolerance)
    n = d_pg.size + d_gp.size
    return 100.0 * (np.count_nonzero(d_pg <= t) + np.count_nonzero(d_gp <= t)) / n


def hausdorff(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float] = (1.0, 1.0)) -> float:
    """Symmetric Hausdorff distance (HD) between the boundaries of two HxW bool masks."""
    return hd_from_distances(*surface_distances(pred, gt, spacing))


def hausdorff95(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float] = (1.0, 1.0)) -> float:
    """HD95: 95th percentile of the concatenated directed boundary distances (medpy ``hd95``)."""
    return hd95_from_distances(*surface_distances(pred, gt, spacing))


def assd(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float] = (1.0, 1.0)) -> float:
    """Average symmetric surface distance: mean over the boundary pixels of both masks."""
    return assd_from_distances(*surface_distances(pred, gt, spacing))


def nsd(
    pred: np.ndarray,
    gt: np.ndarray,
    tolerance: float = 2.0,
    spacing: Sequence[float] = (1.0, 1.0),
) -> float:
    """Normalized surface Dice in % at ``tolerance`` (in the unit of ``spacing``; pixels by default)."""
    check_tolerance(tolerance)
    return nsd_from_distances(*surface_distances(pred, gt, spacing), tolerance)
