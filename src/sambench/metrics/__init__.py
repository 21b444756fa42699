"""Metrics: overlap (DICE, JAC), boundary distances (HD, HD95, ASSD, NSD) and the Human Correction
Effort (HCE, with its FP and FN parts).

Pure functions live in :mod:`sambench.metrics.overlap`, :mod:`sambench.metrics.distance` and
:mod:`sambench.metrics.hce` (see their docstrings for the exact definitions and which reference,
medpy, MONAI or the DIS benchmark code, each follows).
:func:`segmentation_metrics` computes every metric of one object at once and applies the
benchmark's empty-prediction convention (SPEC section 4):

- the ground truth must not be empty (benchmark objects have more than 50 pixels): ValueError;
- an empty prediction gets DICE = JAC = 0 and NSD = 0, and its distance metrics (HD, HD95, ASSD)
  are the image diagonal ``sqrt((H * row_spacing)^2 + (W * col_spacing)^2)``, larger than any
  distance between two pixels of the image, so means stay defined and never reward empty output
  (``empty="worst"``, the default), or NaN (``empty="nan"``); the row is flagged with
  ``empty_prediction=True`` either way;
- HCE needs no convention: an empty prediction's HCE is the effort of drawing the ground truth.

Physical units: with ``MetricConfig.spacing_mm`` = (row, col) mm (the slice's in-plane spacing, when
its source carries one), ``hd_mm``, ``hd95_mm``, ``assd_mm`` are the same distances in mm and
``nsd_mm`` the NSD at ``nsd_tolerance_mm`` (default 2 mm, the CVPR 2024 challenge's); without a
spacing they are NaN. The pixel columns stay (the paper's tables). An empty prediction's mm
distances are the image diagonal in mm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sambench.metrics.distance import (
    EmptyMaskError,
    assd,
    assd_from_distances,
    boundary,
    check_spacing,
    check_tolerance,
    hausdorff,
    hausdorff95,
    hd95_from_distances,
    hd_from_distances,
    nsd,
    nsd_from_distances,
    surface_distances,
)
from sambench.metrics.hce import HCE_NAMES, HCEResult, human_correction_effort
from sambench.metrics.overlap import (
    MaskError,
    check_pair,
    confusion_counts,
    dice,
    dice_batch,
    dice_from_counts,
    jaccard,
    jaccard_from_counts,
)

MM_METRIC_NAMES = ("hd_mm", "hd95_mm", "assd_mm", "nsd_mm")
METRIC_NAMES = ("dice", "jaccard", "hd", "hd95", "assd", "nsd", *MM_METRIC_NAMES, *HCE_NAMES)
EMPTY_CHOICES = ("worst", "nan")


@dataclass(frozen=True)
class MetricConfig:
    """Options of :func:`segmentation_metrics`.

    ``nsd_tolerance``: NSD tolerance, in pixels (in the spacing's unit when a spacing is given),
    finite and >= 0. ``empty``: the distance metrics of an empty prediction, ``"worst"`` (the image
    diagonal) or ``"nan"``. ``spacing_mm``: (row, col) pixel size in mm of the image, or None when
    unknown; with it the ``*_mm`` metrics are computed, NSD at ``nsd_tolerance_mm`` (mm).
    """

    nsd_tolerance: float = 2.0
    empty: Literal["worst", "nan"] = "worst"
    nsd_tolerance_mm: float = 2.0
    spacing_mm: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.empty not in EMPTY_CHOICES:
            raise ValueError(f"empty: expected one of {list(EMPTY_CHOICES)}, got {self.empty!r}")
        try:
            check_tolerance(self.nsd_tolerance)
        except (TypeError, ValueError):
            raise ValueError(
                f"nsd_tolerance: expected a finite number >= 0 (pixels), got {self.nsd_tolerance!r}"
            ) from None
        try:
            check_tolerance(self.nsd_tolerance_mm)
        except (TypeError, ValueError):
            raise ValueError(
                f"nsd_tolerance_mm: expected a finite number >= 0 (mm), got {self.nsd_tolerance_mm!r}"
            ) from None
        if self.spacing_mm is not None:
            check_spacing(self.spacing_mm)


def segmentation_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    config: MetricConfig | None = None,
    *,
    spacing: Sequence[float] = (1.0, 1.0),
) -> dict[str, float | bool]:
    """Every metric of one object: keys :data:`METRIC_NAMES` plus ``empty_prediction``.

    ``pred``, ``gt``: HxW bool masks of the same shape; ``gt`` must not be empty. ``config``
    defaults to ``MetricConfig()``. ``spacing`` is (row, col) pixel size (pixels by default).
    DICE, JAC and NSD are in %; HD, HD95 and ASSD in the unit of ``spacing``. The boundary
    distances are computed once and shared by the four distance metrics. ``hce``, ``hce_fp`` and
    ``hce_fn`` are :func:`human_correction_effort` counts (as floats) at the DIS defaults, in
    pixels whatever the spacing.
    """
    cfg = MetricConfig() if config is None else config
    p, g = check_pair(pred, gt)
    sp = check_spacing(spacing)
    if not g.any():
        raise EmptyMaskError(
            "gt: the ground-truth mask is empty; an object must have foreground pixels"
        )
    tp, fp, fn = confusion_counts(p, g)
    out: dict[str, float | bool] = {
        "dice": dice_from_counts(tp, fp, fn),
        "jaccard": jaccard_from_counts(tp, fp, fn),
        **human_correction_effort(p, g).as_dict(),
    }
    if tp + fp == 0:
        h, w = g.shape
        worst = math.hypot(h * sp[0], w * sp[1]) if cfg.empty == "worst" else math.nan
        out.update(hd=worst, hd95=worst, assd=worst, nsd=0.0, empty_prediction=True)
        out.update(_mm_metrics(None, g.shape, cfg))
        return out
    d_pg, d_gp = surface_distances(p, g, sp)
    out.update(
        hd=hd_from_distances(d_pg, d_gp),
        hd95=hd95_from_distances(d_pg, d_gp),
        assd=assd_from_distances(d_pg, d_gp),
        nsd=nsd_from_distances(d_pg, d_gp, cfg.nsd_tolerance),
        empty_prediction=False,
    )
    out.update(_mm_metrics((p, g), g.shape, cfg))
    return out


def _mm_metrics(
    masks: tuple[np.ndarray, np.ndarray] | None, shape: tuple[int, ...], cfg: MetricConfig
) -> dict[str, float | bool]:
    """The ``*_mm`` columns: NaN without ``cfg.spacing_mm``; ``masks`` None = empty prediction."""
    if cfg.spacing_mm is None:
        return {k: math.nan for k in MM_METRIC_NAMES}
    sp = check_spacing(cfg.spacing_mm)
    if masks is None:
        worst = math.hypot(shape[0] * sp[0], shape[1] * sp[1]) if cfg.empty == "worst" else math.nan
        return {"hd_mm": worst, "hd95_mm": worst, "assd_mm": worst, "nsd_mm": 0.0}
    d_pg, d_gp = surface_distances(masks[0], masks[1], sp)
    return {
        "hd_mm": hd_from_distances(d_pg, d_gp),
        "hd95_mm": hd95_from_distances(d_pg, d_gp),
        "assd_mm": assd_from_distances(d_pg, d_gp),
        "nsd_mm": float(nsd_from_distances(d_pg, d_gp, cfg.nsd_tolerance_mm)),
    }


__all__ = [
    "EMPTY_CHOICES",
    "HCE_NAMES",
    "METRIC_NAMES",
    "MM_METRIC_NAMES",
    "EmptyMaskError",
    "HCEResult",
    "MaskError",
    "MetricConfig",
    "assd",
    "boundary",
    "confusion_counts",
    "dice",
    "dice_batch",
    "dice_from_counts",
    "hausdorff",
    "hausdorff95",
    "human_correction_effort",
    "jaccard",
    "jaccard_from_counts",
    "nsd",
    "segmentation_metrics",
    "surface_distances",
]
