"""Interactive-segmentation summaries: NoC@t, NoF@t and the per-click curve (paper 4.11, Fig. 16).

- NoC@t (number of clicks): :func:`sambench.metrics.noc.noc` of each object.
- NoF@t (number of failures): the number of objects that never reach ``t`` % within ``max_clicks``.

Input is the results table of :class:`sambench.engine.interactive.InteractiveTask` (rows with
``strategy == "interactive"``, one per object and ``click_index``); IoU is the ``jaccard`` column,
in %. Confidence intervals are 95 % intervals of the mean NoC of a group: by default a cluster
bootstrap over cases within dataset (:func:`sambench.analysis.stats.case_bootstrap`, BCa), or with
``unit="object"`` the percentile bootstrap over objects (:func:`sambench.analysis.stats.bootstrap_ci`),
both from an explicit :class:`numpy.random.Generator`; none below
:data:`sambench.analysis.stats.MIN_CASES` units (``ci_note`` says why).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sambench.analysis.summary import with_target_modality
from sambench.metrics.noc import noc

OBJECT_KEY = ("model", "dataset", "image_id", "label_value")
STRATEGY = "interactive"
DEFAULT_BY = ("model", "target_modality")


def _threshold_name(t: float) -> str:
    return f"{t:g}"


def _interactive_rows(results: pd.DataFrame, by: Sequence[str], metric: str) -> pd.DataFrame:
    """The ok interactive rows, with ``target_modality`` added when grouped by it."""
    df = results
    if "target_modality" in by and "target_modality" not in df.columns:
        df = with_target_modality(df)
    need = ["strategy", "status", "click_index", metric, *OBJECT_KEY, *by]
    missing = [c for c in dict.fromkeys(need) if c not in df.columns]
    if missing:
        raise ValueError(
            f"results: missing columns {missing}; expected an interactive results table "
            "(sambench evaluate --strategies interactive)"
        )
    df = df[(df["strategy"] == STRATEGY) & (df["status"] == "ok")]
    if df.empty:
        raise ValueError("results: no rows with strategy 'interactive' and status 'ok'")
    return df


def noc_per_object(
    results: pd.DataFrame,
    thresholds: Sequence[float] = (80, 85, 90),
    *,
    by: Sequence[str] = DEFAULT_BY,
    metric: str = "jaccard",
    max_clicks: int | None = None,
) -> pd.DataFrame:
    """One row per object and model (``by`` + model, dataset, image_id, label_value): ``NoC@t`` and
    ``reached@t`` per threshold.

    ``max_clicks`` defaults to the largest ``click_index`` in the results.
    """
    df = _interactive_rows(results, by, metric)
    mc = int(df["click_index"].max()) if max_clicks is None else int(max_clicks)
    keys = list(dict.fromkeys([*by, *OBJECT_KEY]))
    records = []
    for key, g in df.sort_values("click_index").groupby(keys, sort=True, dropna=False):
        vals = g[metric].to_numpy(dtype=np.float64)
        rec: dict[str, object] = dict(zip(keys, key, strict=True))
        for t in thresholds:
            n, ok = noc(vals, float(t), mc)
            rec[f"NoC@{_threshold_name(t)}"] = n
            rec[f"reached@{_threshold_name(t)}"] = ok
        records.append(rec)
    out = pd.DataFrame(records)
    out["max_clicks"] = mc
    return out


def noc_table(
    results: pd.DataFrame,
    thresholds: Sequence[float] = (80, 85, 90),
    by: Sequence[str] = DEFAULT_BY,
    *,
    metric: str = "jaccard",
    max_clicks: int | None = None,
    rng: np.random.Generator | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    unit: str = "case",
) -> pd.DataFrame:
    """Mean NoC@t, its bootstrap CI and NoF@t per group.

    Columns: ``by``..., ``n_objects``, ``n_cases``, ``max_clicks``, then per threshold t (in %,
    e.g. 85): ``NoC@t`` (mean over objects), ``NoC@t_ci_low``, ``NoC@t_ci_high`` (``level``; by
    ``unit``: cluster bootstrap over cases within dataset, or objects), ``NoF@t`` (objects never
    reaching t); last ``ci_note`` (why a group has no CI: fewer than ``MIN_CASES`` units).
    ``rng`` defaults to ``np.random.default_rng(0)``, so a table is reproducible; ``metric`` is
    the IoU column.
    """
    from sambench.analysis.stats import check_unit, interval  # lazy: pulls in pingouin

    check_unit(unit)
    rng = np.random.default_rng(0) if rng is None else rng
    per_obj = noc_per_object(results, thresholds, by=by, metric=metric, max_clicks=max_clicks)
    if "case" in results.columns:
        cases = results[["dataset", "image_id", "case"]].drop_duplicates(["dataset", "image_id"])
        per_obj = per_obj.merge(cases, on=["dataset", "image_id"], how="left", validate="m:1")
    elif unit == "case":
        raise ValueError(
            "results: no 'case' column, so statistics by case are not possible; "
            "use unit='object' (objects as if independent)"
        )
    records = []
    for key, g in per_obj.groupby(list(by), sort=True, dropna=False):
        key_t = key if isinstance(key, tuple) else (key,)
        rec: dict[str, object] = dict(zip(by, key_t, strict=True))
        rec["n_objects"] = len(g)
        rec["n_cases"] = (
            int(g[["dataset", "case"]].drop_duplicates().shape[0]) if "case" in g else np.nan
        )
        rec["max_clicks"] = int(g["max_clicks"].iloc[0])
        notes: list[str] = []
        for t in thresholds:
            name = _threshold_name(t)
            vals = g[f"NoC@{name}"].to_numpy(dtype=np.float64)
            lo, hi, note = interval(vals, g, unit, n_boot=n_boot, ci=level, rng=rng)
            n_failed = int((~g[f"reached@{name}"].astype(bool)).sum())
            if note and note not in notes:
                notes.append(note)
            elif not note and n_failed == len(g):
                # every object at the click cap: the NoC is the cap by definition (censored), and
                # a bootstrap would print a zero-width interval as if it were measured
                lo = hi = float("nan")
                notes.append(f"NoC@{name}: no object reached it in {rec['max_clicks']} clicks")
            rec[f"NoC@{name}"] = float(vals.mean())
            rec[f"NoC@{name}_ci_low"] = lo
            rec[f"NoC@{name}_ci_high"] = hi
            rec[f"NoF@{name}"] = n_failed
        rec["ci_note"] = "; ".join(notes)
        records.append(rec)
    return pd.DataFrame(records)


def click_curve(
    results: pd.DataFrame,
    by: Sequence[str] = DEFAULT_BY,
    *,
    metrics: Sequence[str] = ("dice", "jaccard"),
) -> pd.DataFrame:
    """Mean (and sample std) of each metric per click index per group: the paper's Fig. 16 curve.

    Columns: ``by``..., ``click_index``, ``n``, then ``<metric>`` (mean) and ``<metric>_std``.
    """
    df = _interactive_rows(results, by, metrics[0])
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        raise ValueError(f"metrics: {missing} are not columns of the results")
    keys = [*by, "click_index"]
    g = df.groupby(keys, sort=True, dropna=False)
    out = g.size().rename("n").to_frame()
    for m in metrics:
        out[m] = g[m].mean()
        out[f"{m}_std"] = g[m].std(ddof=1)
    return out.reset_index()


def click_curve_ci(
    results: pd.DataFrame,
    by: Sequence[str] = ("model",),
    *,
    metrics: Sequence[str] = ("dice", "jaccard"),
    rng: np.random.Generator,
    n_boot: int = 1000,
    ci: float = 0.95,
    unit: str = "case",
) -> pd.DataFrame:
    """:func:`click_curve` with a 95 % CI of each mean per click index: the band of Fig. 16.

    The CI of a (group, click index) is :func:`sambench.analysis.stats.interval`: by default the
    cluster bootstrap over cases within dataset (:func:`~sambench.analysis.stats.case_bootstrap`,
    BCa), with ``unit="object"`` the percentile bootstrap over objects. Groups, then click
    indices, then metrics draw from the one ``rng`` in turn (seeded = repeatable). Below
    :data:`~sambench.analysis.stats.MIN_CASES` units the bounds are NaN and ``ci_note`` says
    why (``"n = 2 cases: too few"``; the metrics' distinct notes joined by "; ").

    Columns: ``by``..., ``click_index``, ``n`` (objects), ``n_cases``, then per metric
    ``<metric>`` (mean), ``<metric>_ci_low``, ``<metric>_ci_high`` (the report's
    ``X (low to high)`` cells), and ``ci_note``.
    """
    from sambench.analysis.stats import CASE_KEYS, check_unit, interval

    check_unit(unit)
    df = _interactive_rows(results, by, metrics[0])
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        raise ValueError(f"metrics: {missing} are not columns of the results")
    if unit == "case" and "case" not in df.columns:
        raise ValueError(
            "results: no 'case' column, so a CI by case is not possible; use unit='object' "
            "or add the manifest's case column"
        )
    keys = [*by, "click_index"]
    rows = []
    for key, g in df.groupby(keys, sort=True, dropna=False):
        rec: dict[str, object] = dict(
            zip(keys, key if isinstance(key, tuple) else (key,), strict=True)
        )
        rec["n"] = len(g)
        rec["n_cases"] = (
            int(g[list(CASE_KEYS)].drop_duplicates().shape[0]) if "case" in g.columns else np.nan
        )
        notes: list[str] = []
        for m in metrics:
            sub = g[g[m].notna()]
            v = sub[m].to_numpy(dtype=np.float64)
            lo, hi, note = interval(v, sub, unit, n_boot=n_boot, ci=ci, rng=rng)
            rec[m] = float(v.mean()) if v.size else float("nan")
            rec[f"{m}_ci_low"], rec[f"{m}_ci_high"] = lo, hi
            if note and note not in notes:
                notes.append(note)
        rec["ci_note"] = "; ".join(notes)
        rows.append(rec)
    return pd.DataFrame(rows)
