"""The report's text-prompt section: T, T-para, T-neg and E of a text-promptable model.

Per target: DICE under T (union of the returned instances), instance F1 and matched DICE for
instance-type targets, FP rate under T-neg, paraphrase spread under T-para, DICE under E; per
model the image-level presence figures and the cgF1-like figure
(:mod:`sambench.analysis.concept`, definitions and sources in docs/text-prompts.md). Every mean
and rate with its 95 % CI by ``ctx.ci_unit`` (SPEC 5b) and the objects and cases behind it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from sambench.analysis.concept import (
    concept_rows,
    concept_sentences,
    paraphrase_table,
    presence_table,
    target_table,
)
from sambench.analysis.stats import ci_label
from sambench.report import html as H

if TYPE_CHECKING:
    from sambench.report.context import ReportContext

#: present targets (T, E, T-para): raw column -> header
PRESENT = {
    "dataset": "dataset",
    "object_name": "target",
    "n_T": "objects (T)",
    "n_cases_T": "cases (T)",
    "dice_T": "DICE T",
    "inst_f1_T": "instance F1 T",
    "inst_dice_tp_T": "matched DICE T",
    "n_E": "objects (E)",
    "n_cases_E": "cases (E)",
    "dice_E": "DICE E",
    "inst_f1_E": "instance F1 E",
    "para_spread": "paraphrase spread (DICE points)",
    "n_phrasings": "phrasings",
}
#: absent targets (T-neg): raw column -> header
ABSENT = {
    "dataset": "dataset",
    "object_name": "target",
    "n_neg": "absent prompts",
    "n_cases_neg": "cases",
    "n_fp": "answered",
    "fp_rate": "FP rate T-neg %",
    "fp_area_mean": "mean area returned (px)",
    "fp_score_max": "max score returned",
}
#: presence table: raw column stem -> header (with its CI columns)
PRESENCE = {
    f"{c}{part}": f"{c} %{part}"
    for c in ("IL precision", "IL recall", "pmF1@0.5")
    for part in ("", "_ci_low", "_ci_high", "_ci_note")
}
COUNTS = ("n_T", "n_cases_T", "n_E", "n_cases_E", "n_neg", "n_cases_neg", "n_fp", "n_phrasings")
CI_PARTS = ("_ci_low", "_ci_high", "_ci_note")


def shown(table: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """The columns of ``names`` that hold a value (with their CI columns), counts as integers,
    renamed for the reader (``dice_T_ci_low`` -> ``DICE T_ci_low``, merged into one cell by
    :func:`sambench.report.html.merge_ci_columns`)."""
    cols: list[str] = []
    rename: dict[str, str] = {}
    for c, label in names.items():
        if c not in table.columns or not table[c].notna().any():
            continue
        cols.append(c)
        rename[c] = label
        for part in CI_PARTS:
            if f"{c}{part}" in table.columns:
                cols.append(f"{c}{part}")
                rename[f"{c}{part}"] = f"{label}{part}"
    out = table[cols].copy()
    for c in COUNTS:
        if c in out.columns:
            out[c] = out[c].round().astype("Int64")
    return out.rename(columns=rename)


def text_prompts(ctx: ReportContext, sec: H.Section) -> None:
    df = concept_rows(ctx.results)
    if df.empty:
        sec.add(H.note_html("No text or exemplar prompts in this run (strategies T, T-neg, E)."))
        return
    unit = ctx.ci_unit
    label = ci_label(unit)
    sec.add(
        H.para_html(
            "The concept head's answer to a phrase (T: the target's phrase; T-para: each of its "
            "phrasings; T-neg: the phrase of a target absent from the image) or to an exemplar "
            "box on one instance (E) is every instance it finds. DICE scores their union "
            "against the object (%); instance F1 (IoU 0.5) and matched DICE follow the CVPR "
            "2025 text-guided challenge's rule (instance-type targets only); the FP rate is the "
            "% of absent-target prompts answered with at least one instance. Means over objects "
            f"with their {label}; a rate's CI is the same bootstrap of its per-prompt 0/1 "
            "indicator; no CI either where every resample gives the same value (a zero-width "
            "bootstrap, e.g. every case alike). "
            "Definitions: docs/text-prompts.md."
        )
    )
    sec.add(H.list_html(concept_sentences(ctx.results, rng=ctx.rng, unit=unit)))
    table = target_table(ctx.results, rng=ctx.rng, unit=unit)
    for model, g in table.groupby("model", sort=True):
        asked = [c for c in ("n_T", "n_E", "n_phrasings") if c in g.columns]
        present = g[g[asked].notna().any(axis=1)]
        if not present.empty:
            ctx.table(
                sec,
                f"text_targets_{model}",
                shown(present, PRESENT),
                f"{model}, targets present: text (T), exemplars (E), phrasings (T-para), means "
                f"with their {label}; n/a: not run for the target, or not instance-type",
                floatfmt=".1f",
                blank="n/a",
            )
        absent = g[g["n_neg"].notna()] if "n_neg" in g.columns else g.iloc[0:0]
        if not absent.empty:
            ctx.table(
                sec,
                f"text_absent_{model}",
                shown(absent, ABSENT),
                f"{model}, targets asked where absent (T-neg): FP rate = % of the prompts "
                f"answered, {label} of the per-prompt 0/1 indicator",
                floatfmt=".2f",
                blank="n/a",
            )
    presence = presence_table(ctx.results, rng=ctx.rng, unit=unit)
    if not presence.empty:
        ctx.table(
            sec,
            "text_presence",
            presence.rename(columns=PRESENCE),
            "Present/absent at image level (T = present, T-neg = absent): IL precision and "
            f"recall (%) with their {label} of the per-prompt 0/1 indicator; pmF1 at IoU 0.5 "
            "(%) and cgF1-like = 100 x pmF1 x IL_MCC, no CI",
            floatfmt=".2f",
        )
    para = paraphrase_table(ctx.results)
    if not para.empty:
        ctx.table(
            sec,
            "text_paraphrases",
            para.rename(columns={"object_name": "target", "dice_mean": "mean DICE"}),
            "Mean DICE per phrasing (T-para; no CI)",
            floatfmt=".1f",
            folded="Mean DICE per phrasing (T-para)",
        )
