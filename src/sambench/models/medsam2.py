"""``medsam2``: MedSAM2 checkpoints (Ma et al. 2025, ``bowang-lab/MedSAM2``) through ``sam2``.

MedSAM2 is SAM 2.1 Hiera-T trained at 512 px. Its repository ships the model config
``sam2/configs/sam2.1_hiera_t512.yaml`` (SAM 2.1 Hiera-T with ``image_size: 512``) and reads
images as in ``medsam2_infer_general.py``: a gray uint8 slice converted to RGB by PIL, resized to
512x512 with ``PIL.Image.BILINEAR`` (aspect ratio ignored), divided by 255, ImageNet mean/std.
Prompts are scaled by 512/W, 512/H and the low-resolution masks are up-sampled bilinearly to the
original HxW and thresholded at logit 0, as SAM 2's predictors do.

The model is the package config ``configs/sam2.1/sam2.1_hiera_t.yaml`` with the Hydra override
``++model.image_size=512`` (what MedSAM2's t512 config changes), and the user's checkpoint
(``MedSAM2_latest.pt``: ``{"model": state_dict}``) loaded strictly with ``weights_only=True``.
The rest is :class:`~sambench.models.sam2.Sam2Adapter` (``SAM2ImagePredictor``): only the
resize differs, done with PIL before the predictor's (then same-size) transforms.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from sambench.models.base import Embedding
from sambench.models.checkpoints import load_checkpoint, sha256_file
from sambench.models.sam2 import Sam2Adapter, Sam2Preprocessing, build_sam2_model
from sambench.models.sam_family import as_rgb_uint8

MEDSAM2_SIZE = 512
MEDSAM2_OVERRIDES = (f"++model.image_size={MEDSAM2_SIZE}",)
MEDSAM2_FILE = "MedSAM2_latest.pt"
"""The checkpoint of the MedSAM2 release (Hugging Face ``wanglab/MedSAM2``)."""


def medsam2_resize(image: np.ndarray, size: int = MEDSAM2_SIZE) -> np.ndarray:
    """HxW or HxWx3 uint8 -> size x size x 3 uint8: PIL ``convert("RGB")`` and
    ``resize((size, size), Image.BILINEAR)``, as MedSAM2's inference scripts."""
    rgb = as_rgb_uint8(image)
    resized = Image.fromarray(rgb).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


class MedSam2Adapter(Sam2Adapter):
    """:class:`Sam2Adapter` with MedSAM2's image preprocessing (PIL bilinear to 512x512)."""

    def __init__(self, name: str, model: nn.Module, **kwargs: object) -> None:
        super().__init__(name, model, **kwargs)  # type: ignore[arg-type]
        size = int(model.image_size)  # type: ignore[arg-type]
        base = Sam2Preprocessing(size, self.preprocessing.mask_threshold)
        base.description = base.description.replace(
            "sam2: SAM2Transforms resize", "medsam2: PIL RGB bilinear resize"
        )
        self.preprocessing = base

    def embed(self, image: np.ndarray) -> Embedding:
        """Encode one HxW or HxWx3 uint8 image; prompts and masks stay in its HxW pixels."""
        rgb = as_rgb_uint8(image)
        emb = super().embed(medsam2_resize(rgb, self.preprocessing.resolution))
        emb.original_size = (int(rgb.shape[0]), int(rgb.shape[1]))
        return emb


def build_medsam2_adapter(
    checkpoint: str | Path | None,
    *,
    device: str | torch.device | None = None,
    model_config: str | Path | None = None,
) -> MedSam2Adapter:
    """MedSAM2 (SAM 2.1 Hiera-T at 512 px) with the user's checkpoint file.

    ``model_config``: a sam2 Hydra YAML (e.g. MedSAM2's ``sam2.1_hiera_t512.yaml``) used as is
    instead of the package's Hiera-T config with ``++model.image_size=512``."""
    if checkpoint is None:
        raise ValueError(
            f"medsam2: a checkpoint path is required (no download possible at run time); pass "
            f"MedSAM2's file, e.g. checkpoint='{MEDSAM2_FILE}'"
        )
    overrides = MEDSAM2_OVERRIDES if model_config is None else ()  # a user's config: as it is
    model, sha = load_checkpoint(
        lambda: build_sam2_model("sam2.1_hiera_t", overrides, config_file=model_config),
        checkpoint,
        model_name="medsam2 (SAM 2.1 Hiera-T at 512 px)",
    )
    adapter = MedSam2Adapter("medsam2", model, device=device, checkpoint_sha256=sha)
    if model_config is not None:
        adapter.model_config_sha256 = sha256_file(model_config)
    return adapter
