"""The analysis tables computed out of core, by grouped aggregation over a lazy results dataset
(:func:`sambench.store.results_dataset.scan_results`), without materialising the rows.

Each function mirrors an in-memory one and returns the same DataFrame (same columns, same row
order; means and counts equal up to floating-point summation order):

==============================  ===============================================================
lazy                            in memory
==============================  ===============================================================
:func:`summary_long_lazy`       :func:`sambench.analysis.summary.summary_long` (of ``main_rows``)
:func:`paper_table_lazy`        :func:`~sambench.analysis.summary.paper_table` (of ``main_rows``)
:func:`timing_table_lazy`       :func:`~sambench.analysis.summary.timing_table`
:func:`hce_summary_lazy`        :func:`sambench.analysis.effort.hce_summary`
:func:`shift_drop_long_lazy`    :func:`sambench.analysis.robustness.shift_drop_long`
:func:`volume_dice_lazy`        :func:`sambench.analysis.stats.volume_dice`
:func:`mean_with_ci_lazy`       :func:`sambench.analysis.stats.mean_with_ci` (bounded sample)
:func:`paired_wilcoxon_lazy`    :func:`sambench.analysis.stats.paired_wilcoxon`
==============================  ===============================================================

Memory: an aggregate holds one state per group (tables have tens to thousands of groups); the
paired test holds one float per object and level of one model (6 M objects x 5 strategies x 8 B =
240 MB at COSMOS scale); the bootstrap holds at most about ``max_sample`` values per group. DuckDB
itself stays under the dataset's ``memory_limit`` and spills above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sambench.analysis.robustness import shift_drop_table_from_long
from sambench.analysis.stats import (
    OBJECT_KEYS,
    bootstrap_ci,
    case_bootstrap_sums,
    check_unit,
    pair_levels,
    wilcoxon_columns,
    wilcoxon_row,
    with_holm,
)
from sambench.analysis.summary import (
    DEFAULT_GRID,
    paper_table_from_long,
    standard_tables,
    strategy_sorted,
    write_table_files,
)
from sambench.store.results_dataset import ResultsDataset

#: rows per group above which the bootstrap runs on a seeded sample (see mean_with_ci_lazy)
MAX_SAMPLE = 50_000
_TM = "CAST(object_name AS VARCHAR) || '-' || CAST(modality AS VARCHAR)"


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: object) -> str:
    """A SQL literal of a str, bool or number."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return repr(float(value)) if isinstance(value, float) else str(int(value))  # type: ignore[call-overload]


def _require(ds: ResultsDataset, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in ds.columns]
    if missing:
        raise ValueError(f"results: missing columns {missing}; present: {sorted(ds.columns)}")


def unshifted_sql(ds: ResultsDataset) -> str:
    """SQL condition of :func:`sambench.analysis.robustness.is_unshifted`."""
    if "shift_range" not in ds.columns:
        return "true"
    return "(shift_range IS NULL OR CAST(shift_range AS VARCHAR) = 'none')"


def main_rows_sql(ds: ResultsDataset) -> str:
    """SQL condition of :func:`sambench.analysis.summary.main_rows`: unshifted, not interactive,
    one S1 grid (32 when several were run and 32 is one of them, else the largest)."""
    cond = f"{unshifted_sql(ds)} AND strategy IS DISTINCT FROM 'interactive'"
    if "grid" in ds.columns:
        grids = ds.numpy(
            f"SELECT DISTINCT grid FROM results WHERE strategy = 'S1' AND {cond} "
            "AND grid IS NOT NULL"
        )["grid"]
        if len(grids) > 1:
            keep = DEFAULT_GRID if DEFAULT_GRID in set(grids.tolist()) else max(grids.tolist())
            cond += f" AND (strategy <> 'S1' OR grid = {lit(keep)})"
    return cond


def _by_expr(ds: ResultsDataset, by: str) -> str:
    if by == "target_modality":
        _require(ds, ["object_name", "modality"])
        return _TM
    if by not in ds.columns:
        raise ValueError(f"by: {by!r} is not a column of the results")
    return q(by)


def summary_long_lazy(
    ds: ResultsDataset,
    metric: str = "dice",
    *,
    by: str = "target_modality",
    selection: str = "oracle",
    main: bool = True,
) -> pd.DataFrame:
    """:func:`~sambench.analysis.summary.summary_long` of the main rows (``main=False``: of all
    rows). Columns: ``by``, model, strategy, n, n_skipped, mean, std (ddof=1)."""
    if metric not in ds.columns:
        raise ValueError(f"metric: {metric!r} is not a column of the results")
    where = main_rows_sql(ds) if main else "true"
    g = _by_expr(ds, by)
    m = q(metric)
    df = ds.sql(
        f"SELECT {g} AS {q(by)}, model, strategy, "
        f"count({m}) FILTER (WHERE status = 'ok') AS n, "
        "count(*) FILTER (WHERE status IS DISTINCT FROM 'ok') AS n_skipped, "
        f"avg({m}) FILTER (WHERE status = 'ok') AS mean, "
        f"stddev_samp({m}) FILTER (WHERE status = 'ok') AS std "
        f"FROM results WHERE ({where}) AND selection = ? AND {g} IS NOT NULL "
        "AND model IS NOT NULL AND strategy IS NOT NULL GROUP BY ALL ORDER BY 1, 2, 3",
        [selection],
    )
    df[["n", "n_skipped"]] = df[["n", "n_skipped"]].astype(int)
    df[["mean", "std"]] = df[["mean", "std"]].astype(np.float64)
    return df


def paper_table_lazy(
    ds: ResultsDataset,
    metric: str = "dice",
    *,
    by: str = "target_modality",
    selection: str = "oracle",
    decimals: int = 2,
) -> pd.DataFrame:
    """The paper's layout (:func:`~sambench.analysis.summary.paper_table`) of the main rows."""
    long = summary_long_lazy(ds, metric, by=by, selection=selection)
    return paper_table_from_long(long, by=by, decimals=decimals)


def timing_table_lazy(ds: ResultsDataset) -> pd.DataFrame:
    """:func:`~sambench.analysis.summary.timing_table` (Table 4): per model, seconds per image of
    the fresh embeddings and per object of decoding under each strategy. The per-image values are
    those of any ok row of the image (all rows of an image carry the same embedding time); the
    decoding mean is over the rows of one selection (both carry the object's decoding time)."""
    _require(ds, ["model", "image_id", "embed_seconds", "embedding_cached", "decode_seconds"])
    img = ds.sql(
        "WITH i AS (SELECT model, image_id, any_value(embed_seconds) AS e, "
        "any_value(CAST(embedding_cached AS BOOLEAN)) AS c FROM results WHERE status = 'ok' "
        "GROUP BY ALL) SELECT model, count(*) AS images, avg(e) FILTER (WHERE NOT c) AS embedding"
        " FROM i GROUP BY model ORDER BY model"
    )
    dec = ds.sql(
        "WITH s AS (SELECT model, strategy, min(selection) AS sel FROM results "
        "WHERE status = 'ok' GROUP BY ALL) SELECT r.model, r.strategy, avg(r.decode_seconds) AS d "
        "FROM results r JOIN s ON r.model = s.model AND r.strategy = s.strategy "
        "AND r.selection = s.sel WHERE r.status = 'ok' GROUP BY ALL"
    )
    out = img.astype({"images": int, "embedding": np.float64})
    for s in strategy_sorted(list(dec["strategy"])):
        sub = dec[dec["strategy"] == s].set_index("model")["d"]
        out[str(s)] = out["model"].map(sub).astype(np.float64)
    return out


def hce_summary_lazy(
    ds: ResultsDataset,
    *,
    by: str | None = "target_modality",
    selection: str = "oracle",
    main: bool = True,
) -> pd.DataFrame:
    """:func:`sambench.analysis.effort.hce_summary` out of core (same columns and order)."""
    from sambench.analysis.effort import HCE_COLUMNS

    _require(ds, list(HCE_COLUMNS))
    where = main_rows_sql(ds) if main else "true"
    keys = ([by] if by is not None else []) + ["model", "strategy"]
    sel = ([f"{_by_expr(ds, by)} AS {q(by)}"] if by is not None else []) + ["model", "strategy"]
    ok = "FILTER (WHERE status = 'ok')"
    out = ds.sql(
        f"SELECT {', '.join(sel)}, count(hce) {ok} AS n, "
        f"count(*) FILTER (WHERE status IS DISTINCT FROM 'ok') AS n_skipped, avg(hce) {ok} AS hce,"
        f" stddev_samp(hce) {ok} AS hce_std, avg(hce_fp) {ok} AS hce_fp, avg(hce_fn) {ok} AS hce_fn "
        f"FROM results WHERE ({where}) AND selection = ? GROUP BY ALL",
        [selection],
    )
    out[["n", "n_skipped"]] = out[["n", "n_skipped"]].astype(int)
    order = {s: i for i, s in enumerate(strategy_sorted(list(out["strategy"])))}
    out = out.sort_values(
        [*keys[:-1], "strategy"], key=lambda c: c.map(order) if c.name == "strategy" else c
    )
    cols = [*keys, "n", "n_skipped", "hce", "hce_std", "hce_fp", "hce_fn"]
    return out[cols].astype({c: np.float64 for c in HCE_COLUMNS}).reset_index(drop=True)


_OBJECT = ["dataset", "image_id", "label_value", "model", "strategy", "selection"]


def shift_drop_long_lazy(
    ds: ResultsDataset, selection: str = "oracle", metric: str = "dice"
) -> pd.DataFrame:
    """:func:`sambench.analysis.robustness.shift_drop_long`: the shifted rows joined (in DuckDB)
    with their object's unshifted row, aggregated per (model, strategy, range, repeat)."""
    _require(ds, [*_OBJECT, "status", metric, "shift_range", "shift_repeat"])
    keys = ", ".join(_OBJECT)
    unshifted, m = unshifted_sql(ds), q(metric)
    base = f"SELECT {keys}, {m} AS vb FROM results WHERE status = 'ok' AND selection = ? AND {unshifted}"
    dup = ds.con.execute(
        f"SELECT count(*) FROM (SELECT {keys} FROM ({base}) GROUP BY ALL HAVING count(*) > 1)",
        [selection],
    ).fetchone()
    if dup and dup[0]:
        raise ValueError(
            "results: several unshifted rows for one (object, model, strategy, selection)"
        )
    out = ds.sql(
        f"WITH b AS ({base}), s AS (SELECT {keys}, shift_range, shift_repeat, {m} AS v "
        f"FROM results WHERE status = 'ok' AND selection = ? AND NOT {unshifted}) "
        "SELECT model, strategy, shift_range, shift_repeat, count(*) AS n, avg(vb) AS base_mean, "
        'avg(v) AS shifted_mean, avg(vb - v) AS "drop" FROM s JOIN b USING '
        f"({keys}) GROUP BY ALL ORDER BY 1, 2, 3, 4",
        [selection, selection],
    )
    out["n"] = out["n"].astype(int)
    out["shift_repeat"] = out["shift_repeat"].astype(int)
    return out


def shift_drop_table_lazy(
    ds: ResultsDataset, selection: str = "oracle", metric: str = "dice"
) -> pd.DataFrame:
    """The paper's Table 8 (:func:`~sambench.analysis.robustness.shift_drop_table`)."""
    return shift_drop_table_from_long(shift_drop_long_lazy(ds, selection, metric))


def volume_dice_lazy(ds: ResultsDataset) -> pd.DataFrame:
    """:func:`sambench.analysis.stats.volume_dice`: 3D DICE from summed tp/fp/fn per case."""
    keys = ["dataset", "case", "object_name", "label_value", "model", "strategy", "selection"]
    _require(ds, [*keys, "slice_index", "status", "dice", "tp", "fp", "fn"])
    keys += [c for c in ("shift_range", "shift_repeat") if c in ds.columns]
    k = ", ".join(q(c) for c in keys)
    out = ds.sql(
        f"SELECT {k}, count(*) AS n_slices, sum(CAST(tp AS BIGINT)) AS tp, "
        "sum(CAST(fp AS BIGINT)) AS fp, sum(CAST(fn AS BIGINT)) AS fn, "
        "avg(dice) AS mean_slice_dice FROM results WHERE status = 'ok' AND slice_index >= 0 "
        f"GROUP BY ALL ORDER BY {', '.join(f'{q(c)} NULLS LAST' for c in keys)}"
    )
    denom = (2 * out["tp"] + out["fp"] + out["fn"]).astype(np.float64)
    out["volume_dice"] = np.where(denom > 0, 200.0 * out["tp"] / denom.where(denom > 0, 1), np.nan)
    return out[[*keys, "n_slices", "volume_dice", "mean_slice_dice", "tp", "fp", "fn"]]


def _ok_sql(ds: ResultsDataset, selection: str | None) -> str:
    cond = f"status = 'ok' AND {unshifted_sql(ds)}"
    if selection is None:
        return cond
    present = set(ds.numpy("SELECT DISTINCT selection FROM results")["selection"].tolist())
    if selection not in present:
        raise ValueError(f"selection: {selection!r} not in the results; present: {sorted(present)}")
    return cond + f" AND selection = {lit(selection)}"


def mean_with_ci_lazy(
    ds: ResultsDataset,
    by: Sequence[str] = ("model", "strategy"),
    metric: str = "dice",
    *,
    selection: str | None = "oracle",
    n_boot: int = 2000,
    ci: float = 0.95,
    rng: np.random.Generator,
    max_sample: int = MAX_SAMPLE,
    unit: str = "case",
) -> pd.DataFrame:
    """:func:`sambench.analysis.stats.mean_with_ci` with bootstrap work bounded per group.

    ``unit="case"`` (default, SPEC 5b): DuckDB sums the values per (group, dataset, case), and
    the cluster bootstrap runs on those per-case sums and counts
    (:func:`~sambench.analysis.stats.case_bootstrap_sums`): the same CI, same draws, as in memory,
    with one row per case in memory instead of one per object (no sampling needed: cases are
    few). ``unit="object"``: the objects as if independent, as follows.

    ``n`` and ``mean`` are exact (SQL aggregates over every row). A group of at most
    ``max_sample`` values is bootstrapped on all of them, in file order, drawing from ``rng``
    exactly like the in-memory function (same CI when no group is sampled). A larger group is
    bootstrapped on a seeded Bernoulli sample of about ``max_sample`` of its rows (kept when a
    hash of the object keys and a seed drawn once from ``rng`` falls below ``max_sample / n``);
    the sample's percentile bootstrap deviations from its own mean are scaled by
    ``sqrt(m / n)`` (m = sample size) and centred on the exact mean: the CI of the mean of all n
    rows, since the mean's bootstrap spread shrinks as 1/sqrt(size).
    """
    by = list(by)
    check_unit(unit)
    _require(ds, [*by, metric, *OBJECT_KEYS])
    if unit == "case":
        return _mean_with_case_ci(ds, by, metric, selection, n_boot=n_boot, ci=ci, rng=rng)
    cond = _ok_sql(ds, selection)
    keys = ", ".join(q(c) for c in by)
    stats = ds.sql(
        f"SELECT {keys}, count({q(metric)}) AS n, avg({q(metric)}) AS mean FROM results WHERE {cond} "
        f"AND {' AND '.join(f'{q(c)} IS NOT NULL' for c in by)} GROUP BY ALL ORDER BY {keys}"
    )
    big = stats[stats["n"] > max_sample]
    sample = "true"
    if len(big):
        seed = int(rng.integers(0, 2**31))
        h = f"hash({', '.join(OBJECT_KEYS)}, {keys}, {seed})"
        cases = []
        for _, r in big.iterrows():
            match = " AND ".join(f"{q(c)} = {lit(r[c])}" for c in by)
            cases.append(f"WHEN {match} THEN {h} < {int(max_sample / r['n'] * 2.0**64)}::UBIGINT")
        sample = f"CASE {' '.join(cases)} ELSE true END"
    vals = ds.sql(
        f"SELECT {keys}, {q(metric)} AS v FROM results WHERE {cond} AND {q(metric)} IS NOT NULL "
        f"AND {sample}"
    )
    groups = {k if isinstance(k, tuple) else (k,): g["v"] for k, g in vals.groupby(by, sort=False)}
    rows = []
    for _, r in stats.iterrows():
        key = tuple(r[c] for c in by)
        v = np.asarray(groups.get(key, []), dtype=np.float64)
        n, mean = int(r["n"]), float(r["mean"])
        lo = hi = float("nan")
        if v.size and v.size == n:
            lo, hi = bootstrap_ci(v, n_boot=n_boot, ci=ci, rng=rng)
        elif v.size:
            slo, shi = bootstrap_ci(v, n_boot=n_boot, ci=ci, rng=rng)
            scale, centre = np.sqrt(v.size / n), float(v.mean())
            lo, hi = mean + (slo - centre) * scale, mean + (shi - centre) * scale
        rows.append(
            {**dict(zip(by, key, strict=True)), "n": n, "mean": mean, "ci_lo": lo, "ci_hi": hi}
        )
    return pd.DataFrame(rows, columns=[*by, "n", "mean", "ci_lo", "ci_hi"])


def _mean_with_case_ci(
    ds: ResultsDataset,
    by: list[str],
    metric: str,
    selection: str | None,
    *,
    n_boot: int,
    ci: float,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """:func:`mean_with_ci_lazy` by case: per-case sums from SQL, the cluster bootstrap on them;
    columns and values as :func:`sambench.analysis.stats.mean_with_ci` (``unit="case"``)."""
    _require(ds, ["case"])
    cond = _ok_sql(ds, selection)
    keys = ", ".join(q(c) for c in by)
    per = ds.sql(
        f'SELECT {keys}, CAST(dataset AS VARCHAR) AS h, CAST("case" AS VARCHAR) AS c, '
        f"sum({q(metric)}) AS s, count({q(metric)}) AS k FROM results WHERE {cond} "
        f"AND {q(metric)} IS NOT NULL AND {' AND '.join(f'{q(c)} IS NOT NULL' for c in by)} "
        "GROUP BY ALL"
    )
    rows = []
    for key, g in per.groupby(by, sort=True):
        g = g.sort_values(["h", "c"])
        r = case_bootstrap_sums(
            g["s"].to_numpy(np.float64),
            g["k"].to_numpy(np.float64),
            g["h"].to_numpy(),
            n_boot=n_boot,
            ci=ci,
            rng=rng,
        )
        keys_t = key if isinstance(key, tuple) else (key,)
        rows.append(
            {
                **dict(zip(by, keys_t, strict=True)),
                "n": r.n_objects,
                "n_cases": r.n_cases,
                "mean": r.estimate,
                "ci_lo": r.low,
                "ci_hi": r.high,
                "ci_note": r.note,
            }
        )
    cols = [*by, "n", "n_cases", "mean", "ci_lo", "ci_hi", "ci_note"]
    return pd.DataFrame(rows, columns=cols)


def paired_wilcoxon_lazy(
    ds: ResultsDataset,
    metric: str = "dice",
    between: str = "strategy",
    pairs: Sequence[tuple[str, str]] | None = None,
    *,
    selection: str = "oracle",
    unit: str = "case",
) -> pd.DataFrame:
    """:func:`sambench.analysis.stats.paired_wilcoxon`: per level of the other factor, DuckDB
    pivots the objects to one column per level (an object with two rows of one level is an
    error, as the in-memory ``one_to_one`` merge); only those columns come back, as float64
    arrays, and each pair is tested with ``scipy.stats.wilcoxon`` as in memory: with
    ``unit="case"`` (default) on the case means of the matched objects, with ``"object"`` on
    the objects."""
    from sambench.analysis.stats import BETWEEN_CHOICES, CASE_KEYS

    if between not in BETWEEN_CHOICES:
        raise ValueError(f"between: {between!r} is not one of {', '.join(BETWEEN_CHOICES)}")
    check_unit(unit)
    other = "model" if between == "strategy" else "strategy"
    _require(ds, [*OBJECT_KEYS, between, other, metric, *(["case"] if unit == "case" else [])])
    cond = _ok_sql(ds, selection)
    present = list(ds.numpy(f"SELECT DISTINCT {q(between)} AS l FROM results WHERE {cond}")["l"])
    pairs = pair_levels(present, between, pairs)
    used = list(dict.fromkeys(x for p in pairs for x in p))
    ctxs = sorted(ds.numpy(f"SELECT DISTINCT {q(other)} AS c FROM results WHERE {cond}")["c"])
    cols = ", ".join(
        f"max({q(metric)}) FILTER (WHERE {q(between)} = {lit(lv)}) AS v{i}, "
        f"count(*) FILTER (WHERE {q(between)} = {lit(lv)}) AS c{i}"
        for i, lv in enumerate(used)
    )
    rows = []
    for ctx in ctxs if pairs else ():  # one level (e.g. a run of one strategy): nothing to pair
        case_col = ', any_value(CAST("case" AS VARCHAR)) AS "case"' if unit == "case" else ""
        wide = ds.numpy(
            f"SELECT {cols}, any_value(CAST(dataset AS VARCHAR)) AS dataset{case_col} "
            f"FROM results WHERE {cond} AND {q(other)} = {lit(ctx)} "
            f"GROUP BY {', '.join(OBJECT_KEYS)}"
        )
        if any(int(wide[f"c{i}"].max(initial=0)) > 1 for i in range(len(used))):
            raise ValueError(
                f"results: several rows of one object and {between} for {other} {ctx!r}"
            )
        for a, b in pairs:
            va = wide[f"v{used.index(a)}"].astype(np.float64)
            vb = wide[f"v{used.index(b)}"].astype(np.float64)
            keep = ~(np.isnan(va) | np.isnan(vb))
            va, vb, n_objects = va[keep], vb[keep], int(keep.sum())
            if unit == "case":
                m = (
                    pd.DataFrame(
                        {k: np.asarray(wide[k])[keep] for k in CASE_KEYS} | {"a": va, "b": vb}
                    )
                    .groupby(list(CASE_KEYS), sort=True)[["a", "b"]]
                    .mean()
                )
                va, vb = m["a"].to_numpy(np.float64), m["b"].to_numpy(np.float64)
            rows.append(wilcoxon_row(other, ctx, a, b, va, vb, unit=unit, n_objects=n_objects))
    return with_holm(pd.DataFrame(rows, columns=wilcoxon_columns(other)))


def write_tables_lazy(ds: ResultsDataset, folder: Path | str) -> dict[str, Path]:
    """:func:`sambench.analysis.summary.write_tables` out of core: the same tables and files."""
    tables = standard_tables(
        lambda metric, **kw: paper_table_lazy(ds, metric, **kw),
        lambda: timing_table_lazy(ds),
        with_hce="hce" in ds.columns,
    )
    return write_table_files(tables, folder)
