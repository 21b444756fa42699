"""A tiny, dependency-free HTML writer for the report: one self-contained page.

Every piece of text is escaped with :func:`html.escape`; figures are embedded as base64 PNG
``data:`` URIs, so the page has no external assets (it opens offline and can be e-mailed).
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field

import pandas as pd

from sambench.report.format import column_label, column_unit, format_value

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;
color:#222;line-height:1.45;padding:0 1em}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #aaa;margin-top:2em}
.scroll{max-width:100%;overflow-x:auto;margin:.6em 0}
table{border-collapse:collapse;font-size:.85em}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:right}td{white-space:nowrap}td.wrap{white-space:normal;overflow-wrap:anywhere;text-align:left;min-width:20em}
th{max-width:9em;vertical-align:bottom}
td.blank{color:#777;font-style:italic}th.paper,td.paper{background:#f6f1e4}
.findings{background:#f4f8fb;border:1px solid #c9dbe8;padding:.2em 1em .6em;margin-top:1.5em}.findings h2{margin-top:.5em}
details{margin:1em 0}summary{cursor:pointer;font-weight:600}
details.section>summary h2{display:inline-block;margin:.6em 0 0;font-size:1.25em}
details.section>summary{border-bottom:1px solid #ddd}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
.note{color:#555;font-style:italic}.toc li{display:inline-block;margin-right:1em}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.4em 0}
figure{margin:1em 0}figcaption{font-size:.9em;color:#444}
"""


def esc(text: object) -> str:
    """HTML-escape ``str(text)`` (quotes included)."""
    return html.escape(str(text), quote=True)


def _is_blank(v: object) -> bool:
    if isinstance(v, float):
        return math.isnan(v)
    return v is None or v is pd.NA or (isinstance(v, str) and not v.strip())


def _number(v: float, floatfmt: str, unit: str) -> str:
    """``v`` as text: by its unit (:func:`~sambench.report.format.format_value`), ``floatfmt``
    for a unitless column."""
    return format(v, floatfmt) if unit == "plain" else format_value(v, unit)


def _cell(v: object, floatfmt: str, blank: str, unit: str = "plain") -> str:
    if _is_blank(v):
        return f'<td class="blank">{esc(blank)}</td>'
    if (
        isinstance(v, float | int)
        and not isinstance(v, bool)
        and (unit != "plain" or isinstance(v, float))
    ):
        return f"<td>{esc(_number(v, floatfmt, unit))}</td>"
    text = str(v)
    if len(text) > WRAP_CHARS:  # long text (a JSON value, a message) wraps instead of widening
        return f'<td class="wrap">{esc(text)}</td>'
    return f"<td>{esc(text)}</td>"


#: Text cells longer than this wrap (class ``wrap``) instead of widening their table.
WRAP_CHARS = 40
#: Tables wider than this many characters (cells at the report's font: about 1150 px) are shown
#: as several stacked tables with their key columns repeated, so no table is wider than the page
#: at 1280 px; the CSV keeps them in one.
MAX_CHARS = 150


def _column_groups(widths: list[int], keys: int) -> list[list[int]]:
    """Column positions of each stacked part: the ``keys`` leading columns repeated, then as many
    further columns as fit in :data:`MAX_CHARS` (at least one a part)."""
    n = len(widths)
    if sum(widths) <= MAX_CHARS or keys >= n:  # fits, or nothing but key columns
        return [list(range(n))]
    base = list(range(keys))
    budget = MAX_CHARS - sum(widths[:keys])
    groups: list[list[int]] = []
    cur: list[int] = []
    used = 0
    for i in range(keys, n):
        if cur and used + widths[i] > budget:
            groups.append(base + cur)
            cur, used = [], 0
        cur.append(i)
        used += widths[i]
    if cur:
        groups.append(base + cur)
    return groups


def _key_columns(df: pd.DataFrame) -> int:
    """How many leading columns name a row (text, at most 3): repeated in each stacked part."""
    keys = 0
    for c in df.columns[:3]:
        if pd.api.types.is_numeric_dtype(df[c]) or re.search(r"\bS\d\b", str(c)):
            break
        keys += 1
    return keys


def merge_ci_columns(df: pd.DataFrame) -> tuple[pd.DataFrame, set[str]]:
    """``X``, ``X_ci_low``, ``X_ci_high`` (or ``mean``, ``ci_lo``, ``ci_hi``) as one column
    ``X`` whose cells read ``"72.1 (60.3 to 84.0)"`` once formatted; returns the frame (with the
    lows and highs dropped, the highs kept as ``(lo, hi)`` pairs in ``X`` tuples) and the merged
    column names. A table of estimates with their CIs then takes a third of the width.
    A ``X_ci_note`` column (why a CI is missing, e.g. ``"n = 4 cases: too few"``) is merged too:
    such a cell reads ``"72.1 (no CI: n = 4 cases: too few)"``."""
    merged: set[str] = set()
    out = df.copy()
    for c in list(df.columns):
        for lo, hi in (
            (f"{c}_ci_low", f"{c}_ci_high"),
            ("ci_lo", "ci_hi") if c == "mean" else ("", ""),
        ):
            if lo in df.columns and hi in df.columns and pd.api.types.is_numeric_dtype(df[c]):
                note = f"{c}_ci_note"
                notes = df[note] if note in df.columns else pd.Series("", index=df.index)
                out[c] = list(zip(df[c], df[lo], df[hi], notes, strict=True))
                out = out.drop(columns=[lo, hi, *([note] if note in df.columns else [])])
                merged.add(str(c))
                break
    return out, merged


def _ci_cell(v: tuple[float, float, float, object], floatfmt: str, blank: str, unit: str) -> str:
    est, lo, hi, note = v
    if _is_blank(est):
        return f'<td class="blank">{esc(blank)}</td>'
    text = _number(est, floatfmt, unit)
    if not (_is_blank(lo) or _is_blank(hi)):
        text += f" ({_number(lo, floatfmt, unit)} to {_number(hi, floatfmt, unit)})"
    elif not _is_blank(note):
        text += f" (no CI: {note})"
    return f"<td>{esc(text)}</td>"


def table_html(
    df: pd.DataFrame,
    floatfmt: str = ".4g",
    max_rows: int = 200,
    blank: str = "n/a",
    unit: str = "plain",
) -> str:
    """An escaped HTML table of ``df`` (no index) as a reader sees it: headers from
    :func:`~sambench.report.format.column_label`, numbers formatted by each column's unit
    (:func:`~sambench.report.format.column_unit`, ``unit`` for the columns whose name says
    nothing; ``floatfmt`` for unitless ones), an estimate and its CI columns in one cell
    (:func:`merge_ci_columns`). An empty cell (NaN, None, "") shows ``blank`` (the reason it is
    empty, e.g. "not run"); long tables are cut at ``max_rows`` with a note (the CSV in the
    report folder holds every row); a table wider than :data:`MAX_CHARS` characters is shown as
    stacked parts. Columns whose name contains "paper" are shaded."""
    df, merged = merge_ci_columns(df)
    units = [column_unit(c, unit) for c in df.columns]
    # the unit goes into a header only where the name alone says it (a distance column)
    heads = []
    for c in df.columns:
        numeric = str(c) in merged or pd.api.types.is_numeric_dtype(df[c])
        label = column_label(c, column_unit(c) if numeric else None)
        heads.append(label + (" (95 % CI)" if str(c) in merged else ""))
    cls = [' class="paper"' if "paper" in str(c).lower() else "" for c in df.columns]
    records = list(df.head(max_rows).itertuples(index=False))
    cells = [
        [
            _ci_cell(v, floatfmt, blank, units[i])
            if str(df.columns[i]) in merged
            else _cell(v, floatfmt, blank, units[i])
            for i, v in enumerate(rec)
        ]
        for rec in records
    ]
    widths = [
        2
        + max(
            [
                min(len(heads[i]), 14),
                *(min(len(re.sub("<[^>]+>", "", r[i])), WRAP_CHARS) for r in cells),
            ]
        )
        for i in range(len(df.columns))
    ]
    parts = []
    for group in _column_groups(widths, _key_columns(df)):
        head = "".join(f"<th{cls[i]}>{esc(heads[i])}</th>" for i in group)
        rows = []
        for r in cells:
            row = [r[i].replace("<td", f"<td{cls[i]}", 1) if cls[i] else r[i] for i in group]
            rows.append("<tr>" + "".join(row) + "</tr>")
        parts.append(
            f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )
    note = ""
    if len(df) > max_rows:
        note = f'<p class="note">First {max_rows} of {len(df)} rows shown; see the CSV.</p>'
    return "".join(parts) + note


def link_html(href: str, text: str | None = None) -> str:
    """A relative link (escaped)."""
    return f'<a href="{esc(href)}">{esc(text if text is not None else href)}</a>'


def details_html(summary: str, body: str, open_: bool = False) -> str:
    """A folded ``<details>`` block with an escaped ``summary`` line and HTML ``body``."""
    return f"<details{' open' if open_ else ''}><summary>{esc(summary)}</summary>{body}</details>"


def list_html(items: list[str]) -> str:
    """An unordered list of escaped text items."""
    return "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def image_html(png: bytes, caption: str = "") -> str:
    """A ``<figure>`` with the PNG embedded as base64 and an escaped caption."""
    data = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">{cap}</figure>'


def note_html(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def para_html(text: str) -> str:
    return f"<p>{esc(text)}</p>"


@dataclass
class Section:
    """One ``<h2>`` section: an anchor id, a title and HTML body parts (already escaped)."""

    anchor: str
    title: str
    parts: list[str] = field(default_factory=list)
    css_class: str = ""
    folded: bool = False  # a detail section: closed under its title (<details>) until opened

    def add(self, part: str) -> None:
        self.parts.append(part)


def page_html(title: str, sections: list[Section], intro: str = "") -> str:
    """The whole page: title, a table of contents, the sections."""
    toc = "".join(f'<li><a href="#{esc(s.anchor)}">{esc(s.title)}</a></li>' for s in sections)
    body = "".join(
        f'<section id="{esc(s.anchor)}"'
        + (f' class="{esc(s.css_class)}"' if s.css_class else "")
        + ">"
        + (
            f'<details class="section"><summary><h2>{esc(s.title)}</h2></summary>'
            f"{''.join(s.parts)}</details>"
            if s.folded
            else f"<h2>{esc(s.title)}</h2>{''.join(s.parts)}"
        )
        + "</section>"
        for s in sections
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1>{para_html(intro) if intro else ''}"
        f'<ul class="toc">{toc}</ul>{body}</body></html>\n'
    )
