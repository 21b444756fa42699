"""``slicewise-gt``: every slice of the object prompted from its own ground truth (MedSAM's 3D
protocol, the paper's upper bound), the slices stacked and scored over the whole volume.

Each slice k holding the object gets the prompt of ``config.prompt`` built from ``gt[k]`` (its
tight box, XYXY inclusive, or the paper's S2 centre point), shifted by ``config.shift_range`` when
given (one :func:`~sambench.prompts.shift.shift_prompts` draw per slice from ``rng``). Slices
without the object are not predicted, so any prediction outside the object's slices is zero; but
the masks are scored in 3D, so a prediction bleeding beyond the object on its own slices counts
as false positive (unlike the 2D "volume DICE", which pools only the object's slices).
One step (0).
"""

from __future__ import annotations

import time

from sambench.models.base import PromptableModel
from sambench.volumes.protocols._prompts import first_prompt
from sambench.volumes.slices import SlicePredictor
from sambench.volumes.sparse import SparseMask
from sambench.volumes.types import Object3D, ProtocolConfig, Rng, Steps, Volume3D, register_protocol


@register_protocol(
    "slicewise-gt",
    "every object slice prompted from its own ground-truth box",
    slices=lambda volume, obj, config: volume.object_slices(obj),
)
def slicewise_gt(model: PromptableModel, volume: Volume3D, obj: Object3D,
                 config: ProtocolConfig, rng: Rng) -> Steps:  # fmt: skip
    t0 = time.perf_counter()
    sp = SlicePredictor(model, volume, multimask=config.multimask, max_cached=1)
    pred = SparseMask(volume.shape)  # the object's slices only, read one at a time
    for k in range(obj.bbox[0], obj.bbox[3] + 1):
        gt_k = volume.slice_mask(obj, k)
        if gt_k.any():
            pred[k] = sp.predict(k, first_prompt(gt_k, config, rng)).mask
    return sp.one_step(pred, t0)
