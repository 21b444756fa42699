"""The report's 3D section: ``evaluate-3d`` results as tables and figures (a Markdown page).

:func:`write_volume_section` writes into a folder ``volumes3d.md`` (tables from
:mod:`sambench.analysis.volumes`) and two PNGs:

- ``dsc_per_click.png`` (:func:`click_step_figure`): mean 3D DSC (%) after the box (step 0) and
  each click of ``interactive-3d``, one line per model with its bootstrap 95 % CI band;
- ``slicewise_vs_propagate.png`` (:func:`slicewise_vs_propagate_figure`): per object, the 3D DSC
  of ``slicewise-gt`` (every slice prompted from its own ground truth: the paper's protocol)
  against ``propagate`` (one prompt, then the model alone), one point per object and model, with
  the diagonal; the points under it are what the slice protocol hides.

Optionally (``volume_dice_2d``, a :func:`sambench.analysis.stats.volume_dice` table of the same
objects) the paper-style 2D "volume DICE" beside the true 3D DSC. Figures follow
:mod:`sambench.report.figures` (no pyplot state, Okabe-Ito series, legends outside).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sambench.analysis import volumes as av
from sambench.analysis.summary import to_markdown
from sambench.data.atomic import write_text_atomic
from sambench.report.figures import _empty, _legend_outside, _new, save_png, series_style

SECTION_NAME = "volumes3d.md"


def click_step_figure(curve: pd.DataFrame, metric_label: str = "3D DSC (%)") -> Figure:
    """Mean metric per step (0 = box, then clicks) per model, with the CI as a band.

    ``curve``: :func:`sambench.analysis.volumes.click_curve` (model, step, mean, ci_lo, ci_hi)."""
    if curve.empty:
        return _empty("no interactive-3d rows")
    fig, (ax,) = _new(1, width=5.5)
    for i, (model, g) in enumerate(curve.groupby("model", sort=True)):
        g = g.sort_values("step")
        st = series_style(i)
        ax.plot(g["step"], g["mean"], marker=st["marker"], color=st["color"],
                linestyle=st["linestyle"], label=str(model))  # fmt: skip
        ax.fill_between(g["step"], g["ci_lo"], g["ci_hi"], color=st["color"], alpha=0.15)
    ax.set_xlabel("step (0 = initial box, then clicks)")
    ax.set_ylabel(f"mean {metric_label}")
    ax.set_xticks(sorted(curve["step"].unique()))
    _legend_outside(ax)
    return fig


def slicewise_vs_propagate_figure(side: pd.DataFrame) -> Figure:
    """Scatter of ``dsc_slicewise-gt`` (x) against ``dsc_propagate`` (y), one series per model.

    ``side``: :func:`sambench.analysis.volumes.slicewise_vs_propagate`."""
    if side.empty:
        return _empty("no object with both slicewise-gt and propagate rows")
    fig, (ax,) = _new(1, width=5.0, height=4.2)
    for i, (model, g) in enumerate(side.groupby("model", sort=True)):
        st = series_style(i)
        ax.scatter(g["dsc_slicewise-gt"], g["dsc_propagate"], marker=st["marker"],
                   color=st["color"], label=str(model), alpha=0.8)  # fmt: skip
    ax.plot([0, 100], [0, 100], color="0.5", linewidth=0.8, linestyle="--")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("slicewise-gt 3D DSC (%)  (every slice from its own GT)")
    ax.set_ylabel("propagate 3D DSC (%)  (one prompt)")
    _legend_outside(ax)
    return fig


def write_volume_section(
    results3d: pd.DataFrame,
    folder: Path | str,
    *,
    rng: np.random.Generator,
    volume_dice_2d: pd.DataFrame | None = None,
    n_boot: int = 2000,
) -> Path:
    """Write ``volumes3d.md`` and its figures into ``folder``; return the Markdown path."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    parts = ["# Volumetric (3D) evaluation", ""]
    protocols = set(results3d["protocol"])
    parts += ["## Mean per protocol (final step, 95 % bootstrap CI)", ""]
    for metric, label in (("dsc", "3D DSC (%)"), ("nsd", "NSD at the run's tolerance (%)"),
                          ("hd95", "HD95 (mm)"), ("seconds", "seconds per step")):  # fmt: skip
        if metric in results3d.columns:
            t = av.protocol_table(results3d, metric, rng=rng, n_boot=n_boot)
            parts += [f"**{label}**", "", to_markdown(t), ""]
    if len(protocols) > 1:
        parts += ["## Paired tests between protocols (Wilcoxon, Holm)", ""]
        parts += [to_markdown(av.protocol_tests(results3d, "dsc")), ""]
    if results3d["model"].nunique() > 1:
        parts += ["## Paired tests between models (Wilcoxon, Holm)", ""]
        parts += [to_markdown(av.protocol_tests(results3d, "dsc", between="model")), ""]
    if "interactive-3d" in protocols:
        inter = av.interactive_table(results3d)
        summary = inter.groupby("model", sort=True)[
            ["DSC_AUC", "NSD_AUC", "DSC_Final", "NSD_Final", "seconds_mean", "seconds_total"]
        ].mean()
        parts += ["## CVPR 2025 interactive 3D (mean per model)", ""]
        parts += [to_markdown(summary.reset_index()), ""]
        curve = av.click_curve(results3d, rng=rng, n_boot=min(n_boot, 1000))
        save_png(click_step_figure(curve), out / "dsc_per_click.png")
        parts += ["![3D DSC per click step](dsc_per_click.png)", ""]
    if {"slicewise-gt", "propagate"} <= protocols:
        side = av.slicewise_vs_propagate(results3d)
        parts += ["## slicewise-gt vs propagate (what the slice protocol hides)", ""]
        cols = ["volume_id", "object_name", "model", "dsc_slicewise-gt", "dsc_propagate", "dsc_gap"]
        parts += [to_markdown(side[cols]), ""]
        save_png(slicewise_vs_propagate_figure(side), out / "slicewise_vs_propagate.png")
        parts += ["![slicewise-gt vs propagate](slicewise_vs_propagate.png)", ""]
    if volume_dice_2d is not None and "slicewise-gt" in protocols:
        cmp = av.volume_dice_vs_3d(volume_dice_2d, results3d)
        parts += ["## The paper's 2D volume DICE vs the true 3D DSC", ""]
        parts += [
            "2D volume DICE pools only the slices holding the object; the 3D DSC of "
            "slicewise-gt also counts what the model paints on the other slices.",
            "",
            to_markdown(cmp),
            "",
        ]
    return write_text_atomic(out / SECTION_NAME, "\n".join(parts))
