"""Concept strategies of a text-promptable model: T, T-para, T-neg and E (docs/text-prompts.md).

For every image, from its one embedding (the model's ``segment_concepts``,
:class:`~sambench.models.base.ConceptModel`):

- ``T``: each object's target name -> its phrase (:class:`~sambench.prompts.phrases.PhraseTable`);
- ``T-para``: every phrasing of it, and its phrase with / without the modality
  (``phrase_index`` 0, 1, ...; :meth:`~sambench.prompts.phrases.PhraseTable.paraphrases`);
- ``E``: an exemplar box, the tight XYXY box of the object's largest 4-connected component (its
  first in scan order on a tie), with no text: "find every instance like this one";
- ``T-neg``: the phrase of every target of the image's dataset (the targets named in the
  dataset's manifest) whose label value has no pixel in this image's label: an absent target.

A present target's row scores the union of the returned instances against the object with every
metric (:func:`sambench.metrics.segmentation_metrics`, restricted to the ROI when there is one),
``selection`` ``"union"``; for an instance-type target (the phrase table's ``instances``) also the
instance metrics (:func:`sambench.metrics.instances.instance_metrics`). An absent target's row has
NaN metrics and records what came back: ``n_instances``, ``pred_area``, ``max_instance_score``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sambench.data.roi import apply_roi
from sambench.engine.concept_replay import ConceptReplay
from sambench.engine.context import ImageContext, ObjectTarget, concept_prompt_to_json
from sambench.engine.selection import nan_metrics
from sambench.errors import DataError, OptionError
from sambench.metrics import segmentation_metrics
from sambench.metrics.instances import INSTANCE_COLUMNS, gt_instances, instance_metrics
from sambench.models.base import Instances
from sambench.prompts.names import (
    CONCEPT_SELECTION,
    EXEMPLAR,
    TEXT,
    TEXT_NEGATIVE,
    TEXT_PARAPHRASE,
)
from sambench.prompts.phrases import PhraseTable
from sambench.prompts.types import ConceptPrompt

TargetValues = Mapping[str, Mapping[str, int]]
"""dataset -> {target name: label value}: every target of each dataset."""


def exemplar_box(mask: np.ndarray) -> np.ndarray:
    """The 4 float XYXY (inclusive) box of the largest 4-connected component of an HxW mask."""
    comps = gt_instances(mask)
    if len(comps) == 0:
        raise ValueError("exemplar_box: empty mask")
    areas = comps.reshape(len(comps), -1).sum(1)
    ys, xs = np.nonzero(comps[int(np.argmax(areas))])
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float64)


def check_concept_model(model: Any, strategies: tuple[str, ...]) -> None:
    """A model without ``segment_concepts`` cannot run the concept strategies: OptionError."""
    if not callable(getattr(model, "segment_concepts", None)):
        raise OptionError(
            "--strategies",
            f"{', '.join(strategies)} need a model that takes text and exemplar prompts "
            f"(sam3); {getattr(model, 'name', model)!r} takes points and boxes only",
        )


@dataclass
class _Ask:
    strategy: str
    prompt: ConceptPrompt
    obj: ObjectTarget | None  # None: an absent target (T-neg)
    target: str
    label_value: int
    phrase_index: int = 0


@dataclass
class ConceptTask:
    """Run the concept ``strategies`` on every image (see the module docstring).

    ``targets``: every target of each dataset (T-neg's candidates); ``phrases``: the table.
    ``concept_replay``: ask a prompt file's concept records instead (``--prompts``,
    :mod:`sambench.engine.concept_replay`).
    """

    strategies: tuple[str, ...]
    phrases: PhraseTable
    targets: TargetValues = field(default_factory=dict)
    concept_replay: ConceptReplay | None = None
    name: str = "concept"

    def _replayed(self, ctx: ImageContext, replay: ConceptReplay) -> list[_Ask]:
        first = ctx.objects[0].row
        dataset, image_id = str(first["dataset"]), str(first["image_id"])
        objs = {int(o.row["label_value"]): o for o in ctx.objects}  # type: ignore[call-overload]
        for value in objs:
            for s in self.strategies:
                err = replay.missing(dataset, image_id, value, s)
                if err is not None:
                    raise err
        asks = []
        for r in replay.records(dataset, image_id, self.strategies):
            obj = None if r.strategy == TEXT_NEGATIVE else objs.get(r.label_value)
            if r.strategy != TEXT_NEGATIVE and obj is None:
                raise DataError(
                    replay.path,
                    f"line {r.line}: label_value {r.label_value} is not an object of "
                    f"{image_id!r} in this prepared dataset",
                )
            target = r.object_name if obj is None else str(obj.row["object_name"])
            asks.append(_Ask(r.strategy, r.prompt, obj, target, r.label_value, r.phrase_index))
        return asks

    def _asks(self, ctx: ImageContext) -> list[_Ask]:
        if self.concept_replay is not None and ctx.objects:
            return self._replayed(ctx, self.concept_replay)
        asks: list[_Ask] = []
        for obj in ctx.objects:
            target, modality = str(obj.row["object_name"]), str(obj.row.get("modality", ""))
            value = int(obj.row["label_value"])  # type: ignore[call-overload]
            if TEXT in self.strategies:
                phrase = self.phrases.phrase(target, modality)
                asks.append(_Ask(TEXT, ConceptPrompt(text=phrase), obj, target, value))
            if TEXT_PARAPHRASE in self.strategies:
                for i, phrase in enumerate(self.phrases.paraphrases(target, modality)):
                    p = ConceptPrompt(text=phrase)
                    asks.append(_Ask(TEXT_PARAPHRASE, p, obj, target, value, i))
            if EXEMPLAR in self.strategies:
                p = ConceptPrompt(boxes=exemplar_box(obj.mask)[None])
                asks.append(_Ask(EXEMPLAR, p, obj, target, value))
        if TEXT_NEGATIVE in self.strategies and ctx.objects:
            first = ctx.objects[0].row
            dataset, modality = str(first["dataset"]), str(first.get("modality", ""))
            present = {int(o.row["label_value"]) for o in ctx.objects}  # type: ignore[call-overload]
            for target, value in sorted(self.targets.get(dataset, {}).items()):
                if value in present:
                    continue
                if ctx.label is not None and bool((ctx.label == value).any()):
                    continue  # in the label but not a manifest object here (e.g. filtered out)
                p = ConceptPrompt(text=self.phrases.phrase(target, modality))
                asks.append(_Ask(TEXT_NEGATIVE, p, None, target, int(value)))
        return asks

    def check_model(self, model: Any) -> None:
        """Refuse a model without ``segment_concepts`` before the run starts (OptionError)."""
        check_concept_model(model, self.strategies)

    def __call__(self, ctx: ImageContext) -> list[dict[str, object]]:
        check_concept_model(ctx.model, self.strategies)
        asks = self._asks(ctx)
        if not asks:
            return []
        t0 = time.perf_counter()
        found: list[Instances] = ctx.model.segment_concepts(  # type: ignore[attr-defined]
            ctx.embedding, [a.prompt for a in asks]
        )
        share = (time.perf_counter() - t0) / len(asks)
        return [self._row(ctx, a, inst, share) for a, inst in zip(asks, found, strict=True)]

    def _row(
        self, ctx: ImageContext, ask: _Ask, inst: Instances, seconds: float
    ) -> dict[str, object]:
        masks = np.asarray(inst.masks, bool)
        if ctx.roi is not None:
            masks = masks & np.asarray(ctx.roi, bool)[None]
        union = np.asarray(masks.any(axis=0)) if len(masks) else np.zeros(ctx.image.shape[:2], bool)
        scores = np.asarray(inst.scores, np.float64)
        top = float(scores.max()) if len(scores) else float("nan")
        if ask.obj is not None:
            row = ctx.base_row(ask.obj)
        else:
            row = ctx.base_row(ctx.objects[0])
            row.update(object_name=ask.target, label_value=ask.label_value, area=0)
            for k in ("bbox_x_min", "bbox_y_min", "bbox_x_max", "bbox_y_max"):
                if k in row:
                    row[k] = -1
        instance_type = (
            self.phrases.is_instance_type(ask.target) if self.phrases.has(ask.target) else False
        )
        row.update(
            strategy=ask.strategy,
            selection=CONCEPT_SELECTION,
            status="ok",
            skip_reason="",
            candidate_index=-1,
            n_candidates=len(masks),
            predicted_iou=top,
            pred_area=int(union.sum()),
            decode_seconds=seconds,
            prompt=concept_prompt_to_json(ask.prompt),
            phrase=ask.prompt.text or "",
            phrase_index=ask.phrase_index,
            present=ask.obj is not None,
            n_instances=len(masks),
            max_instance_score=top,
            instance_scores=json.dumps([round(float(s), 4) for s in scores]),
            instance_type=instance_type,
        )
        inst_cols: dict[str, float] = dict.fromkeys(INSTANCE_COLUMNS, float("nan"))
        if ask.obj is None:
            row.update(nan_metrics())
        else:
            gt = ask.obj.mask if ctx.roi is None else apply_roi(ask.obj.mask, ctx.roi)
            row.update(segmentation_metrics(union, gt, ctx.metric_config))
            if instance_type:
                inst_cols = instance_metrics(gt, masks)
        row.update(inst_cols)
        return row
