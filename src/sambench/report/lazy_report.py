"""The report of a run too large for memory: every table by grouped aggregation over the lazy
results dataset (:mod:`sambench.analysis.lazy`), in the same page and files as
:func:`sambench.report.build.build_report` (``report.html``, ``tables/*.csv|.md``, ``figures/``).

Built here: means with bootstrap CIs (Fig. 6), Tables 2 and 3 (oracle and score selection), the
per-modality tables, the paired Wilcoxon tests, the timing table (Table 4), HCE and the
prompt-shift table (Table 8) when the run has them. Left out (they need the rows or the images in
memory; the page says so): box plots, attribute correlations, overlays, the findings summary, the
per-case volume DICE, the grid ablation and interactive curves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sambench.analysis import lazy
from sambench.report import figures as F
from sambench.report import html as H
from sambench.report.context import REPORT_NAME, ReportContext
from sambench.report.sections import strategy_tests
from sambench.report.validate import check_finished
from sambench.store.atomic import write_text_atomic
from sambench.store.results_dataset import ResultsDataset, scan_results
from sambench.store.runfolder import REPORT_MARKER, ensure_run_folder

LEFT_OUT = (
    "Built out of core (lazy results dataset): box plots, attribute correlations, overlays, the "
    "findings summary, per-case volume DICE, the S1 grid ablation and interactive curves are not "
    "built at this scale (they need the rows in memory); `sambench report` builds them for runs "
    "that fit."
)


def _sections(ctx: ReportContext, ds: ResultsDataset) -> list[H.Section]:
    main = lazy.main_rows_sql(ds)
    out = []
    sec = H.Section("mean-ci", "Means with 95 % bootstrap CIs")
    ds.restrict(main)
    unit = ctx.ci_unit
    dice = lazy.mean_with_ci_lazy(ds, metric="dice", rng=ctx.rng, unit=unit)
    hd = lazy.mean_with_ci_lazy(ds, metric="hd", rng=ctx.rng, unit=unit)
    ds.restrict("true")
    if unit == "case":
        by = "95 % CI by a cluster bootstrap over cases within dataset (BCa)"
        note = "exact: per-case sums aggregated out of core"
    else:
        by = "95 % CI by object (objects as if independent, --ci-unit object)"
        note = f"groups above {lazy.MAX_SAMPLE:,} rows: CI from a seeded sample (docs/scale.md)"
    ctx.table(sec, "mean_ci_dice", dice, f"Mean DICE (%), {by} (oracle; {note})", ".2f")
    ctx.table(sec, "mean_ci_hd", hd, f"Mean HD (pixels), {by} (oracle)", ".2f")
    ctx.figure(sec, "fig6_mean_ci", F.mean_ci_figure(dice, hd), "Fig. 6 style: means with 95 % CI")
    out.append(sec)
    for metric, anchor, title in (
        ("dice", "table2", "Table 2: DICE"),
        ("hd", "table3", "Table 3: HD"),
    ):
        sec = H.Section(anchor, f"{title} per target-modality")
        for sel in ("oracle", "score"):
            ctx.table(
                sec,
                f"{metric}_by_target" + ("" if sel == "oracle" else "_score"),
                lazy.paper_table_lazy(ds, metric, selection=sel),
                f"{metric.upper()}: mean (std), {sel} selection",
            )
        out.append(sec)
    sec = H.Section("per-modality", "Per modality")
    for metric in ("dice", "hd"):
        ctx.table(
            sec, f"{metric}_by_modality", lazy.paper_table_lazy(ds, metric, by="modality"), metric
        )
    out.append(sec)
    sec = H.Section("wilcoxon", "Paired tests")
    paired = (
        "paired on case means"
        if unit == "case"
        else "paired on objects as if independent, --ci-unit object"
    )
    ds.restrict(main)
    strategy_tests(
        ctx,
        sec,
        lambda m: lazy.paired_wilcoxon_lazy(ds, m, between="strategy", unit=unit),
        f" (Wilcoxon signed-rank, Holm-adjusted, {paired})",
    )
    if len(ds.numpy("SELECT DISTINCT model FROM results")["model"]) > 1:
        ctx.table(
            sec,
            "wilcoxon_models_dice",
            lazy.paired_wilcoxon_lazy(ds, "dice", between="model", unit=unit),
            f"Between models, DICE ({paired})",
        )
    ds.restrict("true")
    out.append(sec)
    sec = H.Section("timing", "Table 4: timing (seconds)")
    ctx.table(sec, "timing_seconds", lazy.timing_table_lazy(ds), "Seconds per image / object")
    out.append(sec)
    if "hce" in ds.columns:
        sec = H.Section("hce", "Human correction effort")
        ctx.table(sec, "hce_summary", lazy.hce_summary_lazy(ds, by=None), "Mean HCE (oracle)")
        out.append(sec)
    if ds.has("shift_range", "shift_repeat") and _has_shift(ds):
        sec = H.Section("shift", "Table 8: prompt-shift DICE drop")
        ds.restrict("strategy NOT IN ('S1', 'interactive')")  # the shifted strategies S2-S6
        ctx.table(sec, "shift_drop", lazy.shift_drop_table_lazy(ds), "DICE drop (points)")
        ds.restrict("true")
        out.append(sec)
    return out


def _has_shift(ds: ResultsDataset) -> bool:
    row = ds.con.execute(
        f"SELECT count(*) FROM results WHERE NOT {lazy.unshifted_sql(ds)}"
    ).fetchone()
    return bool(row and row[0])


def _overlap(ds: ResultsDataset, out: Path, ledger: Path | None) -> H.Section:
    """The training-data overlap section from per-(model, dataset, case) counts (DuckDB)."""
    from sambench.report.overlap import overlap_section_counts

    cols = {r[0] for r in ds.con.execute("DESCRIBE results").fetchall()}
    keys = ", ".join(f'"{c}"' for c in ("model", "dataset", "case") if c in cols)
    counts = ds.con.execute(f"SELECT {keys}, count(*) AS n FROM results GROUP BY {keys}").df()
    return overlap_section_counts(counts, out, ledger)


def build_report_lazy(
    run_dir: Path | str,
    out: Path | None = None,
    *,
    rng_seed: int = 0,
    ci_unit: str = "case",
    ledger: Path | None = None,
    **dataset_options: str,
) -> Path:
    """Build the out-of-core report of ``run_dir`` (see the module doc) into ``out`` (default
    ``run_dir / "report"``); ``ci_unit``: of the CIs and paired tests (``"case"``: cluster
    bootstrap and case means; ``"object"``); ``ledger``: a training-data ledger file (see
    :mod:`sambench.report.overlap`); ``dataset_options``: :class:`ResultsDataset` options such
    as ``memory_limit``. Returns the HTML file's path."""
    run_dir = Path(run_dir)
    check_finished(run_dir)
    out = ensure_run_folder(run_dir / "report" if out is None else Path(out), "report")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / REPORT_MARKER, "sambench report folder\n")
    with scan_results(run_dir, **dataset_options) as ds:
        lazy._require(ds, ["image_id", "model", "strategy", "selection", "status", "dice"])
        ctx = ReportContext(
            run_dir=run_dir,
            out=out,
            results=pd.DataFrame(),
            config=None,
            prepared=None,
            rng=np.random.default_rng(rng_seed),
            overlays=False,
            ci_unit=ci_unit,
        )
        sections = _sections(ctx, ds)
        from sambench.report.overlap import place_overlap

        place_overlap(sections, _overlap(ds, out, ledger), out, ledger)
        n = ds.count()
    page = H.page_html(
        f"sambench report: {run_dir.name}",
        sections,
        intro=f"Run folder {run_dir}; {n:,} rows. {LEFT_OUT}",
    )
    path = out / REPORT_NAME
    write_text_atomic(path, page)
    return path
