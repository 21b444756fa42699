"""The report's figures (paper Figs. 6, 7/8, 10, 13, 14, 16, Table 5 and Table 8 as plots).

Every function takes DataFrames and returns a :class:`matplotlib.figure.Figure` built directly
(no ``pyplot`` global state, no backend switching: ``Figure.savefig`` uses the Agg canvas), so this
module has no import-time side effects and is safe in threads and headless servers. Save with
:func:`figure_png` (bytes) or :func:`save_png` (atomic file write).

Conventions: DICE, IoU and NSD are in %, distances in pixels; strategies are ordered S1..S6,
interactive (:data:`sambench.analysis.summary.STRATEGY_ORDER`). PNGs are written at
:data:`DPI` (150) dots per inch. Series take their colours from the Okabe-Ito palette
(:data:`PALETTE`, safe for the common colour-vision deficiencies); beyond its 8 colours a series
also changes marker, line style and hatch (:func:`series_style`), so every series of a figure is
distinct. Legends sit outside the axes (right of them), so they hide no data.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import NullFormatter

from sambench.analysis.summary import strategy_sorted
from sambench.store.atomic import write_bytes_atomic

ATTRIBUTE_LABELS: dict[str, str] = {
    "size": "size (pixels)",
    "aspect_ratio": "aspect ratio",
    "intensity_diff": "intensity difference",
    "fourier_order": "Fourier order",
    "modality_code": "modality (categorical code)",
}
DICE_LEVELS = tuple(range(1, 11))
DPI = 150
#: Okabe & Ito (2008) colour-blind-safe palette, hex (blue, orange, bluish green, vermillion,
#: reddish purple, sky blue, yellow, black), most contrasting on white first.
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
)
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_LINESTYLES = ("-", "--", ":", "-.")
_HATCHES = ("", "//", "..", "xx", "\\\\", "++")


def series_style(i: int) -> dict[str, str]:
    """Style of series ``i`` (0-based): ``color`` (Okabe-Ito, cycling every 8), ``marker``,
    ``linestyle`` and ``hatch`` (changing with each pass through the palette), so that styles
    ``0..n-1`` are pairwise distinct for any n up to 8 x 6 = 48."""
    k, c = divmod(i, len(PALETTE))
    return {
        "color": PALETTE[c],
        "marker": _MARKERS[(c + k) % len(_MARKERS)],
        "linestyle": _LINESTYLES[k % len(_LINESTYLES)],
        "hatch": _HATCHES[k % len(_HATCHES)],
    }


def series_boxes(
    ax: Axes, data: list[np.ndarray], positions: list[float], width: float, j: int, label: str
) -> list[Patch]:
    """Box plots of series ``j`` (one box per array of ``data`` at its x in ``positions``,
    ``width`` wide, in data units): filled with :func:`series_style`'s colour, black medians, no
    fliers, ``label`` on the first box (for the legend). Returns the boxes, to style further."""
    bp = ax.boxplot(
        data,
        positions=positions,
        widths=width,
        patch_artist=True,
        showfliers=False,
        medianprops={"color": "black"},
    )
    boxes: list[Patch] = bp["boxes"]
    for patch in boxes:
        patch.set_facecolor(series_style(j)["color"])
    boxes[0].set_label(label)
    return boxes


def legend_outside(ax: Axes, **kw: object) -> None:
    """A legend to the right of ``ax`` (outside it, so it covers no data); none when no artist
    carries a label."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0.0,
            fontsize="small",
            **kw,  # type: ignore[arg-type]
        )


def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes, at ``dpi`` (default :data:`DPI`) with the dpi in the PNG header."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_png(fig: Figure, path: Path | str, dpi: int = DPI) -> Path:
    """Write the figure as a PNG, atomically; return the path."""
    return write_bytes_atomic(path, figure_png(fig, dpi))


def dice_level(dice: float | np.ndarray | pd.Series) -> np.ndarray:
    """DICE level k (paper Fig. 14): DICE in (10(k-1), 10k] % -> k, for k = 1..10.

    DICE 0 belongs to level 1 (levels are closed on the left for the first one: [0, 10]);
    values above 100 or below 0 are an error; NaN gives NaN. Returns a float array (NaN-able).
    """
    d = np.atleast_1d(np.asarray(dice, dtype=np.float64))
    finite = d[~np.isnan(d)]
    if finite.size and (finite.min() < 0 or finite.max() > 100):
        raise ValueError(
            f"dice: expected values in [0, 100] %, got range [{finite.min()}, {finite.max()}]"
        )
    lvl = np.ceil(d / 10.0)
    return np.where(np.isnan(d), np.nan, np.clip(lvl, 1, 10))


def new_figure(
    n_axes: int, *, ncols: int | None = None, width: float = 5.0, height: float = 3.6
) -> tuple[Figure, list[Axes]]:
    """A figure of ``n_axes`` axes (``ncols`` per row, default all in one row), each
    ``width`` x ``height`` inches; returns (figure, axes in reading order)."""
    ncols = ncols or n_axes
    nrows = max(1, math.ceil(n_axes / ncols))
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(n_axes)]
    return fig, axes


def empty_figure(message: str) -> Figure:
    """A one-axes figure that says ``message`` (a figure with nothing to plot)."""
    fig, (ax,) = new_figure(1)
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.set_axis_off()
    return fig


def _grouped_bars(
    ax: Axes,
    df: pd.DataFrame,
    group: str,
    hue: str,
    value: str,
    lo: str | None = None,
    hi: str | None = None,
    groups: Sequence[str] | None = None,
    empty: str | None = None,
) -> None:
    """Bars of ``value`` per ``group`` (x) and ``hue`` (side by side), optional [lo, hi] errors.

    A group a hue has no row for is labelled "not run" (no bar), a measured zero "0"; with
    ``empty`` (a column of the share of empty predictions, %), a bar that includes empty
    predictions is labelled ``"<share>% E"``: part of its value is the run's empty-mask
    convention, not a measured distance."""
    groups = list(groups) if groups is not None else list(dict.fromkeys(df[group]))
    hues = sorted(dict.fromkeys(df[hue]), key=str)
    width = 0.8 / max(1, len(hues))
    x = np.arange(len(groups))
    for j, h in enumerate(hues):
        sub = df[df[hue] == h].set_index(group).reindex(groups)
        y = sub[value].to_numpy(dtype=float)
        yerr = None
        if lo is not None and hi is not None:
            yerr = np.vstack([y - sub[lo].to_numpy(dtype=float), sub[hi].to_numpy(dtype=float) - y])
            yerr = np.where(np.isnan(yerr), 0.0, np.maximum(yerr, 0.0))
        st = series_style(j)
        xs = x + (j - (len(hues) - 1) / 2) * width
        ax.bar(
            xs,
            y,
            width,
            yerr=yerr,
            capsize=3,
            label=str(h),
            color=st["color"],
            hatch=st["hatch"] or None,
            edgecolor="black",
            linewidth=0.5,
        )
        # a missing bar says why: not run (no rows) differs from a measured zero
        for xi, yi in zip(xs, y, strict=True):
            if np.isnan(yi):
                ax.text(xi, 0, "not run", rotation=90, ha="center", va="bottom", fontsize=7)
            elif yi == 0:
                ax.text(xi, 0, "0", ha="center", va="bottom", fontsize=7)
        if empty is not None and empty in sub.columns:
            share = sub[empty].to_numpy(dtype=float)
            for xi, yi, e in zip(xs, y, share, strict=True):
                if not np.isnan(e) and e > 0 and not np.isnan(yi) and yi > 0:
                    ax.text(
                        xi,
                        yi / 2,
                        f"{e:.0f}% E",
                        rotation=90,
                        ha="center",
                        va="center",
                        fontsize=7,
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
                    )
    ax.set_xticks(x, [str(g) for g in groups])
    if len(hues) > 1:
        legend_outside(ax)


def mean_ci_figure(dice_ci: pd.DataFrame, hd_ci: pd.DataFrame) -> Figure:
    """Paper Fig. 6: mean DICE (left) and mean HD (right) per strategy, one bar per model, with
    95 % bootstrap CI error bars.

    Inputs: :func:`sambench.analysis.stats.mean_with_ci` tables with columns model, strategy,
    mean, ci_lo, ci_hi. Two axes, one bar container per model on each.
    """
    fig, axes = new_figure(2)
    for ax, df, label in ((axes[0], dice_ci, "DICE (%)"), (axes[1], hd_ci, "HD (pixels)")):
        if df.empty:
            ax.text(0.5, 0.5, "no data", ha="center", va="center")
            continue
        strategies = strategy_sorted(list(df["strategy"]))
        empty = "empty %" if label.startswith("HD") else None
        _grouped_bars(ax, df, "strategy", "model", "mean", "ci_lo", "ci_hi", strategies, empty)
        ax.set_ylabel(f"mean {label}")
        ax.set_xlabel("strategy")
    models = sorted({str(m) for df in (dice_ci, hd_ci) if not df.empty for m in df["model"]})
    who = f"{models[0]}: " if len(models) == 1 else ""
    axes[0].set_title(f"{who}mean DICE, 95 % CI (see caption)")
    axes[1].set_title(f"{who}mean HD, 95 % CI (see caption)")
    return fig


def box_by_group(
    results: pd.DataFrame,
    by: str = "target_modality",
    metric: str = "dice",
    *,
    max_groups: int = 40,
) -> Figure:
    """Paper Figs. 7/8 (``by="target_modality"``) and 10 (``by="modality"``): box plots of
    ``metric`` per group, one box per strategy, side by side; one axes per model.

    ``results``: ok rows of one selection with columns ``by``, model, strategy, ``metric``. At most
    ``max_groups`` groups (the first in sorted order) are drawn per axes. Each axes holds one box
    per (group, strategy) present.
    """
    if results.empty:
        return empty_figure("no data")
    models = sorted(results["model"].unique())
    groups = sorted(results[by].astype(str).unique())[:max_groups]
    strategies = strategy_sorted(list(results["strategy"]))
    width = max(6.0, min(40.0, 0.35 * len(groups) * len(strategies) + 2))
    fig, axes = new_figure(len(models), ncols=1, width=width, height=3.8)
    for ax, model in zip(axes, models, strict=True):
        sub = results[results["model"] == model]
        w = 0.8 / len(strategies)
        for j, s in enumerate(strategies):
            data, pos = [], []
            for i, g in enumerate(groups):
                v = sub.loc[(sub[by].astype(str) == g) & (sub["strategy"] == s), metric].dropna()
                if len(v):
                    data.append(v.to_numpy(dtype=float))
                    pos.append(i + (j - (len(strategies) - 1) / 2) * w)
            if not data:
                continue
            for patch in series_boxes(ax, data, pos, w * 0.9, j, s):
                patch.set_hatch(series_style(j)["hatch"] or None)  # type: ignore[arg-type]
        ax.set_xticks(np.arange(len(groups)), groups, rotation=45, ha="right", fontsize="small")
        ax.set_xlim(-0.6, len(groups) - 0.4)
        ax.set_ylabel(metric.upper())
        ax.set_title(f"{model}: {metric.upper()} per {by.replace('_', '-')}")
        legend_outside(ax)
    return fig


def attribute_scatter(
    results_with_attrs: pd.DataFrame,
    attributes: Sequence[str] = (
        "size",
        "aspect_ratio",
        "intensity_diff",
        "fourier_order",
        "modality_code",
    ),
    metric: str = "dice",
) -> Figure:
    """Paper Fig. 13: scatter of ``metric`` against each attribute (one axes per attribute), one
    colour per (model, strategy) series; size on a log axis.

    ``results_with_attrs``: ok rows of one selection joined with the attributes.
    """
    attrs = [a for a in attributes if a in results_with_attrs.columns]
    if results_with_attrs.empty or not attrs:
        return empty_figure("no attributes")
    fig, axes = new_figure(len(attrs), ncols=min(3, len(attrs)), width=4.2, height=3.4)
    series = results_with_attrs.groupby(["model", "strategy"], sort=True)
    for ax, a in zip(axes, attrs, strict=True):
        for i, ((model, strategy), g) in enumerate(series):
            st = series_style(i)
            ax.scatter(
                g[a],
                g[metric],
                s=12,
                alpha=0.7,
                color=st["color"],
                marker=st["marker"],
                label=f"{model} {strategy}",
            )
        ax.set_xlabel(ATTRIBUTE_LABELS.get(a, a))
        ax.set_ylabel(metric.upper())
        if a == "size" and (results_with_attrs[a] > 0).all():
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on short spans
        elif a == "modality_code":
            codes = sorted(results_with_attrs[a].dropna().unique())
            ax.set_xticks(codes, [str(int(c)) for c in codes])
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize="x-small")
    return fig


def fourier_by_dice_level(results_with_attrs: pd.DataFrame, metric: str = "dice") -> Figure:
    """Paper Fig. 14: box plots of the Fourier order per DICE level (:func:`dice_level`), levels
    1..10 on the x axis (empty levels have no box); one axes per model, all strategies pooled.
    """
    need = {"fourier_order", metric, "model"}
    if results_with_attrs.empty or not need <= set(results_with_attrs.columns):
        return empty_figure("no Fourier orders")
    models = sorted(results_with_attrs["model"].unique())
    fig, axes = new_figure(len(models), ncols=min(2, len(models)), width=6.0)
    for ax, model in zip(axes, models, strict=True):
        sub = results_with_attrs[results_with_attrs["model"] == model]
        lv = dice_level(sub[metric].to_numpy(dtype=float))
        fo = sub["fourier_order"].to_numpy(dtype=float)
        data, pos = [], []
        for k in DICE_LEVELS:
            v = fo[(lv == k) & ~np.isnan(fo)]
            if v.size:
                data.append(v)
                pos.append(k)
        if data:
            ax.boxplot(data, positions=pos, widths=0.6, showfliers=True)
        ax.set_xticks(list(DICE_LEVELS), [str(k) for k in DICE_LEVELS])
        ax.set_xlim(0.3, 10.7)
        ax.set_xlabel("DICE level k: DICE in (10(k-1), 10k] %")
        ax.set_ylabel("Fourier order")
        ax.set_title(f"{model}: boundary complexity by DICE level")
    return fig


def grid_curve(grid_summary: pd.DataFrame) -> Figure:
    """Paper Table 5 as a plot: mean DICE against the everything-mode grid size (m x m points),
    one line per (model, target-modality); x on a log2 axis.

    ``grid_summary``: columns model, target_modality, grid, mean (and optionally std).
    """
    if grid_summary.empty:
        return empty_figure("no everything-mode rows")
    fig, (ax,) = new_figure(1, width=6.5, height=4.2)
    for i, ((model, tm), g) in enumerate(
        grid_summary.groupby(["model", "target_modality"], sort=True)
    ):
        g = g.sort_values("grid")
        st = series_style(i)
        ax.plot(
            g["grid"],
            g["mean"],
            marker=st["marker"],
            color=st["color"],
            linestyle=st["linestyle"],
            label=f"{model} {tm}",
        )
    ax.set_xscale("log", base=2)
    grids = sorted(grid_summary["grid"].unique())
    ax.set_xticks(grids, [f"{int(v)}x{int(v)}" for v in grids])
    ax.set_xlabel("grid (points per side)")
    ax.set_ylabel("mean DICE (%)")
    ax.set_title("Everything mode: DICE by grid size")
    legend_outside(ax)
    return fig


def click_curves(curve: pd.DataFrame, metrics: Sequence[str] = ("dice", "jaccard")) -> Figure:
    """Paper Fig. 16: mean metric after each click, one line per model (baselines included);
    one axes per metric, all on one 0-100 % y axis (shared) and the same click ticks.

    ``curve``: :func:`sambench.analysis.interactive.click_curve` or, for the 95 % CI bands,
    :func:`~sambench.analysis.interactive.click_curve_ci` with ``by=("model",)`` (columns model,
    click_index, ``<metric>`` and optionally ``<metric>_ci_low``/``_ci_high`` and ``ci_note``). A band
    is drawn where both bounds are known; a model with no bound at any click (too few cases)
    gets no band and the axes says so below the curves ("no band: ...").
    """
    if curve.empty:
        return empty_figure("no interactive rows")
    metrics = [m for m in metrics if m in curve.columns]
    fig, axes = new_figure(len(metrics), width=5.0, height=3.9)
    for ax, m in zip(axes, metrics, strict=True):
        no_band: list[str] = []
        for i, (model, g) in enumerate(curve.groupby("model", sort=True)):
            g = g.sort_values("click_index")
            st = series_style(i)
            ax.plot(
                g["click_index"],
                g[m],
                marker=st["marker"],
                color=st["color"],
                linestyle=st["linestyle"],
                label=str(model),
            )
            lo, hi = f"{m}_ci_low", f"{m}_ci_high"
            if lo not in g.columns or hi not in g.columns:
                continue
            known = g[lo].notna() & g[hi].notna()
            if known.any():
                ax.fill_between(
                    g["click_index"].to_numpy(float),
                    g[lo].to_numpy(float),
                    g[hi].to_numpy(float),
                    where=known.to_numpy(),
                    color=st["color"],
                    alpha=0.18,
                    linewidth=0,
                )
            else:
                notes = g.get("ci_note", pd.Series(dtype=str)).dropna().astype(str)
                why = notes.iloc[0] if len(notes) and notes.iloc[0] else "no CI"
                no_band.append(f"{model}: {why}")
        ax.set_ylim(0, 100)
        ax.set_xticks(sorted(curve["click_index"].unique()))
        ax.set_xlabel("number of clicks")
        ax.set_ylabel(f"mean {'IoU' if m == 'jaccard' else m.upper()} (%)")
        if no_band:
            ax.text(0.02, 0.02, "no band: " + "; ".join(no_band), transform=ax.transAxes,
                    fontsize=7, va="bottom", ha="left",
                    bbox={"facecolor": "white", "edgecolor": "0.7", "pad": 2})  # fmt: skip
    for ax in axes[1:]:
        ax.sharey(axes[0])
    legend_outside(axes[-1])
    return fig


def shift_bars(shift_long: pd.DataFrame) -> Figure:
    """Paper Table 8 as bars: mean DICE drop (points; positive = worse) per strategy, one bar per
    shift range, error bars = min..max over the repeats; one axes per model.

    ``shift_long``: :func:`sambench.analysis.robustness.shift_drop_long` (columns model, strategy,
    shift_range, shift_repeat, drop).
    """
    if shift_long.empty:
        return empty_figure("no prompt-shift rows")
    models = sorted(shift_long["model"].unique())
    fig, axes = new_figure(len(models), ncols=min(2, len(models)), width=6.0)
    agg = (
        shift_long.groupby(["model", "strategy", "shift_range"], sort=True)["drop"]
        .agg(["mean", "min", "max"])
        .reset_index()
    )
    for ax, model in zip(axes, models, strict=True):
        sub = agg[agg["model"] == model]
        _grouped_bars(
            ax,
            sub,
            "strategy",
            "shift_range",
            "mean",
            "min",
            "max",
            strategy_sorted(list(sub["strategy"])),
        )
        ax.axhline(0, color="k", lw=0.8)
        ax.set_ylabel("mean DICE drop (points)")
        ax.set_title(f"{model}: DICE drop under prompt shifts")
    return fig


def hce_by_strategy(summary: pd.DataFrame) -> Figure:
    """Correction effort by strategy: mean HCE per strategy (x), one stacked bar per model
    (bottom: the FN part, top: the FP part; the total is the mean HCE).

    ``summary``: :func:`sambench.analysis.effort.hce_summary` with ``by=None`` (columns model,
    strategy, n, hce, hce_fp, hce_fn). One axes; one FN and one FP bar container per model.
    """
    df = summary[summary["n"] > 0]
    if df.empty:
        return empty_figure("no HCE values")
    strategies = strategy_sorted(list(df["strategy"]))
    models = sorted(map(str, df["model"].unique()))
    fig, (ax,) = new_figure(1, width=max(5.0, 1.1 * len(strategies) * max(1, len(models)) + 2))
    x = np.arange(len(strategies))
    width = 0.8 / len(models)
    for j, m in enumerate(models):
        sub = df[df["model"] == m].set_index("strategy").reindex(strategies)
        fn = sub["hce_fn"].to_numpy(float)
        fp = sub["hce_fp"].to_numpy(float)
        pos = x + (j - (len(models) - 1) / 2) * width
        st = series_style(j)
        c = st["color"]
        ax.bar(pos, fn, width, label=f"{m}: FN part", color=c, edgecolor="black", linewidth=0.5)
        ax.bar(
            pos,
            fp,
            width,
            bottom=np.nan_to_num(fn),
            label=f"{m}: FP part",
            hatch="//",
            color=c,
            edgecolor="black",
            linewidth=0.5,
        )
    ax.set_xticks(x, strategies)
    ax.set_xlabel("strategy")
    ax.set_ylabel("mean HCE (mouse operations per object)")
    ax.set_title("Correction effort by strategy (lower is better)")
    legend_outside(ax)
    return fig
