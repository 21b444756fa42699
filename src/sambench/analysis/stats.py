"""Statistics on a results table: partial correlations with object attributes (paper Table 6),
bootstrap confidence intervals, paired Wilcoxon comparisons and volume-level (3D) DICE.

The unit of independence is the case (patient, volume; the manifest's ``case`` column within its
``dataset``), not the object or slice (SPEC 5b): by default (``unit="case"``) a CI is a cluster
bootstrap that resamples whole cases within each dataset (:func:`case_bootstrap`, BCa through
``scipy.stats.bootstrap``) and a paired test compares case-level means. With fewer than
:data:`MIN_CASES` units a group gets no CI and no test: the numbers are NaN and a note column says
why (``"n = 2 cases: too few"``). ``unit="object"`` keeps the former object-level statistics
(objects as if independent) for comparison. See docs/analysis.md.

Every function takes the tidy results DataFrame (one row per image, object, model, strategy,
selection; see :mod:`sambench.engine.evaluate`) and returns a DataFrame. Only rows with
``status == "ok"`` enter a statistic. Rows of the prompt-shift experiment (``shift_range`` other
than ``"none"``) are left out of everything here except :func:`volume_dice`, which keeps them apart
by its keys; use :mod:`sambench.analysis.robustness` for them.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
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
#: A case (patient, volume) is (dataset, case); cases are resampled within their dataset.
CASE_KEYS = ("dataset", "case")
#: Fewer independent units (cases; objects under ``unit="object"``) than this: no CI, no test.
MIN_CASES = 5
#: Above this many resampled cases the CI is the percentile interval: BCa's jackknife costs
#: cases^2 and its correction vanishes as the number of cases grows.
BCA_MAX_CASES = 2000
#: The units of a CI or paired test: ``case`` (default) or ``object`` (for comparison only).
UNITS = ("case", "object")


def check_unit(unit: str) -> str:
    """``unit`` if it is one of :data:`UNITS`, else a ValueError naming them."""
    if unit not in UNITS:
        raise ValueError(f"unit: {unit!r} is not one of {', '.join(UNITS)}")
    return unit


def too_few(n: int, unit: str = "case") -> str:
    """The note of a CI or test left out: ``"n = 2 cases: too few"``."""
    return f"n = {n} {unit}{'' if n == 1 else 's'}: too few"


def ci_label(unit: str) -> str:
    """How a 95 % CI was made, for table captions."""
    if check_unit(unit) == "case":
        return (
            "95 % CI by case (cluster bootstrap over cases within dataset, BCa; "
            f"none below {MIN_CASES} cases)"
        )
    return (
        "95 % CI by object (objects treated as independent, percentile bootstrap; comparison only)"
    )


def test_label(unit: str) -> str:
    """What a paired test compares, for table captions."""
    if check_unit(unit) == "case":
        return f"paired on case means (n = cases; none below {MIN_CASES} cases)"
    return "paired on objects (treated as independent; comparison only)"


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
    return partial_from_cov(np.cov(ranks, rowvar=False), dof)


def partial_from_cov(cov: np.ndarray, dof: int) -> tuple[float, float]:
    """Partial correlation of variables 0 and 1 given the others, from their covariance matrix.

    ``cov``: (2+k)x(2+k) covariance (of ranks, for Spearman), variables 0 and 1 first; ``dof``:
    ``n - 2 - k`` (>= 1). r is read from the pseudo-inverse (precision matrix), clipped to
    [-1, 1]; p is two-sided from Student's t with ``dof`` degrees of freedom (0.0 when
    ``|r| = 1``). Returns ``(r, p)``.
    """
    prec = np.linalg.pinv(cov, hermitian=True)
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
            row.update(correlation_columns(a, r, p))
        rows.append(row)
    return correlation_table(rows)


def correlation_columns(attribute: str, r: float, p: float) -> dict[str, object]:
    """One attribute's columns in :func:`attribute_correlations`: ``<a>`` (r), ``<a>_p`` and
    ``<a>_cell`` (r to 3 decimals, ``*`` when p < :data:`SIGNIFICANCE`; empty when r is NaN)."""
    mark = "*" if p < SIGNIFICANCE else ""
    cell = "" if np.isnan(r) else f"{r:.3f}{mark}"
    return {attribute: r, f"{attribute}_p": p, f"{attribute}_cell": cell}


def correlation_table(rows: list[dict[str, object]]) -> pd.DataFrame:
    """The rows of :func:`attribute_correlations` (one per model and strategy) as a table in
    :func:`sort_by_model_strategy` order; an empty table without columns when there are none."""
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


@dataclass(frozen=True)
class CaseCI:
    """A mean with its case-level CI (:func:`case_bootstrap`).

    ``estimate``: the mean over objects; ``low``/``high``: the CI, NaN when ``note`` says why
    not; ``n_objects``, ``n_cases``; ``distribution``: the bootstrap means (empty when none)."""

    estimate: float
    low: float
    high: float
    n_objects: int
    n_cases: int
    note: str
    distribution: np.ndarray


def case_bootstrap(
    values: npt.ArrayLike,
    cases: npt.ArrayLike,
    strata: npt.ArrayLike | None = None,
    *,
    n_boot: int = 2000,
    ci: float = 0.95,
    rng: np.random.Generator,
    method: str = "BCa",
    min_cases: int = MIN_CASES,
    max_elements: int = 2**24,
) -> CaseCI:
    """Mean of ``values`` (one per object) with a cluster bootstrap CI over ``cases``, resampled
    within each of ``strata`` (datasets; one stratum when None).

    The estimate is the plain mean over objects (the number every table shows). A resample draws,
    independently in each stratum, as many cases as it has, with replacement, and keeps all the
    objects of each drawn case; its mean is sum(values) / count over the drawn cases. This is the
    cluster (first-stage) bootstrap of Davison & Hinkley (1997, section 3.8) and Field & Welsh
    (2007), which is consistent for clustered data where resampling objects understates the
    variance. It runs through ``scipy.stats.bootstrap``: one sample per stratum with at least two
    cases (the indices of its cases; samples are resampled independently), a stratum of one case
    is the same in every resample. ``method``: ``"BCa"`` (default; when BCa is undefined, e.g. a
    degenerate distribution, or above :data:`BCA_MAX_CASES` cases, the percentile interval of the
    same resamples) or ``"percentile"``.

    With fewer than ``min_cases`` cases, or fewer than that in strata of two or more cases, no CI:
    ``low``/``high`` NaN and ``note`` says why. A distribution with one value gives that value.
    Above ``max_elements`` drawn indices scipy works in batches (bounded memory).
    """
    v = np.asarray(values, dtype=np.float64)
    c = np.asarray(cases, dtype=object)
    h = np.zeros(v.shape, dtype=object) if strata is None else np.asarray(strata, dtype=object)
    if v.ndim != 1 or c.shape != v.shape or h.shape != v.shape:
        raise ValueError(
            f"values, cases, strata: expected 1-D arrays of one length, got {v.shape}, "
            f"{c.shape}, {h.shape}"
        )
    if np.isnan(v).any():
        raise ValueError("values: contains NaN; drop them before bootstrapping")
    if not 0 < ci < 1:
        raise ValueError(f"ci: expected 0 < ci < 1, got {ci}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    if method not in ("BCa", "percentile"):
        raise ValueError(f"method: expected 'BCa' or 'percentile', got {method!r}")
    if v.size == 0:
        return CaseCI(np.nan, np.nan, np.nan, 0, 0, too_few(0), np.empty(0))
    per = (
        pd.DataFrame({"h": h.astype(str), "c": c.astype(str), "v": v})
        .groupby(["h", "c"], sort=True)["v"]
        .agg(["sum", "size"])
    )
    res = case_bootstrap_sums(
        per["sum"].to_numpy(np.float64),
        per["size"].to_numpy(np.float64),
        per.index.get_level_values("h").to_numpy(),
        n_boot=n_boot,
        ci=ci,
        rng=rng,
        method=method,
        min_cases=min_cases,
        max_elements=max_elements,
    )
    return dataclasses.replace(res, estimate=float(v.mean()))  # the plain mean, as documented


def case_bootstrap_sums(
    sums: np.ndarray,
    counts: np.ndarray,
    strata: np.ndarray,
    *,
    n_boot: int = 2000,
    ci: float = 0.95,
    rng: np.random.Generator,
    method: str = "BCa",
    min_cases: int = MIN_CASES,
    max_elements: int = 2**24,
) -> CaseCI:
    """:func:`case_bootstrap` from one (sum of values, number of objects, stratum) per case, in
    (stratum, case) order as text (the order :func:`case_bootstrap` groups in, so both give the
    same draws): what the out-of-core report aggregates in SQL (:mod:`sambench.analysis.lazy`),
    one row per case instead of one per object. ``counts`` must be positive."""
    sums = np.asarray(sums, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    strata = np.asarray(strata, dtype=object)
    if not sums.shape == counts.shape == strata.shape or sums.ndim != 1:
        raise ValueError("sums, counts, strata: expected 1-D arrays of one length")
    if sums.size == 0:
        return CaseCI(np.nan, np.nan, np.nan, 0, 0, too_few(0), np.empty(0))
    if (counts <= 0).any():
        raise ValueError("counts: every case needs at least one object")
    estimate = float(sums.sum() / counts.sum())
    n_cases = int(sums.size)
    n_objects = int(counts.sum())
    strata_idx = [
        np.asarray(i, dtype=np.int64)
        for i in pd.Series(strata.astype(str))
        .groupby(strata.astype(str), sort=True)
        .indices.values()
    ]
    moving = [i for i in strata_idx if i.size >= 2]
    n_moving = int(sum(i.size for i in moving))
    note = ""
    if n_cases < min_cases:
        note = too_few(n_cases)
    elif n_moving < min_cases:
        note = f"n = {n_cases} cases, {n_moving} in datasets of 2 or more: too few"
    if note:
        return CaseCI(estimate, np.nan, np.nan, n_objects, n_cases, note, np.empty(0))
    fixed = np.concatenate([i for i in strata_idx if i.size < 2] + [np.empty(0, np.int64)])
    fixed_sum, fixed_n = float(sums[fixed].sum()), float(counts[fixed].sum())

    def mean_of(*idx: np.ndarray, axis: int = -1) -> np.ndarray:
        total = fixed_sum + sum(sums[i].sum(axis=axis) for i in idx)
        n = fixed_n + sum(counts[i].sum(axis=axis) for i in idx)
        return np.asarray(total / n)

    # resamples (and BCa's jackknife) in batches of at most about max_elements drawn indices
    widest = max(i.size for i in moving)
    batch = None if n_boot * n_cases <= max_elements else max(1, max_elements // widest)
    kw = dict(confidence_level=ci, vectorized=True, paired=False, batch=batch)
    res = sps.bootstrap(
        tuple(moving), mean_of, n_resamples=n_boot, method="percentile", rng=rng, **kw
    )  # type: ignore[arg-type]
    dist = np.asarray(res.bootstrap_distribution, dtype=np.float64)
    if np.ptp(dist) == 0:
        lo = hi = float(dist[0])
    else:
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if method == "BCa" and n_moving <= BCA_MAX_CASES:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", sps.DegenerateDataWarning)
                bca = sps.bootstrap(
                    tuple(moving),
                    mean_of,
                    n_resamples=0,
                    method="BCa",
                    bootstrap_result=res,
                    **kw,  # type: ignore[arg-type]
                ).confidence_interval
            if np.isfinite(bca.low) and np.isfinite(bca.high):
                lo, hi = float(bca.low), float(bca.high)
    return CaseCI(estimate, lo, hi, n_objects, n_cases, "", dist)


def _case_column(df: pd.DataFrame, what: str = "results") -> None:
    if "case" not in df.columns:
        raise ValueError(
            f"{what}: no 'case' column, so statistics by case are not possible; "
            "use unit='object' (objects as if independent) or add the manifest's case column"
        )


def interval(
    values: np.ndarray,
    rows: pd.DataFrame,
    unit: str,
    *,
    n_boot: int = 2000,
    ci: float = 0.95,
    rng: np.random.Generator,
) -> tuple[float, float, str]:
    """``(low, high, note)`` of the mean of ``values`` (one per row of ``rows``, which holds
    their ``case`` and ``dataset``): by case, :func:`case_bootstrap`; by object (for comparison),
    :func:`bootstrap_ci`. Below :data:`MIN_CASES` units the bounds are NaN and ``note`` says
    why (:func:`too_few`); otherwise ``note`` is empty."""
    if unit == "case":
        r = case_bootstrap(values, rows["case"], rows["dataset"], n_boot=n_boot, ci=ci, rng=rng)
        return r.low, r.high, r.note
    if values.size < MIN_CASES:
        return np.nan, np.nan, too_few(int(values.size), "object")
    lo, hi = bootstrap_ci(values, n_boot=n_boot, ci=ci, rng=rng)
    return lo, hi, ""


def mean_with_ci(
    results: pd.DataFrame,
    by: Sequence[str] = ("model", "strategy"),
    metric: str = "dice",
    *,
    selection: str | None = "oracle",
    n_boot: int = 2000,
    ci: float = 0.95,
    rng: np.random.Generator,
    unit: str = "case",
) -> pd.DataFrame:
    """Mean of ``metric`` with a bootstrap CI per group of ``by``.

    ``unit="case"`` (default): :func:`case_bootstrap` over the (dataset, case) of the rows (BCa);
    ``unit="object"``: the percentile bootstrap over objects (:func:`bootstrap_ci`, objects as if
    independent; the former numbers, for comparison). Either way a group with fewer than
    :data:`MIN_CASES` units gets NaN bounds and ``ci_note`` says why (e.g. ``"n = 2 cases: too
    few"``; empty when the CI is shown). Groups are visited in sorted order and draw from the one
    ``rng`` in turn (seeded = repeatable). NaN metric values (e.g. distances of empty predictions
    under ``empty="nan"``) are left out. Columns: ``*by, n`` (objects), ``n_cases`` (NaN without a
    case column under ``unit="object"``), ``mean, ci_lo, ci_hi, ci_note``.
    """
    by = list(by)
    check_unit(unit)
    _require(results, [*by, metric])
    if unit == "case":
        _case_column(results)
    df = _ok(results, selection)
    rows = []
    cols = [*by, "n", "n_cases", "mean", "ci_lo", "ci_hi", "ci_note"]
    for key, g in df.groupby(by, sort=True):
        g = g[g[metric].notna()]
        v = g[metric].to_numpy(dtype=np.float64)
        keys = key if isinstance(key, tuple) else (key,)
        n_cases = (
            int(g[list(CASE_KEYS)].drop_duplicates().shape[0]) if "case" in g.columns else np.nan
        )
        lo, hi, note = interval(v, g, unit, n_boot=n_boot, ci=ci, rng=rng)
        mean = float(v.mean()) if v.size else float("nan")
        rows.append(
            {
                **dict(zip(by, keys, strict=True)),
                "n": int(v.size),
                "n_cases": n_cases,
                "mean": mean,
                "ci_lo": lo,
                "ci_hi": hi,
                "ci_note": note,
            }
        )
    return pd.DataFrame(rows, columns=cols)


# ---------------------------------------------------------------- paired Wilcoxon


def paired_wilcoxon(
    results: pd.DataFrame,
    metric: str = "dice",
    between: str = "strategy",
    pairs: Sequence[tuple[str, str]] | None = None,
    *,
    selection: str = "oracle",
    unit: str = "case",
) -> pd.DataFrame:
    """Two-sided Wilcoxon signed-rank tests (``scipy.stats.wilcoxon``, defaults) between levels
    of ``between`` ("strategy" or "model") on the same objects.

    Within each level of the other factor (each model when comparing strategies, each strategy
    when comparing models), level ``a`` and level ``b`` are matched on (dataset, image_id,
    label_value) for the given selection; only objects with an ok row in both enter. With
    ``unit="case"`` (default) the matched objects are averaged per case (dataset, case) on each
    side and the test pairs the case means (the unit of independence); ``unit="object"`` tests
    the objects themselves (as if independent; for comparison). ``pairs`` default to all pairs of
    levels present (strategies in S1..S6 order, models sorted).
    Columns: the other factor, ``a, b, n`` (units tested: cases, or objects), ``n_objects``,
    ``mean_a, mean_b, median_diff`` (over the units; median of a - b), ``statistic, p_value``,
    ``test_note`` (why there is no test: fewer than :data:`MIN_CASES` units, or no difference)
    and ``p_holm`` (Holm-adjusted over all tested rows of the table).
    """
    if between not in BETWEEN_CHOICES:
        raise ValueError(f"between: {between!r} is not one of {', '.join(BETWEEN_CHOICES)}")
    check_unit(unit)
    other = "model" if between == "strategy" else "strategy"
    _require(results, [*OBJECT_KEYS, between, other, metric])
    if unit == "case":
        _case_column(results)
    df = _ok(results, selection)
    present = list(dict.fromkeys(df[between]))
    pairs = pair_levels(present, between, pairs)
    keys = list(OBJECT_KEYS)
    extra = ["case"] if unit == "case" else []
    rows = []
    for ctx, g in df.groupby(other, sort=True):
        for a, b in pairs:
            ga = g.loc[g[between] == a, [*keys, *extra, metric]]
            gb = g.loc[g[between] == b, [*keys, metric]]
            m = ga.merge(gb, on=keys, suffixes=("_a", "_b"), validate="one_to_one").dropna()
            n_objects = len(m)
            if unit == "case":
                m = m.groupby(list(CASE_KEYS), sort=True)[[f"{metric}_a", f"{metric}_b"]].mean()
            va, vb = m[f"{metric}_a"].to_numpy(float), m[f"{metric}_b"].to_numpy(float)
            rows.append(wilcoxon_row(other, ctx, a, b, va, vb, unit=unit, n_objects=n_objects))
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
    return [
        other,
        "a",
        "b",
        "n",
        "n_objects",
        "mean_a",
        "mean_b",
        "median_diff",
        "statistic",
        "p_value",
        "test_note",
    ]


def wilcoxon_row(
    other: str,
    ctx: object,
    a: str,
    b: str,
    va: np.ndarray,
    vb: np.ndarray,
    *,
    unit: str = "object",
    n_objects: int | None = None,
) -> dict[str, object]:
    """One row of :func:`paired_wilcoxon`: matched float64 values of levels ``a`` and ``b``, one
    per ``unit`` (``case`` means, or ``object`` values); ``n_objects`` behind them (default: one
    per value). Fewer than :data:`MIN_CASES` values: no test, ``test_note`` says why."""
    d = va - vb
    stat = p = float("nan")
    note = ""
    if len(d) < MIN_CASES:
        note = too_few(len(d), unit)
    elif np.any(d != 0):
        res = sps.wilcoxon(va, vb)
        stat, p = float(res.statistic), float(res.pvalue)
    else:
        note = "every difference is 0: no test"
    return {
        other: ctx,
        "a": a,
        "b": b,
        "n": len(d),
        "n_objects": len(d) if n_objects is None else int(n_objects),
        "mean_a": float(va.mean()) if len(d) else float("nan"),
        "mean_b": float(vb.mean()) if len(d) else float("nan"),
        "median_diff": float(np.median(d)) if len(d) else float("nan"),
        "statistic": stat,
        "p_value": p,
        "test_note": note,
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
