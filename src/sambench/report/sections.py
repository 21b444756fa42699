"""The report's sections: each builder fills one :class:`~sambench.report.html.Section` from the
shared :class:`~sambench.report.context.ReportContext` and writes its tables and figures.

Row sets: "main" rows are the unshifted, non-interactive rows (S1-S6); when S1 ran with several
grid sizes, only the default grid (32 if present, else the largest) enters the main tables, and the
grid ablation has its own section. Statistics use the ``oracle`` selection (the paper's numbers)
unless a table says otherwise. Only ``status == "ok"`` rows enter a statistic.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from sambench.analysis import robustness, stats
from sambench.analysis.summary import (
    INTERACTIVE,
    main_rows,
    paper_table,
    summary_long,
    timing_table,
    with_target_modality,
)
from sambench.report import figures as F
from sambench.report import html as H
from sambench.report.annotation import annotation
from sambench.report.concept import text_prompts
from sambench.report.effort import effort
from sambench.report.findings import (
    NOT_RUN,
    distance_summary,
    findings,
    paper_tables,
    run_config,
    run_details,
)
from sambench.report.reference import paper_comparison
from sambench.report.reference import paper_table as published

if TYPE_CHECKING:
    from sambench.report.context import ReportContext


def _ok(df: pd.DataFrame, selection: str = "oracle") -> pd.DataFrame:
    return df[(df["status"] == "ok") & (df["selection"] == selection)]


# ---------------------------------------------------------------- means with CIs


def mean_ci(ctx: ReportContext, sec: H.Section) -> None:
    df = main_rows(ctx.results)
    if _ok(df).empty:
        sec.add(H.note_html("No ok single-round rows: nothing to summarize."))
        return
    unit = ctx.ci_unit
    dice = stats.mean_with_ci(df, ("model", "strategy"), "dice", rng=ctx.rng, unit=unit)
    hd = stats.mean_with_ci(df, ("model", "strategy"), "hd", rng=ctx.rng, unit=unit)
    ctx.table(
        sec,
        "mean_ci_dice",
        dice,
        f"Mean DICE (%), {stats.ci_label(unit)} (oracle)",
        floatfmt=".2f",
        blank="no CI",
    )
    dist = distance_summary(df)[["model", "strategy", "hd median", "empty", "empty %"]]
    hd_table = hd.merge(dist.rename(columns={"hd median": "median"}), on=["model", "strategy"])
    ctx.table(
        sec,
        "mean_ci_hd",
        hd_table,
        f"Mean HD (pixels), {stats.ci_label(unit)}, median and empty predictions (oracle)",
        floatfmt=".2f",
        blank="no CI",
    )
    ctx.figure(
        sec,
        "fig6_mean_ci",
        F.mean_ci_figure(dice, hd_table),
        f"Fig. 6 style: means with 95 % CI by {unit} (no error bar: too few {unit}s). "
        "'not run': no rows for that model and strategy; '0': measured, every prediction empty "
        "or disjoint; 'x% E': x % of that bar's objects had an empty prediction, whose distance "
        "is the run's empty-mask convention, not a measurement.",
    )


# ---------------------------------------------------------------- Tables 2 and 3


def explain_blanks(
    wide: pd.DataFrame, results: pd.DataFrame, metric: str, by: str, selection: str
) -> pd.DataFrame:
    """``wide`` (:func:`sambench.analysis.summary.paper_table`) with its empty cells replaced by
    the reason: ``n = 0 (k skipped)`` when every row of that cell was skipped, else ``not run``."""
    long = summary_long(results, metric, by=by, selection=selection)
    models = sorted(map(str, long["model"].unique()))
    zero = long[long["n"] == 0]
    out = wide.copy()
    for rec in zero.to_dict("records"):
        col = str(rec["strategy"]) if len(models) == 1 else f"{rec['model']} {rec['strategy']}"
        if col in out.columns:
            hit = out[by] == rec[by]
            out.loc[hit, col] = f"n = 0 ({int(rec['n_skipped'])} skipped)"
    return out


def _target_table(ctx: ReportContext, sec: H.Section, metric: str, label: str) -> None:
    df = main_rows(ctx.results)
    if _ok(df).empty:
        sec.add(H.note_html("No ok single-round rows."))
        return
    ctx.table(
        sec,
        f"{metric}_by_target",
        explain_blanks(paper_table(df, metric), df, metric, "target_modality", "oracle"),
        f"{label}: mean (std), oracle",
        blank=NOT_RUN,
    )
    ctx.table(
        sec,
        f"{metric}_by_target_score",
        explain_blanks(
            paper_table(df, metric, selection="score"), df, metric, "target_modality", "score"
        ),
        f"{label}: mean (std), score selection (highest predicted IoU)",
        blank=NOT_RUN,
    )


def table2(ctx: ReportContext, sec: H.Section) -> None:
    _target_table(ctx, sec, "dice", "DICE (%) per target-modality")
    ok = with_target_modality(_ok(main_rows(ctx.results)))
    if not ok.empty:
        ctx.figure(
            sec,
            "fig7_dice_box_by_target",
            F.box_by_group(ok, "target_modality"),
            "Figs. 7/8 style: DICE per target-modality and strategy (oracle)",
        )


def table3(ctx: ReportContext, sec: H.Section) -> None:
    _target_table(ctx, sec, "hd", "HD (pixels) per target-modality")


def comparison(ctx: ReportContext, sec: H.Section) -> None:
    sec.add(
        H.para_html(
            "Long form of the side-by-side tables: per matched target-modality, strategy and model "
            "our n, mean and std beside the paper's SAM ViT-B / ViT-H numbers and "
            "diff = ours - paper."
        )
    )
    df = main_rows(ctx.results)
    for metric, label in (("dice", "DICE (%), Table 2"), ("hd", "HD (pixels), Table 3")):
        comp = paper_comparison(df, metric, aliases=ctx.aliases)
        if comp.empty:
            sec.add(H.note_html(f"{label}: no target-modality of this run matches the paper's."))
        else:
            ctx.table(sec, f"paper_comparison_{metric}", comp, label, floatfmt=".2f")


def per_modality(ctx: ReportContext, sec: H.Section) -> None:
    df = main_rows(ctx.results)
    if _ok(df).empty:
        sec.add(H.note_html("No ok single-round rows."))
        return
    ctx.table(
        sec, "dice_by_modality", paper_table(df, "dice", by="modality"), "DICE (%) per modality"
    )
    ctx.table(
        sec, "hd_by_modality", paper_table(df, "hd", by="modality"), "HD (pixels) per modality"
    )
    ctx.figure(
        sec,
        "fig10_dice_box_by_modality",
        F.box_by_group(_ok(df), "modality"),
        "Fig. 10 style: DICE per modality and strategy (oracle)",
    )


# ---------------------------------------------------------------- tests, volumes


def strategy_tests(
    ctx: ReportContext, sec: H.Section, paired: Callable[[str], pd.DataFrame], detail: str = ""
) -> None:
    """The tables ``wilcoxon_strategies_dice`` and ``_hd``: ``paired(metric)``, the paired tests
    between strategies (:func:`~sambench.analysis.stats.paired_wilcoxon` or its lazy twin),
    titled "Between strategies, DICE" + ``detail``."""
    for metric in ("dice", "hd"):
        ctx.table(
            sec,
            f"wilcoxon_strategies_{metric}",
            paired(metric),
            f"Between strategies, {metric.upper()}{detail}",
        )


def wilcoxon(ctx: ReportContext, sec: H.Section) -> None:
    df = main_rows(ctx.results)
    ok = _ok(df)
    unit = ctx.ci_unit
    how = (
        "objects matched on both sides are averaged per case and the test pairs the case means "
        f"(n = cases; no test below {stats.MIN_CASES} cases)"
        if unit == "case"
        else "the test pairs the objects as if independent (for comparison only)"
    )
    sec.add(
        H.para_html(
            f"Two-sided Wilcoxon signed-rank tests on the same objects (oracle selection): {how}; "
            "p_holm is Holm-adjusted over all tested rows of a table."
        )
    )
    if ok["strategy"].nunique() > 1:
        strategy_tests(
            ctx,
            sec,
            lambda m: stats.paired_wilcoxon(df, m, between="strategy", unit=unit),
            f", {stats.test_label(unit)}",
        )
    else:
        sec.add(H.note_html("One strategy only: no test between strategies."))
    if ok["model"].nunique() > 1:
        between = stats.paired_wilcoxon(df, "dice", between="model", unit=unit)
        alone = sorted(map(str, between.loc[between["n"] == 0, "strategy"].unique()))
        ctx.table(
            sec,
            "wilcoxon_models_dice",
            between[between["n"] > 0],
            f"Between models, DICE, {stats.test_label(unit)}",
        )
        if alone:
            sec.add(
                H.note_html(
                    f"No object in common between models for {', '.join(alone)} (run by one "
                    "model only): not tested."
                )
            )
    else:
        sec.add(H.note_html("One model only: no test between models."))


def volume_level(ctx: ReportContext, sec: H.Section) -> None:
    df = _ok(main_rows(ctx.results))
    df = df[df["slice_index"] >= 0]
    if df.empty:
        sec.add(H.note_html("No slices of volumes (2D sources only): volume DICE does not apply."))
        return
    vol = stats.volume_dice(df)
    ctx.table(sec, "volume_dice_per_case", vol, "Volume DICE per case (oracle)")
    summ = (
        vol.groupby(["object_name", "model", "strategy"], sort=True)
        .agg(
            cases=("volume_dice", "size"),
            volume_dice=("volume_dice", "mean"),
            slice_dice=("mean_slice_dice", "mean"),
        )
        .reset_index()
    )
    ctx.table(sec, "volume_dice_summary", summ, "Mean volume-level vs slice-level DICE (%)")


# ---------------------------------------------------------------- attributes


def attributes(ctx: ReportContext, sec: H.Section) -> None:
    from sambench.analysis.attributes import attributes_table, with_attributes

    if ctx.prepared is None or not ctx.prepared.is_dir():
        sec.add(H.note_html(f"Prepared folder {ctx.prepared} not found: attributes skipped."))
        return
    df = _ok(main_rows(ctx.results))
    if df.empty:
        sec.add(H.note_html("No ok single-round rows."))
        return
    attrs = attributes_table(df, ctx.prepared, progress=False)
    ctx.table(sec, "object_attributes", attrs, "Object attributes (one row per object)")
    joined = with_attributes(df, attrs)
    corr = stats.attribute_correlations(joined)
    ctx.table(
        sec, "attribute_correlations", corr, "Spearman partial correlations with DICE (oracle)"
    )
    ctx.table(
        sec,
        "table6_layout",
        stats.table6_layout(corr, cell=True),
        "Table 6 layout (r, * = p < 0.001)",
    )
    ctx.table(sec, "paper_table6", published("table6_spearman"), "Paper Table 6 (SAM ViT-B/H)")
    sec.add(
        H.note_html(
            "Modality is a categorical code (sorted names numbered 0..n-1); its rank correlation "
            "depends on that arbitrary order. Attributes constant within a group are left blank."
        )
    )
    ctx.figure(
        sec,
        "fig13_attribute_scatter",
        F.attribute_scatter(joined),
        "Fig. 13 style: DICE vs attributes",
    )
    ctx.figure(
        sec,
        "fig14_fourier_by_dice_level",
        F.fourier_by_dice_level(joined),
        "Fig. 14 style: Fourier order by DICE level k, DICE in (10(k-1), 10k] (DICE 0 in level 1)",
    )


# ---------------------------------------------------------------- S1 grid, shifts, interactive


def grid_ablation(ctx: ReportContext, sec: H.Section) -> None:
    r = robustness.unshifted(ctx.results)
    s1 = r[(r["strategy"] == "S1")]
    if s1.empty or "grid" not in s1.columns:
        sec.add(H.note_html("No everything-mode (S1) rows in this run."))
        return
    ok = with_target_modality(_ok(s1))
    if ok["grid"].nunique() < 2:
        sec.add(
            H.note_html(
                f"S1 ran with one grid only ({', '.join(str(int(g)) for g in sorted(ok['grid'].dropna().unique()))} "
                "points per side): no grid ablation."
            )
        )
        return
    g = ok.groupby(["model", "target_modality", "grid"], sort=True)["dice"]
    summ = pd.DataFrame({"n": g.size(), "mean": g.mean(), "std": g.std(ddof=1)}).reset_index()
    summ["grid"] = summ["grid"].astype(int)
    ctx.table(sec, "table5_grid", summ, "Everything-mode DICE (%) by grid size (m x m points)")
    if "n_generated" in ok.columns:
        ng = ok.drop_duplicates(["model", "image_id", "grid"]).groupby(["model", "grid"])[
            "n_generated"
        ]
        ctx.table(
            sec,
            "grid_masks_generated",
            ng.mean().rename("mean_masks_per_image").reset_index(),
            "Masks generated per image",
        )
    ctx.figure(sec, "table5_grid_curve", F.grid_curve(summ), "Table 5 style: DICE by grid size")
    ctx.table(sec, "paper_table5", published("table5_grid"), "Paper Table 5")


def shift(ctx: ReportContext, sec: H.Section) -> None:
    r = ctx.results
    if "shift_range" not in r.columns or robustness.is_unshifted(r).all():
        sec.add(H.note_html("No prompt-shift rows in this run (evaluate with --shift)."))
        return
    ctx.table(
        sec,
        "table8_shift_drop",
        robustness.shift_drop_table(r),
        "Mean DICE drop (points; positive = worse), per repeat and mean",
        floatfmt=".2f",
    )
    long = robustness.shift_drop_long(r)
    ctx.table(sec, "shift_drop_long", long, "Per strategy, range and repeat")
    ctx.table(sec, "paper_table8", published("table8_shift"), "Paper Table 8 (mean of 3 runs)")
    ctx.figure(
        sec,
        "shift_drop_bars",
        F.shift_bars(long),
        "DICE drop by shift range (bars: min..max over repeats)",
    )


def interactive(ctx: ReportContext, sec: H.Section) -> None:
    from sambench.analysis.interactive import click_curve_ci, noc_table

    r = ctx.results
    if (
        "click_index" not in r.columns
        or not ((r["strategy"] == INTERACTIVE) & (r["status"] == "ok")).any()
    ):
        sec.add(
            H.note_html("No interactive rows in this run (evaluate with --strategies interactive).")
        )
        return
    unit, label = ctx.ci_unit, stats.ci_label(ctx.ci_unit)
    ctx.table(
        sec,
        "noc_by_model",
        noc_table(r, by=("model",), rng=ctx.rng, unit=unit),
        f"NoC / NoF per model, {label}",
    )
    by_target = noc_table(r, rng=ctx.rng, unit=unit)
    ctx.table(
        sec,
        "noc_by_target",
        by_target,
        "",
        # the per-model table above is the claim; per target it is detail (folded)
        folded=f"NoC / NoF per model and target-modality, {label} ({len(by_target)} rows)",
    )
    curve = click_curve_ci(r, by=("model",), rng=ctx.rng, unit=unit)
    ctx.table(
        sec,
        "click_curve",
        curve,
        f"Mean DICE and IoU after each click, {label}",
        folded="Mean DICE and IoU after each click (the figure's numbers)",
    )
    ctx.figure(
        sec,
        "fig16_click_curves",
        F.click_curves(curve),
        f"Fig. 16 style: DICE / IoU per click; bands: {label}",
    )


def timing(ctx: ReportContext, sec: H.Section) -> None:
    df = main_rows(ctx.results)
    if (
        not {"embed_seconds", "decode_seconds", "embedding_cached"} <= set(df.columns)
        or _ok(df).empty
    ):
        sec.add(H.note_html("No timing columns in the results."))
        return
    ctx.table(
        sec,
        "timing_seconds",
        timing_table(df),
        "Ours: seconds per image (embedding) and per object (decoding)",
    )
    ctx.table(
        sec, "paper_table4", published("table4_timing"), "Paper Table 4 (RTX 3090, 256x256 input)"
    )
    sec.add(
        H.note_html(
            "Embedding time counts encoder passes only (cache hits excluded); hardware differs from the paper's."
        )
    )


# ---------------------------------------------------------------- overlays


def overlays(ctx: ReportContext, sec: H.Section) -> None:
    from sambench.report import overlays as O

    if not ctx.overlays:
        sec.add(H.note_html("Overlays were not requested."))
        return
    if ctx.prepared is None or not ctx.prepared.is_dir():
        sec.add(H.note_html(f"Prepared folder {ctx.prepared} not found: overlays skipped."))
        return
    own = ctx.results
    if ctx.main_model is not None:
        own = own[own["model"] == ctx.main_model]
    cases = O.select_cases(own, max_images=ctx.max_overlay_images)
    if not cases:
        sec.add(H.note_html("No ok prompted (S2-S6) rows to draw."))
        return
    model = ctx.model
    if model is None:
        if ctx.config is None:
            sec.add(H.note_html("No config.json: the model cannot be rebuilt; overlays skipped."))
            return
        from sambench.engine.plan import build_any_model

        try:
            model = build_any_model(ctx.config)
        except Exception as e:  # missing checkpoint, unknown model, ...
            sec.add(
                H.note_html(
                    f"Model {ctx.config.model!r} could not be built ({e}); overlays skipped."
                )
            )
            return
    multimask = None
    cache_dir = None
    if ctx.config is not None:
        multimask = {"auto": None, "on": True, "off": False}.get(ctx.config.multimask)
        cache_dir = ctx.config.cache_dir
    masks = O.predict_masks(
        cases,
        model,
        ctx.prepared,
        multimask=multimask,
        cache_dir=Path(cache_dir) if cache_dir else None,
    )
    sec.add(
        H.para_html(
            "Best and worst object per target-modality and strategy by DICE (oracle), masks re-decoded "
            f"with {model.name}. Red: ground truth; yellow: prediction; green stars: positive points; "
            "blue stars: negative points; green rectangle: box."
        )
    )
    for tm, fig in O.overlay_figures(cases, masks, ctx.prepared):
        ctx.figure(sec, f"fig9_overlay_{tm}", fig, f"Fig. 9 style: {tm}")
    n_targets = with_target_modality(_ok(main_rows(ctx.results)))["target_modality"].nunique()
    shown = len({str(c.row["target_modality"]) for c in cases})
    if shown < n_targets:
        sec.add(
            H.note_html(
                f"{shown} of {n_targets} target-modalities shown (image budget {ctx.max_overlay_images})."
            )
        )


Builder = Callable[["ReportContext", H.Section], None]

#: (anchor, heading, builder) in page order.
ALL_SECTIONS: tuple[tuple[str, str, Builder], ...] = (
    ("summary", "Summary", findings),
    ("paper", "The paper's Tables 2 and 3: ours beside the paper", paper_tables),
    ("means", "Mean DICE and HD with 95% CI (Fig. 6)", mean_ci),
    ("table2", "DICE per target-modality (Table 2)", table2),
    ("table3", "HD per target-modality (Table 3)", table3),
    ("effort", "Correction effort (HCE) per strategy", effort),
    ("comparison", "Comparison with the paper, long form (diff = ours - paper)", comparison),
    ("modality", "Per modality (Fig. 10)", per_modality),
    ("tests", "Paired Wilcoxon tests", wilcoxon),
    ("volume", "Volume-level DICE", volume_level),
    ("attributes", "Object attributes and partial correlations (Table 6, Figs. 13-14)", attributes),
    ("grid", "Everything-mode grid ablation (Table 5)", grid_ablation),
    ("shift", "Prompt-shift robustness (Table 8)", shift),
    ("interactive", "Interactive segmentation: NoC and click curves (Fig. 16)", interactive),
    ("text", "Text and exemplar prompts (T, T-neg, T-para, E)", text_prompts),
    ("timing", "Timing (Table 4)", timing),
    ("annotation", "Annotation with and without the model (Table 7)", annotation),
    ("overlays", "Best and worst cases (Fig. 9)", overlays),
    ("details", "Run details: counts, rows and skip reasons", run_details),
    ("config", "Run configuration", run_config),
)
DETAIL_SECTIONS = frozenset(
    {
        "table2",
        "table3",
        "effort",
        "comparison",
        "modality",
        "tests",
        "volume",
        "attributes",
        "grid",
        "shift",
        "timing",
        "overlays",
        "details",
        "config",
    }
)
"""Sections shown folded under their title: the page opens on the summary, the paper's tables,
the means with their CIs, the interactive, annotation and 3D results; details open on a click."""
SECTION_TITLES = tuple(t for _, t, _ in ALL_SECTIONS)
