"""Regions of interest: a per-image mask restricting where a prediction is scored.

A prepared image may carry a region of interest (ROI; e.g. DRIVE's field-of-view masks): the
manifest's ``roi_path`` (relative to the prepared root, ``""`` when none) names an HxW uint8 PNG,
255 inside the region and 0 outside. Scoring inside the ROI means restricting BOTH the prediction
and the ground truth to it before any metric: ``apply_roi(pred, roi)`` and ``apply_roi(gt, roi)``.
Pure functions apart from :func:`read_roi`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sambench.errors import DataError

ROI_DIR = "roi"
"""The sub-folder of ``OUT/<dataset>/`` holding the ROI PNGs (named like the image)."""


def roi_png(roi_values: np.ndarray) -> np.ndarray:
    """An HxW source ROI (any non-zero value is inside) as the HxW uint8 PNG array (0 / 255)."""
    return np.where(np.asarray(roi_values) != 0, np.uint8(255), np.uint8(0))


def read_roi(path: Path | str) -> np.ndarray:
    """The HxW bool ROI (True inside) of a prepared ROI PNG; ``DataError`` naming the file."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except (OSError, ValueError) as e:
        raise DataError(path, f"cannot be read as a ROI PNG ({e})") from None
    if arr.ndim != 2:
        raise DataError(path, f"ROI of shape {arr.shape}; expected an HxW mask")
    return arr != 0


def apply_roi(mask: np.ndarray, roi: np.ndarray | None) -> np.ndarray:
    """``mask`` restricted to ``roi``: an HxW bool array, True where both are non-zero.

    ``roi`` None returns ``mask != 0`` unchanged in extent. Shapes must agree (``ValueError``
    otherwise). Apply it to the prediction and to the ground truth alike before scoring.
    """
    m = np.asarray(mask) != 0
    if roi is None:
        return m
    r = np.asarray(roi) != 0
    if r.shape != m.shape:
        raise ValueError(f"roi: shape {r.shape} differs from the mask's {m.shape}")
    return m & r
