"""Object attributes that explain segmentation quality (SPEC section 5, paper 4.8).

Per object (an HxW bool mask on its HxW or HxWx3 uint8 image):

- ``size``: area in pixels.
- ``aspect_ratio``: short side / long side of the tight bounding box, in (0, 1]; a side is
  ``max - min + 1`` pixels, so a 10x40 rectangle has 0.25 and a single pixel 1.
- ``intensity_diff``: |mean gray of the object - mean gray of its background|. Gray is the image
  itself (mean of the channels for RGB), as float64. The background is the bounding box expanded
  outward by ``round(0.1 * width)`` columns on the left and on the right and ``round(0.1 * height)``
  rows on the top and bottom (width/height = the box sides above; rounding half up), clipped to the
  image, minus the object's pixels. NaN when that region holds no background pixel.
- ``fourier_order`` (FO), ``fourier_dice``, ``fourier_capped``: boundary complexity. The outer
  contour of the largest 8-connected component (``cv2.findContours``, pixel centres) gets its
  elliptic Fourier descriptors (``pyefd``); for a = 1, 2, ... the order-a reconstruction (around the
  contour centre, ``pyefd.calculate_dc_coefficients``) is rasterized (``cv2.fillPoly``, boundary
  included) and compared with the whole object mask by Dice. The search stops at the first a with
  Dice(a) > 0.97 or Dice(a) - Dice(a-1) < 0.001 (Dice(0) = 0), or at ``max_order`` (default 100,
  then ``fourier_capped`` is True). FO = a + 2 * 100 * (1 - Dice(a)).
- ``modality_code``: an integer per modality name (:func:`modality_codes`: sorted names -> 0..n-1).
  It is a categorical label, as in the paper: its "correlation" with DICE depends on the arbitrary
  order of the names and only says whether DICE differs between modalities in a monotone way.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyefd
from skimage.measure import label as label_components
from tqdm.auto import tqdm

#: Attribute columns in the paper's Table 6 order.
ATTRIBUTES = ("size", "intensity_diff", "fourier_order", "modality_code", "aspect_ratio")
FOURIER_DICE_STOP = 0.97
FOURIER_GAIN_STOP = 0.001
FOURIER_MAX_ORDER = 100
BACKGROUND_MARGIN = 0.1
_SUBPIXEL_BITS = 4  # cv2.fillPoly fixed-point precision (1/16 px)


def _check_mask(mask: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask: expected an HxW array, got shape {m.shape}")
    if m.dtype != bool:
        if not np.isin(m, (0, 1)).all():
            raise ValueError("mask: expected a bool array or integers 0/1")
        m = m.astype(bool)
    if not m.any():
        raise ValueError("mask: the object is empty (no pixel set)")
    if shape is not None and m.shape != shape:
        raise ValueError(f"mask: shape {m.shape} differs from the image's HxW {shape}")
    return m


def gray_image(image: np.ndarray) -> np.ndarray:
    """HxW float64 gray values: the image itself, or the mean of the channels of HxWxC."""
    img = np.asarray(image)
    if img.ndim == 2:
        return img.astype(np.float64)
    if img.ndim == 3 and img.shape[2] in (1, 3, 4):
        return img[..., :3].astype(np.float64).mean(axis=2)
    raise ValueError(f"image: expected HxW or HxWx3, got shape {img.shape}")


def bbox_sides(mask: np.ndarray) -> tuple[int, int, int, int, int, int]:
    """``(x_min, y_min, x_max, y_max, width, height)`` of the tight box, inclusive, sides = max-min+1."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    x0, x1, y0, y1 = int(xs[0]), int(xs[-1]), int(ys[0]), int(ys[-1])
    return x0, y0, x1, y1, x1 - x0 + 1, y1 - y0 + 1


def aspect_ratio(mask: np.ndarray) -> float:
    """Short side / long side of the mask's tight bounding box, in (0, 1]."""
    *_, w, h = bbox_sides(_check_mask(mask))
    return min(w, h) / max(w, h)


def background_region(mask: np.ndarray) -> np.ndarray:
    """HxW bool: the box expanded by 10 % of its width/height per side, clipped, minus the object."""
    m = _check_mask(mask)
    x0, y0, x1, y1, w, h = bbox_sides(m)
    dx = int(np.floor(BACKGROUND_MARGIN * w + 0.5))
    dy = int(np.floor(BACKGROUND_MARGIN * h + 0.5))
    H, W = m.shape
    region = np.zeros_like(m)
    region[max(y0 - dy, 0) : min(y1 + dy, H - 1) + 1, max(x0 - dx, 0) : min(x1 + dx, W - 1) + 1] = (
        True
    )
    return region & ~m


def intensity_difference(image: np.ndarray, mask: np.ndarray) -> float:
    """|mean gray(object) - mean gray(background)| (see the module docstring); NaN if no background."""
    gray = gray_image(image)
    m = _check_mask(mask, gray.shape)
    bg = background_region(m)
    if not bg.any():
        return float("nan")
    return float(abs(gray[m].mean() - gray[bg].mean()))


def largest_component(mask: np.ndarray) -> np.ndarray:
    """HxW bool: the largest 8-connected component (ties: the first in label order)."""
    lab = label_components(_check_mask(mask), connectivity=2)
    counts = np.bincount(lab.ravel())
    counts[0] = 0
    return np.asarray(lab == int(np.argmax(counts)))


def outer_contour(mask: np.ndarray) -> np.ndarray:
    """Mx2 float64 (X, Y) pixel centres of the outer boundary of the largest component."""
    comp = largest_component(mask).astype(np.uint8)
    contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    best = max(contours, key=len)
    return best.reshape(-1, 2).astype(np.float64)


def _fill(contour_xy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    pts = np.round(contour_xy * (1 << _SUBPIXEL_BITS)).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(out, [pts], 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    return out.astype(bool)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float(np.logical_and(a, b).sum()) / float(a.sum() + b.sum())


def _dice_filled(contour_xy: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Dice of the filled polygon with ``mask``, computed in the window holding both (same result
    as on the whole image, where the fill is clipped to the image)."""
    x0, y0, x1, y1 = box
    lo = np.floor(contour_xy.min(axis=0)).astype(int) - 1
    hi = np.ceil(contour_xy.max(axis=0)).astype(int) + 1
    H, W = mask.shape
    wx0, wy0 = max(min(x0, lo[0]), 0), max(min(y0, lo[1]), 0)
    wx1, wy1 = min(max(x1, hi[0]), W - 1), min(max(y1, hi[1]), H - 1)
    window = mask[wy0 : wy1 + 1, wx0 : wx1 + 1]
    filled = _fill(contour_xy - np.array([wx0, wy0]), window.shape)
    return _dice(filled, window)


def fourier_order(
    mask: np.ndarray, max_order: int = FOURIER_MAX_ORDER
) -> tuple[float, float, int, bool]:
    """Boundary complexity of an HxW bool object mask (SPEC section 5).

    Returns ``(FO, dice_at_a, a, capped)``: FO = a + 2 * 100 * (1 - Dice(a)), the Dice (in [0, 1])
    of the order-a reconstruction with the object mask, the order a reached, and whether the search
    stopped at ``max_order`` without meeting a stopping rule. A contour with fewer than 3 distinct
    points (a 1- or 2-pixel component) cannot be described: the order is 1 and its Dice that of the
    filled contour.
    """
    m = _check_mask(mask)
    if max_order < 1:
        raise ValueError(f"max_order: expected >= 1, got {max_order}")
    contour = outer_contour(m)
    box = bbox_sides(m)[:4]
    if len(np.unique(contour, axis=0)) < 3:
        d = _dice_filled(contour, m, box)
        return 1 + 200.0 * (1 - d), d, 1, False
    # Harmonic n's coefficients do not depend on the highest order computed: compute once.
    coeffs = pyefd.elliptic_fourier_descriptors(contour, order=max_order)
    locus = pyefd.calculate_dc_coefficients(contour)
    n_points = max(300, 2 * len(contour))
    prev = 0.0
    d = 0.0
    for a in range(1, max_order + 1):
        rec = pyefd.reconstruct_contour(coeffs[:a], locus=locus, num_points=n_points)
        d = _dice_filled(rec, m, box)
        if d > FOURIER_DICE_STOP or d - prev < FOURIER_GAIN_STOP:
            return a + 200.0 * (1 - d), d, a, False
        prev = d
    return max_order + 200.0 * (1 - d), d, max_order, True


def object_attributes(image: np.ndarray, mask: np.ndarray) -> dict[str, float | int | bool]:
    """Attributes of one object: size, aspect_ratio, intensity_diff, fourier_order, fourier_dice,
    fourier_order_a (the order reached) and fourier_capped.

    ``image``: HxW or HxWx3 (uint8 normalized image); ``mask``: HxW bool of the same HxW.
    """
    gray = gray_image(image)
    m = _check_mask(mask, gray.shape)
    fo, fd, a, capped = fourier_order(m)
    return {
        "size": int(m.sum()),
        "aspect_ratio": aspect_ratio(m),
        "intensity_diff": intensity_difference(gray, m),
        "fourier_order": fo,
        "fourier_dice": fd,
        "fourier_order_a": a,
        "fourier_capped": capped,
    }


def modality_codes(modalities: Iterable[str]) -> dict[str, int]:
    """Categorical integer codes: the distinct modality names, sorted, numbered 0..n-1.

    The code is a label, not a quantity (see the module docstring).
    """
    names = sorted({str(m) for m in modalities})
    return {name: i for i, name in enumerate(names)}


_KEYS = ["dataset", "image_id", "label_value"]


def attributes_table(
    results: pd.DataFrame, prepared_root: Path | str, *, progress: bool = True
) -> pd.DataFrame:
    """Attributes of every distinct (dataset, image_id, label_value) of ``results``.

    Reads each prepared image and label PNG once (paths relative to ``prepared_root``, as in the
    manifest). Returns one row per object with the keys, ``modality``, ``modality_code`` and the
    attributes of :func:`object_attributes`; join it to the results on ``dataset, image_id,
    label_value`` (e.g. :func:`with_attributes`).
    """
    from sambench.engine.image_work import read_png  # the engine's reader: clear errors per file

    need = [*_KEYS, "image_path", "label_path", "modality"]
    missing = [c for c in need if c not in results.columns]
    if missing:
        raise ValueError(f"results: missing columns {missing}; expected {need}")
    root = Path(prepared_root)
    objs = results[need].drop_duplicates(_KEYS).sort_values(_KEYS, kind="stable")
    codes = modality_codes(objs["modality"])
    rows: list[dict[str, object]] = []
    groups = objs.groupby(["dataset", "image_id"], sort=True)
    for _, g in tqdm(groups, desc="object attributes", unit="img", disable=not progress):
        first = g.iloc[0]
        image = read_png(root / str(first["image_path"]))
        label = read_png(root / str(first["label_path"]))
        if label.ndim == 3:
            label = label[..., 0]
        for rec in g.to_dict("records"):
            mask = label == int(rec["label_value"])
            if not mask.any():
                raise ValueError(
                    f"{root / str(rec['label_path'])}: label value {rec['label_value']} is absent"
                )
            row: dict[str, object] = {k: rec[k] for k in _KEYS}
            row["modality"] = rec["modality"]
            row["modality_code"] = codes[str(rec["modality"])]
            row.update(object_attributes(image, mask))
            rows.append(row)
    return pd.DataFrame(rows)


def with_attributes(results: pd.DataFrame, attributes: pd.DataFrame) -> pd.DataFrame:
    """``results`` with the attribute columns joined on (dataset, image_id, label_value)."""
    cols = [c for c in attributes.columns if c not in results.columns or c in _KEYS]
    return results.merge(attributes[cols], on=_KEYS, how="left", validate="many_to_one")
