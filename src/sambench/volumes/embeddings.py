"""Encode once per volume: one embedding per (volume, slice, model) per run, shared by every object
and protocol of the volume.

:class:`SliceEmbeddings` holds the embeddings of one volume's slices for one model:

- **Computed on first use** (:meth:`SliceEmbeddings.get`), or up front for the slices the
  protocols declare they need (:meth:`SliceEmbeddings.prefetch`: the union over the volume's
  objects, in encoder batches of ``encoder_batch`` where the model has ``embed_batch``; without
  a disk cache only when the union fits in the budget).
- **Kept in memory within a budget** (``budget_bytes``, ``--embed-budget-mb``): an LRU by
  slice; an embedding's size is the bytes of its tensors (SAM family: 1x256x64x64 float32 = 4 MiB;
  SAM 2: 16 MiB with its high-resolution maps). A slice evicted and needed again is read from the
  disk cache, or encoded again.
- **On disk** with ``cache`` (``--cache-dir``): the :class:`~sambench.engine.cache.EmbeddingCache`
  of ``sambench evaluate``, the same signed and checked entries, keyed by the slice's content hash
  (:func:`~sambench.engine.cache.image_hash` of the HxW uint8 slice, which is the prepared PNG's
  too, so 2D and 3D runs of one model share entries). A resumed or repeated run encodes nothing
  twice.

``budget_bytes == 0`` without a cache shares nothing: every :meth:`~SliceEmbeddings.get` encodes,
and each protocol's :class:`~sambench.volumes.slices.SlicePredictor` keeps its own small cache, as
before this module (the per-object path; the store then only counts).

The runner (:mod:`sambench.volumes.evaluate`) makes one store per volume and activates it with
:func:`sharing`; a :class:`~sambench.volumes.slices.SlicePredictor` built for that model and volume
finds it (:func:`active_store`), so protocols need no extra argument. Embeddings are deterministic
functions of the slice, so sharing changes no number; only ``encoder_passes`` and ``seconds``.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import torch

from sambench.engine.cache import EmbeddingCache, image_hash
from sambench.engine.image_work import is_out_of_memory
from sambench.models.base import Embedding, PromptableModel
from sambench.volumes.types import Volume3D

log = logging.getLogger(__name__)
MIB = 2**20
DEFAULT_BUDGET_MB = 1024.0
"""The default ``--embed-budget-mb`` (MiB): 256 SAM-family slice embeddings."""
GPU_ENCODER_BATCH = 4
"""Slices per encoder pass on a GPU for models with ``embed_batch`` (``sambench evaluate``'s)."""


def embedding_nbytes(emb: Embedding) -> int:
    """Bytes of an embedding's tensors (``features`` and every ``extras`` map)."""
    tensors = [emb.features, *emb.extras.values()]
    return int(sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor)))


def encoder_batch_for(model: PromptableModel) -> int:
    """Slices per encoder pass: :data:`GPU_ENCODER_BATCH` for a model on a CUDA device with
    ``embed_batch`` (batched features equal single ones up to float summation order), else 1
    (on a CPU one at a time, so the numbers are those of ``embed``)."""
    device = str(getattr(model, "device", "cpu"))
    return GPU_ENCODER_BATCH if device.startswith("cuda") and hasattr(model, "embed_batch") else 1


class SliceEmbeddings:
    """The slice embeddings of one volume with one model (see the module docstring).

    ``budget_bytes``: the most bytes of embeddings held in memory (>= 0). ``cache``: the on-disk
    cache or None. ``encoder_batch``: slices per encoder pass in :meth:`prefetch` (> 1 needs the
    model's ``embed_batch``).

    Counters (this run, this volume): ``encodes`` encoder passes run (one per slice encoded),
    ``disk_hits`` embeddings read from the disk cache, ``slices`` the distinct slice indices whose
    embedding was asked for or prefetched, ``seconds`` spent encoding and reading the cache,
    ``peak_bytes`` the most bytes held at once.
    """

    def __init__(
        self,
        model: PromptableModel,
        volume: Volume3D,
        *,
        budget_bytes: int,
        cache: EmbeddingCache | None = None,
        encoder_batch: int = 1,
    ) -> None:
        if budget_bytes < 0:
            raise ValueError(f"budget_bytes: expected >= 0, got {budget_bytes}")
        self.model = model
        self.volume = volume
        self.budget_bytes = int(budget_bytes)
        self.cache = cache
        self.encoder_batch = max(1, int(encoder_batch))
        self._held: OrderedDict[int, tuple[Embedding, int]] = OrderedDict()
        self._bytes = 0
        self._unit = 0  # bytes of one embedding, once one was made
        self.encodes = 0
        self.disk_hits = 0
        self.slices: set[int] = set()
        self.seconds = 0.0
        self.peak_bytes = 0

    @property
    def shares(self) -> bool:
        """Whether an embedding outlives the call that made it (in memory or on disk)."""
        return self.budget_bytes > 0 or self.cache is not None

    @property
    def held_bytes(self) -> int:
        """Bytes of the embeddings held in memory now (<= ``budget_bytes``)."""
        return self._bytes

    def __contains__(self, k: int) -> bool:
        return k in self._held

    # ------------------------------------------------------------------ memory
    def _keep(self, k: int, emb: Embedding, *, evict: bool = True) -> None:
        """Hold ``emb`` as slice ``k``'s, evicting the least recently used when ``evict``; an
        embedding that does not fit (or, without ``evict``, does not fit beside the others) is
        not held."""
        n = embedding_nbytes(emb)
        self._unit = self._unit or n
        if n > self.budget_bytes or (not evict and self._bytes + n > self.budget_bytes):
            return
        self._held[k] = (emb, n)
        self._bytes += n
        while self._bytes > self.budget_bytes:
            _, (_, m) = self._held.popitem(last=False)
            self._bytes -= m
        self.peak_bytes = max(self.peak_bytes, self._bytes)

    # ------------------------------------------------------------------ disk and encoder
    def _image(self, k: int) -> np.ndarray:
        if not 0 <= k < self.volume.shape[0]:
            raise IndexError(f"slice {k} outside 0..{self.volume.shape[0] - 1}")
        return np.ascontiguousarray(self.volume.image[k])

    def _load(self, key: str) -> Embedding | None:
        assert self.cache is not None
        t0 = time.perf_counter()
        emb = self.cache.load(key, getattr(self.model, "device", "cpu"))
        self.seconds += time.perf_counter() - t0
        self.disk_hits += emb is not None
        return emb

    def _encode(self, images: list[np.ndarray], keys: list[str | None]) -> list[Embedding]:
        """Encode ``images`` in one pass each (one batch when several), stored to the disk cache
        under ``keys``."""
        t0 = time.perf_counter()
        if len(images) == 1:
            out = [self.model.embed(images[0])]
        else:
            try:
                out = list(self.model.embed_batch(images))  # type: ignore[attr-defined]
            except Exception as e:
                if not is_out_of_memory(e):
                    raise
                self.encoder_batch = 1  # GPU out of memory: one slice at a time from now on
                log.warning(
                    "GPU out of memory encoding %d slices; encoding one at a time", len(images)
                )
                out = [self.model.embed(im) for im in images]
        self.seconds += time.perf_counter() - t0
        self.encodes += len(images)
        if self.cache is not None:
            for key, emb in zip(keys, out, strict=True):
                assert key is not None
                self.cache.store(key, emb)
        return out

    # ------------------------------------------------------------------ the interface
    def get(self, k: int) -> tuple[Embedding, int]:
        """(embedding of slice ``k``, encoder passes run for it now: 0 or 1). From memory, else
        from the disk cache, else encoded (and written to the cache, held within the budget)."""
        held = self._held.get(k)
        if held is not None:
            self._held.move_to_end(k)
            return held[0], 0
        img = self._image(k)
        self.slices.add(k)
        key = image_hash(img) if self.cache is not None else None
        emb = self._load(key) if key is not None else None
        passes = 0
        if emb is None:
            (emb,) = self._encode([img], [key])
            passes = 1
        if self.shares:
            self._keep(k, emb)
        return emb, passes

    def prefetch(self, slices: Iterable[int]) -> int:
        """Make the embeddings of ``slices`` ready before the protocols run: read from the disk
        cache or encoded in batches of ``encoder_batch``, in the order given (the order of first
        use). With a disk cache every slice is made (encoded and written, or read) and held
        while it fits. Without one, the slices are made only if all of them fit in the budget
        beside what is held (the first one made tells the size): a budget smaller than the union
        would evict embeddings before their use, so they are left to their first use instead.
        Returns the encoder passes run; nothing without :attr:`shares`."""
        if not self.shares:
            return 0
        todo = [k for k in dict.fromkeys(int(k) for k in slices) if k not in self._held]
        before = self.encodes
        i = 0
        while i < len(todo):
            size = self.encoder_batch
            if self._unit == 0:
                size = 1  # the first embedding tells the size of the others
            elif (
                self.cache is None
                and (len(todo) - i) * self._unit > self.budget_bytes - self._bytes
            ):
                break
            group = todo[i : i + size]
            i += len(group)
            images, keys, missing = [], [], []
            for k in group:
                img = self._image(k)
                self.slices.add(k)
                key = image_hash(img) if self.cache is not None else None
                emb = self._load(key) if key is not None else None
                if emb is None:
                    images.append(img)
                    keys.append(key)
                    missing.append(k)
                else:
                    self._keep(k, emb, evict=False)
            if images:
                for k, emb in zip(missing, self._encode(images, keys), strict=True):
                    self._keep(k, emb, evict=False)
        return self.encodes - before


_ACTIVE: ContextVar[SliceEmbeddings | None] = ContextVar("sambench_slice_embeddings", default=None)


@contextmanager
def sharing(store: SliceEmbeddings | None) -> Iterator[SliceEmbeddings | None]:
    """Make ``store`` the active one (for its model and volume) inside the ``with`` block."""
    token = _ACTIVE.set(store)
    try:
        yield store
    finally:
        _ACTIVE.reset(token)


def active_store(model: PromptableModel, volume: Volume3D) -> SliceEmbeddings | None:
    """The store activated by :func:`sharing` when it is this model's and this volume's (the
    same objects), else None."""
    store = _ACTIVE.get()
    if store is not None and store.model is model and store.volume is volume:
        return store
    return None
