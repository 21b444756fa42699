"""On-disk embedding cache, keyed by a stored and checked signature (micro-sam style).

Layout: ``<root>/<signature digest>/<image content hash>.safetensors``. Each file stores every
tensor of the :class:`~sambench.models.base.Embedding` (a tensor field ``x`` as tensor ``x``; a
tuple/list of tensors ``x`` as ``x.0``, ``x.1``, ...; a dict of named tensors ``x``, such as SAM 2's
``extras``, as ``x.<name>``) and, as safetensors metadata:

- ``signature``: the full signature (model, checkpoint SHA-256, preprocessing, sambench version),
- ``image_hash``: the image's content hash,
- ``fields``: the other fields of the embedding as JSON (``original_size``, ``input_size``, ...),
- ``tensors``: ``{name: [dtype, shape]}`` of every stored tensor,
- ``checksum``: HMAC-SHA256, keyed with the user's cache key, over every metadata field above
  (format, signature, image hash, fields, tensor layout) and every tensor's name, dtype, shape and
  raw bytes (sorted by name).

The cache key (32 random bytes, hex) is made once per user, mode 0600, outside every cache
folder: ``$SAMBENCH_CACHE_KEY`` (a file path) when set, else
``$XDG_CONFIG_HOME/sambench/cache-key`` or ``~/.config/sambench/cache-key``. Whoever can write
the cache folder but cannot read that key cannot forge an entry: an edited or forged entry fails
its checksum and is recomputed. An entry written with another key (another user, a deleted key) is
a miss the same way.

With ``dtype="float16"`` (``--cache-dtype float16``) the floating-point tensors are stored as
fp16 (half the disk) and read back as float32; the signature then carries ``cache_dtype`` so fp16
and fp32 entries never mix. The engine rounds every embedding of such a run to fp16
(:func:`round_embedding`), cached or just computed, so the numbers do not depend on cache hits.

On load every entry is checked: a regular file (a FIFO or device is never opened), readable,
same signature and image hash, exactly the tensors listed (names, dtypes, shapes), the keyed
checksum of the metadata and bytes, sizes that fit the image (``original_size`` its shape,
``input_size`` within bounds) and finite floating-point values. Anything else (a truncated or
zeroed file, a renamed tensor, a wrong shape, an edited size, a forged checksum, an entry of an
older sambench) is a miss with one warning naming the file; the caller recomputes the embedding and
:meth:`store` overwrites the entry. A cache entry is never trusted blindly.

A full disk while writing an entry raises :class:`~sambench.errors.DataError` naming the cache
folder: free space, or rerun the same command without ``--cache-dir`` (a run resumes where it
stopped and goes on without a cache).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from sambench.errors import DataError
from sambench.models.base import Embedding
from sambench.store.atomic import write_atomic

log = logging.getLogger(__name__)

CACHE_DTYPES = ("float32", "float16")
CACHE_FORMAT = "3"  # 1: "features" only, no checksum; 2: unkeyed SHA-256 of the tensors only
KEY_ENV = "SAMBENCH_CACHE_KEY"
MAX_SIDE = 65536  # no image side (original_size) above this is believed
MAX_INPUT_SIDE = 8192  # nor a model input side (input_size) above max(this, the image's side)


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


def key_path() -> Path:
    """Where the user's cache key lives (see the module docstring)."""
    env = os.environ.get(KEY_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "sambench" / "cache-key"


def _read_key(path: Path) -> bytes | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise DataError(path, f"the embedding cache key is not a regular file (see {KEY_ENV})")
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise DataError(
            path,
            "the embedding cache key is malformed (expected 64 hex digits); delete it to make "
            "a new one (every cached embedding is then recomputed once)",
        )
    return key


def load_key() -> bytes:
    """The user's cache key, created on first use (mode 0600, in a folder made with the umask)."""
    path = key_path()
    try:
        key = _read_key(path)
        if key is not None:
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
            try:
                os.link(tmp, path)  # never replaces a key another process made meanwhile
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
        key = _read_key(path)
    except OSError as e:
        raise DataError(
            path,
            f"cannot read or create the embedding cache key ({e.strerror or e}); set {KEY_ENV} "
            "to a file path you can write, outside the cache folder",
        ) from None
    if key is None:
        raise DataError(path, "the embedding cache key vanished while it was created")
    return key


def entry_checksum(key: bytes, meta: dict[str, str], tensors: dict[str, torch.Tensor]) -> str:
    """HMAC-SHA256 (hex) with ``key`` over every metadata field but ``checksum`` and every
    tensor's name, dtype, shape and raw bytes, in name order."""
    h = hmac.new(key, digestmod=hashlib.sha256)
    fields = {k: v for k, v in meta.items() if k != "checksum"}
    h.update(json.dumps(fields, sort_keys=True).encode() + b"\0")
    _update_tensors(h, tensors)
    return h.hexdigest()


def tensor_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 (hex) over each tensor's name, dtype, shape and raw bytes, in name order.

    The tensors must be on the CPU; the bytes are the tensor's contiguous memory.
    """
    h = hashlib.sha256()
    _update_tensors(h, tensors)
    return h.hexdigest()


def _update_tensors(h: Any, tensors: dict[str, torch.Tensor]) -> None:
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        h.update(f"{name}|{t.dtype}|{list(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)


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


def _sizes(other: dict[str, Any], image_shape: tuple[int, ...] | None) -> None:
    """Check ``original_size`` and ``input_size``: two ints in range, the image's own shape."""
    sizes = {}
    for name in ("original_size", "input_size"):
        v = other.get(name)
        if (
            not isinstance(v, list)
            or len(v) != 2
            or not all(type(x) is int and 1 <= x <= MAX_SIDE for x in v)
        ):
            raise BadCacheEntry(f"{name} {v!r} is not two sizes in 1..{MAX_SIDE}")
        sizes[name] = v
    if image_shape is not None and tuple(sizes["original_size"]) != tuple(image_shape[:2]):
        raise BadCacheEntry(
            f"original_size {sizes['original_size']} is not the image's {list(image_shape[:2])}"
        )
    bound = max(MAX_INPUT_SIDE, *sizes["original_size"])
    if max(sizes["input_size"]) > bound:
        raise BadCacheEntry(f"input_size {sizes['input_size']} exceeds {bound}")


def read_entry(
    path: Path,
    signature_json: str,
    img_hash: str,
    key: bytes | None = None,
    image_shape: tuple[int, ...] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The checked tensors (CPU) and other fields of one cache file.

    ``key``: the cache key (None: :func:`load_key`). ``image_shape``: the image's shape, when
    known, which ``original_size`` must match. Raises :class:`BadCacheEntry` saying what is wrong;
    never returns unchecked data.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise BadCacheEntry(f"unreadable ({type(e).__name__}: {e})") from None
    if not stat.S_ISREG(mode):
        raise BadCacheEntry("not a regular file (not opened)")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise BadCacheEntry(f"unreadable ({type(e).__name__}: {e})") from None
    if meta.get("signature") != signature_json or meta.get("image_hash") != img_hash:
        raise BadCacheEntry("stored signature or image hash differs from this run's")
    if "checksum" not in meta or meta.get("format") != CACHE_FORMAT:
        raise BadCacheEntry(
            "no checksum of the current, keyed format (written by an older sambench)"
        )
    if set(meta) != {"format", "signature", "image_hash", "fields", "tensors", "checksum"}:
        raise BadCacheEntry(f"unexpected metadata fields {sorted(meta)}")
    try:
        expected = json.loads(meta["tensors"])
        other = json.loads(meta["fields"])
    except ValueError as e:
        raise BadCacheEntry(f"malformed metadata ({e})") from None
    if not isinstance(expected, dict) or not isinstance(other, dict):
        raise BadCacheEntry("malformed metadata (tensors and fields must be JSON objects)")
    found = _layout(tensors)
    if set(found) != set(expected):
        raise BadCacheEntry(
            f"holds tensors {sorted(found)}, expected {sorted(expected)} (renamed or missing)"
        )
    for name, want_layout in expected.items():
        if found[name] != want_layout:
            raise BadCacheEntry(
                f"tensor {name!r} is {found[name][0]} {found[name][1]}, "
                f"expected {want_layout[0]} {want_layout[1]}"
            )
    want = entry_checksum(load_key() if key is None else key, meta, tensors)
    if not hmac.compare_digest(want, meta["checksum"]):
        raise BadCacheEntry(
            "metadata or tensor data does not match its keyed checksum (corrupted, edited, or "
            "written with another cache key)"
        )
    _sizes(other, image_shape)
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise BadCacheEntry(f"tensor {name!r} holds NaN or infinite values")
    try:
        embedding_from_tensors(tensors, other, "cpu")
    except (KeyError, TypeError, ValueError) as e:
        raise BadCacheEntry(f"fields do not make an embedding ({type(e).__name__}: {e})") from None
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
        self._key = load_key()

    def path_for(self, img_hash: str) -> Path:
        return self.folder / f"{img_hash}.safetensors"

    def load(
        self,
        img_hash: str,
        device: torch.device | str = "cpu",
        image_shape: tuple[int, ...] | None = None,
    ) -> Embedding | None:
        """The cached embedding of an image, or None (absent, or not passing :func:`read_entry`:
        then a warning names the file; the caller recomputes and :meth:`store` rewrites it).
        ``image_shape``: the image's shape, which the entry's ``original_size`` must match."""
        path = self.path_for(img_hash)
        if not os.path.lexists(path):
            self.misses += 1
            return None
        try:
            tensors, other = read_entry(path, self._sig_json, img_hash, self._key, image_shape)
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
        """Write (or overwrite) the entry of ``img_hash``, atomically, with its keyed checksum.

        A full disk (or quota) raises :class:`~sambench.errors.DataError` naming the folder."""
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
        }
        meta["checksum"] = entry_checksum(self._key, meta, tensors)
        path = self.path_for(img_hash)
        try:
            return write_atomic(
                path, lambda p: save_file(tensors, str(p), metadata=meta), ".safetensors"
            )
        except (SafetensorError, OSError) as e:
            full = getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or (
                "no space left" in str(e).lower() or "quota exceeded" in str(e).lower()
            )
            if not full:
                raise
            raise DataError(
                self.folder,
                "no space left on the device of the embedding cache; free space there or choose "
                "another --cache-dir, or rerun the same command without --cache-dir (it resumes "
                "and goes on without a cache)",
            ) from None
