"""The click simulator of multi-round interactive evaluation (SPEC section 7).

The standard protocol of interactive-segmentation benchmarks (RITM, SimpleClick, FocalClick: the
``Clicker._get_next_click`` rule of ``isegm/inference/clicker.py`` in
SamsungLabs/ritm_interactive_segmentation), restated:

1. Error regions: false negatives ``fn = gt & ~pred`` (missed object) and false positives
   ``fp = ~gt & pred``.
2. Each is padded by one pixel of zeros on every side (``np.pad`` constant 0), so the image border
   counts as region boundary, then passed through the exact Euclidean distance transform
   ``cv2.distanceTransform(region, cv2.DIST_L2, 0)`` (mask size 0 = ``DIST_MASK_PRECISE``: the exact
   distance of each pixel to the nearest pixel outside the region, the same numbers as
   ``scipy.ndimage.distance_transform_edt``), and cropped back. A pixel on the image border of a
   region that touches the border therefore has distance 1.
3. Pixels already clicked get distance 0 (a pixel is never clicked twice).
4. The click is positive iff ``max(fn distance) > max(fp distance)`` (strict: a tie gives a negative
   click), and lands on the first pixel, in row-major order (y first, then x), holding the maximum
   of the chosen distance map.

Round 1 of the protocol is not a corrective click: it is the S2 point
(:func:`first_click`, ``make_prompts(gt, "S2")``).

Conventions: masks are HxW bool (0/1 integer arrays are accepted); clicks are (x, y) pixel
coordinates of the original image, X = column, Y = row; click lists are Nx2 (X, Y).
"""

from __future__ import annotations

import cv2
import numpy as np

from sambench.prompts.strategies import make_prompts


def _as_bool_mask(mask: np.ndarray, field: str) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"{field}: expected an HxW 2D mask, got shape {m.shape}")
    if m.dtype == np.bool_:
        return m
    if not np.isin(m, (0, 1)).all():
        raise ValueError(f"{field}: expected a bool or 0/1 mask, got values other than 0 and 1")
    return m.astype(bool)


def _clicked_map(clicked: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """HxW bool map of the pixels in ``clicked`` (Nx2 (X, Y), rounded to the nearest pixel)."""
    out = np.zeros(shape, bool)
    if clicked is None:
        return out
    pts = np.asarray(clicked, dtype=np.float64)
    if pts.size == 0:
        return out
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(
            f"clicked: expected an Nx2 (X, Y) array of previous clicks, got shape {pts.shape}"
        )
    xy = np.rint(pts).astype(np.int64)
    h, w = shape
    bad = (xy[:, 0] < 0) | (xy[:, 0] >= w) | (xy[:, 1] < 0) | (xy[:, 1] >= h)
    if bad.any():
        raise ValueError(
            f"clicked: click {pts[bad][0].tolist()} (X, Y) lies outside the {w}x{h} (W x H) image"
        )
    out[xy[:, 1], xy[:, 0]] = True
    return out


def error_distance(region: np.ndarray) -> np.ndarray:
    """Padded exact Euclidean distance transform of an HxW bool error region, as RITM computes it.

    Returns HxW float32: for a pixel in ``region``, the distance to the nearest pixel outside it,
    the image being surrounded by a one-pixel frame of non-region pixels; 0 outside the region.
    """
    padded = np.pad(region.astype(np.uint8), ((1, 1), (1, 1)), mode="constant")
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 0)
    return np.asarray(dist[1:-1, 1:-1], dtype=np.float32)


def next_click(
    pred: np.ndarray, gt: np.ndarray, clicked: np.ndarray | None = None
) -> tuple[int, int, bool] | None:
    """The next corrective click: ``(x, y, is_positive)``, or None when nothing is left to correct.

    ``pred``, ``gt``: HxW bool (the current binarized prediction and the ground truth).
    ``clicked``: Nx2 (X, Y) coordinates of the clicks made so far (integer pixel positions; floats
    are rounded), excluded from the new click. Returns None when ``pred == gt`` everywhere, and also
    when every remaining error pixel has already been clicked (both distance maps are zero).
    """
    p = _as_bool_mask(pred, "pred")
    g = _as_bool_mask(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred: shape {p.shape} differs from gt shape {g.shape}")
    not_clicked = ~_clicked_map(clicked, g.shape)
    fn_dt = error_distance(g & ~p) * not_clicked
    fp_dt = error_distance(~g & p) * not_clicked
    fn_max = float(fn_dt.max())
    fp_max = float(fp_dt.max())
    if fn_max == 0.0 and fp_max == 0.0:
        return None
    is_positive = fn_max > fp_max
    dt = fn_dt if is_positive else fp_dt
    flat = int(np.argmax(dt))  # first maximum in row-major order
    y, x = divmod(flat, g.shape[1])
    return int(x), int(y), bool(is_positive)


def first_click(gt: np.ndarray, *, rules: str = "paper") -> tuple[int, int, bool]:
    """Round 1: the S2 point of ``gt`` (HxW bool), as ``(x, y, True)``.

    ``rules`` is the prompt-rule set of :func:`sambench.prompts.strategies.make_prompts`
    (``"paper"`` or ``"authors-code"``); raises its ``PromptError`` for an empty mask.
    """
    p = make_prompts(_as_bool_mask(gt, "gt"), "S2", rules=rules)
    assert p.points is not None
    x, y = p.points[0]
    return round(float(x)), round(float(y)), True
