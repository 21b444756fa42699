"""On-disk embedding cache, keyed by a stored and checked signature (micro-sam style).

Layout: ``<root>/<signature digest>/<image content hash>.safetensors``. Each file stores every
tensor of the :class:`~sambench.models.base.Embedding` (a tensor field ``x`` as tensor ``x``; a
tuple/list of tensors ``x`` as ``x.0``, ``x.1``, ...; a dict of named tensors ``x``, such as SAM 2's
``extras``, as ``x.<name>``) and, as safetensors metadata:

- ``signature``: the full signature (model, checkpoint SHA-256, preprocessing, sambench version),
- ``image_hash``: the image's content hash,
- ``fields``: the other fields of the embedding as JSON (``original_size``, ``input_size``, ...),
- ``tensors``: ``{name: [dtype, shape]}`` of every stored tensor,
- ``checksum``: SHA-256 over every tensor's name, dtype, shape and raw bytes (sorted by name).

With ``dtype="float16"`` (``--cache-dtype float16``) the floating-point tensors are stored as
fp16 (half the disk) and read back as float32; the signature then carries ``cache_dtype`` so fp16
and fp32 entries never mix. The engine rounds every embedding of such a run to fp16
(:func:`round_embedding`), cached or just computed, so the numbers do not depend on cache hits.

On load every entry is checked: readable, same signature and image hash, exactly the tensors
listed (names, dtypes, shapes) and the checksum of their bytes. Anything else (a truncated or
zeroed file, a renamed tensor, a wrong shape, an entry of an older sambench without a checksum) is
a miss with a warning naming the file; the caller recomputes the embedding and :meth:`store`
overwrites the entry. A cache entry is never trusted blindly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from sambench.models.base import Embedding
from sambench.store.atomic import write_atomic

log = logging.getLogger(__name__)

CACHE_DTYPES = ("float32", "float16")
CACHE_FORMAT = "2"  # 1 = "features" only, no checksum (sambench before the checked cache)


class BadCacheEntry(ValueError):
    """A cache file that must not be used (the message says why)."""


def image_hash(image: np.ndarray) -> str:
    """SHA-256 of an image's shape, dtype and pixel bytes (hex)."""
    h = hashlib.sha256()
    h.update(f"{image.shape}|{image.dtype}".encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


def signature_digest(signature: dict[str, str]) -> str:
    blob = json.dumps(signature, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def round_embedding(emb: Embedding, dtype: str) -> Embedding:
    """``emb`` with every floating-point tensor rounded to ``dtype`` and back to its own dtype
    (``"float32"``: ``emb`` itself). What a run with an fp16 cache computes from."""
    if dtype == "float32":
        return emb
    if dtype not in CACHE_DTYPES:
        raise ValueError(f"dtype: {dtype!r} is not one of {', '.join(CACHE_DTYPES)}")
    half = getattr(torch, dtype)

    def r(t: torch.Tensor) -> torch.Tensor:
        return t.to(half).to(t.dtype) if t.is_floating_point() else t

    kw: dict[str, Any] = {}
    for f in dataclasses.fields(emb):
        v = getattr(emb, f.name)
        if isinstance(v, torch.Tensor):
            v = r(v)
        elif isinstance(v, (tuple, list)) and v and all(isinstance(x, torch.Tensor) for x in v):
            v = type(v)(r(x) for x in v)
        elif isinstance(v, dict) and v and all(isinstance(x, torch.Tensor) for x in v.values()):
            v = {k: r(x) for k, x in v.items()}
        kw[f.name] = v
    return Embedding(**kw)


def tensor_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 (hex) over each tensor's name, dtype, shape and raw bytes, in name order.

    The tensors must be on the CPU; the bytes are the tensor's contiguous memory.
    """
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        h.update(f"{name}|{t.dtype}|{list(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def _layout(tensors: dict[str, torch.Tensor]) -> dict[str, list[object]]:
    return {k: [str(t.dtype).removeprefix("torch."), list(t.shape)] for k, t in tensors.items()}


def embedding_to_tensors(emb: Embedding) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an embedding into its tensors (CPU, contiguous) and its other (JSON) fields."""
    tensors: dict[str, torch.Tensor] = {}
    other: dict[str, Any] = {}
    for f in dataclasses.fields(emb):
        v = getattr(emb, f.name)
        if isinstance(v, torch.Tensor):
            tensors[f.name] = v.detach().to("cpu").contiguous()
        elif isinstance(v, (tuple, list)) and v and all(isinstance(x, torch.Tensor) for x in v):
            for i, x in enumerate(v):
                tensors[f"{f.name}.{i}"] = x.detach().to("cpu").contiguous()
            other[f.name] = {"tensors": len(v)}
        elif isinstance(v, dict) and v and all(isinstance(x, torch.Tensor) for x in v.values()):
            for k, x in v.items():  # named feature maps (SAM 2: Embedding.extras)
                tensors[f"{f.name}.{k}"] = x.detach().to("cpu").contiguous()
            other[f.name] = {"tensor_names": sorted(v)}
        else:
            other[f.name] = list(v) if isinstance(v, tuple) else v
    return tensors, other


def embedding_from_tensors(
    tensors: dict[str, torch.Tensor], other: dict[str, Any], device: torch.device | str
) -> Embedding:
    """The inverse of :func:`embedding_to_tensors` (tensors moved to ``device``)."""
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(Embedding):
        if f.name in tensors:
            kw[f.name] = tensors[f.name].to(device)
        elif f.name in other:
            v = other[f.name]
            if isinstance(v, dict) and set(v) == {"tensors"}:
                kw[f.name] = tuple(tensors[f"{f.name}.{i}"].to(device) for i in range(v["tensors"]))
            elif isinstance(v, dict) and set(v) == {"tensor_names"}:
                kw[f.name] = {k: tensors[f"{f.name}.{k}"].to(device) for k in v["tensor_names"]}
            else:
                kw[f.name] = tuple(v) if isinstance(v, list) else v
    return Embedding(**kw)


def read_entry(
    path: Path, signature_json: str, img_hash: str
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The checked tensors (CPU) and other fields of one cache file.

    Raises :class:`BadCacheEntry` saying what is wrong; never returns unchecked data.
    """
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise BadCacheEntry(f"unreadable ({type(e).__name__}: {e})") from None
    if meta.get("signature") != signature_json or meta.get("image_hash") != img_hash:
        raise BadCacheEntry("stored signature or image hash differs from this run's")
    if "checksum" not in meta or meta.get("format") != CACHE_FORMAT:
        raise BadCacheEntry("no checksum (written by an older sambench)")
    try:
        expected = json.loads(meta["tensors"])
        other = json.loads(meta["fields"])
    except (KeyError, ValueError) as e:
        raise BadCacheEntry(f"malformed metadata ({e})") from None
    found = _layout(tensors)
    if set(found) != set(expected):
        raise BadCacheEntry(
            f"holds tensors {sorted(found)}, expected {sorted(expected)} (renamed or missing)"
        )
    for name, want in expected.items():
        if found[name] != want:
            raise BadCacheEntry(
                f"tensor {name!r} is {found[name][0]} {found[name][1]}, expected {want[0]} {want[1]}"
            )
    try:
        embedding_from_tensors(tensors, other, "cpu")
    except (KeyError, TypeError, ValueError) as e:
        raise BadCacheEntry(f"fields do not make an embedding ({type(e).__name__}: {e})") from None
    if tensor_checksum(tensors) != meta["checksum"]:
        raise BadCacheEntry("tensor data does not match its checksum (corrupted)")
    return tensors, other


class EmbeddingCache:
    """Embeddings of one model signature under ``root``.

    ``signature`` is the adapter's ``signature()`` dict (all string values). ``hits``/``misses``
    count loads; ``bad`` counts the entries found damaged or malformed (each also a miss).
    """

    def __init__(self, root: Path | str, signature: dict[str, str], dtype: str = "float32") -> None:
        if dtype not in CACHE_DTYPES:
            raise ValueError(f"dtype: {dtype!r} is not one of {', '.join(CACHE_DTYPES)}")
        self.dtype = dtype
        self.signature = dict(signature)
        if dtype != "float32":
            self.signature["cache_dtype"] = dtype
        self._sig_json = json.dumps(self.signature, sort_keys=True)
        self.folder = Path(root) / signature_digest(self.signature)
        self.hits = 0
        self.misses = 0
        self.bad = 0

    def path_for(self, img_hash: str) -> Path:
        return self.folder / f"{img_hash}.safetensors"

    def load(self, img_hash: str, device: torch.device | str = "cpu") -> Embedding | None:
        """The cached embedding of an image, or None (absent, or not passing :func:`read_entry`:
        then a warning names the file; the caller recomputes and :meth:`store` rewrites it)."""
        path = self.path_for(img_hash)
        if not path.exists():
            self.misses += 1
            return None
        try:
            tensors, other = read_entry(path, self._sig_json, img_hash)
        except BadCacheEntry as e:
            log.warning("%s: cache entry not used, %s; recomputing and rewriting it", path, e)
            self.misses += 1
            self.bad += 1
            return None
        self.hits += 1
        if self.dtype != "float32":
            tensors = {k: t.float() if t.is_floating_point() else t for k, t in tensors.items()}
        return embedding_from_tensors(tensors, other, device)

    def store(self, img_hash: str, embedding: Embedding) -> Path:
        """Write (or overwrite) the entry of ``img_hash``, atomically, with its checksum."""
        tensors, other = embedding_to_tensors(embedding)
        if self.dtype != "float32":
            low = getattr(torch, self.dtype)
            tensors = {k: t.to(low) if t.is_floating_point() else t for k, t in tensors.items()}
        meta = {
            "format": CACHE_FORMAT,
            "signature": self._sig_json,
            "image_hash": img_hash,
            "fields": json.dumps(other),
            "tensors": json.dumps(_layout(tensors)),
            "checksum": tensor_checksum(tensors),
        }
        path = self.path_for(img_hash)
        return write_atomic(
            path, lambda p: save_file(tensors, str(p), metadata=meta), ".safetensors"
        )
