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
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

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


def target_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, dataset, target): DICE under T and E, FP rate under T-neg, paraphrase
    spread under T-para, instance F1 and matched DICE under T where the target is instance-type.
    Columns are NaN where a strategy did not run for the target."""
    df = concept_rows(results)
    if df.empty:
        return pd.DataFrame()
    keys = ["model", "dataset", "object_name"]
    out = df[keys].drop_duplicates().sort_values(keys).reset_index(drop=True)

    def agg(strategy: str, **named: tuple[str, str]) -> pd.DataFrame:
        sub = df[df["strategy"] == strategy]
        if sub.empty:
            return pd.DataFrame(columns=[*keys, *named])
        return sub.groupby(keys, as_index=False).agg(**named)  # type: ignore[call-overload,no-any-return]

    t = agg(TEXT, n_T=("dice", "size"), dice_T=("dice", "mean"))
    inst = df[(df["strategy"] == TEXT) & df["instance_type"].fillna(False).astype(bool)]
    if not inst.empty:
        t = t.merge(
            inst.groupby(keys, as_index=False).agg(
                inst_f1_T=("inst_f1", "mean"), inst_dice_tp_T=("inst_dice_tp", "mean")
            ),
            on=keys,
            how="left",
        )
    neg = df[df["strategy"] == TEXT_NEGATIVE].assign(returned=lambda d: _returned(d))
    if not neg.empty:
        fp = neg.groupby(keys, as_index=False).agg(
            n_neg=("returned", "size"),
            n_fp=("returned", "sum"),
            fp_area_mean=("pred_area", "mean"),
            fp_score_max=("max_instance_score", "max"),
        )
        fp["fp_rate"] = 100.0 * fp["n_fp"] / fp["n_neg"]
    else:
        fp = pd.DataFrame(columns=keys)
    e = agg(EXEMPLAR, n_E=("dice", "size"), dice_E=("dice", "mean"))
    inst_e = df[(df["strategy"] == EXEMPLAR) & df["instance_type"].fillna(False).astype(bool)]
    if not inst_e.empty:
        e = e.merge(
            inst_e.groupby(keys, as_index=False).agg(inst_f1_E=("inst_f1", "mean")),
            on=keys,
            how="left",
        )
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
    for part in (t, fp, e, spread):
        if len(part.columns) > len(keys):
            out = out.merge(part, on=keys, how="left")
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


def presence_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per model: image-level presence counts, IL precision / recall / MCC, pmF1 (IoU 0.5) and
    the cgF1-like figure (module docstring). Needs both T and T-neg rows; empty otherwise."""
    df = concept_rows(results)
    rows = []
    for model, g in df.groupby("model"):
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
        rows.append(
            {
                "model": model,
                "positives": tp + fn,
                "negatives": fp + tn,
                "IL TP": tp,
                "IL FP": fp,
                "IL FN": fn,
                "IL TN": tn,
                "IL precision": 100.0 * tp / (tp + fp) if tp + fp else np.nan,
                "IL recall": 100.0 * tp / (tp + fn) if tp + fn else np.nan,
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


def concept_sentences(results: pd.DataFrame) -> list[str]:
    """Summary bullets: DICE under T, the presence figures, the worst hallucination."""
    out: list[str] = []
    df = concept_rows(results)
    if df.empty:
        return out
    t = df[df["strategy"] == TEXT]
    for model, g in t.groupby("model"):
        out.append(
            f"{model}, text prompts (T): mean DICE {g['dice'].mean():.1f} % of the union of the "
            f"returned instances, {len(g)} objects; nothing returned for "
            f"{int((g['n_instances'].fillna(0) == 0).sum())} of them."
        )
    for r in presence_table(results).to_dict("records"):
        out.append(
            f"{r['model']}, present/absent: IL precision {r['IL precision']:.1f} %, recall "
            f"{r['IL recall']:.1f} %, IL_MCC {r['IL_MCC']:.2f}, cgF1-like {r['cgF1-like']:.1f} "
            f"({r['positives']} present and {r['negatives']} absent prompts)."
        )
    w = worst_hallucination(results)
    if w is not None:
        out.append(
            f"Worst hallucination: {w['model']} asked for '{w['phrase']}' ({w['dataset']}), "
            f"absent, returned something on {w['n_fp']} of {w['n_neg']} images "
            f"({w['fp_rate']:.0f} %); worst on {w['image_id']}: {w['area']} pixels at score "
            f"{w['score']:.2f}."
        )
    elif not df[df["strategy"] == TEXT_NEGATIVE].empty:
        out.append("No hallucination: nothing was returned for any absent target (T-neg).")
    return out
