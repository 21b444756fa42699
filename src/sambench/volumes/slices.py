"""Encode-once access to a 2D model over the slices of one volume (shared by the protocols).

:class:`SlicePredictor` wraps any :class:`~sambench.models.base.PromptableModel` (the same adapters
``sambench evaluate`` uses; no model code here): ``embed`` runs once per slice and is kept in a
small LRU cache, so a protocol that returns to a slice (propagation around several clicks) pays
the encoder once. ``encodes`` and ``decodes`` count the passes, for the results and benchmarks.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from sambench.models.base import Embedding, PromptableModel
from sambench.prompts.types import Prompts
from sambench.volumes.types import Volume3D


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
    """

    def __init__(
        self,
        model: PromptableModel,
        volume: Volume3D,
        *,
        multimask: bool | None = None,
        max_cached: int = 64,
    ) -> None:
        self.model = model
        self.volume = volume
        self.multimask = multimask
        self.max_cached = max(1, int(max_cached))
        self._cache: OrderedDict[int, Embedding] = OrderedDict()
        self.encodes = 0
        self.decodes = 0

    def embedding(self, k: int) -> Embedding:
        """The embedding of slice ``k`` (0 <= k < S), encoded at most once while cached."""
        if not 0 <= k < self.volume.shape[0]:
            raise IndexError(f"slice {k} outside 0..{self.volume.shape[0] - 1}")
        emb = self._cache.get(k)
        if emb is None:
            emb = self.model.embed(np.ascontiguousarray(self.volume.image[k]))
            self.encodes += 1
            self._cache[k] = emb
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(k)
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


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """XYXY inclusive float box of an HxW bool mask (None when empty)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1], rows[-1]], dtype=np.float64)
