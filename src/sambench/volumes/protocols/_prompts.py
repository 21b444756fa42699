"""The first prompt of a slice from its ground truth (shared by the protocols; not a protocol)."""

from __future__ import annotations

import numpy as np

from sambench.errors import OptionError
from sambench.prompts.shift import shift_prompts
from sambench.prompts.strategies import bounding_box, make_prompts
from sambench.prompts.types import Prompts
from sambench.volumes.types import ProtocolConfig

FIRST_PROMPTS = ("box", "point")


def first_prompt(gt: np.ndarray, config: ProtocolConfig, rng: np.random.Generator) -> Prompts:
    """``config.prompt`` built from one HxW bool slice: ``"box"`` = the tight box (XYXY
    inclusive, float), ``"point"`` = the paper's S2 point (one positive click at the centroid, or
    inside the object when the centroid is not); then shifted by ``config.shift_range`` (px)."""
    if config.prompt == "box":
        p = Prompts(box=bounding_box(gt).astype(np.float64))
    elif config.prompt == "point":
        p = make_prompts(gt, "S2")
    else:
        raise OptionError(
            "--prompt", f"expected one of {list(FIRST_PROMPTS)}, got {config.prompt!r}"
        )
    if config.shift_range is not None:
        p = shift_prompts(p, config.shift_range, gt.shape, rng)
    return p
