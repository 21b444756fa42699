"""``annotation-report`` over volume annotation sessions (``sambench annotate-volume``).

Output folder (a report folder)::

    report.html                         the page (no external assets)
    tables/annotation_3d.csv|.md        per annotator, mode and volume (the 3D table)
    tables/annotation_3d_objects.csv    every accepted object (label) with its DSC/NSD

The 2D Table 7 (:mod:`sambench.report.annotation_report`) is unchanged; a mix of 2D and volume
sessions is refused by the command.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sambench.analysis.summary import to_markdown
from sambench.annotate.volume_report import volume_objects, volume_table
from sambench.report import html as H
from sambench.report.context import REPORT_NAME
from sambench.store.atomic import write_text_atomic
from sambench.store.runfolder import REPORT_MARKER, ensure_run_folder


def build_volume_annotation_report(sessions: Sequence[str | Path], out: str | Path) -> Path:
    """Write the 3D annotation tables and page of ``sessions`` to ``out``; the HTML path."""
    objects = volume_objects(sessions)  # read and checked before anything is written
    table = volume_table(objects)
    out = ensure_run_folder(Path(out), "report")
    (out / "tables").mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / REPORT_MARKER, "sambench report folder\n")
    write_text_atomic(out / "tables" / "annotation_3d.csv", table.to_csv(index=False))
    write_text_atomic(out / "tables" / "annotation_3d.md", to_markdown(table, ".4g") + "\n")
    write_text_atomic(out / "tables" / "annotation_3d_objects.csv", objects.to_csv(index=False))
    sec = H.Section("annotation-3d", "Annotation of volumes: effort and agreement")
    sec.add(H.para_html(
        "Per volume: time of every event on it (idle gaps capped), objects (labels) accepted, "
        "time and interactions per object, voxels changed by hand after the model had drawn "
        "the label, and 3D DSC/NSD (NSD tolerance 2 mm) of the accepted label map against the "
        "reference label where the source has one (blank otherwise)."
    ))  # fmt: skip
    sec.add(H.table_html(table))
    obj = H.Section("annotation-3d-objects", "Every accepted object")
    obj.add(H.table_html(objects.drop(columns=["session"])))
    names = ", ".join(str(s) for s in sessions)
    page = H.page_html("sambench annotation report (volumes)", [sec, obj],
                       intro=f"Sessions: {names}.")  # fmt: skip
    path = out / REPORT_NAME
    write_text_atomic(path, page)
    return path
