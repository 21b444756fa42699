"""A tiny random SAM-Med3D checkpoint, built with medim's own builder.

``medim.create_model("SAM-Med3D", pretrained=False, ...)`` with a small ViT (48-d, 2 blocks,
2 heads, block 1 global) and 48-d prompts; the input stays the authors' 128^3 at 16^3 patches,
so the crop, the 32^3 low-res mask and the upsampling are those of the released model. Saved as
the authors' training script saves (``{"model_state_dict": ..., "args": Namespace, ...}``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

import numpy as np
import torch

TINY = {
    "encoder_embed_dim": 48,
    "encoder_depth": 2,
    "encoder_num_heads": 2,
    "encoder_global_attn_indexes": [1],
    "prompt_embed_dim": 48,
}


def tiny_network(seed: int = 0) -> torch.nn.Module:
    """The tiny SAM-Med3D, seeded; the absolute position embedding (zeros in medim's init) is
    drawn too, so that the output depends on where a click is."""
    import medim

    torch.manual_seed(seed)
    with contextlib.redirect_stdout(io.StringIO()):
        net = medim.create_model("SAM-Med3D", pretrained=False, **TINY)
    with torch.no_grad():
        net.image_encoder.pos_embed.normal_(0.0, 0.5)
    return net.eval()


def make_tiny_checkpoint(path: Path, seed: int = 0, extra: dict | None = None) -> Path:
    """Write the tiny checkpoint to ``path`` and return it."""
    net = tiny_network(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "epoch": 1,
            "model_state_dict": net.state_dict(),
            "losses": [np.float64(0.5)],
            "args": argparse.Namespace(img_size=128, model_type="vit_b_ori"),
            **(extra or {}),
        },
        path,
    )
    return path
