"""The paper's Table 6 (Spearman partial correlations of DICE with object attributes) out of
core: :func:`sambench.analysis.stats.attribute_correlations` over a lazy results dataset.

Every partial correlation of one (model, strategy) comes from the covariance matrix of the ranks
of [metric, *attributes] (``partial_spearman`` reorders the same matrix). DuckDB joins the rows
with the per-object attribute table, ranks each column within its group (``rank()`` plus half the
ties: average ranks, like pandas' ``rank()``) and returns the ``covar_samp`` of every pair of
rank columns (ddof = 1, like ``np.cov``): one small matrix per group, no row comes back.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sambench.analysis.attributes import ATTRIBUTES
from sambench.analysis.lazy import _ok_sql, _require, q
from sambench.analysis.stats import (
    OBJECT_KEYS,
    correlation_columns,
    correlation_table,
    partial_from_cov,
)
from sambench.store.results_dataset import ResultsDataset


def _partial(cov: np.ndarray, i: int, j: int, others: list[int], n: int) -> tuple[float, float]:
    """``partial_spearman``'s r and p from a rank covariance matrix (columns i, j | others)."""
    idx = [i, j, *others]
    dof = n - 2 - len(others)
    if dof < 1:
        return float("nan"), float("nan")
    return partial_from_cov(cov[np.ix_(idx, idx)], dof)


def attribute_correlations_lazy(
    ds: ResultsDataset,
    attrs: pd.DataFrame,
    *,
    metric: str = "dice",
    selection: str = "oracle",
    attributes: Sequence[str] = ATTRIBUTES,
) -> pd.DataFrame:
    """:func:`sambench.analysis.stats.attribute_correlations` of ``ds`` joined (on dataset,
    image_id, label_value) with ``attrs``, one row per object with the ``attributes`` columns
    (:func:`sambench.analysis.attributes.attributes_table`). Same columns and order."""
    attributes = list(attributes)
    _require(ds, ["model", "strategy", metric, *OBJECT_KEYS])
    missing = [c for c in [*OBJECT_KEYS, *attributes] if c not in attrs.columns]
    if missing:
        raise ValueError(f"attrs: missing columns {missing}")
    ds.con.register("_attrs", attrs[[*OBJECT_KEYS, *attributes]])
    cols = [metric, *attributes]
    names = [f"c{i}" for i in range(len(cols))]
    sel = ", ".join(
        f"CAST({'r.' + q(metric) if i == 0 else 'a.' + q(c)} AS DOUBLE) AS {names[i]}"
        for i, c in enumerate(cols)
    )
    notnull = " AND ".join(f"{n} IS NOT NULL" for n in names)
    part = "PARTITION BY model, strategy"
    ranks = ", ".join(
        f"rank() OVER ({part} ORDER BY {n}) + (count(*) OVER ({part}, {n}) - 1) / 2.0 AS r{n}"
        for n in names
    )
    pairs = list(itertools.combinations_with_replacement(range(len(cols)), 2))
    covs = ", ".join(f"covar_samp(r{names[i]}, r{names[j]}) AS v{i}_{j}" for i, j in pairs)
    distinct = ", ".join(f"count(DISTINCT {n}) AS d{n}" for n in names)
    cond = _ok_sql(ds, selection)  # columns of the results only (attrs: keys + attributes)
    agg = ds.sql(
        f"WITH j AS (SELECT r.model, r.strategy, {sel} FROM results r JOIN _attrs a "
        f"USING ({', '.join(OBJECT_KEYS)}) WHERE {cond}), "
        f"k AS (SELECT *, {ranks} FROM j WHERE {notnull}) "
        f"SELECT model, strategy, count(*) AS n, {distinct}, {covs} FROM k GROUP BY ALL"
    )
    ds.con.unregister("_attrs")
    rows = []
    for rec in agg.to_dict("records"):
        n = int(rec["n"])
        cov = np.zeros((len(cols), len(cols)))
        for i, j in pairs:
            cov[i, j] = cov[j, i] = (
                float(rec[f"v{i}_{j}"]) if pd.notna(rec[f"v{i}_{j}"]) else np.nan
            )
        varying = [i for i in range(1, len(cols)) if rec[f"d{names[i]}"] > 1]
        row: dict[str, object] = {"model": rec["model"], "strategy": rec["strategy"], "n": n}
        for i, a in enumerate(attributes, 1):
            r = p = float("nan")
            if i in varying and rec[f"d{names[0]}"] > 1:
                r, p = _partial(cov, 0, i, [c for c in varying if c != i], n)
            row.update(correlation_columns(a, r, p))
        rows.append(row)
    return correlation_table(rows)
