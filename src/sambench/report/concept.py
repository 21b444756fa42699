"""The report's text-prompt section: T, T-para, T-neg and E of a text-promptable model.

Per target: DICE under T (union of the returned instances), instance F1 and matched DICE for
instance-type targets, FP rate under T-neg, paraphrase spread under T-para, DICE under E; per
model the image-level presence figures and the cgF1-like figure
(:mod:`sambench.analysis.concept`, definitions and sources in docs/text-prompts.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sambench.analysis.concept import (
    concept_rows,
    concept_sentences,
    paraphrase_table,
    presence_table,
    target_table,
)
from sambench.report import html as H

if TYPE_CHECKING:
    from sambench.report.context import ReportContext

COLUMNS = {
    "dataset": "dataset",
    "object_name": "target",
    "n_T": "objects (T)",
    "dice_T": "DICE T",
    "inst_f1_T": "instance F1 T",
    "inst_dice_tp_T": "matched DICE T",
    "n_neg": "absent prompts",
    "fp_rate": "FP rate T-neg %",
    "fp_area_mean": "mean area returned (px)",
    "fp_score_max": "max score returned",
    "para_spread": "paraphrase spread (DICE points)",
    "n_phrasings": "phrasings",
    "dice_E": "DICE E",
    "inst_f1_E": "instance F1 E",
}


def text_prompts(ctx: ReportContext, sec: H.Section) -> None:
    df = concept_rows(ctx.results)
    if df.empty:
        sec.add(H.note_html("No text or exemplar prompts in this run (strategies T, T-neg, E)."))
        return
    sec.add(
        H.para_html(
            "The concept head's answer to a phrase (T: the target's phrase; T-para: each of its "
            "phrasings; T-neg: the phrase of a target absent from the image) or to an exemplar "
            "box on one instance (E) is every instance it finds. DICE scores their union "
            "against the object (%); instance F1 (IoU 0.5) and matched DICE follow the CVPR "
            "2025 text-guided challenge's rule (instance-type targets only); the FP rate is the "
            "% of absent-target prompts answered with at least one instance. Means over objects; "
            "no CIs in this section. Definitions: docs/text-prompts.md."
        )
    )
    sec.add(H.list_html(concept_sentences(ctx.results)))
    table = target_table(ctx.results)
    for model, g in table.groupby("model"):
        cols = [c for c in COLUMNS if c in g.columns and g[c].notna().any()]
        shown = g[cols].copy()
        for c in ("n_T", "n_neg", "n_E", "n_phrasings"):
            if c in shown.columns:
                shown[c] = shown[c].round().astype("Int64")
        ctx.table(
            sec,
            f"text_targets_{model}",
            shown.rename(columns=COLUMNS),
            f"{model}: per target, text (T), absent targets (T-neg), phrasings (T-para), "
            "exemplars (E); n/a: the strategy did not run for the target, the target is never "
            "absent, or it is not instance-type",
            floatfmt=".1f",
            blank="n/a",
        )
    presence = presence_table(ctx.results)
    if not presence.empty:
        ctx.table(
            sec,
            "text_presence",
            presence,
            "Present/absent at image level (T = present, T-neg = absent), pmF1 at IoU 0.5 and "
            "cgF1-like = 100 x pmF1 x IL_MCC",
            floatfmt=".2f",
        )
    para = paraphrase_table(ctx.results)
    if not para.empty:
        ctx.table(
            sec,
            "text_paraphrases",
            para.rename(columns={"object_name": "target", "dice_mean": "mean DICE"}),
            "Mean DICE per phrasing (T-para)",
            floatfmt=".1f",
            folded="Mean DICE per phrasing (T-para)",
        )
