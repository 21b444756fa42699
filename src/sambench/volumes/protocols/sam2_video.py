"""``sam2-video``: the volume as a frame sequence through the official SAM 2 video predictor.

MedSAM2's 3D protocol (Ma et al. 2025, ``medsam2_infer_3D_CT.py``): one prompt on the key slice,
then ``SAM2VideoPredictor.propagate_in_video`` forward from it and again in reverse from it,
each slice's mask = its video-resolution logits > 0.

- Model: a :class:`~sambench.models.sam2.Sam2Adapter` (SAM 2 / 2.1, MedSAM2 weights loaded into
  ``sam2.1_hiera_t``). Its weights go into a ``SAM2VideoPredictor`` built by
  ``sam2.build_sam.build_sam2_video_predictor`` from the same package config (with the adapter's
  ``image_size`` when it is not the config's), loaded strictly; the predictor is built once per
  adapter and kept while the adapter lives.
- Frames: sam2 1.1.0's ``init_state`` reads a video only from an MP4 file or a folder of
  ``<index>.jpg`` frames (no in-memory frames). The slices (SxHxW uint8, gray replicated to RGB)
  are written to a temporary folder as ``00000.jpg`` ... holding PNG data, which PIL (the
  predictor's ``Image.open``) decodes by content: lossless, so the frames are exactly the
  prepared slices; the official loader then resizes (PIL) and normalizes them. The folder is
  removed after ``init_state``.
- Prompt on the key slice (``Object3D.key_slice``, largest area): ``propagate``'s first prompt
  (``config.prompt`` = ``"box"``: the slice's tight ground-truth box; ``"point"``: the S2 point;
  shifted by ``config.shift_range`` when given), passed to ``add_new_points_or_box``
  (``obj_id=1``).
- Memory: the official ``init_state`` holds every frame (3x``image_size``² float32 each), so
  this protocol is not streamed; its prediction is a :class:`~sambench.volumes.sparse.SparseMask`
  like the others' (only the slices it paints).
- One step (step 0); ``seconds`` covers building the state (image features are computed lazily
  during propagation), prompting and both propagations; ``n_slices_predicted`` = S (every frame).
"""

from __future__ import annotations

import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from sambench.models.base import PromptableModel
from sambench.prompts.types import Prompts
from sambench.volumes.protocols._prompts import first_prompt
from sambench.volumes.sparse import SparseMask
from sambench.volumes.types import (
    Object3D,
    ProtocolConfig,
    Rng,
    StepResult,
    Steps,
    Volume3D,
    register_protocol,
)

_PREDICTORS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _requires(model: PromptableModel) -> str | None:
    from sambench.models.sam2 import SAM2_CONFIGS, Sam2Adapter

    if isinstance(model, Sam2Adapter):
        return None
    return (
        "sam2-video needs a SAM 2 / SAM 2.1 / MedSAM2 model (the sam2 video predictor): "
        f"give --model one of {', '.join(sorted(SAM2_CONFIGS))} with its --checkpoint"
    )


def video_predictor(adapter: Any) -> Any:
    """The official ``SAM2VideoPredictor`` holding ``adapter``'s weights (built once, cached)."""
    cached = _PREDICTORS.get(adapter)
    if cached is not None:
        return cached
    from sam2.build_sam import build_sam2_video_predictor

    from sambench.models.sam2 import SAM2_CONFIGS

    config = SAM2_CONFIGS[adapter.name][0]
    size = int(adapter.model.image_size)
    overrides = [] if size == 1024 else [f"++model.image_size={size}"]
    predictor = build_sam2_video_predictor(
        config, ckpt_path=None, device=str(adapter.device), hydra_overrides_extra=overrides
    )
    predictor.load_state_dict(adapter.model.state_dict(), strict=True)
    predictor.eval()
    _PREDICTORS[adapter] = predictor
    return predictor


def write_frames(image: Any, folder: Path) -> None:
    """Write SxHxW uint8 slices as ``00000.jpg`` ... (lossless PNG data, RGB) for ``init_state``."""
    for k in range(image.shape[0]):
        rgb = np.repeat(np.asarray(image[k], dtype=np.uint8)[:, :, None], 3, axis=2)
        Image.fromarray(rgb).save(folder / f"{k:05d}.jpg", format="PNG")


def run_video(predictor: Any, image: Any, key: int, prompts: Prompts) -> SparseMask:
    """Prompt frame ``key`` of the SxHxW uint8 ``image`` and propagate both ways with the official
    predictor; returns the SxHxW bool mask (logits > 0), sparse (the slices it paints)."""
    s, h, w = image.shape[:3]
    out = SparseMask((int(s), int(h), int(w)))
    with tempfile.TemporaryDirectory(prefix="sambench-frames-") as tmp:
        write_frames(image, Path(tmp))
        with torch.inference_mode():
            state = predictor.init_state(video_path=tmp)
    with torch.inference_mode():
        predictor.add_new_points_or_box(
            state,
            frame_idx=int(key),
            obj_id=1,
            points=None if prompts.points is None else np.asarray(prompts.points, np.float32),
            labels=None if prompts.labels is None else np.asarray(prompts.labels, np.int32),
            box=None if prompts.box is None else np.asarray(prompts.box, np.float32),
        )
        for reverse in (False, True):
            for idx, _ids, logits in predictor.propagate_in_video(
                state, start_frame_idx=int(key), reverse=reverse
            ):
                out[idx] = (logits[0, 0] > 0.0).cpu().numpy()
    return out


@register_protocol(
    "sam2-video",
    "SAM 2 video predictor: prompt on the key slice, propagate both ways (MedSAM2's protocol)",
    requires=_requires,
)
def sam2_video(model: PromptableModel, volume: Volume3D, obj: Object3D,
               config: ProtocolConfig, rng: Rng) -> Steps:  # fmt: skip
    """One step: the official video predictor's masks for the whole volume (see the module)."""
    reason = _requires(model)
    if reason is not None:
        from sambench.errors import OptionError

        raise OptionError("--protocol", f"{model.name}: {reason}")
    t0 = time.perf_counter()
    prompts = first_prompt(volume.slice_mask(obj, obj.key_slice), config, rng)
    mask = run_video(video_predictor(model), volume.image, obj.key_slice, prompts)
    seconds = time.perf_counter() - t0
    return [
        StepResult(
            step=0,
            mask=mask,
            seconds=seconds,
            n_slices_predicted=int(volume.shape[0]),
            extras={"prompt_slice": int(obj.key_slice)},
        )
    ]
