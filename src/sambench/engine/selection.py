"""Choosing among a model's candidate masks, and the metric columns of a result row."""

from __future__ import annotations

import numpy as np

from sambench.data.roi import apply_roi
from sambench.metrics import (
    METRIC_NAMES,
    MetricConfig,
    confusion_counts,
    dice_batch,
    segmentation_metrics,
)
from sambench.prompts.names import SELECTIONS


def select_and_score(
    candidates: np.ndarray,
    scores: np.ndarray,
    gt: np.ndarray,
    config: MetricConfig,
    roi: np.ndarray | None = None,
) -> list[tuple[str, int, dict[str, float | bool]]]:
    """Score the ``oracle`` and ``score`` selections of K candidate masks.

        ``candidates``: KxHxW bool; ``scores``: K predicted IoUs; ``gt``: HxW bool.
        ``oracle`` is the candidate with the highest Dice against ``gt`` (the paper's mask matching,
        an upper bound); ``score`` the one with the highest predicted IoU (what a user without ground
        truth gets). Ties take the first candidate. ``roi`` (HxW bool, optional): candidates and ``gt``
    are restricted to it before any metric (:func:`sambench.data.roi.apply_roi`), selection included. Returns ``(selection, index, metrics)`` per selection;
        metrics also hold the pixel counts ``tp``, ``fp``, ``fn`` (volume-level DICE sums them over slices).
    """
    if roi is not None:
        candidates = np.asarray(candidates, dtype=bool) & np.asarray(roi, dtype=bool)[None]
        gt = apply_roi(gt, roi)
    dices = dice_batch(candidates, gt)
    picks = {"oracle": int(np.argmax(dices)), "score": int(np.argmax(scores))}
    cache: dict[int, dict[str, float | bool]] = {}  # selections that pick the same candidate
    out = []
    for sel in SELECTIONS:
        k = picks[sel]
        if k not in cache:
            m = segmentation_metrics(candidates[k], gt, config)
            m["tp"], m["fp"], m["fn"] = confusion_counts(candidates[k], gt)
            cache[k] = m
        out.append((sel, k, cache[k]))
    return out


def nan_metrics() -> dict[str, float | bool]:
    """Metric columns of a skipped row."""
    d: dict[str, float | bool] = {m: float("nan") for m in METRIC_NAMES}
    d["empty_prediction"] = False
    d.update(tp=-1, fp=-1, fn=-1)
    return d
