"""Registry of native 3D interactive models: name -> builder, as :mod:`sambench.models.registry`
is for the 2D ones.

``build_volume_model("nninteractive", "path/to/nnInteractive_v1.0")`` returns a
:class:`~sambench.models.volume_base.VolumeModel`. A builder is called as ``builder(checkpoint,
device=device)`` (``checkpoint`` the user's local folder or file; nothing is downloaded) and
imports its authors' package lazily, so listing names needs none of them installed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sambench.errors import OptionError
from sambench.models.volume_base import VolumeModel


def _nninteractive(checkpoint: str | Path | None, device: str = "cpu") -> VolumeModel:
    from sambench.models.nninteractive import build_nninteractive_adapter

    return build_nninteractive_adapter(checkpoint, device=device)


def _sam_med3d(checkpoint: str | Path | None, device: str = "cpu") -> VolumeModel:
    from sambench.models.sam_med3d import build_sam_med3d_adapter

    return build_sam_med3d_adapter(checkpoint, device=device)


def _vista3d(checkpoint: str | Path | None, device: str = "cpu") -> VolumeModel:
    from sambench.models.vista3d import build_vista3d_adapter

    return build_vista3d_adapter(checkpoint, device=device)


_BUILDERS: dict[str, Callable[..., VolumeModel]] = {
    "nninteractive": _nninteractive,
    "sam_med3d": _sam_med3d,
    "vista3d": _vista3d,
}
VOLUME_MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)
"""The registered native 3D models (``--model`` of ``evaluate-3d``)."""

LICENSES: dict[str, str] = {
    "nninteractive": "code Apache-2.0; released weights CC BY-NC-SA 4.0 (the folder's LICENSE)",
    "sam_med3d": "code Apache-2.0; weights: no separate licence stated (repository Apache-2.0)",
    "vista3d": "MONAI code Apache-2.0; released weights NVIDIA License, non-commercial",
}
"""What each native model's licence is known to be (the run records the loaded weights' own)."""


def build_volume_model(
    name: str, checkpoint: str | Path | None = None, *, device: str | None = None
) -> VolumeModel:
    """Build the native 3D model ``name`` (one of :data:`VOLUME_MODEL_NAMES`) on ``device``
    (None: ``"cuda"`` when available, else ``"cpu"``). OptionError naming ``--model`` for an
    unknown name; the builder's own errors (DataError naming the folder) otherwise."""
    builder = _BUILDERS.get(name)
    if builder is None:
        raise OptionError(
            "--model", f"unknown 3D model {name!r}; expected one of {', '.join(VOLUME_MODEL_NAMES)}"
        )
    if device is None:  # as registry.default_device (not imported: registry imports this module)
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return builder(checkpoint, device=device)
