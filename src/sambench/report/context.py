"""The shared state of the report's section builders: inputs, the output folder, the written files.

Every section builder is ``builder(ctx: ReportContext, sec: Section) -> None``
(:mod:`sambench.report.sections` and its siblings); :mod:`sambench.report.build` makes the context,
runs the builders and writes the page. This module imports no section, so any section may import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sambench.analysis.summary import to_markdown
from sambench.engine.config import RunConfig
from sambench.models.base import PromptableModel
from sambench.report import html as H
from sambench.report.aliases import AliasTable
from sambench.report.figures import figure_png
from sambench.report.format import table_unit
from sambench.store.atomic import write_bytes_atomic, write_text_atomic

REPORT_NAME = "report.html"
SECTION_FAILED = "This section could not be built"
#: Tables longer than this are shown folded (``<details>``) under their caption.
FOLD_ROWS = 40


@dataclass(frozen=True)
class AnnotationTables:
    """Every table of the study: ``objects`` (one row per accepted object, with HCE), the
    ``summary`` per annotator and mode, ``table7`` (paper layout), ``pairs`` (objects in both
    modes), ``tests`` (Wilcoxon), ``paper`` (the paper's Table 7) and ``side_by_side``."""

    sessions: tuple[Path, ...]
    prepared: Path
    objects: pd.DataFrame
    summary: pd.DataFrame
    table7: pd.DataFrame
    pairs: pd.DataFrame
    tests: pd.DataFrame
    paper: pd.DataFrame
    side_by_side: pd.DataFrame


#: Columns that say why a CI or test is not shown (empty when it is).
NOTE_COLUMNS = ("ci_note", "test_note", "note")


def _shown_notes(df: pd.DataFrame) -> pd.DataFrame:
    """For the page: an empty note cell reads "-" (no remark), not the table's blank reason."""
    cols = [c for c in NOTE_COLUMNS if c in df.columns]
    if not cols:
        return df
    return df.assign(**{c: df[c].where(df[c].astype(str) != "", "-") for c in cols})


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "item"


@dataclass
class ReportContext:
    """What the section builders share: inputs, the output folder and the written files."""

    run_dir: Path
    out: Path
    results: pd.DataFrame
    config: RunConfig | None
    prepared: Path | None
    rng: np.random.Generator
    overlays: bool = True
    model: PromptableModel | None = None
    max_overlay_images: int = 24
    main_model: str | None = None
    aliases: AliasTable = field(default_factory=AliasTable.default)
    annotation: AnnotationTables | None = None
    results3d: pd.DataFrame | None = None
    #: the ``--compare-with`` run folders whose rows are joined (their configs: licences)
    compared_runs: tuple[Path, ...] = ()
    #: the unit of CIs and paired tests: "case" (cluster bootstrap, case means) or "object"
    ci_unit: str = "case"
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(
        self,
        section: H.Section,
        name: str,
        df: pd.DataFrame,
        caption: str = "",
        floatfmt: str = ".4g",
        blank: str = "n/a",
        folded: str | None = None,
        unit: str | None = None,
    ) -> None:
        """Write ``tables/<name>.csv`` and ``.md`` and add the table (with caption and a link to
        the CSV) to ``section``; empty cells show ``blank`` (why they are empty); ``folded``: put
        it all in a closed ``<details>`` block with that summary line (tables longer than
        :data:`FOLD_ROWS` rows are folded under their caption). ``unit``: of the columns whose
        name says nothing (default :func:`~sambench.report.format.table_unit` of ``name``)."""
        name = self.csv(name, df, floatfmt)
        if folded is None and len(df) > FOLD_ROWS:
            caption, folded = "", f"{caption or name} ({len(df)} rows)"
        parts = [f"<h3>{H.esc(caption)}</h3>"] if caption else []
        unit = table_unit(name) if unit is None else unit
        parts.append(H.table_html(_shown_notes(df), floatfmt, blank=blank, unit=unit))
        parts.append(f'<p class="note">CSV: {H.link_html(f"tables/{name}.csv")}</p>')
        if folded is not None:
            section.add(H.details_html(folded, "".join(parts)))
        else:
            for part in parts:
                section.add(part)

    def csv(self, name: str, df: pd.DataFrame, floatfmt: str = ".4g") -> str:
        """Write ``tables/<name>.csv`` and ``.md`` without showing them (a long form that the page
        links to); return the file stem used."""
        name = _slug(name)
        csv = self.out / "tables" / f"{name}.csv"
        write_text_atomic(csv, df.to_csv(index=False))
        md = self.out / "tables" / f"{name}.md"
        write_text_atomic(md, (to_markdown(df, floatfmt) if not df.empty else "(empty)") + "\n")
        self.written += [csv, md]
        return name

    def figure(self, section: H.Section, name: str, fig: Figure, caption: str = "") -> None:
        """Write ``figures/<name>.png`` and embed it in ``section``."""
        path = self.out / "figures" / f"{_slug(name)}.png"
        png = figure_png(fig)
        write_bytes_atomic(path, png)
        self.written.append(path)
        section.add(H.image_html(png, caption))
