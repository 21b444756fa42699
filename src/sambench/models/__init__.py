"""Model adapters behind one protocol: ``embed(image) -> Embedding``, ``predict(...) -> Prediction``.

Importing this package is cheap; adapters are built on demand with :func:`build_model`.
"""

from sambench.models.base import Embedding, Prediction, PromptableModel
from sambench.models.checkpoints import (
    KNOWN_SHA256,
    CheckpointError,
    load_into,
    load_state_dict,
    sha256_file,
)
from sambench.models.registry import MODEL_NAMES, build_model
from sambench.models.sam_family import SamFamilyAdapter

__all__ = [
    "KNOWN_SHA256",
    "MODEL_NAMES",
    "CheckpointError",
    "Embedding",
    "Prediction",
    "PromptableModel",
    "SamFamilyAdapter",
    "build_model",
    "load_into",
    "load_state_dict",
    "sha256_file",
]
