"""The COSMOS coverage report: which of the paper's datasets a user has prepared, with their images,
masks, targets and target-modality pairs beside COSMOS 1050K's totals, and every exclusion counted
by the paper's criterion. ``write_coverage(df, out)`` writes ``coverage.csv`` (the rows of
:func:`sambench.data.cosmos.prepare_cosmos`) and ``coverage.html`` (jinja2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from sambench.data.cosmos import PAPER_TOTALS, totals
from sambench.data.recipe import CRITERIA
from sambench.report.format import format_value
from sambench.store.atomic import write_text_atomic

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>COSMOS coverage</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 78rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.prepared { color: #1a7f37; font-weight: 600; } .broken { color: #b42318; font-weight: 600; }
.missing { color: #777; } .reason { font-size: 0.8rem; color: #7a271a; overflow-wrap: anywhere; }
.small { font-size: 0.8rem; color: #555; }
</style></head><body>
<h1>COSMOS coverage</h1>
<p>{{ n_prepared }} of {{ n_recipes }} recipes prepared ({{ n_broken }} broken, {{ n_missing }}
missing) from <code>{{ root }}</code>. The paper's COSMOS 1050K has {{ paper.datasets }} public
datasets; sambench has recipes for {{ n_recipes }} releases.</p>
<h2>Totals beside the paper</h2>
<table><tr><th></th><th class="num">here</th><th class="num">COSMOS 1050K</th><th class="num">here / paper</th></tr>
{% for t in total_rows %}<tr><td>{{ t.name }}</td><td class="num">{{ t.here }}</td>
<td class="num">{{ t.paper }}</td><td class="num">{{ t.share }}</td></tr>{% endfor %}
</table>
<p class="small">Paper: Huang et al., MedIA 2024, section 2 (images, masks, targets, pairs). Targets
and pairs count each distinct target (and target-modality pair) once over all datasets. Fig. 3(a)'s
per-dataset image counts are not given as numbers in the paper's text, so no per-dataset
comparison is shown.</p>
<h2>Exclusions (paper section 2.1)</h2>
<table><tr><th>criterion</th><th>what</th><th class="num">structure-slices excluded</th></tr>
{% for c in criteria %}<tr><td>{{ c.number }}</td><td>{{ c.what }}</td><td class="num">{{ c.count }}</td></tr>{% endfor %}
</table>
<p class="small">A structure-slice is a slice in which an excluded structure has more than 50
pixels, i.e. would have been an object had the paper kept it.</p>
<h2>Datasets found</h2>
<table><tr><th>dataset</th><th>status</th><th>modality</th><th class="num">cases</th>
<th class="num">images</th><th class="num">masks</th><th class="num">targets</th><th class="num">pairs</th>
<th>targets</th><th>excluded (structure-slices)</th><th>expected (release)</th></tr>
{% for r in rows if r.status != "missing" %}<tr><td>{{ r.dataset }}<div class="small">{{ r.paper_name }}</div></td>
<td class="{{ r.status }}">{{ r.status }}</td>
<td>{{ r.modality }}</td><td class="num">{{ r.cases }}</td><td class="num">{{ r.images }}</td>
<td class="num">{{ r.masks }}</td><td class="num">{{ r.targets }}</td><td class="num">{{ r.pairs }}</td>
<td class="small">{{ r.target_names }}</td><td class="small">{{ r.excluded }}</td><td class="small">{{ r.expected }}</td></tr>
{% if r.reason %}<tr><td></td><td colspan="10" class="reason">{{ r.source }}: {{ r.reason }}</td></tr>{% endif %}
{% endfor %}</table>
<h2>Recipes without data here ({{ n_missing }})</h2>
<table><tr><th>dataset</th><th>Table 1 name</th><th>modality</th><th>folder names looked for under the root</th><th>expected (release)</th></tr>
{% for r in rows if r.status == "missing" %}<tr><td>{{ r.dataset }}</td><td class="small">{{ r.paper_name }}</td>
<td>{{ r.modality }}</td><td class="small">{{ r.reason }}</td><td class="small">{{ r.expected }}</td></tr>{% endfor %}
</table>
</body></html>
"""


def _count(v: Any) -> str:
    """A count with thousands separators; "" for a missing one (a dataset not prepared)."""
    return "" if v is None or pd.isna(v) else format_value(float(v), "count")


def _share(here: int, paper: int) -> str:
    pct = 100 * here / paper
    return "0 %" if here == 0 else ("< 0.1 %" if pct < 0.1 else f"{pct:.1f} %")


def coverage_html(df: pd.DataFrame, root: str) -> str:
    """The coverage page for the rows of ``prepare_cosmos``."""
    import jinja2

    tot = totals(df)
    total_rows = []
    for key, label in (
        ("datasets", "datasets"),
        ("images", "images"),
        ("masks", "masks"),
        ("targets", "targets"),
        ("target_modality_pairs", "target-modality pairs"),
    ):
        here, paper = tot[key], PAPER_TOTALS[key]
        total_rows.append(
            {
                "name": label,
                "here": _count(here),
                "paper": _count(paper),
                "share": _share(here, paper),
            }
        )
    criteria = [
        {"number": c, "what": what, "count": _count(tot[f"excluded_criterion_{c}"])}
        for c, what in CRITERIA.items()
    ]
    rows: list[dict[str, Any]] = []
    for r in df.to_dict("records"):
        row: dict[str, Any] = {str(k): ("" if pd.isna(v) else v) for k, v in r.items()}
        for k in ("cases", "images", "masks", "targets"):
            row[k] = _count(r.get(k))
        row["pairs"] = _count(r.get("target_modality_pairs"))
        rows.append(row)
    env = jinja2.Environment(autoescape=True)
    return env.from_string(_TEMPLATE).render(
        root=root,
        n_recipes=len(df),
        n_prepared=int((df["status"] == "prepared").sum()),
        n_broken=int((df["status"] == "broken").sum()),
        n_missing=int((df["status"] == "missing").sum()),
        paper=PAPER_TOTALS,
        total_rows=total_rows,
        criteria=criteria,
        rows=rows,
    )


def write_coverage(df: pd.DataFrame, out: Path, root: str = "") -> tuple[Path, Path]:
    """Write ``out/coverage.csv`` and ``out/coverage.html``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv = write_text_atomic(out / "coverage.csv", df.to_csv(index=False))
    page = write_text_atomic(out / "coverage.html", coverage_html(df, root))
    return csv, page
