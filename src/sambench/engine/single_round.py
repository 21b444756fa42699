"""Single-round prompt strategies S2-S6: every object, every strategy, from one embedding."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sambench.engine.context import ImageContext, ObjectTarget, prompts_to_json
from sambench.engine.prompt_file import ReplayPrompts
from sambench.engine.selection import nan_metrics, select_and_score
from sambench.prompts.names import SELECTIONS
from sambench.prompts.strategies import PromptError, make_all_prompts
from sambench.prompts.types import Prompts
from sambench.store.atomic import write_png_atomic


def skipped_rows(
    base: dict[str, object], strategy: str, reason: str, **extra: object
) -> list[dict[str, object]]:
    """One row per selection, status ``skipped``, NaN metrics, and the reason.

    ``base`` holds the manifest and per-image columns (e.g. :meth:`ImageContext.base_row`).
    """
    rows = []
    for sel in SELECTIONS:
        row = dict(base)
        row.update(strategy=strategy, selection=sel, status="skipped", skip_reason=reason)
        row.update(candidate_index=-1, n_candidates=0, predicted_iou=float("nan"), pred_area=0)
        row.update(decode_seconds=float("nan"), prompt="")
        row.update(nan_metrics())
        row.update(extra)
        rows.append(row)
    return rows


def mask_png_path(masks_dir: Path, row: dict[str, object], strategy: str, selection: str) -> Path:
    """``<masks_dir>/<dataset>/<image_id>.v<label_value>.<strategy>.<selection>.png``."""
    name = f"{row['image_id']}.v{int(row['label_value'])}.{strategy}.{selection}.png"  # type: ignore[call-overload]
    return Path(masks_dir) / str(row["dataset"]) / name


def save_selected_masks(
    masks_dir: Path, rows: list[dict[str, object]], candidates: np.ndarray
) -> None:
    """Write each row's selected candidate (``candidate_index`` of Kx HxW bool ``candidates``) as a
    0/255 uint8 PNG at :func:`mask_png_path`."""
    for row in rows:
        k = int(row["candidate_index"])  # type: ignore[call-overload]
        path = mask_png_path(masks_dir, row, str(row["strategy"]), str(row["selection"]))
        write_png_atomic(path, candidates[k].astype(np.uint8) * 255)


def scored_rows(
    ctx: ImageContext,
    obj: ObjectTarget,
    strategy: str,
    candidates: np.ndarray,
    scores: np.ndarray,
    prompts: Prompts | None,
    decode_seconds: float,
    **extra: object,
) -> list[dict[str, object]]:
    """One row per selection (``oracle``, ``score``) for one object's K candidates."""
    rows = []
    prompt_json = prompts_to_json(prompts)
    for sel, k, metrics in select_and_score(
        candidates, scores, obj.mask, ctx.metric_config, roi=ctx.roi
    ):
        row = ctx.base_row(obj)
        row.update(strategy=strategy, selection=sel, status="ok", skip_reason="")
        row.update(
            candidate_index=k,
            n_candidates=int(candidates.shape[0]),
            predicted_iou=float(scores[k]),
            pred_area=int(candidates[k].sum()),
            decode_seconds=decode_seconds,
            prompt=prompt_json,
        )
        row.update(metrics)
        row.update(extra)
        rows.append(row)
    return rows


def object_prompts(
    ctx: ImageContext,
    strategies: tuple[str, ...],
    prompt_rules: str,
    replay: ReplayPrompts | None,
) -> list[dict[str, Prompts | PromptError]]:
    """Per object of ``ctx`` (in order): strategy name -> its prompts in original pixels, or the
    :class:`PromptError` that made it impossible. Read from ``replay`` (a prompt file) when
    given, else made from the object's mask by the ``prompt_rules``."""
    return [
        replay.prompts_for(o.row, strategies)
        if replay is not None
        else make_all_prompts(o.mask, strategies, rules=prompt_rules)
        for o in ctx.objects
    ]


def prompt_error_rows(
    ctx: ImageContext,
    per_obj: Sequence[dict[str, Prompts | PromptError]],
    strategy: str,
    **extra: object,
) -> list[dict[str, object]]:
    """The skipped rows (``skip_reason`` ``"prompt: <reason>"``) of the objects whose
    ``strategy`` prompts could not be made; ``extra`` columns added to each."""
    rows: list[dict[str, object]] = []
    for i, p in enumerate(per_obj):
        err = p[strategy]
        if isinstance(err, PromptError):
            base = ctx.base_row(ctx.objects[i])
            rows += skipped_rows(base, strategy, f"prompt: {err.reason}", **extra)
    return rows


@dataclass
class SingleRoundTask:
    """Decode every object under each strategy; objects of one strategy go in one batched call.

    ``decode_seconds`` of a row is its share of the strategy's batched prompt-encoding + decoding
    time (batch time / objects in the batch): the paper's Table 4 "per image, one target" figure.
    ``masks_dir``: save each selected mask as PNG (:func:`save_selected_masks`).
    ``replay``: take the prompts from a prompt file (``--prompts``) instead of the strategy rules.
    """

    strategies: tuple[str, ...]
    prompt_rules: str = "paper"
    masks_dir: Path | None = None
    replay: ReplayPrompts | None = None
    name: str = "single_round"

    def __call__(self, ctx: ImageContext) -> list[dict[str, object]]:
        per_obj = object_prompts(ctx, self.strategies, self.prompt_rules, self.replay)
        rows: list[dict[str, object]] = []
        for strategy in self.strategies:
            ready = [i for i, p in enumerate(per_obj) if isinstance(p[strategy], Prompts)]
            if ready:
                batch = [per_obj[i][strategy] for i in ready]
                t0 = time.perf_counter()
                mm = ctx.prompted_multimask
                pred = ctx.model.predict(ctx.embedding, batch, multimask_output=mm)  # type: ignore[arg-type]
                share = (time.perf_counter() - t0) / len(ready)
                for j, i in enumerate(ready):
                    obj_rows = scored_rows(
                        ctx,
                        ctx.objects[i],
                        strategy,
                        pred.masks[j],
                        pred.scores[j],
                        batch[j],  # type: ignore[arg-type]
                        share,
                    )
                    if self.masks_dir is not None:
                        save_selected_masks(self.masks_dir, obj_rows, pred.masks[j])
                    rows += obj_rows
            rows += prompt_error_rows(ctx, per_obj, strategy)
        return rows
