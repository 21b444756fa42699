"""Tables of the concept strategies (T, T-para, T-neg, E): pure functions of a run's rows.

Definitions (docs/text-prompts.md):

- **FP rate** of a target under T-neg: the % of its absent-target prompts (one per image where the
  target is absent) for which the model returned at least one instance.
- **Image-level presence** (SAM 3's image-level classification: Carion et al. 2025, "SAM 3:
  Segment Anything with Concepts", the SA-Co benchmark's metric, and its evaluator
  ``sam3/eval/cgf1_eval.py`` in github.com/facebookresearch/sam3): every (image, target) prompt is a positive when the target is in the
  image (T rows) and a negative when absent (T-neg rows); the model says "present" when it
  returns an instance. IL precision = TP / (TP + FP), IL recall = TP / (TP + FN), and the
  Matthews correlation IL_MCC = (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) (0 when a
  factor is 0).
- **pmF1** (positive micro F1): instance matches at IoU >= 0.5 summed over the positive prompts,
  F1 = 2 TP / (2 TP + FP + FN). Instance-type targets use their instance counts
  (:mod:`sambench.metrics.instances`; FN = ground-truth instances - TP); any other target counts
  the union of the returned instances as one prediction against the object as one instance (TP
  when their IoU >= 0.5). SAM 3's pmF1 averages IoU thresholds 0.5:0.95 and counts every returned
  instance; ours is the figure its evaluator reports as ``@0.5``, with the semantic-target rule
  above: hence "cgF1-like".
- **cgF1-like** = 100 x pmF1 x IL_MCC (SAM 3's cgF1 = 100 x pmF1 x IL_MCC, same sources).
- **Paraphrase spread** of a target: max - min over its phrasings of the mean DICE (T-para).

Confidence intervals (SPEC 5b; :mod:`sambench.analysis.stats`): every mean of a target (DICE and
instance F1 under T and E, matched DICE) and every rate (the FP rate, IL precision and recall)
gets a 95 % CI through :func:`~sambench.analysis.stats.interval`: by case (``unit="case"``, the
cluster bootstrap over cases within dataset, :func:`~sambench.analysis.stats.case_bootstrap`) or
by object (``unit="object"``, for comparison). A rate is the mean of a per-prompt 0/1 indicator
x 100 (FP rate: "something was returned" over the T-neg prompts; IL recall: the same over the T
prompts; IL precision: "the target was present" over the prompts answered with an instance), so
its CI is the cluster bootstrap of that indicator over cases. Below
:data:`~sambench.analysis.stats.MIN_CASES` units no CI (the note says ``"n = 4 cases: too
few"``); when the bootstrap has zero width (every value, or every case's mean within its
dataset, the same: e.g. an FP rate of 0 on every prompt) no CI is shown either (the note says
"every resample the same"). IL_MCC, pmF1 and cgF1-like get no CI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sambench.analysis.stats import CASE_KEYS, check_unit, interval, too_few
from sambench.prompts.names import (
    CONCEPT_STRATEGIES,
    EXEMPLAR,
    TEXT,
    TEXT_NEGATIVE,
    TEXT_PARAPHRASE,
)


def concept_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The ok rows of the concept strategies."""
    if results.empty or "strategy" not in results.columns:
        return results.iloc[0:0]
    df = results[results["strategy"].isin(CONCEPT_STRATEGIES)]
    return df[df["status"] == "ok"] if "status" in df.columns else df


def _returned(df: pd.DataFrame) -> pd.Series:
    return df["n_instances"].fillna(0).astype(int) > 0


def n_cases(rows: pd.DataFrame) -> float:
    """The number of cases, (dataset, case) pairs, of ``rows``; NaN without a ``case`` column."""
    if "case" not in rows.columns:
        return float("nan")
    return float(rows[list(CASE_KEYS)].drop_duplicates().shape[0])


def mean_ci(
    name: str,
    values: pd.Series,
    rows: pd.DataFrame,
    *,
    rng: np.random.Generator,
    unit: str = "case",
) -> dict[str, object]:
    """``{name: mean, name_ci_low, name_ci_high, name_ci_note}`` of ``values`` (one per row of
    ``rows``, which holds their ``dataset`` and ``case``; NaN values left out) with its 95 % CI
    by ``unit`` (:func:`~sambench.analysis.stats.interval`). No CI below MIN_CASES units
    (``"n = 4 cases: too few"``) or when the bootstrap has zero width (``"every resample the
    same"``: every value, or every case's mean within its dataset, the same; e.g. an FP rate of
    0 on every prompt), which is no measure of uncertainty."""
    keep = values.notna().to_numpy()
    v = values.to_numpy(dtype=np.float64)[keep]
    sub = rows[keep]
    if v.size == 0:
        lo, hi, note = np.nan, np.nan, too_few(0, unit)
    else:
        lo, hi, note = interval(v, sub, unit, rng=rng)
        if not note and lo == hi:
            lo, hi = np.nan, np.nan
            note = "every resample the same"
    return {
        name: float(v.mean()) if v.size else np.nan,
        f"{name}_ci_low": lo,
        f"{name}_ci_high": hi,
        f"{name}_ci_note": note,
    }


def _instance(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["instance_type"].fillna(False).astype(bool)]


def _target_cells(g: pd.DataFrame, *, rng: np.random.Generator, unit: str) -> dict[str, object]:
    """The numbers of one (model, dataset, target) of :func:`target_table`."""
    row: dict[str, object] = {}
    for strategy, tag in ((TEXT, "T"), (EXEMPLAR, "E")):
        sub = g[g["strategy"] == strategy]
        if sub.empty:
            continue
        row[f"n_{tag}"] = len(sub)
        row[f"n_cases_{tag}"] = n_cases(sub)
        row.update(mean_ci(f"dice_{tag}", sub["dice"], sub, rng=rng, unit=unit))
        inst = _instance(sub)
        if not inst.empty:
            row.update(mean_ci(f"inst_f1_{tag}", inst["inst_f1"], inst, rng=rng, unit=unit))
            if tag == "T":
                row.update(
                    mean_ci("inst_dice_tp_T", inst["inst_dice_tp"], inst, rng=rng, unit=unit)
                )
    neg = g[g["strategy"] == TEXT_NEGATIVE]
    if not neg.empty:
        hit = _returned(neg)
        row["n_neg"] = len(neg)
        row["n_cases_neg"] = n_cases(neg)
        row["n_fp"] = int(hit.sum())
        row.update(mean_ci("fp_rate", 100.0 * hit.astype(float), neg, rng=rng, unit=unit))
        row["fp_area_mean"] = float(neg["pred_area"].mean())
        row["fp_score_max"] = float(neg["max_instance_score"].max())
    return row


def target_table(
    results: pd.DataFrame, *, rng: np.random.Generator, unit: str = "case"
) -> pd.DataFrame:
    """One row per (model, dataset, target): DICE under T and E, FP rate under T-neg, paraphrase
    spread under T-para, instance F1 and matched DICE under T where the target is instance-type.

    Each mean or rate ``X`` (``dice_T``, ``inst_f1_T``, ``inst_dice_tp_T``, ``fp_rate``,
    ``dice_E``, ``inst_f1_E``) comes with ``X_ci_low``, ``X_ci_high`` and ``X_ci_note``
    (:func:`mean_ci`, by ``unit``); the counts behind them are ``n_T``/``n_cases_T`` (objects,
    cases), ``n_E``/``n_cases_E``, ``n_neg``/``n_cases_neg`` (absent-target prompts, their
    cases) and ``n_fp`` (prompts answered). Groups are visited in sorted order and draw from
    ``rng`` in turn. Columns are NaN where a strategy did not run for the target."""
    check_unit(unit)
    df = concept_rows(results)
    if df.empty:
        return pd.DataFrame()
    if unit == "case" and "case" not in df.columns:
        raise ValueError(
            "results: no 'case' column, so statistics by case are not possible; "
            "use unit='object' (objects as if independent) or add the manifest's case column"
        )
    keys = ["model", "dataset", "object_name"]
    rows = []
    for key, g in df.groupby(keys, sort=True):
        rows.append({**dict(zip(keys, key, strict=True)), **_target_cells(g, rng=rng, unit=unit)})
    out = pd.DataFrame(rows)
    para = paraphrase_table(results)
    if not para.empty:
        spread = para.groupby(keys, as_index=False).agg(
            n_phrasings=("phrase", "size"),
            para_min=("dice_mean", "min"),
            para_max=("dice_mean", "max"),
        )
        spread["para_spread"] = spread["para_max"] - spread["para_min"]
    else:
        spread = pd.DataFrame(columns=keys)
    if len(spread.columns) > len(keys):
        out = out.merge(spread, on=keys, how="left")
    return out


def paraphrase_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, dataset, target, phrasing) under T-para: objects and mean DICE."""
    df = concept_rows(results)
    df = df[df["strategy"] == TEXT_PARAPHRASE]
    if df.empty:
        return pd.DataFrame()
    keys = ["model", "dataset", "object_name", "phrase_index", "phrase"]
    return (
        df.groupby(keys, as_index=False)
        .agg(n=("dice", "size"), dice_mean=("dice", "mean"))
        .sort_values(keys)
        .reset_index(drop=True)
    )


def mcc(tp: int, fp: int, fn: int, tn: int) -> float:
    """Matthews correlation coefficient; 0 when a factor of the denominator is 0."""
    den = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    return (tp * tn - fp * fn) / math.sqrt(den) if den else 0.0


def presence_table(
    results: pd.DataFrame, *, rng: np.random.Generator, unit: str = "case"
) -> pd.DataFrame:
    """Per model: image-level presence counts, IL precision / recall / MCC, pmF1 (IoU 0.5) and
    the cgF1-like figure (module docstring). Needs both T and T-neg rows; empty otherwise.

    IL precision and recall come with ``_ci_low``, ``_ci_high``, ``_ci_note`` (:func:`mean_ci`
    of the per-prompt indicator, by ``unit``); ``cases``: the cases of all the model's
    prompts. IL_MCC, pmF1@0.5 and cgF1-like have no CI."""
    check_unit(unit)
    df = concept_rows(results)
    rows = []
    for model, g in df.groupby("model", sort=True):
        pos, neg = g[g["strategy"] == TEXT], g[g["strategy"] == TEXT_NEGATIVE]
        if pos.empty or neg.empty:
            continue
        tp, fn = int(_returned(pos).sum()), int((~_returned(pos)).sum())
        fp, tn = int(_returned(neg).sum()), int((~_returned(neg)).sum())
        il_mcc = mcc(tp, fp, fn, tn)
        itp = ifp = ifn = 0
        for r in pos.to_dict("records"):
            n_pred = int(r["n_instances"] or 0)
            if bool(r.get("instance_type")) and not pd.isna(r.get("inst_n_gt")):
                m = int(r["inst_tp"])
                itp, ifp, ifn = itp + m, ifp + n_pred - m, ifn + int(r["inst_n_gt"]) - m
            else:
                hit = n_pred > 0 and float(r["jaccard"]) >= 50.0
                itp, ifp, ifn = itp + hit, ifp + (n_pred > 0 and not hit), ifn + (not hit)
        pm_f1 = 2 * itp / (2 * itp + ifp + ifn) if (2 * itp + ifp + ifn) else 0.0
        both = pd.concat([pos, neg])
        answered = both[_returned(both)]
        present = 100.0 * (answered["strategy"] == TEXT).astype(float)
        rows.append(
            {
                "model": model,
                "positives": tp + fn,
                "negatives": fp + tn,
                "cases": n_cases(both),
                "IL TP": tp,
                "IL FP": fp,
                "IL FN": fn,
                "IL TN": tn,
                **mean_ci("IL precision", present, answered, rng=rng, unit=unit),
                **mean_ci(
                    "IL recall", 100.0 * _returned(pos).astype(float), pos, rng=rng, unit=unit
                ),
                "IL_MCC": il_mcc,
                "pmF1@0.5": 100.0 * pm_f1,
                "cgF1-like": 100.0 * pm_f1 * il_mcc,
            }
        )
    return pd.DataFrame(rows)


def worst_hallucination(results: pd.DataFrame) -> dict[str, object] | None:
    """The absent-target prompt (T-neg) whose answer was the worst invention: among the targets
    with the highest FP rate, the returned answer with the highest score (then the largest
    area). None without T-neg rows or when nothing was ever returned for an absent target."""
    df = concept_rows(results)
    neg = df[df["strategy"] == TEXT_NEGATIVE]
    if neg.empty:
        return None
    hits = neg[_returned(neg)]
    if hits.empty:
        return None
    rates = neg.assign(r=_returned(neg)).groupby(["model", "dataset", "object_name"])["r"]
    table = rates.agg(["sum", "size"]).reset_index()
    table["rate"] = 100.0 * table["sum"] / table["size"]
    top = table.sort_values(["rate", "sum"], ascending=False).iloc[0]
    sel = hits[
        (hits["model"] == top["model"])
        & (hits["dataset"] == top["dataset"])
        & (hits["object_name"] == top["object_name"])
    ].sort_values(["max_instance_score", "pred_area"], ascending=False)
    worst = sel.iloc[0]
    return {
        "model": str(top["model"]),
        "dataset": str(top["dataset"]),
        "target": str(top["object_name"]),
        "phrase": str(worst["phrase"]),
        "fp_rate": float(top["rate"]),
        "n_fp": int(top["sum"]),
        "n_neg": int(top["size"]),
        "image_id": str(worst["image_id"]),
        "area": int(worst["pred_area"]),
        "score": float(worst["max_instance_score"]),
    }


def ci_phrase(rec: Mapping[Any, Any], name: str, unit: str, suffix: str = " %") -> str:
    """``"95 % CI by case 30.1 to 55.2 %"`` for the column ``name`` of a :func:`mean_ci` record,
    or ``"no CI: n = 4 cases: too few"`` (its note)."""
    note = rec.get(f"{name}_ci_note")
    if note:
        return f"no CI: {note}"
    lo, hi = float(rec[f"{name}_ci_low"]), float(rec[f"{name}_ci_high"])
    return f"95 % CI by {unit} {lo:.1f} to {hi:.1f}{suffix}"


def _count(n: float, what: str) -> str:
    if isinstance(n, float) and math.isnan(n):
        return "n/a"
    return f"{int(n)} {what}{'' if int(n) == 1 else 's'}"


def concept_sentences(
    results: pd.DataFrame, *, rng: np.random.Generator, unit: str = "case"
) -> list[str]:
    """Summary bullets: DICE under T, the presence figures, the worst hallucination; every mean
    and rate with its 95 % CI by ``unit`` (:func:`mean_ci`) and the objects and cases behind it."""
    check_unit(unit)
    out: list[str] = []
    df = concept_rows(results)
    if df.empty:
        return out
    t = df[df["strategy"] == TEXT]
    for model, g in t.groupby("model", sort=True):
        rec = mean_ci("dice", g["dice"], g, rng=rng, unit=unit)
        out.append(
            f"{model}, text prompts (T): mean DICE {float(rec['dice']):.1f} % "  # type: ignore[arg-type]
            f"({ci_phrase(rec, 'dice', unit)}) of the union of the returned instances, "
            f"{_count(len(g), 'object')} in {_count(n_cases(g), 'case')}; nothing returned for "
            f"{int((g['n_instances'].fillna(0) == 0).sum())} of them."
        )
    for r in presence_table(results, rng=rng, unit=unit).to_dict("records"):
        out.append(
            f"{r['model']}, present/absent: IL precision {r['IL precision']:.1f} % "
            f"({ci_phrase(r, 'IL precision', unit)}), recall {r['IL recall']:.1f} % "
            f"({ci_phrase(r, 'IL recall', unit)}), IL_MCC {r['IL_MCC']:.2f}, cgF1-like "
            f"{r['cgF1-like']:.1f} ({r['positives']} present and {r['negatives']} absent "
            f"prompts in {_count(r['cases'], 'case')}; no CI for IL_MCC and cgF1-like)."
        )
    w = worst_hallucination(results)
    if w is not None:
        neg = df[
            (df["strategy"] == TEXT_NEGATIVE)
            & (df["model"] == w["model"])
            & (df["dataset"] == w["dataset"])
            & (df["object_name"] == w["target"])
        ]
        rec = mean_ci("rate", 100.0 * _returned(neg).astype(float), neg, rng=rng, unit=unit)
        out.append(
            f"Worst hallucination: {w['model']} asked for '{w['phrase']}' ({w['dataset']}), "
            f"absent, returned something on {w['n_fp']} of {w['n_neg']} images "
            f"({w['fp_rate']:.0f} %; {ci_phrase(rec, 'rate', unit)}; "
            f"{_count(n_cases(neg), 'case')}); worst on {w['image_id']}: {w['area']} pixels at "
            f"score {w['score']:.2f}."
        )
    elif not df[df["strategy"] == TEXT_NEGATIVE].empty:
        out.append("No hallucination: nothing was returned for any absent target (T-neg).")
    return out
