"""Prompt-shift robustness task (SPEC section 6, paper 4.10): decode shifted prompts from the
image's one embedding.

For every object, strategy, shift range and repeat, the strategy's prompts are shifted with
:func:`sambench.prompts.shift.shift_prompts` and decoded; the rows carry ``shift_range`` (e.g.
``"0-10"``) and ``shift_repeat`` (1..repeats) besides the usual columns. Pair it with
:class:`~sambench.engine.single_round.SingleRoundTask` in the same run for the unshifted baseline
(:func:`sambench.analysis.robustness.shift_drop_table` compares the two).

Randomness: each (repeat, range, object, strategy) gets its own generator,
``np.random.default_rng(SeedSequence([seed, repeat, lo_milli, hi_milli, crc32(image_id),
label_value, strategy_index]))`` (range ends in thousandths of a pixel; ``strategy_index`` = the
position in ``STRATEGIES``), so results depend neither on the order in which images or objects are
processed, nor on which other ranges, strategies or objects are run.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sambench.engine.context import ImageContext
from sambench.engine.prompt_file import ReplayPrompts
from sambench.engine.single_round import object_prompts, prompt_error_rows, scored_rows
from sambench.prompts.shift import SHIFT_RANGES, range_label, shift_prompts
from sambench.prompts.strategies import PROMPT_RULES, STRATEGIES, PromptError
from sambench.prompts.types import Prompts


def shift_generator(
    seed: int,
    repeat: int,
    shift_range: tuple[float, float],
    image_id: str,
    label_value: int,
    strategy: str,
) -> np.random.Generator:
    """The generator of one (seed, repeat, range, image, object, strategy); see the module doc."""
    lo, hi = shift_range
    entropy = [
        int(seed),
        int(repeat),
        round(float(lo) * 1000),
        round(float(hi) * 1000),
        zlib.crc32(str(image_id).encode("utf-8")),
        int(label_value),
        STRATEGIES.index(strategy),
    ]
    return np.random.default_rng(np.random.SeedSequence(entropy))


@dataclass
class ShiftTask:
    """Decode every object's shifted prompts for each (strategy, range, repeat), batched across the
    image's objects (one ``predict`` call per (strategy, range, repeat)).

    ``strategies``: names among S2..S6; ``ranges``: (lo, hi) offset magnitudes in pixels;
    ``repeats``: repeats per range (numbered 1..repeats); ``seed``: non-negative base seed.
    ``replay``: shift the prompts of a prompt file (``--prompts``) instead of the rules' prompts.
    """

    strategies: tuple[str, ...]
    ranges: tuple[tuple[float, float], ...] = SHIFT_RANGES
    repeats: int = 3
    seed: int = 0
    prompt_rules: str = "paper"
    replay: ReplayPrompts | None = None
    name: str = "prompt_shift"

    def __post_init__(self) -> None:
        self.strategies = tuple(self.strategies)
        if not self.strategies:
            raise ValueError(f"strategies: give at least one of {', '.join(STRATEGIES)}")
        for s in self.strategies:
            if s not in STRATEGIES:
                raise ValueError(f"strategies: {s!r} is not one of {', '.join(STRATEGIES)}")
        if self.prompt_rules not in PROMPT_RULES:
            raise ValueError(
                f"prompt_rules: {self.prompt_rules!r} is not one of {', '.join(PROMPT_RULES)}"
            )
        if isinstance(self.repeats, bool) or int(self.repeats) != self.repeats or self.repeats < 1:
            raise ValueError(f"repeats: expected an integer >= 1, got {self.repeats!r}")
        if isinstance(self.seed, bool) or int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {self.seed!r}")
        self.ranges = tuple((float(lo), float(hi)) for lo, hi in self.ranges)
        for lo, hi in self.ranges:
            if not (0 <= lo <= hi):
                raise ValueError(f"ranges: expected (lo, hi) with 0 <= lo <= hi, got {(lo, hi)}")

    def __call__(self, ctx: ImageContext) -> list[dict[str, object]]:
        per_obj = object_prompts(ctx, self.strategies, self.prompt_rules, self.replay)
        rows: list[dict[str, object]] = []
        for strategy in self.strategies:
            ready = [i for i, p in enumerate(per_obj) if isinstance(p[strategy], Prompts)]
            for shift_range in self.ranges:
                label = range_label(shift_range)
                for repeat in range(1, self.repeats + 1):
                    extra = {"shift_range": label, "shift_repeat": repeat}
                    if ready:
                        rows += self._decode(
                            ctx, per_obj, ready, strategy, shift_range, repeat, extra
                        )
                    rows += prompt_error_rows(ctx, per_obj, strategy, **extra)
        return rows

    def _decode(
        self,
        ctx: ImageContext,
        per_obj: Sequence[dict[str, Prompts | PromptError]],
        ready: list[int],
        strategy: str,
        shift_range: tuple[float, float],
        repeat: int,
        extra: dict[str, object],
    ) -> list[dict[str, object]]:
        batch: list[Prompts] = []
        for i in ready:
            obj = ctx.objects[i]
            rng = shift_generator(
                self.seed,
                repeat,
                shift_range,
                str(obj.row["image_id"]),
                int(obj.row["label_value"]),  # type: ignore[call-overload]
                strategy,
            )
            p = per_obj[i][strategy]
            assert isinstance(p, Prompts)
            batch.append(shift_prompts(p, shift_range, obj.mask.shape, rng))
        t0 = time.perf_counter()
        pred = ctx.model.predict(ctx.embedding, batch, multimask_output=ctx.prompted_multimask)
        share = (time.perf_counter() - t0) / len(ready)
        rows: list[dict[str, object]] = []
        for j, i in enumerate(ready):
            rows += scored_rows(
                ctx,
                ctx.objects[i],
                strategy,
                pred.masks[j],
                pred.scores[j],
                batch[j],
                share,
                **extra,
            )
        return rows
