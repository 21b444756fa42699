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
table{border-collapse:collapse;margin:.6em 0;font-size:.85em;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:right;white-space:nowrap}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
.note{color:#555;font-style:italic}.toc li{display:inline-block;margin-right:1em}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.4em 0}
figure{margin:1em 0}figcaption{font-size:.9em;color:#444}
"""


def esc(text: object) -> str:
    """HTML-escape ``str(text)`` (quotes included)."""
    return html.escape(str(text), quote=True)


def _cell(v: object, floatfmt: str) -> str:
    if isinstance(v, bool):
        return esc(v)
    if isinstance(v, float):
        return "" if math.isnan(v) else esc(format(v, floatfmt))
    if v is None or v is pd.NA:
        return ""
    return esc(v)


def table_html(df: pd.DataFrame, floatfmt: str = ".4g", max_rows: int = 200) -> str:
    """An escaped HTML table of ``df`` (no index); long tables are cut at ``max_rows`` with a
    note (the CSV in the report folder holds every row)."""
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    rows = []
    for rec in df.head(max_rows).itertuples(index=False):
        rows.append("<tr>" + "".join(f"<td>{_cell(v, floatfmt)}</td>" for v in rec) + "</tr>")
    note = ""
    if len(df) > max_rows:
        note = f'<p class="note">First {max_rows} of {len(df)} rows shown; see the CSV.</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{note}"


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

    def add(self, part: str) -> None:
        self.parts.append(part)


def page_html(title: str, sections: list[Section], intro: str = "") -> str:
    """The whole page: title, a table of contents, the sections."""
    toc = "".join(f'<li><a href="#{esc(s.anchor)}">{esc(s.title)}</a></li>' for s in sections)
    body = "".join(
        f'<section id="{esc(s.anchor)}"><h2>{esc(s.title)}</h2>{"".join(s.parts)}</section>'
        for s in sections
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1>{para_html(intro) if intro else ''}"
        f'<ul class="toc">{toc}</ul>{body}</body></html>\n'
    )
