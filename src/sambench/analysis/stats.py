"""Statistics on a results table: partial correlations with object attributes (paper Table 6),
bootstrap confidence intervals, paired Wilcoxon comparisons and volume-level (3D) DICE.

Every function takes the tidy results DataFrame (one row per image, object, model, strategy,
selection; see :mod:`sambench.engine.evaluate`) and returns a DataFrame. Only rows with
``status == "ok"`` enter a statistic. Rows of the prompt-shift experiment (``shift_range`` other
than ``"none"``) are left out of everything here except :func:`volume_dice`, which keeps them apart
by its keys; use :mod:`sambench.analysis.robustness` for them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from pingouin import multicomp
from scipy import stats as sps

from sambench.analysis.attributes import ATTRIBUTES
from sambench.analysis.robustness import unshifted
from sambench.analysis.summary import STRATEGY_ORDER, strategy_sorted

#: p-values below this get the ``*`` marker of the paper's Table 6.
SIGNIFICANCE = 0.001
BETWEEN_CHOICES = ("strategy", "model")
OBJECT_KEYS = ("dataset", "image_id", "label_value")


def _require(df: pd.DataFrame, cols: Sequence[str], what: str = "results") -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing columns {missing}; present: {sorted(df.columns)}")


def _ok(results: pd.DataFrame, selection: str | None) -> pd.DataFrame:
    _require(results, ["status"])
    df = unshifted(results)
    df = df[df["status"] == "ok"]
    if selection is not None:
        _require(df, ["selection"])
        if selection not in set(results["selection"]):
            raise ValueError(
                f"selection: {selection!r} not in the results; present: {sorted(set(results['selection']))}"
            )
        df = df[df["selection"] == selection]
    return df


# ---------------------------------------------------------------- partial correlation


def partial_spearman(
    df: pd.DataFrame, x: str, y: str, covars: Sequence[str]
) -> tuple[float, float]:
    """Spearman partial correlation of columns ``x`` and ``y`` controlling for ``covars``.

    Rows with a NaN in any of the columns are dropped; the rest are ranked (average ranks for
    ties) and the Pearson partial correlation of the ranks is read from the inverse of their
    covariance matrix. Two-sided p-value from Student's t with ``n - 2 - k`` degrees of freedom
    (k = number of covariates), as ``pingouin.partial_corr(method="spearman")``.
    Returns ``(r, p)``; both NaN when a column is constant or ``n - 2 - k < 1``.
    """
    cols = [x, y, *covars]
    _require(df, cols, "df")
    if len(set(cols)) != len(cols):
        raise ValueError(f"partial_spearman: x, y and covars must be distinct, got {cols}")
    data = df[cols].apply(pd.to_numeric, errors="raise").dropna()
    n, k = data.shape[0], len(covars)
    dof = n - 2 - k
    if dof < 1 or (data.nunique() < 2).any():
        return float("nan"), float("nan")
    ranks = data.rank().to_numpy(dtype=np.float64)
    prec = np.linalg.pinv(np.cov(ranks, rowvar=False), hermitian=True)
    r = float(np.clip(-prec[0, 1] / np.sqrt(prec[0, 0] * prec[1, 1]), -1.0, 1.0))
    if abs(r) == 1.0:
        return r, 0.0
    t = r * np.sqrt(dof / (1.0 - r * r))
    return r, float(2.0 * sps.t.sf(abs(t), dof))


def attribute_correlations(
    results_with_attrs: pd.DataFrame,
    *,
    metric: str = "dice",
    selection: str = "oracle",
    attributes: Sequence[str] = ATTRIBUTES,
) -> pd.DataFrame:
    """The paper's Table 6: Spearman partial correlation of ``metric`` with each attribute,
    controlling for the other attributes, per (model, strategy).

    ``results_with_attrs``: results joined with :func:`sambench.analysis.attributes.attributes_table`
    (see :func:`~sambench.analysis.attributes.with_attributes`). Columns of the output: model,
    strategy, n, then per attribute ``<a>`` (r), ``<a>_p`` (p-value) and ``<a>_cell`` (r to 3
    decimals with ``*`` when p < 0.001). An attribute constant within a group (e.g. one modality)
    gets NaN and is dropped from the other attributes' covariates (controlling for a constant
    changes nothing).
    """
    _require(results_with_attrs, ["model", "strategy", metric, *attributes])
    df = _ok(results_with_attrs, selection)
    rows = []
    for (model, strategy), g in df.groupby(["model", "strategy"], sort=True):
        g = g[[metric, *attributes]].dropna()
        varying = [a for a in attributes if g[a].nunique() > 1]
        row: dict[str, object] = {"model": model, "strategy": strategy, "n": len(g)}
        for a in attributes:
            r = p = float("nan")
            if a in varying:
                r, p = partial_spearman(g, metric, a, [c for c in varying if c != a])
            mark = "*" if p < SIGNIFICANCE else ""
            row.update({a: r, f"{a}_p": p, f"{a}_cell": "" if np.isnan(r) else f"{r:.3f}{mark}"})
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    return sort_by_model_strategy(out)


def table6_layout(correlations: pd.DataFrame, cell: bool = False) -> pd.DataFrame:
    """Pivot :func:`attribute_correlations` to the paper's layout: one row per strategy, columns
    ``<attribute>_<model>`` (attribute-major, like ``paper-table6-spearman-partial.csv``); ``r``
    values, or the ``*``-marked strings when ``cell``."""
    attrs = [a for a in ATTRIBUTES if a in correlations.columns]
    models = sorted(correlations["model"].unique())
    wide = pd.DataFrame({"strategy": strategy_sorted(list(correlations["strategy"]))})
    for a in attrs:
        for m in models:
            sub = correlations[correlations["model"] == m].set_index("strategy")
            name = "modality" if a == "modality_code" else a
            wide[f"{name}_{m}"] = wide["strategy"].map(sub[f"{a}_cell" if cell else a])
    return wide


# ---------------------------------------------------------------- bootstrap


def bootstrap_ci(
    values: np.ndarray | Sequence[float],
    stat: Callable[..., np.ndarray] = np.mean,
    n_boot: int = 2000,
    ci: float = 0.95,
    *,
    rng: np.random.Generator,
    max_elements: int = 2**24,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``stat`` over 1-D ``values``.

    Draws ``n_boot`` resamples of size n with replacement (``rng.integers``, in chunks of at most
    ``max_elements`` drawn indices) and returns the ``(1-ci)/2`` and ``1-(1-ci)/2`` quantiles
    (numpy's linear interpolation) of the resampled statistic. ``stat`` must accept ``axis=1``
    (numpy reductions do). NaN values are an error: drop them first.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values: expected a non-empty 1-D array, got shape {v.shape}")
    if np.isnan(v).any():
        raise ValueError("values: contains NaN; drop them before bootstrapping")
    if not 0 < ci < 1:
        raise ValueError(f"ci: expected 0 < ci < 1, got {ci}")
    if n_boot < 1:
        raise ValueError(f"n_boot: expected >= 1, got {n_boot}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    chunk = max(1, max_elements // v.size)
    boots = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, v.size, size=(min(chunk, n_boot - start), v.size))
        boots.append(np.asarray(stat(v[idx], axis=1), dtype=np.float64))
    dist = np.concatenate(boots)
    alpha = (1.0 - ci) / 2.0
    lo, hi = np.quantile(dist, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def mean_with_ci(
    results: pd.DataFrame,
    by: Sequence[str] = ("model", "strategy"),
    metric: str = "dice",
    *,
    selection: str | None = "oracle",
    n_boot: int = 2000,
    ci: float = 0.95,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Mean of ``metric`` with a percentile bootstrap CI per group of ``by``.

    Groups are visited in sorted order and draw from the one ``rng`` in turn (seeded = repeatable).
    NaN metric values (e.g. distances of empty predictions under ``empty="nan"``) are left out.
    Columns: ``*by, n, mean, ci_lo, ci_hi``.
    """
    by = list(by)
    _require(results, [*by, metric])
    df = _ok(results, selection)
    rows = []
    for key, g in df.groupby(by, sort=True):
        v = g[metric].dropna().to_numpy(dtype=np.float64)
        keys = key if isinstance(key, tuple) else (key,)
        lo, hi = bootstrap_ci(v, n_boot=n_boot, ci=ci, rng=rng) if v.size else (np.nan, np.nan)
        mean = float(v.mean()) if v.size else float("nan")
        rows.append(
            {
                **dict(zip(by, keys, strict=True)),
                "n": int(v.size),
                "mean": mean,
                "ci_lo": lo,
                "ci_hi": hi,
            }
        )
    return pd.DataFrame(rows, columns=[*by, "n", "mean", "ci_lo", "ci_hi"])


# ---------------------------------------------------------------- paired Wilcoxon


def paired_wilcoxon(
    results: pd.DataFrame,
    metric: str = "dice",
    between: str = "strategy",
    pairs: Sequence[tuple[str, str]] | None = None,
    *,
    selection: str = "oracle",
) -> pd.DataFrame:
    """Two-sided Wilcoxon signed-rank tests (``scipy.stats.wilcoxon``, defaults) between levels
    of ``between`` ("strategy" or "model") on the same objects.

    Within each level of the other factor (each model when comparing strategies, each strategy
    when comparing models), level ``a`` and level ``b`` are matched on (dataset, image_id,
    label_value) for the given selection; only objects with an ok row in both enter. ``pairs``
    default to all pairs of levels present (strategies in S1..S6 order, models sorted).
    Columns: the other factor, ``a, b, n, mean_a, mean_b, median_diff`` (median of a - b),
    ``statistic, p_value`` and ``p_holm`` (Holm-adjusted over all rows of the table). When every
    difference is zero the test is undefined: statistic and p are NaN.
    """
    if between not in BETWEEN_CHOICES:
        raise ValueError(f"between: {between!r} is not one of {', '.join(BETWEEN_CHOICES)}")
    other = "model" if between == "strategy" else "strategy"
    _require(results, [*OBJECT_KEYS, between, other, metric])
    df = _ok(results, selection)
    present = list(dict.fromkeys(df[between]))
    pairs = pair_levels(present, between, pairs)
    keys = list(OBJECT_KEYS)
    rows = []
    for ctx, g in df.groupby(other, sort=True):
        for a, b in pairs:
            ga = g.loc[g[between] == a, [*keys, metric]]
            gb = g.loc[g[between] == b, [*keys, metric]]
            m = ga.merge(gb, on=keys, suffixes=("_a", "_b"), validate="one_to_one").dropna()
            va, vb = m[f"{metric}_a"].to_numpy(float), m[f"{metric}_b"].to_numpy(float)
            rows.append(wilcoxon_row(other, ctx, a, b, va, vb))
    return with_holm(pd.DataFrame(rows, columns=wilcoxon_columns(other)))


def pair_levels(
    present: Sequence[str], between: str, pairs: Sequence[tuple[str, str]] | None
) -> list[tuple[str, str]]:
    """The pairs of levels of ``between`` to test: ``pairs`` checked against the ``present``
    levels, or all pairs of them (strategies in S1..S6 order, models sorted)."""
    levels = strategy_sorted(present) if between == "strategy" else sorted(present)
    if pairs is None:
        return list(itertools.combinations(levels, 2))
    for a, b in pairs:
        for lvl in (a, b):
            if lvl not in present:
                raise ValueError(f"pairs: {between} {lvl!r} not in the results; present: {levels}")
    return list(pairs)


def sort_by_model_strategy(out: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by model, then strategy in S1..S6 order (others after, by name)."""
    order = {s: i for i, s in enumerate(STRATEGY_ORDER)}
    out = out.assign(_o=out["strategy"].map(lambda s: order.get(s, len(order))))
    return out.sort_values(["model", "_o", "strategy"]).drop(columns="_o").reset_index(drop=True)


def wilcoxon_columns(other: str) -> list[str]:
    return [other, "a", "b", "n", "mean_a", "mean_b", "median_diff", "statistic", "p_value"]


def wilcoxon_row(
    other: str, ctx: object, a: str, b: str, va: np.ndarray, vb: np.ndarray
) -> dict[str, object]:
    """One row of :func:`paired_wilcoxon`: matched float64 values of levels ``a`` and ``b``."""
    d = va - vb
    stat = p = float("nan")
    if np.any(d != 0):
        res = sps.wilcoxon(va, vb)
        stat, p = float(res.statistic), float(res.pvalue)
    return {
        other: ctx,
        "a": a,
        "b": b,
        "n": len(d),
        "mean_a": float(va.mean()) if len(d) else float("nan"),
        "mean_b": float(vb.mean()) if len(d) else float("nan"),
        "median_diff": float(np.median(d)) if len(d) else float("nan"),
        "statistic": stat,
        "p_value": p,
    }


def with_holm(out: pd.DataFrame) -> pd.DataFrame:
    """Add ``p_holm``: Holm-adjusted ``p_value`` over all tested rows of the table."""
    out["p_holm"] = np.nan
    tested = out["p_value"].notna().to_numpy()
    if tested.any():
        _, adj = multicomp(out.loc[tested, "p_value"].to_numpy(), method="holm")
        out.loc[tested, "p_holm"] = adj
    return out


# ---------------------------------------------------------------- volume DICE


def volume_dice(results: pd.DataFrame) -> pd.DataFrame:
    """3D DICE per (dataset, case, object_name, label_value, model, strategy, selection), plus
    ``shift_range``/``shift_repeat`` when present, over the case's evaluated slices.

    volume_dice = 100 * 2 sum(tp) / (2 sum(tp) + sum(fp) + sum(fn)) over the ok rows with
    ``slice_index >= 0`` (slices of volumes); ``mean_slice_dice`` is the mean slice-level DICE of
    the same rows and ``n_slices`` their count. Only slices where the object was evaluated count,
    so false positives on slices without the object are not seen (the manifest holds no such row).
    """
    keys = ["dataset", "case", "object_name", "label_value", "model", "strategy", "selection"]
    _require(results, [*keys, "slice_index", "status", "dice", "tp", "fp", "fn"])
    keys += [c for c in ("shift_range", "shift_repeat") if c in results.columns]
    df = results[(results["status"] == "ok") & (results["slice_index"] >= 0)]
    sums = df[["tp", "fp", "fn"]].astype(np.int64)
    df = df[keys].assign(tp=sums["tp"], fp=sums["fp"], fn=sums["fn"], dice=df["dice"])
    g = df.groupby(keys, sort=True, dropna=False)
    out = g.agg(
        n_slices=("dice", "size"),
        tp=("tp", "sum"),
        fp=("fp", "sum"),
        fn=("fn", "sum"),
        mean_slice_dice=("dice", "mean"),
    ).reset_index()
    denom = (2 * out["tp"] + out["fp"] + out["fn"]).astype(np.float64)
    out["volume_dice"] = np.where(denom > 0, 200.0 * out["tp"] / denom.where(denom > 0, 1), np.nan)
    return out[[*keys, "n_slices", "volume_dice", "mean_slice_dice", "tp", "fp", "fn"]]
