"""``propagate``: one prompt on the key slice, then slice by slice outward (both directions).

Step 0 decodes the first prompt (``config.prompt``: the key slice's ground-truth box or the S2
point, shifted by ``config.shift_range`` when given) on ``obj.key_slice`` (the slice of largest
area). Then, in each direction (+1 first, then -1), slice k + d is prompted with the tight box of
slice k's prediction and, when ``config.use_mask_prompt``, its low-resolution logits as
``mask_logits`` (adapters without a mask input ignore them). Propagation stops in a direction when
a prediction is empty (it "vanishes") or at the volume's end; the ground truth is never looked at
after the first prompt. One step (0). :func:`propagate_from` is the reusable part (e.g. around a
correction click's slice).
"""

from __future__ import annotations

import time

import numpy as np

from sambench.models.base import PromptableModel
from sambench.prompts.types import Prompts
from sambench.volumes.protocols._prompts import first_prompt
from sambench.volumes.slices import SliceOutput, SlicePredictor, mask_box
from sambench.volumes.sparse import SparseMask
from sambench.volumes.types import Object3D, ProtocolConfig, Rng, Steps, Volume3D, register_protocol


def propagate_from(
    sp: SlicePredictor,
    start: int,
    start_out: SliceOutput,
    *,
    use_mask_prompt: bool = True,
    directions: tuple[int, ...] = (1, -1),
    limit: tuple[int, int] | None = None,
) -> dict[int, np.ndarray]:
    """Masks (HxW bool) of the slices reached from ``start`` (whose output is ``start_out``,
    included in the result), propagating the previous slice's box (and logits) outward.

    ``limit``: (first, last) slice indices propagation may reach (inclusive; default the whole
    volume). A direction stops at the first empty prediction (not included) or at the limit.
    """
    depth = sp.volume.shape[0]
    lo, hi = (0, depth - 1) if limit is None else limit
    out = {start: start_out.mask}
    for d in directions:
        prev, k = start_out, start + d
        while lo <= k <= hi:
            box = mask_box(prev.mask)
            if box is None:
                break
            logits = prev.logits if use_mask_prompt else None
            cur = sp.predict(k, Prompts(box=box, mask_logits=logits))
            if not cur.mask.any():
                break
            out[k] = cur.mask
            prev, k = cur, k + d
    return out


@register_protocol(
    "propagate",
    "one prompt on the key slice, then slice by slice outward",
    slices=lambda volume, obj, config: [obj.key_slice],
)
def propagate(model: PromptableModel, volume: Volume3D, obj: Object3D,
              config: ProtocolConfig, rng: Rng) -> Steps:  # fmt: skip
    t0 = time.perf_counter()
    key = obj.key_slice
    sp = SlicePredictor(model, volume, multimask=config.multimask, max_cached=1)
    gt_key = volume.slice_mask(obj, key)
    first = sp.predict(key, first_prompt(gt_key, config, rng))
    pred = SparseMask(volume.shape)  # the slices reached only: a long volume stays small
    reached = propagate_from(sp, key, first, use_mask_prompt=config.use_mask_prompt)
    for k, m in reached.items():
        pred[k] = m
    ks = sorted(k for k in reached if reached[k].any())
    return sp.one_step(pred, t0, z_first=ks[0] if ks else -1, z_last=ks[-1] if ks else -1)
