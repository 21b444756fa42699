"""Multi-round interactive segmentation (SPEC section 7, paper 4.11) as an engine task.

For every object of an image, from the image's one embedding (never re-encoded):

- Round 1: one positive click at the S2 point (:func:`sambench.prompts.clicks.first_click`),
  decoded with ``multimask_output=True``; of the K candidates the one with the highest predicted IoU
  is kept (what a user without ground truth gets; the ground truth only drives the simulated clicks,
  never the choice of mask).
- Round k > 1: the next click comes from the kept mask of round k-1 and the ground truth
  (:func:`sambench.prompts.clicks.next_click`: larger error region, farthest pixel from its
  boundary). The model gets all k clicks so far (Nx2 (X, Y), labels 1/0) plus the previous round's
  low-resolution logits of the kept mask as ``Prompts.mask_logits`` (1xhxw), with
  ``multimask_output=False``. Masks are the adapter's binarized ones (its own threshold).

Objects of one image are decoded together, one batched ``predict`` call per round (all active
objects then have the same prompt signature). An object stops once nothing is left to click (its
mask equals the ground truth, or every remaining error pixel was already clicked); its last result is
carried forward so that every object has one row per click index 1..``max_clicks`` (column
``carried_forward`` is True on those rows; no click was made: ``click_x = click_y = -1``,
``decode_seconds`` 0).

Start with a box (``start_with="box"``, micro-sam's ``--start-with box``, the fair start for
box-trained models such as LiteMedSAM): round 1 decodes the object's S5 box alone with the prompted strategies'
``multimask`` setting (so round 1 equals the S5 row of the same selection rule, the highest
predicted IoU); every later round adds one corrective click (same rule as above) and keeps the box,
with ``multimask_output=False``. Round 1 then has no click (``click_x = click_y = -1``), so
``max_clicks`` rounds make ``max_clicks - 1`` clicks. Column ``start_with`` says which start a
row used.

Rows: strategy ``"interactive"``, selection ``"score"``, ``click_index`` 1..max_clicks, the metric
columns of :func:`sambench.metrics.segmentation_metrics` (or only dice/jaccard with
``full_metrics=False``), ``tp``/``fp``/``fn``, ``predicted_iou`` of the kept mask, ``click_x``,
``click_y``, ``click_positive`` (the click of this round) and ``prompt`` (JSON of all clicks so far).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from sambench.data.roi import apply_roi
from sambench.engine.context import ImageContext, ObjectTarget, prompts_to_json
from sambench.engine.selection import nan_metrics
from sambench.metrics import (
    METRIC_NAMES,
    confusion_counts,
    dice_from_counts,
    jaccard_from_counts,
    segmentation_metrics,
)
from sambench.prompts.clicks import first_click, next_click
from sambench.prompts.strategies import PROMPT_RULES, PromptError, make_all_prompts
from sambench.prompts.types import Prompts

STRATEGY = "interactive"
SELECTION = "score"
START_WITH = ("point", "box")


@dataclass
class _Track:
    """The state of one object across rounds."""

    obj: ObjectTarget
    clicks: list[tuple[int, int, bool]] = field(default_factory=list)
    box: np.ndarray | None = None  # XYXY float64, the S5 box when starting with a box
    mask: np.ndarray | None = None  # HxW bool, the kept mask of the last round
    logits: np.ndarray | None = None  # 1xhxw float32, the kept mask's low-res logits
    last_row: dict[str, object] | None = None
    done: bool = False

    def prompts(self) -> Prompts:
        if not self.clicks:
            return Prompts(box=self.box, mask_logits=self.logits)
        pts = np.array([(x, y) for x, y, _ in self.clicks], dtype=np.float64)
        labels = np.array([int(pos) for _, _, pos in self.clicks], dtype=np.int64)
        return Prompts(points=pts, labels=labels, box=self.box, mask_logits=self.logits)


def _overlap_metrics(tp: int, fp: int, fn: int) -> dict[str, float | bool]:
    """DICE and JAC in % from pixel counts; the distance metrics NaN (``full_metrics=False``)."""
    d: dict[str, float | bool] = {m: float("nan") for m in METRIC_NAMES}
    d["dice"] = dice_from_counts(tp, fp, fn)
    d["jaccard"] = jaccard_from_counts(tp, fp, fn)
    d["empty_prediction"] = tp + fp == 0
    return d


@dataclass
class InteractiveTask:
    """Simulated clicking up to ``max_clicks`` per object (an :class:`ImageTask`).

    ``prompt_rules`` picks the S2 (or S5) rule of round 1 (``"paper"`` or ``"authors-code"``);
    ``start_with``: ``"point"`` (round 1 = the S2 click, default) or ``"box"`` (the S5 box).
    ``full_metrics``: compute every metric of :func:`segmentation_metrics` per click (default);
    False computes only DICE and JAC (distance metrics NaN), for large runs.
    """

    max_clicks: int = 20
    prompt_rules: str = "paper"
    full_metrics: bool = True
    start_with: str = "point"
    name: str = "interactive"

    def __post_init__(self) -> None:
        if not isinstance(self.max_clicks, int) or self.max_clicks < 1:
            raise ValueError(f"max_clicks: expected an integer >= 1, got {self.max_clicks!r}")
        if self.prompt_rules not in PROMPT_RULES:
            raise ValueError(
                f"prompt_rules: {self.prompt_rules!r} is not one of {', '.join(PROMPT_RULES)}"
            )
        if self.start_with not in START_WITH:
            raise ValueError(
                f"start_with: {self.start_with!r} is not one of {', '.join(START_WITH)}"
            )

    def __call__(self, ctx: ImageContext) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        tracks: list[_Track] = []
        for obj in ctx.objects:
            if self.start_with == "box":
                box = make_all_prompts(obj.mask, ("S5",), rules=self.prompt_rules)["S5"]
                if isinstance(box, PromptError):
                    rows += self._skipped(ctx, obj, f"prompt: {box.reason}")
                    continue
                tracks.append(_Track(obj=obj, box=box.box))
                continue
            try:
                click = first_click(obj.mask, rules=self.prompt_rules)
            except PromptError as e:
                rows += self._skipped(ctx, obj, f"prompt: {e.reason}")
                continue
            tracks.append(_Track(obj=obj, clicks=[click]))

        for k in range(1, self.max_clicks + 1):
            if k > 1:
                for t in tracks:
                    if t.done:
                        continue
                    assert t.mask is not None
                    clicked = np.array([(x, y) for x, y, _ in t.clicks], dtype=np.float64).reshape(
                        -1, 2
                    )
                    c = next_click(t.mask, t.obj.mask, clicked)
                    if c is None:
                        t.done = True
                    else:
                        t.clicks.append(c)
            active = [t for t in tracks if not t.done]
            if active:
                rows += self._round(ctx, active, k)
            for t in tracks:
                if t.done:
                    assert t.last_row is not None
                    row = dict(t.last_row)
                    row.update(click_index=k, carried_forward=True, decode_seconds=0.0)
                    row.update(click_x=-1, click_y=-1, click_positive=False)
                    rows.append(row)
        return rows

    def _round(self, ctx: ImageContext, active: list[_Track], k: int) -> list[dict[str, object]]:
        """Decode the active objects in one batched call and record one row each."""
        batch = [t.prompts() for t in active]
        t0 = time.perf_counter()
        if self.start_with == "box":
            multimask = ctx.prompted_multimask if k == 1 else False
        else:
            multimask = k == 1
        pred = ctx.model.predict(ctx.embedding, batch, multimask_output=multimask)  # type: ignore[arg-type]
        share = (time.perf_counter() - t0) / len(active)
        rows = []
        for j, t in enumerate(active):
            scores = np.asarray(pred.scores[j])
            best = int(np.argmax(scores))  # highest predicted IoU; ties take the first
            t.mask = np.asarray(pred.masks[j, best], dtype=bool)
            t.logits = np.asarray(pred.low_res_logits[j, best : best + 1], dtype=np.float32)
            x, y, pos = t.clicks[-1] if t.clicks else (-1, -1, False)
            row = ctx.base_row(t.obj)
            row.update(strategy=STRATEGY, selection=SELECTION, status="ok", skip_reason="")
            row.update(
                click_index=k,
                start_with=self.start_with,
                carried_forward=False,
                click_x=x,
                click_y=y,
                click_positive=pos,
                candidate_index=best,
                n_candidates=int(scores.shape[0]),
                predicted_iou=float(scores[best]),
                pred_area=int(t.mask.sum()),
                decode_seconds=share,
                prompt=prompts_to_json(batch[j]),
            )
            tp, fp, fn = (int(v) for v in confusion_counts(t.mask, t.obj.mask))
            if self.full_metrics:
                row.update(
                    segmentation_metrics(
                        apply_roi(t.mask, ctx.roi),
                        apply_roi(t.obj.mask, ctx.roi),
                        ctx.metric_config,
                    )
                )
            else:
                row.update(_overlap_metrics(tp, fp, fn))
            row.update(tp=tp, fp=fp, fn=fn)
            t.last_row = row
            rows.append(row)
        return rows

    def _skipped(
        self, ctx: ImageContext, obj: ObjectTarget, reason: str
    ) -> list[dict[str, object]]:
        rows = []
        for k in range(1, self.max_clicks + 1):
            row = ctx.base_row(obj)
            row.update(strategy=STRATEGY, selection=SELECTION, status="skipped", skip_reason=reason)
            row.update(
                click_index=k,
                start_with=self.start_with,
                carried_forward=False,
                click_x=-1,
                click_y=-1,
                click_positive=False,
                candidate_index=-1,
                n_candidates=0,
                predicted_iou=float("nan"),
                pred_area=0,
                decode_seconds=float("nan"),
                prompt="",
            )
            row.update(nan_metrics())
            rows.append(row)
        return rows
