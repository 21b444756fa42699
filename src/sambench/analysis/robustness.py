"""Prompt-shift robustness (SPEC section 6, paper Table 8).

Rows of the shift experiment (:class:`sambench.engine.shift_task.ShiftTask`) carry
``shift_range`` (e.g. ``"0-10"``) and ``shift_repeat`` (1..R); rows of the ordinary single-round run
carry ``shift_range == "none"`` and ``shift_repeat == 0``, or no such columns / NaN at all (runs made
without the shift task). The DICE drop of an object is its unshifted DICE minus its shifted DICE
(same model, strategy and selection), in DICE points; positive = shifting hurts.
"""

from __future__ import annotations

import pandas as pd

from sambench.prompts.names import STRATEGY_ORDER

UNSHIFTED = "none"
SHIFT_COLUMNS = ("shift_range", "shift_repeat")
_OBJECT = ["dataset", "image_id", "label_value", "model", "strategy", "selection"]


def is_unshifted(results: pd.DataFrame) -> pd.Series:
    """Bool per row: True for rows of the unshifted prompts (``"none"``, NaN or no column)."""
    if "shift_range" not in results.columns:
        return pd.Series(True, index=results.index)
    sr = results["shift_range"]
    return sr.isna() | (sr.astype(str) == UNSHIFTED)


def unshifted(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of the unshifted prompts only."""
    return results[is_unshifted(results)]


def _range_key(label: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in str(label).split("-"))
    except ValueError:
        return (float("inf"), float("inf"))
    return lo, hi


def shift_drop_long(
    results: pd.DataFrame, selection: str = "oracle", metric: str = "dice"
) -> pd.DataFrame:
    """Mean drop per (model, strategy, shift_range, shift_repeat) on objects evaluated ok both
    unshifted and shifted. Columns: model, strategy, shift_range, shift_repeat, n, base_mean,
    shifted_mean, drop (= base_mean - shifted_mean, the mean of per-object drops)."""
    need = [*_OBJECT, "status", metric, *SHIFT_COLUMNS]
    missing = [c for c in need if c not in results.columns]
    if missing:
        raise ValueError(
            f"results: missing columns {missing}; run the prompt-shift task (ShiftTask) first"
        )
    df = results[(results["status"] == "ok") & (results["selection"] == selection)]
    mask = is_unshifted(df)
    base = df.loc[mask, [*_OBJECT, metric]]
    shifted = df.loc[~mask, [*_OBJECT, *SHIFT_COLUMNS, metric]]
    if base.duplicated(_OBJECT).any():
        raise ValueError(
            "results: several unshifted rows for one (object, model, strategy, selection)"
        )
    m = shifted.merge(base, on=_OBJECT, suffixes=("", "_base"), how="inner")
    m["drop"] = m[f"{metric}_base"] - m[metric]
    keys = ["model", "strategy", "shift_range", "shift_repeat"]
    g = m.groupby(keys, sort=True)
    out = g.agg(
        n=("drop", "size"),
        base_mean=(f"{metric}_base", "mean"),
        shifted_mean=(metric, "mean"),
        drop=("drop", "mean"),
    ).reset_index()
    out["shift_repeat"] = out["shift_repeat"].astype(int)
    return out


def shift_drop_table(
    results: pd.DataFrame, selection: str = "oracle", metric: str = "dice"
) -> pd.DataFrame:
    """The paper's Table 8: mean DICE drop (points) per shift range (rows) and strategy (columns).

    One row per (model, shift range, repeat) with ``repeat`` = "1", "2", ... and a final
    ``"mean"`` row per range = the mean of the repeats' mean drops. Columns: model, shift_px,
    repeat, then the strategies (S2..S6 order). Ranges sorted by their lower bound.
    """
    return shift_drop_table_from_long(shift_drop_long(results, selection=selection, metric=metric))


def shift_drop_table_from_long(long: pd.DataFrame) -> pd.DataFrame:
    """:func:`shift_drop_table`'s layout of a :func:`shift_drop_long` table."""
    long = long.copy()
    if long.empty:
        return pd.DataFrame(columns=["model", "shift_px", "repeat"])
    long["repeat"] = long["shift_repeat"].astype(str)
    mean = long.groupby(["model", "strategy", "shift_range"], as_index=False)["drop"].mean()
    mean["repeat"] = "mean"
    both = pd.concat([long[["model", "strategy", "shift_range", "repeat", "drop"]], mean])
    wide = both.pivot_table(
        index=["model", "shift_range", "repeat"], columns="strategy", values="drop", aggfunc="first"
    ).reset_index()
    order = {s: i for i, s in enumerate(STRATEGY_ORDER)}
    strategies = sorted(set(long["strategy"]), key=lambda s: (order.get(s, len(order)), s))
    wide["_r"] = wide["shift_range"].map(_range_key)
    wide["_p"] = wide["repeat"].map(lambda r: float("inf") if r == "mean" else int(r))
    wide = wide.sort_values(["model", "_r", "_p"]).drop(columns=["_r", "_p"])
    wide = wide.rename(columns={"shift_range": "shift_px"})
    wide.columns.name = None
    return wide[["model", "shift_px", "repeat", *strategies]].reset_index(drop=True)
