"""The annotation-study section (the paper's Table 7): time and Human Correction Effort of
``sambench annotate`` sessions with and without the model, ours beside the paper's.

Shared by ``sambench annotation-report`` (:mod:`sambench.report.annotation_report`, a page of this
section alone) and ``sambench report --annotation-sessions`` (a section of the run's report). The
tables come from :mod:`sambench.analysis.annotation` (definitions there and in
``docs/annotation-report.md``); this module writes them and draws the two figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sambench.analysis import annotation as A
from sambench.analysis.stats import test_label
from sambench.data.manifest import load_manifest
from sambench.report import html as H
from sambench.report.context import AnnotationTables, ReportContext
from sambench.report.figures import empty_figure, legend_outside, new_figure, series_boxes
from sambench.report.reference import paper_table


class TableWriter(Protocol):
    """What this section needs of its host: write and show a table or a figure (the report's
    :class:`~sambench.report.context.ReportContext` is one)."""

    def table(
        self,
        section: H.Section,
        name: str,
        df: pd.DataFrame,
        caption: str = ...,
        floatfmt: str = ...,
        blank: str = ...,
        folded: str | None = ...,
    ) -> None: ...

    def figure(self, section: H.Section, name: str, fig: Figure, caption: str = "") -> None: ...


def annotation_tables(sessions: Sequence[str | Path]) -> AnnotationTables:
    """Read the sessions, compute HCE against the prepared folder's ground truth and every table.
    Errors (not a session, different prepared datasets, no object) are
    :class:`~sambench.errors.DataError` naming the folder."""
    objects = A.load_sessions(sessions)
    prepared = Path(str(objects["prepared"].iloc[0]))
    objects = A.with_hce(objects, load_manifest(prepared), prepared)
    summary = A.annotation_summary(objects)
    t7 = A.table7(summary)
    pairs = A.paired_objects(objects)
    paper = paper_table("table7_annotation")
    return AnnotationTables(
        sessions=tuple(Path(s) for s in sessions),
        prepared=prepared,
        objects=objects,
        summary=summary,
        table7=t7,
        pairs=pairs,
        tests=A.paired_tests(pairs),
        paper=paper,
        side_by_side=A.side_by_side(t7, paper),
    )


# ---------------------------------------------------------------- figures


def by_mode_boxes(objects: pd.DataFrame, metric: str, ylabel: str, title: str) -> Figure:
    """Box plots of ``metric`` per annotator (x), one box per mode (without model first), with
    the objects as points. ``objects``: :func:`sambench.analysis.annotation.latest_objects` rows
    (columns annotator, mode, ``metric``). One axes."""
    df = objects.dropna(subset=[metric])
    if df.empty:
        return empty_figure("no accepted objects")
    annotators = sorted(map(str, df["annotator"].unique()))
    fig, (ax,) = new_figure(1, width=max(5.0, 1.6 * len(annotators) + 2.5))
    w = 0.8 / len(A.MODES)
    rng = np.random.default_rng(0)  # jitter of the points only
    for j, mode in enumerate(A.MODES):
        data, pos = [], []
        for i, ann in enumerate(annotators):
            v = df.loc[(df["annotator"] == ann) & (df["mode"] == mode), metric].to_numpy(float)
            if len(v):
                data.append(v)
                pos.append(i + (j - (len(A.MODES) - 1) / 2) * w)
        if not data:
            continue
        for patch in series_boxes(ax, data, pos, w * 0.85, j, A.MODE_LABELS[mode]):
            patch.set_alpha(0.6)
        for p, v in zip(pos, data, strict=True):
            ax.scatter(
                p + rng.uniform(-w / 5, w / 5, len(v)), v, s=10, color="black", zorder=3, lw=0
            )
    ax.set_xticks(np.arange(len(annotators)), annotators)
    ax.set_xlim(-0.6, len(annotators) - 0.4)
    ax.set_xlabel("annotator")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    legend_outside(ax)
    return fig


# ---------------------------------------------------------------- the section


def _findings(t: AnnotationTables) -> list[str]:
    out = []
    sbs = t.side_by_side.set_index("quantity")
    ours, paper = sbs["ours"], sbs["paper"]
    saved = "time saved (%)"
    if np.isfinite(ours[saved]):
        out.append(
            f"With the model, {ours['minutes per image with model']:.2f} min per image vs "
            f"{ours['minutes per image without model']:.2f} without: {ours[saved]:.1f} % time "
            f"saved (paper: {paper[saved]:.1f} %); mean HCE {ours['HCE with model']:.2f} vs "
            f"{ours['HCE without model']:.2f} (paper: {paper['HCE with model']:.2f} vs "
            f"{paper['HCE without model']:.2f})."
        )
    else:
        out.append("One mode only (no session with or without the model): no time saved.")
    for rec in t.tests[t.tests["annotator"] == _overall(t.tests)].to_dict("records"):
        what = "time per object" if rec["metric"] == "active_s" else "HCE"
        p, ph = rec["p_value"], rec["p_holm"]
        ptxt = (
            f"p = {p:.3g} (Holm-adjusted over all the tests: {ph:.3g})"
            if np.isfinite(p)
            else f"no test ({rec.get('test_note') or 'no pair or no difference'})"
        )
        out.append(
            f"Paired over {int(rec['n_objects'])} objects annotated in both modes in "
            f"{int(rec['n'])} case(s), {what}: median difference of the case means (with - "
            f"without) {rec['median_diff']:.2f}, Wilcoxon on case means {ptxt}."
        )
    return out


def _overall(tests: pd.DataFrame) -> str:
    names = set(map(str, tests["annotator"]))
    return A.ALL_ANNOTATORS if A.ALL_ANNOTATORS in names else (sorted(names) or [""])[0]


def write_annotation(host: TableWriter, sec: H.Section, t: AnnotationTables) -> None:
    """Add the study's findings, tables and figures to ``sec`` (files written by ``host``)."""
    n_obj = len(A.latest_objects(t.objects))
    sec.add(
        H.para_html(
            f"{len(t.sessions)} session(s) on {t.prepared}, {n_obj} accepted objects. Time per "
            "object = mean active seconds per accepted object; time per image = per image the sum "
            "over its objects, averaged over images; time saved = 1 - with / without model (of "
            "the time per image); HCE of the accepted mask against the ground truth (lower is "
            "better). Paper: three doctors with and without SAM (Table 7)."
        )
    )
    sec.add(H.list_html(_findings(t)))
    host.table(
        sec,
        "table7_annotation",
        t.table7,
        "Table 7 layout: HCE and minutes per image by mode",
        floatfmt=".2f",
    )
    host.table(
        sec,
        "table7_side_by_side",
        t.side_by_side,
        "Ours (mean over annotators) beside the paper's mean of three doctors",
        floatfmt=".2f",
    )
    host.table(
        sec,
        "paper_table7",
        t.paper,
        "Paper Table 7 (three doctors, with and without SAM)",
        floatfmt=".2f",
    )
    host.table(
        sec, "annotation_summary", t.summary, "Per annotator and mode: counts, time, effort, DICE"
    )
    host.table(
        sec,
        "annotation_paired_tests",
        t.tests,
        "Paired Wilcoxon signed-rank tests, with vs without model (active_s: seconds per "
        f"object), {test_label('case')}",
    )
    latest = A.latest_objects(t.objects)
    host.figure(
        sec,
        "annotation_time_per_object",
        by_mode_boxes(latest, "active_s", "active seconds per object", "Time per object by mode"),
        "Time per object by mode (boxes: quartiles; points: objects)",
    )
    host.figure(
        sec,
        "annotation_hce_by_mode",
        by_mode_boxes(latest, "hce", "HCE (mouse operations)", "HCE by mode (lower is better)"),
        "HCE of the accepted masks by mode",
    )
    cols = [c for c in (*A.SESSION_COLUMNS, *A.QUALITY_COLUMNS) if c in latest.columns]
    host.table(
        sec,
        "annotation_objects",
        latest[cols].drop(columns=["prepared"]),
        "Every accepted object",
        folded="Every accepted object (one row each)",
    )


def annotation(ctx: ReportContext, sec: H.Section) -> None:
    """The run report's section: the sessions given to ``sambench report
    --annotation-sessions`` (read by the builder before it writes anything, so a bad session
    folder is an error of the command, not of the section), or a note that none were."""
    if ctx.annotation is None:
        sec.add(
            H.note_html(
                "No annotation sessions given (sambench report RUN --annotation-sessions S1 "
                "--annotation-sessions S2)."
            )
        )
        return
    write_annotation(ctx, sec, ctx.annotation)
