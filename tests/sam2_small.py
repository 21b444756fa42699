"""A small random-weight SAM 2.1 Hiera-T (``model.image_size=256``) for the SAM 2 tests: built by
sambench's registry builder (the official ``build_sam2`` with the package config), its mask
decoder's output layers scaled so that random masks are confident, as a trained model's."""

from __future__ import annotations

import torch

from sambench.models.sam2 import build_sam2_model

NAME = "sam2.1_hiera_t"
SMALL = ["++model.image_size=256"]


def small_sam2() -> torch.nn.Module:
    """The seeded (0) small network; save ``{"model": net.state_dict()}`` for a checkpoint file."""
    torch.manual_seed(0)
    model = build_sam2_model(NAME, SMALL)
    with torch.no_grad():  # confident random masks, as a trained model
        for mlp in model.sam_mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(30.0)
    return model
