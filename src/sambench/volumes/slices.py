"""Encode-once access to a 2D model over the slices of one volume (shared by the protocols).

:class:`SlicePredictor` wraps any :class:`~sambench.models.base.PromptableModel` (the same adapters
``sambench evaluate`` uses; no model code here): ``embed`` runs once per slice and is kept in a
small LRU cache, so a protocol that returns to a slice (propagation around several clicks) pays
the encoder once. Inside ``evaluate-3d`` the embeddings come from the volume's shared
:class:`~sambench.volumes.embeddings.SliceEmbeddings` instead (one per slice for every object and
protocol of the volume). ``encodes`` and ``decodes`` count the passes this predictor caused, for
the results and benchmarks.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from sambench.models.base import Embedding, PromptableModel
from sambench.prompts.types import Prompts
from sambench.volumes.embeddings import SliceEmbeddings, active_store
from sambench.volumes.sparse import SparseMask
from sambench.volumes.types import StepResult, Volume3D


@dataclass
class SliceOutput:
    """One decoded slice: ``mask`` HxW bool, ``logits`` 1xhxw float32 low-res logits (the
    next ``mask_logits`` prompt), ``score`` the model's predicted IoU of the kept candidate."""

    mask: np.ndarray
    logits: np.ndarray
    score: float


class SlicePredictor:
    """Predict masks on slices of ``volume`` with ``model``.

    ``multimask``: passed to ``predict`` (None = the model's default); of K candidates the one
    with the highest predicted IoU is kept (3D protocols have no ground truth to pick with).
    ``max_cached``: slice embeddings kept (LRU); each SAM-family embedding is about 4 MB.
    ``store``: the volume's shared embeddings (default: the one :func:`~sambench.volumes.
    embeddings.sharing` made active for this model and volume, if any). When it shares
    (:attr:`~sambench.volumes.embeddings.SliceEmbeddings.shares`) it is the only cache, so its
    budget holds; otherwise this predictor keeps its own ``max_cached`` embeddings. ``encodes``
    counts the encoder passes run for this predictor (0 for an embedding the store already had).
    """

    def __init__(
        self,
        model: PromptableModel,
        volume: Volume3D,
        *,
        multimask: bool | None = None,
        max_cached: int = 64,
        store: SliceEmbeddings | None = None,
    ) -> None:
        self.model = model
        self.volume = volume
        self.multimask = multimask
        self.max_cached = max(1, int(max_cached))
        self.store = store if store is not None else active_store(model, volume)
        self._local = self.store is None or not self.store.shares
        self._cache: OrderedDict[int, Embedding] = OrderedDict()
        self.encodes = 0
        self.decodes = 0

    def embedding(self, k: int) -> Embedding:
        """The embedding of slice ``k`` (0 <= k < S), encoded at most once while cached."""
        if not 0 <= k < self.volume.shape[0]:
            raise IndexError(f"slice {k} outside 0..{self.volume.shape[0] - 1}")
        emb = self._cache.get(k)
        if emb is not None:
            self._cache.move_to_end(k)
            return emb
        if self.store is not None:
            emb, passes = self.store.get(k)
        else:
            emb, passes = self.model.embed(np.ascontiguousarray(self.volume.image[k])), 1
        self.encodes += passes
        if self._local:
            self._cache[k] = emb
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
        return emb

    def predict(self, k: int, prompts: Prompts) -> SliceOutput:
        """Decode one prompt set on slice ``k``; the best-scored candidate is kept."""
        pred = self.model.predict(self.embedding(k), [prompts], multimask_output=self.multimask)
        self.decodes += 1
        best = int(np.argmax(pred.scores[0])) if pred.scores.shape[1] > 1 else 0
        return SliceOutput(
            mask=np.asarray(pred.masks[0, best], dtype=bool),
            logits=np.asarray(pred.low_res_logits[0, best : best + 1], dtype=np.float32),
            score=float(pred.scores[0, best]),
        )

    def one_step(self, pred: SparseMask, t0: float, **extras: Any) -> list[StepResult]:
        """The single step (0) of a one-step protocol: ``pred``, the seconds since ``t0``
        (``time.perf_counter``), this predictor's decodes, and its ``encoder_passes`` beside
        ``extras``."""
        cols = {"encoder_passes": self.encodes, **extras}
        return [StepResult(0, pred, time.perf_counter() - t0, self.decodes, cols)]


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """XYXY inclusive float box of an HxW bool mask (None when empty)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1], rows[-1]], dtype=np.float64)
