"""The report's correction-effort section and summary sentence: Human Correction Effort (HCE,
:mod:`sambench.metrics.hce`) per strategy and model, i.e. how many mouse operations each
strategy's output would cost to fix (lower is better).

Rows: the main rows (:func:`sambench.analysis.summary.main_rows`), ``oracle`` selection, ``ok``
status (:func:`sambench.analysis.effort.hce_summary`). Results written before HCE existed have no
``hce`` column: the section says so and the summary leaves the sentence out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from sambench.analysis.effort import hce_summary, hce_table
from sambench.report import figures as F
from sambench.report import html as H

if TYPE_CHECKING:
    from sambench.report.context import ReportContext

NO_HCE = "No HCE columns in these results (runs of an older sambench): re-run the evaluation."


def _pooled(results: pd.DataFrame) -> pd.DataFrame:
    if "hce" not in results.columns or results.empty:
        return pd.DataFrame()
    s = hce_summary(results, by=None)
    return s[s["n"] > 0]


def hce_sentences(results: pd.DataFrame) -> list[str]:
    """One sentence per model: the strategies with the least and the most mean HCE (empty when
    the results have no HCE)."""
    s = _pooled(results)
    out = []
    for model, g in s.groupby("model", sort=True):
        g = g.sort_values("hce", kind="stable")
        lo, hi = g.iloc[0], g.iloc[-1]
        text = (
            f"{model}: least correction effort with {lo['strategy']}, mean HCE {lo['hce']:.1f} "
            f"mouse operations per object (FP {lo['hce_fp']:.1f}, FN {lo['hce_fn']:.1f}; "
            f"{int(lo['n'])} objects)"
        )
        if hi["strategy"] != lo["strategy"]:
            text += f"; most with {hi['strategy']}, {hi['hce']:.1f}"
        out.append(text + ".")
    return out


def effort(ctx: ReportContext, sec: H.Section) -> None:
    """Mean HCE per model and strategy (pooled and per target-modality) and the figure."""
    s = _pooled(ctx.results)
    if s.empty:
        sec.add(H.note_html(NO_HCE if "hce" not in ctx.results.columns else "No ok HCE rows."))
        return
    sec.add(
        H.para_html(
            "Human Correction Effort (DIS benchmark, Qin et al. 2022): the estimated number of "
            "mouse operations (polygon points + independent regions) to correct a prediction "
            "into the ground truth; FP part = removing false positives, FN part = adding missed "
            "pixels. Lower is better; oracle selection."
        )
    )
    ctx.table(
        sec,
        "hce_by_strategy",
        hce_summary(ctx.results, by=None),
        "Mean HCE per model and strategy (all objects)",
        floatfmt=".2f",
    )
    ctx.table(
        sec,
        "hce_by_target",
        hce_table(ctx.results),
        "HCE per target-modality: mean (std), oracle",
    )
    ctx.figure(
        sec,
        "hce_by_strategy",
        F.hce_by_strategy(s),
        "Correction effort by strategy: mean HCE, stacked FN (plain) and FP (hatched) parts",
    )
