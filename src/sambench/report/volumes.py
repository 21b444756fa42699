"""The report's 3D section: ``evaluate-3d`` results as tables and figures (a Markdown page).

:func:`write_volume_section` writes into a folder ``volumes3d.md`` (tables from
:mod:`sambench.analysis.volumes`) and two PNGs:

- ``dsc_per_click.png`` (:func:`click_step_figure`): mean 3D DSC (%) after the box (step 0) and
  each click of ``interactive-3d``, one line per model with its 95 % CI band (by case: none
  below ``MIN_CASES`` volumes' cases);
- ``slicewise_vs_propagate.png`` (:func:`slicewise_vs_propagate_figure`): per object, the 3D DSC
  of ``slicewise-gt`` (every slice prompted from its own ground truth: the paper's protocol)
  against ``propagate`` (one prompt, then the model alone), one point per object and model, with
  the diagonal; the points under it are what the slice protocol hides.

The same pieces (:func:`volume_parts`) make the HTML report's 3D section: ``sambench report RUN``
on an ``evaluate-3d`` run folder (one holding ``results3d.parquet``) builds the page from
:data:`VOLUME_SECTIONS` (tables under ``tables/3d_*``, figures under ``figures/``).

Optionally (``volume_dice_2d``, a :func:`sambench.analysis.stats.volume_dice` table of the same
objects) the paper-style 2D "volume DICE" beside the true 3D DSC. Figures follow
:mod:`sambench.report.figures` (no pyplot state, Okabe-Ito series, legends outside).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sambench.analysis import volumes as av
from sambench.analysis.stats import ci_label, test_label
from sambench.analysis.summary import to_markdown
from sambench.report import html as H
from sambench.report.figures import empty_figure, legend_outside, new_figure, save_png, series_style
from sambench.store.atomic import write_text_atomic

if TYPE_CHECKING:
    from sambench.report.context import ReportContext

SECTION_NAME = "volumes3d.md"
#: Written by ``evaluate-3d`` (:data:`sambench.volumes.evaluate.CONFIG_NAME`; not imported, so
#: the report does not load the runner).
CONFIG_3D_NAME = "config-3d.json"
RESULTS3D_NAME = "results3d.parquet"


def click_step_figure(
    curve: pd.DataFrame,
    metric_label: str = "3D DSC (%)",
    xlabel: str = "step (0 = initial box, then clicks)",
) -> Figure:
    """Mean metric per step (0 = box, then clicks) per model, with the CI as a band.

    ``curve``: :func:`sambench.analysis.volumes.click_curve` (model, step, mean, ci_lo, ci_hi)."""
    if curve.empty:
        return empty_figure("no interactive-3d rows")
    fig, (ax,) = new_figure(1, width=5.5)
    for i, (model, g) in enumerate(curve.groupby("model", sort=True)):
        g = g.sort_values("step")
        st = series_style(i)
        ax.plot(g["step"], g["mean"], marker=st["marker"], color=st["color"],
                linestyle=st["linestyle"], label=str(model))  # fmt: skip
        ax.fill_between(g["step"], g["ci_lo"], g["ci_hi"], color=st["color"], alpha=0.15)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"mean {metric_label}")
    ax.set_xticks(sorted(curve["step"].unique()))
    legend_outside(ax)
    return fig


def slicewise_vs_propagate_figure(side: pd.DataFrame) -> Figure:
    """Scatter of ``dsc_slicewise-gt`` (x) against ``dsc_propagate`` (y), one series per model.

    ``side``: :func:`sambench.analysis.volumes.slicewise_vs_propagate`."""
    if side.empty:
        return empty_figure("no object with both slicewise-gt and propagate rows")
    fig, (ax,) = new_figure(1, width=5.0, height=4.2)
    for i, (model, g) in enumerate(side.groupby("model", sort=True)):
        st = series_style(i)
        ax.scatter(g["dsc_slicewise-gt"], g["dsc_propagate"], marker=st["marker"],
                   color=st["color"], label=str(model), alpha=0.8)  # fmt: skip
    ax.plot([0, 100], [0, 100], color="0.5", linewidth=0.8, linestyle="--")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("slicewise-gt 3D DSC (%)  (every slice from its own GT)")
    ax.set_ylabel("propagate 3D DSC (%)  (one prompt)")
    legend_outside(ax)
    return fig


@dataclass
class Part:
    """One piece of the 3D section: a ``heading``, a ``text`` paragraph, a ``table`` (``df``)
    or a ``figure`` (``fig``); ``name`` is the file stem of tables and figures."""

    kind: str
    text: str = ""
    name: str = ""
    df: pd.DataFrame | None = None
    fig: Figure | None = None


def volume_parts(
    results3d: pd.DataFrame,
    *,
    rng: np.random.Generator,
    volume_dice_2d: pd.DataFrame | None = None,
    n_boot: int = 2000,
    unit: str = "case",
) -> Iterator[Part]:
    """The 3D section's pieces in page order (shared by the Markdown and the HTML report);
    CIs and tests by ``unit`` (``case`` or ``object``), named in every heading."""
    protocols = set(results3d["protocol"])
    yield Part("heading", f"Mean per protocol (final step, {ci_label(unit)})")
    for metric, label in (("dsc", "3D DSC (%)"), ("nsd", "NSD at the run's tolerance (%)"),
                          ("hd95", "HD95 (mm)"), ("seconds", "seconds per step")):  # fmt: skip
        if metric in results3d.columns:
            t = av.protocol_table(results3d, metric, rng=rng, n_boot=n_boot, unit=unit)
            yield Part("table", f"{label}, 95 % CI by {unit}", f"3d_{metric}_per_protocol", df=t)
    if len(protocols) > 1:
        yield Part(
            "heading", f"Paired tests between protocols (Wilcoxon, Holm; {test_label(unit)})"
        )
        t = av.protocol_tests(results3d, "dsc", unit=unit)
        yield Part("table", "", "3d_tests_protocols", df=t)
    if results3d["model"].nunique() > 1:
        yield Part("heading", f"Paired tests between models (Wilcoxon, Holm; {test_label(unit)})")
        t = av.protocol_tests(results3d, "dsc", between="model", unit=unit)
        yield Part("table", "", "3d_tests_models", df=t)
    if "interactive-3d" in protocols:
        inter = av.interactive_table(results3d)
        summary = inter.groupby("model", sort=True)[
            ["DSC_AUC", "NSD_AUC", "DSC_Final", "NSD_Final", "seconds_mean", "seconds_total"]
        ].mean()
        yield Part("heading", "CVPR 2025 interactive 3D (mean per model)")
        yield Part("table", "", "3d_interactive", df=summary.reset_index())
        curve = av.click_curve(results3d, rng=rng, n_boot=min(n_boot, 1000), unit=unit)
        text = f"3D DSC per click step (band: 95 % CI by {unit}; none: too few {unit}s)"
        yield Part("figure", text, "dsc_per_click", fig=click_step_figure(curve))
    if "effort" in protocols:  # RadioActive-style equal effort, 2D-lifted and native 3D alike
        eff = results3d[results3d["protocol"] == "effort"]
        n_budgets = int(eff.groupby(["volume_id", "label_value", "model"]).size().max())
        inter = av.interactive_table(results3d, protocol="effort", n_clicks=n_budgets)
        kinds = eff.groupby("model")["model_kind"].first() if "model_kind" in eff else None
        summary = inter.groupby("model", sort=True)[
            ["DSC_AUC", "NSD_AUC", "DSC_Final", "NSD_Final", "seconds_mean"]
        ].mean()
        if kinds is not None:
            summary.insert(0, "model_kind", kinds.reindex(summary.index))
        budgets = ", ".join(str(int(v)) for v in sorted(eff["step"].unique()))
        yield Part("heading", f"Equal effort: {budgets} interactions (mean per model)")
        yield Part("text", "One interaction = the initial box or one click, for 2D-lifted and "
                   "native 3D models alike (docs/models-3d.md); AUCs by the CVPR 2025 formula "
                   "over the budget points.")  # fmt: skip
        yield Part("table", "", "3d_effort", df=summary.reset_index())
        for metric, label in (("dsc", "3D DSC (%)"), ("nsd", "NSD (%)")):
            curve = av.click_curve(
                results3d, metric, protocol="effort", rng=rng, n_boot=min(n_boot, 1000), unit=unit
            )
            yield Part("figure", f"{label} against interactions (band: 95 % CI by {unit})",
                       f"{metric}_per_interaction",
                       fig=click_step_figure(curve, label, "interactions"))  # fmt: skip
    if {"slicewise-gt", "propagate"} <= protocols:
        side = av.slicewise_vs_propagate(results3d)
        yield Part("heading", "slicewise-gt vs propagate (what the slice protocol hides)")
        cols = ["volume_id", "object_name", "model", "dsc_slicewise-gt", "dsc_propagate", "dsc_gap"]
        yield Part("table", "", "3d_slicewise_vs_propagate", df=side[cols])
        fig = slicewise_vs_propagate_figure(side)
        yield Part("figure", "slicewise-gt vs propagate", "slicewise_vs_propagate", fig=fig)
    if volume_dice_2d is not None and "slicewise-gt" in protocols:
        cmp = av.volume_dice_vs_3d(volume_dice_2d, results3d)
        yield Part("heading", "The paper's 2D volume DICE vs the true 3D DSC")
        yield Part("text", "2D volume DICE pools only the slices holding the object; the 3D DSC "
                   "of slicewise-gt also counts what the model paints on the other slices.")  # fmt: skip
        yield Part("table", "", "3d_volume_dice_vs_3d", df=cmp)


def write_volume_section(
    results3d: pd.DataFrame,
    folder: Path | str,
    *,
    rng: np.random.Generator,
    volume_dice_2d: pd.DataFrame | None = None,
    n_boot: int = 2000,
    unit: str = "case",
) -> Path:
    """Write ``volumes3d.md`` and its figures into ``folder``; return the Markdown path."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    parts = ["# Volumetric (3D) evaluation", ""]
    parts_ = volume_parts(
        results3d, rng=rng, volume_dice_2d=volume_dice_2d, n_boot=n_boot, unit=unit
    )
    for p in parts_:
        if p.kind == "heading":
            parts += [f"## {p.text}", ""]
        elif p.kind == "text":
            parts += [p.text, ""]
        elif p.kind == "table" and p.df is not None:
            parts += ([f"**{p.text}**", ""] if p.text else []) + [to_markdown(p.df), ""]
        elif p.kind == "figure" and p.fig is not None:
            save_png(p.fig, out / f"{p.name}.png")
            parts += [f"![{p.text}]({p.name}.png)", ""]
    return write_text_atomic(out / SECTION_NAME, "\n".join(parts))


# --- the HTML report (``sambench report RUN`` of an evaluate-3d run folder) ---------------------


def volume_section(ctx: ReportContext, sec: H.Section) -> None:
    """Report builder: the 3D section from ``ctx.results3d`` (``RUN/results3d.parquet``)."""
    df = ctx.results3d
    if df is None or df.empty:
        sec.add(H.note_html("No evaluate-3d results (results3d.parquet) in the run folder."))
        return
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    n_obj = ok[["volume_id", "label_value"]].drop_duplicates().shape[0]
    sec.add(
        H.para_html(
            f"{len(df)} rows, {df['volume_id'].nunique()} volume(s), {n_obj} object(s) evaluated; "
            f"protocols: {', '.join(sorted(map(str, df['protocol'].unique())))}. DSC and NSD in %, "
            "distances in mm, scored over the whole volume (see docs/volumes.md)."
        )
    )
    info = _model_info(ctx.run_dir)
    if info:  # a native 3D model: the licence of its weights, as the session reported it
        sec.add(
            H.para_html(
                f"Native 3D model {info.get('model', '?')} ({info.get('package', '?')}), weights "
                f"{info.get('checkpoint', '?')}: licence {info.get('license', 'unknown')}. "
                "Results carry model_kind 3d; seconds per step are the model's own."
            )
        )
    if "over_time_cap" in df.columns and df["over_time_cap"].fillna(False).astype(bool).any():
        capped = df[df["over_time_cap"].fillna(False).astype(bool)]
        cap = json.loads((ctx.run_dir / CONFIG_3D_NAME).read_text()) if (
            ctx.run_dir / CONFIG_3D_NAME).is_file() else {}  # fmt: skip
        secs = (cap.get("protocol", {}).get("options", {}) or {}).get("time_cap_s", "?")
        per = ", ".join(f"{p}: {n}" for p, n in capped.groupby("protocol").size().items())
        sec.add(
            H.note_html(
                f"{len(capped)} step(s) came after the model's cumulative seconds for the object "
                f"passed --time-cap-s {secs} and are scored as empty predictions (DSC 0), as the "
                f"CVPR 2025 challenge does ({per})."
            )
        )
    if (
        ctx.results.empty
    ):  # a 3D run alone: its claims first (a 2D report states them in its summary)
        from sambench.report.findings import volume_sentences

        claims = volume_sentences(df, ctx.rng)
        if claims:
            sec.add("<h3>Summary</h3>" + H.list_html(claims))
    if len(ok) < len(df):
        skipped = df[df["status"] != "ok"]
        reasons = skipped.get("skip_reason", pd.Series(["?"] * len(skipped)))
        sec.add(
            H.note_html(
                f"{len(skipped)} row(s) skipped: {', '.join(sorted(set(map(str, reasons))))}"
            )
        )
    if ok.empty:
        return
    for p in volume_parts(ok, rng=ctx.rng, unit=ctx.ci_unit):
        if p.kind == "heading":
            sec.add(f"<h3>{H.esc(p.text)}</h3>")
        elif p.kind == "text":
            sec.add(H.para_html(p.text))
        elif p.kind == "table" and p.df is not None:
            ctx.table(sec, p.name, p.df, p.text)
        elif p.kind == "figure" and p.fig is not None:
            ctx.figure(sec, p.name, p.fig, p.text)


def _model_info(run_dir: Path) -> dict[str, object]:
    """``model_info`` of the run's ``config-3d.json`` (a native 3D model's), or {}."""
    path = run_dir / CONFIG_3D_NAME
    if not path.is_file():
        return {}
    info = json.loads(path.read_text()).get("model_info")
    return info if isinstance(info, dict) else {}


def config_3d_section(ctx: ReportContext, sec: H.Section) -> None:
    """Report builder: the run's ``config-3d.json`` as a folded table."""
    path = ctx.run_dir / CONFIG_3D_NAME
    if not path.is_file():
        sec.add(H.note_html(f"No {CONFIG_3D_NAME} in the run folder."))
        return
    cfg = json.loads(path.read_text())
    rows = [{"field": k, "value": json.dumps(v) if isinstance(v, list | dict) else v}
            for k, v in cfg.items()]  # fmt: skip
    ctx.table(sec, "config3d", pd.DataFrame(rows), "", blank="not set",
              folded=f"Run configuration ({CONFIG_3D_NAME})")  # fmt: skip


#: (anchor, heading, builder) of an evaluate-3d run, in page order (see report/build.py).
VOLUME_SECTIONS: tuple[tuple[str, str, Callable[[ReportContext, H.Section], None]], ...] = (
    ("volumes3d", "Volumetric (3D) evaluation: DSC, NSD (mm), HD95 (mm)", volume_section),
    ("config3d", "3D run configuration", config_3d_section),
)
