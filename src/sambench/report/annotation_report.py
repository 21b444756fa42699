"""``sambench annotation-report SESSION [SESSION ...] --out DIR``: the annotation study alone.

Output folder (a report folder: new, empty or a previous report, see
:func:`sambench.store.runfolder.ensure_run_folder`)::

    report.html                       the page (figures embedded; no external assets)
    tables/table7_annotation.csv|.md  the paper's Table 7 layout (+ time_saved_pct)
    tables/table7_side_by_side.csv    ours beside the paper's means
    tables/paper_table7.csv           the paper's Table 7
    tables/annotation_summary.csv     per annotator and mode: counts, time, HCE, DICE
    tables/annotation_paired_tests.csv  Wilcoxon signed-rank, with vs without model
    tables/annotation_objects.csv     every accepted object with its HCE
    figures/annotation_time_per_object.png, figures/annotation_hce_by_mode.png

The page is :func:`sambench.report.annotation.write_annotation` in a report context of its own
(:class:`~sambench.report.context.ReportContext` with no evaluation results), so the files and the
HTML are those of the section in ``sambench report --annotation-sessions``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sambench.report import html as H
from sambench.report.annotation import annotation_tables, write_annotation
from sambench.report.context import REPORT_NAME, ReportContext
from sambench.store.atomic import write_text_atomic
from sambench.store.runfolder import REPORT_MARKER, ensure_run_folder


def build_annotation_report(sessions: Sequence[str | Path], out: str | Path) -> Path:
    """Write the annotation study of ``sessions`` to ``out``; return the HTML file's path.

    The sessions are read (and checked: each a session, one prepared dataset, at least one
    accepted object) before anything is written.
    """
    tables = annotation_tables(sessions)
    out = ensure_run_folder(Path(out), "report")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / REPORT_MARKER, "sambench report folder\n")
    ctx = ReportContext(
        run_dir=out,
        out=out,
        results=pd.DataFrame(),
        config=None,
        prepared=tables.prepared,
        rng=np.random.default_rng(0),
        overlays=False,
        annotation=tables,
    )
    sec = H.Section("annotation", "Annotation with and without the model (Table 7)")
    write_annotation(ctx, sec, tables)
    names = ", ".join(str(s) for s in tables.sessions)
    page = H.page_html(
        "sambench annotation report",
        [sec],
        intro=f"Sessions: {names}. Times in seconds (per object) and minutes (per image); HCE in "
        "mouse operations (DIS benchmark), lower is better.",
    )
    path = out / REPORT_NAME
    write_text_atomic(path, page)
    return path
