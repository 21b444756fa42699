"""What one image's evaluation works on: the image, its objects, and its single embedding."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from sambench.metrics import MetricConfig
from sambench.models.base import Embedding, PromptableModel
from sambench.prompts.types import ConceptPrompt, Prompts


@dataclass
class ObjectTarget:
    """One ground-truth object of the image: its manifest row and its HxW bool mask."""

    row: dict[str, object]
    mask: np.ndarray


@dataclass
class ImageContext:
    """Everything a task needs to evaluate one image from its one embedding."""

    image: np.ndarray  # HxW or HxWx3 uint8
    objects: list[ObjectTarget]
    embedding: Embedding
    model: PromptableModel
    metric_config: MetricConfig
    multimask: bool | None
    embed_seconds: float
    embedding_cached: bool
    extra: dict[str, object] = field(default_factory=dict)
    roi: np.ndarray | None = None  # HxW bool region of interest: scoring is restricted to it
    label: np.ndarray | None = None  # HxW label image (the concept strategies' absent targets)

    @property
    def prompted_multimask(self) -> bool | None:
        """``multimask_output`` of the prompted strategies (S2-S6, shift, interactive box start):
        the run's ``--multimask`` when on/off; with auto (None) the adapter's
        ``prompted_multimask`` if it has one (LiteMedSAM: True), else None (its own default)."""
        if self.multimask is not None:
            return self.multimask
        return getattr(self.model, "prompted_multimask", None)

    def base_row(self, obj: ObjectTarget) -> dict[str, object]:
        """The manifest columns plus the per-image columns every result row carries."""
        row = dict(obj.row)
        row["model"] = self.model.name
        row["embed_seconds"] = self.embed_seconds
        row["embedding_cached"] = self.embedding_cached
        return row


class ImageTask(Protocol):
    """One kind of evaluation over an image's objects (e.g. the single-round strategies S2-S6).

    Returns result rows; it must never re-encode the image (use ``ctx.embedding``).
    """

    name: str

    def __call__(self, ctx: ImageContext) -> list[dict[str, object]]: ...


def prompts_to_json(p: Prompts | None) -> str:
    """A compact JSON record of the prompts of one row (points Nx2 (X, Y), labels, box XYXY)."""
    if p is None:
        return ""
    d: dict[str, object] = {}
    if p.points is not None and p.labels is not None:
        d["points"] = np.asarray(p.points).round(2).tolist()
        d["labels"] = np.asarray(p.labels).astype(int).tolist()
    if p.box is not None:
        d["box"] = np.asarray(p.box).round(2).tolist()
    return json.dumps(d, separators=(",", ":"))


def concept_prompt_to_json(p: ConceptPrompt) -> str:
    """A compact JSON record of a concept prompt (text; exemplar boxes Mx4 XYXY and labels)."""
    d: dict[str, object] = {}
    if p.text is not None:
        d["text"] = p.text
    if p.boxes is not None:
        d["boxes"] = np.asarray(p.boxes).round(2).tolist()
        labels = np.ones(len(p.boxes)) if p.box_labels is None else np.asarray(p.box_labels)
        d["box_labels"] = labels.astype(int).tolist()
    return json.dumps(d, separators=(",", ":"))


def prompts_from_json(s: str) -> Prompts | None:
    if not s:
        return None
    d = json.loads(s)
    pts = np.asarray(d["points"], dtype=np.float64) if "points" in d else None
    lbl = np.asarray(d["labels"], dtype=np.int64) if "labels" in d else None
    box = np.asarray(d["box"], dtype=np.float64) if "box" in d else None
    return Prompts(points=pts, labels=lbl, box=box)
