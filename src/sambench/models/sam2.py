"""SAM 2 / SAM 2.1 adapters (Hiera T/S/B+/L) through the official ``sam2`` package.

The model is built from the Hydra config shipped inside the ``sam2`` package
(``configs/sam2.1/sam2.1_hiera_t.yaml`` ...) with ``build_sam2(config, ckpt_path=None)``; the
user's checkpoint is then loaded by :mod:`sambench.models.checkpoints` (``weights_only=True``,
strict: a SAM checkpoint given to a SAM 2 adapter is refused with the keys that do not match).

Everything image-side is ``sam2.SAM2ImagePredictor`` itself, not a re-implementation:

- ``embed``: ``SAM2ImagePredictor.set_image`` on the HxWx3 uint8 RGB image (``SAM2Transforms``:
  ``ToTensor``, resize to SxS ignoring the aspect ratio, ImageNet mean/std). Its feature dict
  goes into the :class:`~sambench.models.base.Embedding`: ``features`` = ``image_embed``
  (1x256x64x64 at S = 1024) and ``extras`` = ``high_res_feats_0`` (1x32x256x256) and
  ``high_res_feats_1`` (1x64x128x128);
- ``predict``: the predictor's ``_prep_prompts`` (points and boxes scaled by S/W, S/H in
  float32) and ``_predict`` (box corners as points with labels 2/3 before the clicks, mask
  decoder with the high-resolution features, ``SAM2Transforms.postprocess_masks`` bilinear to
  (H, W), logits > 0, low-res logits clamped to [-32, 32]).

Default: multimask output (three candidates), as ``SAM2ImagePredictor.predict``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sambench.models.base import Embedding
from sambench.models.checkpoints import load_checkpoint, sha256_file, state_hash
from sambench.models.sam_family import (
    HIGH_RES_KEYS,
    ChunkDecodeFn,
    ChunkedDecoding,
    DecoderFiles,
    as_rgb_uint8,
    decode_chunk_for,
    high_res_maps,
    resolve_device,
)
from sambench.version import __version__

_SIZES = {"t": ("T", "tiny"), "s": ("S", "small"), "b+": ("B+", "base_plus"), "l": ("L", "large")}
SAM2_CONFIGS: dict[str, tuple[str, str, str]] = {
    f"{v}_hiera_{k}": (
        f"configs/{v}/{v}_hiera_{k}.yaml",
        f"SAM {'2.1' if v == 'sam2.1' else '2.0'} Hiera-{arch}",
        f"{v}_hiera_{word}.pt",
    )
    for v in ("sam2.1", "sam2")
    for k, (arch, word) in _SIZES.items()
}
"""Model name -> (config inside the ``sam2`` package, architecture in words, official file)."""


class Sam2Preprocessing:
    """What S1 (everything mode) reads from an adapter's pipeline: threshold and description."""

    def __init__(self, resolution: int, mask_threshold: float = 0.0) -> None:
        self.resolution = int(resolution)
        self.mask_threshold = float(mask_threshold)
        self.description = (
            f"sam2: SAM2Transforms resize to {resolution}x{resolution} (aspect ignored), "
            "ImageNet mean/std; prompts xS/W, xS/H float32; postprocess_masks bilinear to HxW, "
            f"logits > {self.mask_threshold}; embedding: image_embed + {', '.join(HIGH_RES_KEYS)}"
        )


class Sam2Adapter(ChunkedDecoding, DecoderFiles):
    """:class:`~sambench.models.base.PromptableModel` for a ``sam2`` ``SAM2Base`` model.

    Wraps ``sam2.sam2_image_predictor.SAM2ImagePredictor`` (default thresholds, no hole or
    sprinkle filling). ``checkpoint_sha256`` identifies the weights (None for in-memory weights:
    :meth:`signature` then hashes the state dict). ``predict`` returns the low-res logits
    clamped to [-32, 32] (the predictor's mask-prompt output).
    """

    clamp_low_res = 32.0

    def __init__(
        self,
        name: str,
        model: nn.Module,
        *,
        device: str | torch.device | None = None,
        checkpoint_sha256: str | None = None,
        default_multimask: bool = True,
        decode_chunk: int | None = None,
    ) -> None:
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        self.name = name
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.predictor = SAM2ImagePredictor(self.model)
        # embed's own predictor over the same model: an encoder pass in another thread (the
        # annotator's background encoder) never shares the decoding predictor's image state
        self._encoder = SAM2ImagePredictor(self.model)
        self._encode_lock = threading.Lock()
        size = int(model.image_size)  # type: ignore[arg-type]
        # the predictor's backbone feature sizes are written for S = 1024; S/4, S/8, S/16 in general
        for p in (self.predictor, self._encoder):
            p._bb_feat_sizes = [(size // d, size // d) for d in (4, 8, 16)]
        self.image_encoder: nn.Module = model.image_encoder  # type: ignore[assignment]
        self.prompt_encoder: nn.Module = model.sam_prompt_encoder  # type: ignore[assignment]
        self.mask_decoder: nn.Module = model.sam_mask_decoder  # type: ignore[assignment]
        self.preprocessing = Sam2Preprocessing(
            int(model.image_size),  # type: ignore[arg-type]
            float(self.predictor.mask_threshold),
        )
        self.default_multimask = default_multimask
        self.checkpoint_sha256 = checkpoint_sha256
        self.decoder_sha256: str | None = None
        self.model_config_sha256: str | None = None  # a user's --model-config file
        # one prompt set per decoder call on a CPU (what SAM2ImagePredictor.predict does for one
        # prompt, so results equal the predictor's bit for bit); batched on a GPU
        self.decode_chunk = decode_chunk_for(decode_chunk, self.device, 256)
        mask_size = getattr(self.prompt_encoder, "mask_input_size", (256, 256))
        self.mask_input_size: tuple[int, int] = (int(mask_size[0]), int(mask_size[1]))

    # ------------------------------------------------------------------ encoder
    def embed(self, image: np.ndarray) -> Embedding:
        """Encode one HxW or HxWx3 uint8 image with ``SAM2ImagePredictor.set_image`` (a
        predictor of its own, under a lock: safe beside decoding in another thread)."""
        rgb = as_rgb_uint8(image)
        with self._encode_lock, torch.inference_mode():
            self._encoder.set_image(rgb)
            feats = self._encoder._features
            assert feats is not None
            high = feats["high_res_feats"]
            embedding = Embedding(
                features=feats["image_embed"],
                original_size=(int(rgb.shape[0]), int(rgb.shape[1])),
                input_size=(self.preprocessing.resolution, self.preprocessing.resolution),
                extras={k: t for k, t in zip(HIGH_RES_KEYS, high, strict=True)},
            )
            self._encoder.reset_predictor()
        return embedding

    def _set(self, embedding: Embedding) -> None:
        """Point the predictor at ``embedding`` (as if ``set_image`` had just computed it)."""
        high_res = high_res_maps(self.name, embedding, self.device)
        p = self.predictor
        p._features = {
            "image_embed": embedding.features.to(self.device),
            "high_res_feats": high_res,
        }
        p._orig_hw = [tuple(int(v) for v in embedding.original_size)]
        p._is_image_set = True
        p._is_batch = False

    # ------------------------------------------------------------------ coordinates
    def to_model_coords(self, points: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        """...x2 (X, Y) original pixels -> model-input pixels, computed in float32 as the
        predictor does (returned as float64, exactly representable)."""
        t = torch.as_tensor(np.asarray(points, np.float64), dtype=torch.float)
        out = self.predictor._transforms.transform_coords(
            t, normalize=True, orig_hw=tuple(original_size)
        )
        return out.double().numpy()

    def to_model_boxes(self, boxes: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        """Bx4 (or 4) XYXY original pixels -> Bx4 model-input pixels (float32 math)."""
        b = np.asarray(boxes, np.float64).reshape(-1, 2)
        return self.to_model_coords(b, original_size).reshape(-1, 4)

    # ------------------------------------------------------------------ decoder
    def _chunk_decoder(self, embedding: Embedding, multimask_output: bool) -> ChunkDecodeFn:
        """``SAM2ImagePredictor._predict`` (:meth:`_decode`) against ``embedding``: the
        predictor is set to it, its features read as ``_predict`` reads them, and reset."""
        self._set(embedding)
        p = self.predictor
        assert p._features is not None
        image_embed = p._features["image_embed"][-1].unsqueeze(0)
        high_res = [lvl[-1].unsqueeze(0) for lvl in p._features["high_res_feats"]]
        p.reset_predictor()

        def decode(
            pts: tuple[torch.Tensor, torch.Tensor] | None,
            bx: torch.Tensor | None,
            mk: torch.Tensor | None,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            pts = None if pts is None else (pts[0].float(), pts[1])
            bx = None if bx is None else bx.float()
            return self._decode(pts, bx, mk, multimask_output, image_embed, high_res)

        return decode

    def _decode(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        mask_input: torch.Tensor | None,
        multimask_output: bool,
        image_embed: torch.Tensor,
        high_res: list[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The body of ``SAM2ImagePredictor._predict`` up to the raw low-res logits (the
        predictor only returns them clamped, after up-sampling every mask), against one image's
        ``image_embed`` 1xCxhxw and ``high_res`` feature maps."""
        model = self.predictor.model
        concat = points
        if boxes is not None:
            box_coords = boxes.reshape(-1, 2, 2)
            box_labels = torch.tensor([[2, 3]], dtype=torch.int, device=boxes.device)
            box_labels = box_labels.repeat(boxes.size(0), 1)
            if concat is not None:
                concat = (
                    torch.cat([box_coords, concat[0]], dim=1),
                    torch.cat([box_labels, concat[1]], dim=1),
                )
            else:
                concat = (box_coords, box_labels)
        sparse, dense = model.sam_prompt_encoder(points=concat, boxes=None, masks=mask_input)
        batched_mode = concat is not None and concat[0].shape[0] > 1
        low, iou, _, _ = model.sam_mask_decoder(
            image_embeddings=image_embed,
            image_pe=model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
            repeat_image=batched_mode,
            high_res_features=high_res,
        )
        return low, iou

    def decode_logits(
        self,
        features: torch.Tensor,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        mask_inputs: torch.Tensor | None,
        multimask_output: bool,
        extras: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt encoder + mask decoder for B images (decoder fine-tuning), differentiable
        w.r.t. the decoder: ``features`` Bx256xhxw and ``extras`` the Bx... high-resolution maps
        (:data:`HIGH_RES_KEYS`) of B images, prompt set i on image i, in model coordinates.
        Returns (BxKx256x256 raw low-res logits, BxK predicted IoU)."""
        if extras is None or any(k not in extras for k in HIGH_RES_KEYS):
            raise ValueError(f"{self.name}: decode_logits needs extras {list(HIGH_RES_KEYS)}")
        lows, ious = [], []
        for i in range(int(features.shape[0])):
            pts = None if points is None else (points[0][i : i + 1], points[1][i : i + 1])
            bx = None if boxes is None else boxes[i : i + 1]
            mk = None if mask_inputs is None else mask_inputs[i : i + 1]
            high = [extras[k][i : i + 1].clone() for k in HIGH_RES_KEYS]
            low, iou = self._decode(
                pts, bx, mk, multimask_output, features[i : i + 1].clone(), high
            )
            lows.append(low)
            ious.append(iou)
        return torch.cat(lows), torch.cat(ious)

    def postprocess(self, low_res_logits: torch.Tensor, embedding: Embedding) -> torch.Tensor:
        """BxKx256x256 logits -> BxKxHxW logits (``SAM2Transforms.postprocess_masks``)."""
        hw = tuple(int(v) for v in embedding.original_size)
        return self.predictor._transforms.postprocess_masks(low_res_logits, hw)

    # ------------------------------------------------------------------ identity
    def signature(self) -> dict[str, str]:
        """Cache key: model, weights hash, decoder hash, preprocessing (naming the embedding's
        tensors) and sambench version."""
        weights = self.checkpoint_sha256 or f"state:{state_hash(self.model)}"
        return {
            "model": self.name,
            "checkpoint_sha256": weights,
            "decoder_sha256": self.decoder_sha256 or "",
            **(
                {"model_config_sha256": self.model_config_sha256}
                if self.model_config_sha256
                else {}
            ),
            "preprocessing": self.preprocessing.description,
            "sambench_version": __version__,
        }


def build_sam2_model(
    name: str, overrides: Sequence[str] = (), *, config_file: str | Path | None = None
) -> nn.Module:
    """The architecture of ``name`` (a key of :data:`SAM2_CONFIGS`) with random weights, on the
    CPU, in eval mode (``build_sam2(config, ckpt_path=None)``, the official post-processing
    settings). ``overrides``: extra Hydra overrides (e.g. ``["++model.image_size=256"]``).

    ``config_file``: a user's Hydra YAML of the ``sam2`` layout (``--model-config``) used instead
    of the package's config: ``build_sam2`` itself composes it, with Hydra's global state pointed
    at the file's folder (``initialize_config_dir``) for that one call and restored afterwards.
    """
    try:
        from sam2.build_sam import build_sam2
    except ImportError:
        from sambench.errors import OptionError

        raise OptionError(
            "--model",
            f"{name!r} needs the optional package sam2, which is not installed: "
            'SAM2_BUILD_CUDA=0 pip install -c constraints.txt --no-build-isolation "sam2==1.1.0" '
            "(docs/models-sam2.md)",
        ) from None

    if name not in SAM2_CONFIGS:
        raise ValueError(f"model: expected one of {', '.join(SAM2_CONFIGS)}, got {name!r}")
    extra = list(overrides)
    if config_file is None:
        return build_sam2(
            SAM2_CONFIGS[name][0], ckpt_path=None, device="cpu", hydra_overrides_extra=extra
        )
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from sambench.errors import OptionError

    path = Path(config_file).absolute()
    if not path.is_file() or path.suffix not in (".yaml", ".yml"):
        raise OptionError(
            "--model-config", f"{config_file}: no such .yaml file (expected a sam2 Hydra config)"
        )
    saved = GlobalHydra.instance().hydra  # sam2's initialize_config_module("sam2") at import
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(path.parent), version_base="1.2"):
            return build_sam2(path.stem, ckpt_path=None, device="cpu", hydra_overrides_extra=extra)
    except Exception as e:  # Hydra/OmegaConf/instantiate errors of a bad file
        raise OptionError(
            "--model-config",
            f"{config_file}: not a valid sam2 model config ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''})",
        ) from None
    finally:
        GlobalHydra.instance().clear()
        if saved is not None:
            GlobalHydra.instance().initialize(saved)


def build_sam2_adapter(
    checkpoint: str | Path | None,
    *,
    name: str,
    device: str | torch.device | None = None,
    model_config: str | Path | None = None,
) -> Sam2Adapter:
    """SAM 2 architecture ``name`` with the user's checkpoint (``{"model": state_dict}`` as the
    official files, or a bare state dict), loaded with ``weights_only=True`` and strictly.

    Raises ValueError for a missing checkpoint, :class:`~sambench.models.checkpoints.CheckpointError`
    for a bad file or one of another architecture (naming the expected one and the keys).
    ``model_config``: a user's sam2 Hydra YAML instead of the package config (``--model-config``).
    """
    if name not in SAM2_CONFIGS:
        raise ValueError(f"model: expected one of {', '.join(SAM2_CONFIGS)}, got {name!r}")
    config, arch, official = SAM2_CONFIGS[name]
    if checkpoint is None:
        raise ValueError(
            f"{name}: a checkpoint path is required (no download possible at run time); pass the "
            f"official file of {arch}, e.g. checkpoint='{official}'"
        )
    where = f"sam2 {config}" if model_config is None else f"config {model_config}"
    model, sha = load_checkpoint(
        lambda: build_sam2_model(name, config_file=model_config),
        checkpoint,
        model_name=f"{name} ({arch}, {where})",
    )
    adapter = Sam2Adapter(name, model, device=device, checkpoint_sha256=sha)
    if model_config is not None:
        adapter.model_config_sha256 = sha256_file(model_config)
    return adapter
