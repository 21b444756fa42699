"""Overlap metrics: DICE and JAC (IoU), in %, from two HxW boolean masks.

Conventions:

- ``pred`` and ``gt`` are HxW masks of the same shape, dtype bool (or an integer dtype holding only
  0 and 1); anything else raises :class:`MaskError` naming the argument.
- ``tp = |P ∩ G|``, ``fp = |P \\ G|``, ``fn = |G \\ P|`` (pixel counts).
- DICE = ``100 * 2 tp / (2 tp + fp + fn)``; JAC = ``100 * tp / (tp + fp + fn)`` (both in %).
- Both masks empty (``2 tp + fp + fn == 0``): DICE = JAC = 100.0 (two empty masks agree perfectly;
  MONAI's ``compute_dice(..., ignore_empty=False)`` convention; medpy 0.5.2's ``dc`` returns NaN
  there). In the benchmark a ground-truth object is never empty, so this only matters to direct
  callers.
"""

from __future__ import annotations

import numpy as np


class MaskError(ValueError):
    """A mask argument has the wrong shape, dtype or values."""


def as_mask(mask: np.ndarray, name: str, ndim: int = 2) -> np.ndarray:
    """Validate ``mask`` and return it as a bool array (no copy when it is bool already).

    ``ndim`` is the expected number of dimensions (2: HxW; 3: KxHxW). Integer arrays must hold only
    0 and 1; other dtypes (float probabilities, logits) are refused, since thresholding them is the
    caller's decision.
    """
    arr = np.asarray(mask)
    if arr.ndim != ndim:
        shape = "HxW" if ndim == 2 else "KxHxW"
        raise MaskError(f"{name}: expected a {shape} mask ({ndim} dims), got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return arr
    if np.issubdtype(arr.dtype, np.integer):
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            raise MaskError(
                f"{name}: an integer mask must hold only 0 and 1, got values in "
                f"[{arr.min()}, {arr.max()}]"
            )
        return arr.astype(bool)
    raise MaskError(f"{name}: expected dtype bool (or integer 0/1), got {arr.dtype}")


def check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate two HxW masks of the same shape; return them as bool arrays."""
    p = as_mask(pred, "pred")
    g = as_mask(gt, "gt")
    if p.shape != g.shape:
        raise MaskError(f"pred: shape {p.shape} differs from gt shape {g.shape}")
    return p, g


def confusion_counts(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int]:
    """``(tp, fp, fn)`` pixel counts of HxW bool masks ``pred`` against ``gt``."""
    p, g = check_pair(pred, gt)
    tp = int(np.count_nonzero(p & g))
    return tp, int(np.count_nonzero(p)) - tp, int(np.count_nonzero(g)) - tp


def _check_counts(tp: int, fp: int, fn: int) -> None:
    for name, v in (("tp", tp), ("fp", fp), ("fn", fn)):
        if v < 0:
            raise ValueError(f"{name}: expected a pixel count >= 0, got {v}")


def dice_from_counts(tp: int, fp: int, fn: int) -> float:
    """DICE in %: ``100 * 2 tp / (2 tp + fp + fn)``; 100.0 when all counts are 0 (both empty)."""
    _check_counts(tp, fp, fn)
    denom = 2 * tp + fp + fn
    return 100.0 * 2 * tp / denom if denom else 100.0


def jaccard_from_counts(tp: int, fp: int, fn: int) -> float:
    """JAC (IoU) in %: ``100 * tp / (tp + fp + fn)``; 100.0 when all counts are 0 (both empty)."""
    _check_counts(tp, fp, fn)
    denom = tp + fp + fn
    return 100.0 * tp / denom if denom else 100.0


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """DICE in % of HxW bool masks (see :func:`dice_from_counts` for the empty case)."""
    return dice_from_counts(*confusion_counts(pred, gt))


def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """JAC (IoU) in % of HxW bool masks (see :func:`jaccard_from_counts` for the empty case)."""
    return jaccard_from_counts(*confusion_counts(pred, gt))


def dice_batch(preds: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """DICE in % of K candidate masks against one ground truth, vectorized.

    ``preds``: KxHxW bool (e.g. SAM's 3 multimask candidates); ``gt``: HxW bool.
    Returns a float64 array of K values, equal to ``[dice(p, gt) for p in preds]``.
    """
    p = as_mask(preds, "preds", ndim=3)
    g = as_mask(gt, "gt")
    if p.shape[1:] != g.shape:
        raise MaskError(f"preds: candidate shape {p.shape[1:]} differs from gt shape {g.shape}")
    inter = np.count_nonzero(p & g[None], axis=(1, 2)).astype(np.float64)
    denom = np.count_nonzero(p, axis=(1, 2)).astype(np.float64) + float(np.count_nonzero(g))
    out = np.full(p.shape[0], 100.0)
    nz = denom > 0
    out[nz] = 100.0 * 2.0 * inter[nz] / denom[nz]
    return out
