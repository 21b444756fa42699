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
from collections.abc import Iterator
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


def video_config(adapter: Any) -> tuple[str, list[str]]:
    """The ``sam2`` package config and Hydra overrides of ``adapter``'s video predictor: the
    config its registry name builds (``medsam2``: SAM 2.1 Hiera-T, as MedSAM2's t512 config),
    with ``++model.image_size`` when the adapter's is not 1024. Raises
    :class:`~sambench.errors.OptionError` (``--model``) for a name with no package config."""
    from sambench.models.sam2 import SAM2_CONFIGS

    name = VIDEO_CONFIG_OF.get(adapter.name, adapter.name)
    if name not in SAM2_CONFIGS:
        from sambench.errors import OptionError

        raise OptionError(
            "--model",
            f"{adapter.name}: no sam2 package config for SAM 2's video predictor (expected one of "
            f"{', '.join(sorted(SAM2_CONFIGS))} or medsam2)",
        )
    size = int(adapter.model.image_size)
    return SAM2_CONFIGS[name][0], [] if size == 1024 else [f"++model.image_size={size}"]


VIDEO_CONFIG_OF = {"medsam2": "sam2.1_hiera_t"}
"""Registry names whose video predictor is built from another name's package config."""


def video_predictor(adapter: Any) -> Any:
    """The official ``SAM2VideoPredictor`` holding ``adapter``'s weights (built once, cached):
    ``build_sam2_video_predictor`` from :func:`video_config`, the adapter's state dict loaded
    strictly."""
    cached = _PREDICTORS.get(adapter)
    if cached is not None:
        return cached
    from sam2.build_sam import build_sam2_video_predictor

    config, overrides = video_config(adapter)
    predictor = build_sam2_video_predictor(
        config, ckpt_path=None, device=str(adapter.device), hydra_overrides_extra=overrides
    )
    predictor.load_state_dict(adapter.model.state_dict(), strict=True)
    predictor.eval()
    _PREDICTORS[adapter] = predictor
    return predictor


def checked_video_predictor(adapter: Any, checkpoint: str | Path | None = None) -> Any:
    """:func:`video_predictor`, or a one-line :class:`~sambench.errors.OptionError` naming
    ``--checkpoint`` (and ``--model``) when the adapter's weights do not make SAM 2's video
    predictor (another architecture's state dict, a config without the memory modules ...)."""
    from sambench.errors import OptionError

    try:
        return video_predictor(adapter)
    except OptionError:
        raise
    except Exception as e:  # Hydra, instantiate or load_state_dict errors, as one line
        config = VIDEO_CONFIG_OF.get(adapter.name, adapter.name)
        raise OptionError(
            "--checkpoint",
            f"{checkpoint or 'the weights'}: not a video-capable SAM 2 checkpoint for --model "
            f"{adapter.name} (its weights do not load into SAM2VideoPredictor of {config}: "
            f"{_load_problem(e)}); give the --checkpoint of a SAM 2 / 2.1 / MedSAM2 release "
            "matching --model",
        ) from None


def _load_problem(e: Exception) -> str:
    """One short line for an exception; ``load_state_dict``'s report as key counts."""
    import re

    lines = str(e).splitlines()
    if not lines or not lines[0].startswith("Error(s) in loading state_dict"):
        return f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
    parts = []
    for line in lines[1:]:
        head, _, rest = line.strip().partition(":")
        keys = re.findall(r'"([^"]+)"', rest)
        if head.startswith(("Missing", "Unexpected")) and keys:
            parts.append(f"{head.split()[0].lower()} {len(keys)} keys, e.g. {keys[0]}")
        elif head.startswith("size mismatch"):
            parts.append(f"size mismatch for {head.removeprefix('size mismatch for ')}")
    return "; ".join(parts[:3]) or lines[0]


def write_frames(image: Any, folder: Path) -> None:
    """Write SxHxW uint8 slices as ``00000.jpg`` ... (lossless PNG data, RGB) for ``init_state``."""
    for k in range(image.shape[0]):
        rgb = np.repeat(np.asarray(image[k], dtype=np.uint8)[:, :, None], 3, axis=2)
        Image.fromarray(rgb).save(folder / f"{k:05d}.jpg", format="PNG")


def video_state_bytes(n_frames: int, image_size: int) -> int:
    """Bytes the official ``init_state`` holds for ``n_frames`` frames (3 x S x S float32 each)."""
    return int(n_frames) * 3 * int(image_size) ** 2 * 4


def iter_video_masks(
    predictor: Any,
    image: Any,
    key: int,
    *,
    prompts: Prompts | None = None,
    mask: np.ndarray | None = None,
    directions: tuple[int, ...] = (1, -1),
    stop_when_empty: bool = False,
) -> Iterator[tuple[int, np.ndarray]]:
    """(frame, HxW bool mask) pairs of the official predictor over the SxHxW uint8 ``image``.

    Frame ``key`` is prompted once, with ``prompts`` (box and/or points:
    ``add_new_points_or_box``) or with ``mask`` (HxW bool: ``add_new_mask``), ``obj_id=1``; then
    ``propagate_in_video`` from ``key`` runs in each of ``directions`` in order (+1 forward,
    -1 ``reverse=True``) on the same state, each frame's mask its video-resolution logits > 0.
    ``stop_when_empty``: a direction ends at its first empty mask (not yielded), the
    ``propagate`` protocol's "the object ended" rule; otherwise every frame is yielded (``key``
    once per direction)."""
    if (prompts is None) == (mask is None):
        raise ValueError("give exactly one of prompts and mask")
    with tempfile.TemporaryDirectory(prefix="sambench-frames-") as tmp:
        write_frames(image, Path(tmp))
        with torch.inference_mode():
            state = predictor.init_state(video_path=tmp)
    with torch.inference_mode():
        if mask is not None:
            predictor.add_new_mask(state, frame_idx=int(key), obj_id=1, mask=np.asarray(mask, bool))
        else:
            assert prompts is not None
            predictor.add_new_points_or_box(
                state,
                frame_idx=int(key),
                obj_id=1,
                points=None if prompts.points is None else np.asarray(prompts.points, np.float32),
                labels=None if prompts.labels is None else np.asarray(prompts.labels, np.int32),
                box=None if prompts.box is None else np.asarray(prompts.box, np.float32),
            )
    for d in directions:  # propagate_in_video enters inference mode around each frame itself
        frames = predictor.propagate_in_video(state, start_frame_idx=int(key), reverse=d < 0)
        try:
            for idx, _ids, logits in frames:
                m = (logits[0, 0] > 0.0).cpu().numpy()
                if stop_when_empty and idx != key and not m.any():
                    break
                yield int(idx), m
        finally:
            frames.close()


def run_video(predictor: Any, image: Any, key: int, prompts: Prompts) -> SparseMask:
    """Prompt frame ``key`` of the SxHxW uint8 ``image`` and propagate both ways with the official
    predictor; returns the SxHxW bool mask (logits > 0), sparse (the slices it paints)."""
    s, h, w = image.shape[:3]
    out = SparseMask((int(s), int(h), int(w)))
    for idx, m in iter_video_masks(predictor, image, key, prompts=prompts):
        out[idx] = m
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
    mask = run_video(checked_video_predictor(model), volume.image, obj.key_slice, prompts)
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
