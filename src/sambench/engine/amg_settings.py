"""The official automatic mask generator's settings for everything mode (S1), in one place:
the run configuration's defaults and the generator both read them from here."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AmgSettings:
    """The official generator's filtering settings (same names and defaults)."""

    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    min_mask_region_area: int = 0
    postprocess_chunk: int = 48

    def __post_init__(self) -> None:
        for name in ("points_per_batch", "postprocess_chunk"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
        for name in ("pred_iou_thresh", "stability_score_thresh", "box_nms_thresh"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= float(v) <= 1.0):
                raise ValueError(f"{name}: expected a number in [0, 1], got {v!r}")
        off = self.stability_score_offset
        if not (isinstance(off, (int, float)) and math.isfinite(off) and off > 0):
            raise ValueError(f"stability_score_offset: expected a finite number > 0, got {off!r}")
        area = self.min_mask_region_area
        if not isinstance(area, (int, np.integer)) or isinstance(area, bool) or area < 0:
            raise ValueError(f"min_mask_region_area: expected an integer >= 0, got {area!r}")


SAM2_AMG = AmgSettings(pred_iou_thresh=0.8)
"""``SAM2AutomaticMaskGenerator``'s defaults (it differs from SAM's generator only in
``pred_iou_thresh``: 0.8 instead of 0.88). Applied by :func:`generator_defaults` to the SAM 2
family, so S1 of a SAM 2 run is the official SAM 2 generator unless an option overrides it."""

SAM2_FAMILY = ("medsam2", "hf_sam2", "sam3")
"""Model names, beside the ``sam2*`` adapters, whose S1 uses :data:`SAM2_AMG` (``sam3``: its
point/box head is SAM 2's interface, and SAM 3 ships no point-grid generator of its own)."""


def is_sam2_family(model_name: str) -> bool:
    """True for ``sam2_hiera_*``, ``sam2.1_hiera_*`` and :data:`SAM2_FAMILY`."""
    return model_name.startswith("sam2") or model_name in SAM2_FAMILY


def generator_defaults(model_name: str) -> AmgSettings:
    """The official automatic mask generator's defaults for ``--model model_name``: SAM 2's
    (:data:`SAM2_AMG`) for the SAM 2 family, SAM's (:class:`AmgSettings`) for every other model."""
    return SAM2_AMG if is_sam2_family(model_name) else AmgSettings()
