"""The torch modules that are exported: the image encoder, and prompt encoder + mask decoder.

:class:`DecoderGraph` takes every prompt kind in one fixed signature (segment-anything's ONNX
convention, ``segment_anything.utils.onnx.SamOnnxModel``): points and box corners as one
BxNx2 float32 coordinate array in model-input pixels with labels BxN (1 foreground, 0
background, 2/3 the box's top-left/bottom-right corners, -1 padding), a mask prompt as Mx1x256x256
logits with a ``has_mask_input`` flag (1,) float32. It returns every mask token's output
(Bx(1+3)x256x256 low-res logits, Bx4 predicted IoU); the caller slices ``[:, 0:1]`` (single
mask) or ``[:, 1:]`` (multimask), as ``MaskDecoder.forward`` does.

Equal to the eager ``prompt_encoder`` + ``mask_decoder`` up to float summation order: the sparse
embedding is the eager one's (points then box corners, a padding point when there is no box), the
dense embedding ``mask_downscaling(mask)`` or ``no_mask_embed`` broadcast.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


class DecoderGraph(nn.Module):
    """Prompt encoder + mask decoder of a SAM-shaped ``model`` with a fixed input signature."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        parts: Any = model
        self.prompt_encoder: Any = parts.prompt_encoder
        self.mask_decoder: Any = parts.mask_decoder
        size = self.prompt_encoder.input_image_size  # (H, W) of the model input
        self.register_buffer(
            "input_size", torch.tensor([float(size[1]), float(size[0])]), persistent=False
        )

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        pe: Any = self.prompt_encoder
        size: Any = self.input_size
        coords = (point_coords + 0.5) / size
        emb = pe.pe_layer._pe_encoding(coords)
        labels = point_labels.unsqueeze(-1).to(emb.dtype)
        emb = emb * (labels != -1) + pe.not_a_point_embed.weight * (labels == -1)
        for i in range(pe.num_point_embeddings):
            emb = emb + pe.point_embeddings[i].weight * (labels == i)
        dense = has_mask_input * pe.mask_downscaling(mask_input) + (
            1 - has_mask_input
        ) * pe.no_mask_embed.weight.reshape(1, -1, 1, 1)
        masks, iou = self.mask_decoder.predict_masks(
            image_embeddings=image_embeddings,
            image_pe=image_pe,
            sparse_prompt_embeddings=emb,
            dense_prompt_embeddings=dense,
        )
        return masks, iou


def graph_inputs(
    points: tuple[torch.Tensor, torch.Tensor] | None,
    boxes: torch.Tensor | None,
    mask_inputs: torch.Tensor | None,
    mask_size: tuple[int, int],
) -> dict[str, np.ndarray]:
    """The prompt inputs of :class:`DecoderGraph` as float32/int64 numpy arrays.

    ``points`` = (BxNx2 float32 (X, Y), BxN int labels) and ``boxes`` Bx4 XYXY in model-input
    pixels, ``mask_inputs`` Bx1xhxw logits (the arguments of ``SamFamilyAdapter.decode_logits``).
    """
    parts: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    b = 0
    if points is not None:
        c = points[0].detach().cpu().numpy().astype(np.float32)
        parts.append(c)
        labels.append(points[1].detach().cpu().numpy().astype(np.int64))
        b = c.shape[0]
    if boxes is not None:
        bx = boxes.detach().cpu().numpy().astype(np.float32).reshape(-1, 2, 2)
        parts.append(bx)
        labels.append(np.tile(np.array([[2, 3]], np.int64), (bx.shape[0], 1)))
        b = bx.shape[0]
    elif points is not None:  # the eager prompt encoder pads points when there is no box
        parts.append(np.zeros((b, 1, 2), np.float32))
        labels.append(-np.ones((b, 1), np.int64))
    if mask_inputs is not None:
        mask = mask_inputs.detach().cpu().numpy().astype(np.float32)
        has = np.ones(1, np.float32)
        b = b or mask.shape[0]
    else:
        mask = np.zeros((1, 1, *mask_size), np.float32)
        has = np.zeros(1, np.float32)
    if not parts:  # mask prompt alone: the eager encoder gives an empty sparse embedding
        raise ValueError("prompts: the exported decoder needs points or a box with a mask prompt")
    return {
        "point_coords": np.concatenate(parts, axis=1),
        "point_labels": np.concatenate(labels, axis=1),
        "mask_input": mask,
        "has_mask_input": has,
    }
