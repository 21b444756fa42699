"""On-disk embedding cache, keyed by a stored and checked signature (micro-sam style).

Layout: ``<root>/<signature digest>/<image content hash>.safetensors``. Each file stores the
``features`` tensor, every tensor of ``Embedding.extras`` under ``extra.<name>``, and, as
safetensors metadata, the list of extra names, the full signature (model, checkpoint SHA-256,
preprocessing, sambench version), the image hash and the sizes. A file whose stored signature or
image hash differs from what is asked is never used: it is recomputed and overwritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from sambench.data.atomic import write_atomic
from sambench.models.base import Embedding

log = logging.getLogger(__name__)


def image_hash(image: np.ndarray) -> str:
    """SHA-256 of an image's shape, dtype and pixel bytes (hex)."""
    h = hashlib.sha256()
    h.update(f"{image.shape}|{image.dtype}".encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


def signature_digest(signature: dict[str, str]) -> str:
    blob = json.dumps(signature, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class EmbeddingCache:
    """Embeddings of one model signature under ``root``.

    ``signature`` is the adapter's ``signature()`` dict (all string values).
    """

    def __init__(self, root: Path | str, signature: dict[str, str]) -> None:
        self.signature = dict(signature)
        self._sig_json = json.dumps(self.signature, sort_keys=True)
        self.folder = Path(root) / signature_digest(self.signature)
        self.hits = 0
        self.misses = 0

    def path_for(self, img_hash: str) -> Path:
        return self.folder / f"{img_hash}.safetensors"

    def load(self, img_hash: str, device: torch.device | str = "cpu") -> Embedding | None:
        """The cached embedding of an image, or None (absent, unreadable, or another signature)."""
        path = self.path_for(img_hash)
        if not path.exists():
            self.misses += 1
            return None
        try:
            tensors = load_file(str(path), device=str(device))
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
        except (SafetensorError, OSError, ValueError) as e:
            log.warning("%s: unreadable cache file (%s); recomputing", path, e)
            self.misses += 1
            return None
        if meta.get("signature") != self._sig_json or meta.get("image_hash") != img_hash:
            log.warning("%s: cache signature differs from this run's; recomputing", path)
            self.misses += 1
            return None
        names = json.loads(meta.get("extras", "[]"))
        if "features" not in tensors or any(f"extra.{n}" not in tensors for n in names):
            log.warning("%s: cache file lacks some of its tensors; recomputing", path)
            self.misses += 1
            return None
        self.hits += 1
        return Embedding(
            features=tensors["features"],
            original_size=tuple(json.loads(meta["original_size"])),  # type: ignore[arg-type]
            input_size=tuple(json.loads(meta["input_size"])),  # type: ignore[arg-type]
            extras={n: tensors[f"extra.{n}"] for n in names},
        )

    def store(self, img_hash: str, embedding: Embedding) -> Path:
        meta = {
            "signature": self._sig_json,
            "image_hash": img_hash,
            "original_size": json.dumps(list(embedding.original_size)),
            "input_size": json.dumps(list(embedding.input_size)),
            "extras": json.dumps(sorted(embedding.extras)),
        }
        tensors = {"features": embedding.features}
        tensors.update({f"extra.{n}": t for n, t in embedding.extras.items()})
        cpu = {k: t.detach().to("cpu").contiguous() for k, t in tensors.items()}
        path = self.path_for(img_hash)
        return write_atomic(path, lambda p: save_file(cpu, str(p), metadata=meta), ".safetensors")
