"""SAM (ViT-B/L/H) and MedSAM (ViT-B) adapters: the official pipelines, safe weight loading.

- SAM: exactly ``segment_anything.SamPredictor``: ``ResizeLongestSide(1024).apply_image`` on the
  HxWx3 uint8 RGB image, ``Sam.preprocess`` (pixel mean/std, zero-pad to 1024x1024),
  ``apply_coords``/``apply_boxes`` for prompts, ``Sam.postprocess_masks`` and logits > 0
  (``Sam.mask_threshold``). Default: multimask output (the paper's three candidates).
- MedSAM: exactly ``MedSAM_Inference.py``: ``skimage.transform.resize`` to 1024x1024 ignoring the
  aspect ratio (order=3, preserve_range, anti_aliasing) cast to uint8, min-max to [0, 1] (no
  mean/std); prompts scaled per axis by 1024/W and 1024/H; output: sigmoid of the low-res
  logits, bilinearly resized straight to (H, W), > 0.5. Default: single mask (as MedSAM).

The architectures come from segment-anything's own builders (``sam_model_registry`` with
``checkpoint=None``); the weights are loaded by :mod:`sambench.models.checkpoints`
(``weights_only=True``, official SHA-256 prefixes verified).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide

from sambench.models.checkpoints import load_checkpoint
from sambench.models.sam_family import HW, SamFamilyAdapter

SamVariant = Literal["vit_b", "vit_l", "vit_h"]
SAM_VARIANTS: tuple[str, ...] = ("vit_b", "vit_l", "vit_h")
PIPELINES: tuple[str, ...] = ("sam", "medsam")


class SamPreprocessing:
    """SamPredictor's pipeline, using the ``Sam`` module's own preprocess/postprocess."""

    def __init__(self, sam: Sam) -> None:
        self.sam = sam
        size = int(sam.image_encoder.img_size)
        self.transform = ResizeLongestSide(size)
        self.mask_threshold = float(sam.mask_threshold)
        mean = [round(float(v), 3) for v in sam.pixel_mean.flatten()]
        std = [round(float(v), 3) for v in sam.pixel_std.flatten()]
        self.description = (
            f"sam: ResizeLongestSide({size}) PIL bilinear, pixel mean {mean} std {std}, "
            f"zero-pad to {size}x{size}; Sam.postprocess_masks, logits > {self.mask_threshold}"
        )

    def prepare_image(self, image: np.ndarray, device: torch.device) -> tuple[torch.Tensor, HW]:
        """HxWx3 uint8 RGB -> 1x3x1024x1024 normalized and padded; (h, w) after resizing."""
        resized = self.transform.apply_image(image)
        x = torch.as_tensor(resized, device=device).permute(2, 0, 1).contiguous()[None, :, :, :]
        input_size = (int(x.shape[-2]), int(x.shape[-1]))
        return self.sam.preprocess(x), input_size

    def coords_to_model(self, coords: np.ndarray, original_size: HW) -> np.ndarray:
        return self.transform.apply_coords(coords, original_size)

    def boxes_to_model(self, boxes: np.ndarray, original_size: HW) -> np.ndarray:
        return self.transform.apply_boxes(boxes, original_size)

    def postprocess(
        self, low_res_logits: torch.Tensor, input_size: HW, original_size: HW
    ) -> torch.Tensor:
        """Logits at the original size (upscale to 1024, crop the padding, resize to (H, W))."""
        return self.sam.postprocess_masks(low_res_logits, input_size, original_size)


class MedSamPreprocessing:
    """MedSAM's official inference pipeline (``MedSAM_Inference.py``)."""

    def __init__(self, size: int = 1024) -> None:
        self.size = int(size)
        self.mask_threshold = 0.5
        self.description = (
            f"medsam: skimage resize to {size}x{size} (order=3, anti_aliasing) as uint8, "
            f"min-max [0,1]; boxes x{size}/W, x{size}/H; sigmoid, bilinear to HxW, > 0.5"
        )

    def prepare_image(self, image: np.ndarray, device: torch.device) -> tuple[torch.Tensor, HW]:
        """HxWx3 uint8 -> 1x3xSxS float32 in [0, 1]; the whole input is the image (no padding)."""
        from skimage import transform

        s = self.size
        img = transform.resize(
            image, (s, s), order=3, preserve_range=True, anti_aliasing=True
        ).astype(np.uint8)
        img = (img - img.min()) / np.clip(img.max() - img.min(), a_min=1e-8, a_max=None)
        x = torch.tensor(img).float().permute(2, 0, 1).unsqueeze(0).to(device)
        return x, (s, s)

    def coords_to_model(self, coords: np.ndarray, original_size: HW) -> np.ndarray:
        h, w = original_size
        return np.asarray(coords, np.float64) / np.array([w, h]) * self.size

    def boxes_to_model(self, boxes: np.ndarray, original_size: HW) -> np.ndarray:
        h, w = original_size
        return np.asarray(boxes, np.float64) / np.array([w, h, w, h]) * self.size

    def postprocess(
        self, low_res_logits: torch.Tensor, input_size: HW, original_size: HW
    ) -> torch.Tensor:
        """Probabilities at the original size: sigmoid first, then bilinear resize to (H, W)."""
        probs = torch.sigmoid(low_res_logits)
        return F.interpolate(probs, size=tuple(original_size), mode="bilinear", align_corners=False)


def adapter_from_sam(
    sam: Sam,
    *,
    name: str,
    pipeline: str = "sam",
    device: str | torch.device | None = None,
    checkpoint_sha256: str | None = None,
    default_multimask: bool | None = None,
) -> SamFamilyAdapter:
    """Wrap an existing ``Sam`` module with the SAM (``"sam"``) or MedSAM (``"medsam"``) pipeline.

    ``default_multimask`` defaults to True for SAM and False for MedSAM.
    """
    if pipeline == "sam":
        prep: SamPreprocessing | MedSamPreprocessing = SamPreprocessing(sam)
        multimask = True
    elif pipeline == "medsam":
        prep = MedSamPreprocessing(int(sam.image_encoder.img_size))
        multimask = False
    else:
        raise ValueError(f"pipeline: expected one of {', '.join(PIPELINES)}, got {pipeline!r}")
    if default_multimask is not None:
        multimask = default_multimask
    return SamFamilyAdapter(
        name,
        sam,
        prep,
        default_multimask=multimask,
        device=device,
        checkpoint_sha256=checkpoint_sha256,
    )


def build_sam_adapter(
    variant: str,
    checkpoint: str | Path | None,
    *,
    name: str,
    pipeline: str = "sam",
    device: str | torch.device | None = None,
) -> SamFamilyAdapter:
    """Official SAM architecture ``variant`` with the user's checkpoint, loaded safely.

    ``checkpoint`` is required (nothing can be downloaded at run time). Raises ValueError for an
    unknown variant or missing checkpoint, :class:`~sambench.models.checkpoints.CheckpointError`
    for a bad file.
    """
    from segment_anything import sam_model_registry

    if variant not in SAM_VARIANTS:
        raise ValueError(f"variant: expected one of {', '.join(SAM_VARIANTS)}, got {variant!r}")
    if checkpoint is None:
        raise ValueError(
            f"{name}: a checkpoint path is required (no download possible at run time); "
            f"pass the official file, e.g. checkpoint='sam_{variant}_....pth'"
            + (" or 'medsam_vit_b.pth'" if pipeline == "medsam" else "")
        )
    sam, sha = load_checkpoint(
        lambda: sam_model_registry[variant](checkpoint=None), checkpoint, model_name=name
    )
    return adapter_from_sam(sam, name=name, pipeline=pipeline, device=device, checkpoint_sha256=sha)
