"""A tiny, dependency-free HTML writer for the report: one self-contained page.

Every piece of text is escaped with :func:`html.escape`; figures are embedded as base64 PNG
``data:`` URIs, so the page has no external assets (it opens offline and can be e-mailed).
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field

import pandas as pd

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;
color:#222;line-height:1.45;padding:0 1em}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #aaa;margin-top:2em}
.scroll{max-width:100%;overflow-x:auto;margin:.6em 0}
table{border-collapse:collapse;font-size:.85em}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:right;white-space:nowrap}
td.blank{color:#777;font-style:italic}th.paper,td.paper{background:#f6f1e4}
.findings{background:#f4f8fb;border:1px solid #c9dbe8;padding:.2em 1em .6em;margin-top:1.5em}.findings h2{margin-top:.5em}
details{margin:1em 0}summary{cursor:pointer;font-weight:600}
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


def _cell(v: object, floatfmt: str, blank: str) -> str:
    if _is_blank(v):
        return f'<td class="blank">{esc(blank)}</td>'
    if isinstance(v, float) and not isinstance(v, bool):
        return f"<td>{esc(format(v, floatfmt))}</td>"
    return f"<td>{esc(v)}</td>"


def table_html(
    df: pd.DataFrame, floatfmt: str = ".4g", max_rows: int = 200, blank: str = "n/a"
) -> str:
    """An escaped HTML table of ``df`` (no index) inside a box that scrolls sideways when the
    table is wider than the page; an empty cell (NaN, None, "") shows ``blank`` (the reason it
    is empty, e.g. "not run"); long tables are cut at ``max_rows`` with a note (the CSV in the
    report folder holds every row). Columns whose name contains "paper" are shaded."""
    cls = [' class="paper"' if "paper" in str(c).lower() else "" for c in df.columns]
    head = "".join(f"<th{k}>{esc(c)}</th>" for c, k in zip(df.columns, cls, strict=True))
    rows = []
    for rec in df.head(max_rows).itertuples(index=False):
        cells = []
        for v, k in zip(rec, cls, strict=True):
            c = _cell(v, floatfmt, blank)
            cells.append(c.replace("<td>", f"<td{k}>", 1) if k else c)
        rows.append("<tr>" + "".join(cells) + "</tr>")
    note = ""
    if len(df) > max_rows:
        note = f'<p class="note">First {max_rows} of {len(df)} rows shown; see the CSV.</p>'
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>{note}"
    )


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

    def add(self, part: str) -> None:
        self.parts.append(part)


def page_html(title: str, sections: list[Section], intro: str = "") -> str:
    """The whole page: title, a table of contents, the sections."""
    toc = "".join(f'<li><a href="#{esc(s.anchor)}">{esc(s.title)}</a></li>' for s in sections)
    body = "".join(
        f'<section id="{esc(s.anchor)}"'
        + (f' class="{esc(s.css_class)}"' if s.css_class else "")
        + f"><h2>{esc(s.title)}</h2>{''.join(s.parts)}</section>"
        for s in sections
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1>{para_html(intro) if intro else ''}"
        f'<ul class="toc">{toc}</ul>{body}</body></html>\n'
    )
