"""NoC of one object (paper 4.11): the first click at which its IoU reaches a threshold.

NoC@t (number of clicks) is the first click index (1-based) at which an object's IoU reaches
``t`` % (``>=``); ``max_clicks`` when it never does within ``max_clicks`` clicks. The tables over
objects (NoC@t, NoF@t with CIs, the per-click curve) are :mod:`sambench.analysis.interactive`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def noc(ious: Sequence[float] | np.ndarray, threshold: float, max_clicks: int) -> tuple[int, bool]:
    """NoC of one object: ``(clicks, reached)``.

    ``ious[i]`` is the IoU (in the same unit as ``threshold``, the results use %) after click
    ``i + 1``. Returns the first 1-based click index with ``iou >= threshold`` among the first
    ``max_clicks`` values and True, or ``(max_clicks, False)`` when none reaches it (NaN never does).
    """
    if max_clicks < 1:
        raise ValueError(f"max_clicks: expected an integer >= 1, got {max_clicks}")
    for i, v in enumerate(list(ious)[:max_clicks]):
        if not math.isnan(float(v)) and float(v) >= threshold:
            return i + 1, True
    return max_clicks, False
