"""The report's 3D section: ``evaluate-3d`` results as tables and figures (a Markdown page).

:func:`write_volume_section` writes into a folder ``volumes3d.md`` (tables from
:mod:`sambench.analysis.volumes`) and its PNGs:

- ``dice_per_volume.png`` (:func:`per_volume_figure`, every run): each volume's final DICE (%)
  per protocol and model, one point per volume, the mean of the volumes as a bar; an empty
  prediction ("no mask") is a hollow marker, a protocol with rows but none scored says
  "skipped", one with no rows "not run";
- ``dice_nsd_per_step.png`` (:func:`click_step_figure`, runs with ``interactive-3d``): mean 3D
  DICE and NSD (%) after the box (step 0) and each click, one line per model with its 95 % CI
  band (by case: none below ``MIN_CASES`` cases, and the axes says so), shared 0-100 % axes;
- ``slicewise_vs_propagate.png`` (:func:`slicewise_vs_propagate_figure`): per object, the 3D
  DICE of ``slicewise-gt`` (every slice prompted from its own ground truth: the paper's protocol)
  against ``propagate`` (one prompt, then the model alone), one point per object and model, with
  the diagonal; the points under it are what the slice protocol hides.

Column names (``dice``, ``nsd`` in %; the challenge's ``challenge_dsc_01`` 0-1) are those of
:mod:`sambench.metrics.columns3d`; a results table with the former names is mapped on reading.

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
from sambench.metrics.columns3d import DICE, NSD, upgrade_results3d
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


SECONDS_NOTE = (
    "Seconds are the model's own wall time (the simulated click and the scoring are not "
    "counted), on the machine of the run. A 2D model's step includes the slice encodings it "
    "made (encoder passes: the mean per object over the steps); slices already encoded, by an "
    "earlier protocol of the run or the --cache-dir cache, are not counted again, so compare "
    "2D models' seconds within one protocol, or on runs that all encode."
)


def click_step_figure(
    curves: dict[str, pd.DataFrame], xlabel: str = "step (0 = initial box, then clicks)"
) -> Figure:
    """Mean metric per step (0 = box, then clicks) per model, with the 95 % CI as a band; one
    axes per metric (``curves``: axis label -> :func:`sambench.analysis.volumes.click_curve`,
    columns model, step, mean, ci_lo, ci_hi, ci_note), all on one shared 0-100 % y axis; ``xlabel``: of the steps (e.g. "interactions" for the
    effort protocol).

    A model whose CI is missing at every step (too few cases) gets no band, and a note above the
    axes (out of the data's way) says why ("no band: <model>, <model>: n = 1 case: too few")."""
    curves = {k: v for k, v in curves.items() if not v.empty}
    if not curves:
        return empty_figure("no interactive-3d rows")
    fig, axes = new_figure(len(curves), width=5.0, height=3.9)
    for ax, (label, curve) in zip(axes, curves.items(), strict=True):
        no_band: dict[str, list[str]] = {}  # why -> the models
        for i, (model, g) in enumerate(curve.groupby("model", sort=True)):
            g = g.sort_values("step")
            st = series_style(i)
            ax.plot(g["step"], g["mean"], marker=st["marker"], color=st["color"],
                    linestyle=st["linestyle"], label=str(model))  # fmt: skip
            known = (g["ci_lo"].notna() & g["ci_hi"].notna()).to_numpy()
            if known.any():
                ax.fill_between(g["step"].to_numpy(float), g["ci_lo"].to_numpy(float),
                                g["ci_hi"].to_numpy(float), where=known, color=st["color"],
                                alpha=0.18, linewidth=0)  # fmt: skip
            else:
                notes = [str(n) for n in g.get("ci_note", pd.Series(dtype=str)) if n]
                no_band.setdefault(notes[0] if notes else "no CI", []).append(str(model))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"mean {label}")
        ax.set_xticks(sorted(curve["step"].unique()))
        ax.set_ylim(0, 100)
        if no_band:  # above the axes: a note inside would hide curves near 0
            why = "; ".join(f"{', '.join(ms)}: {w}" for w, ms in no_band.items())
            ax.text(0.0, 1.02, "no band: " + why, transform=ax.transAxes, fontsize=7.5,
                    va="bottom", ha="left", wrap=True)  # fmt: skip
    for ax in axes[1:]:
        ax.sharey(axes[0])
    legend_outside(axes[-1])
    return fig


def per_volume_points(results3d: pd.DataFrame, metric: str = DICE) -> pd.DataFrame:
    """One row per (model, protocol, dataset, volume_id): the mean final ``metric`` over the
    volume's objects (``value``), ``objects`` (ok), ``empty`` (objects whose final prediction
    was empty), ``skipped`` (objects with no ok row). A (model, protocol) pair with no row at all
    is absent (not run). Input: every row of the run (skipped ones too)."""
    df = upgrade_results3d(results3d)
    keys = ["model", "protocol", "dataset", "volume_id"]
    ok = av.final_rows(df) if (df["status"] == "ok").any() else df.iloc[0:0]
    empty = (
        ok["empty_prediction"].astype(bool)
        if "empty_prediction" in ok.columns
        else pd.Series(False, index=ok.index)
    )
    agg = (
        ok.assign(_empty=empty)
        .groupby(keys, sort=True)
        .agg(value=(metric, "mean"), objects=(metric, "size"), empty=("_empty", "sum"))
        .reset_index()
    )
    objects = df.drop_duplicates([*keys, "label_value"])
    okk = ok.drop_duplicates([*keys, "label_value"])[[*keys, "label_value"]]
    left = objects.merge(okk, on=[*keys, "label_value"], how="left", indicator=True)
    skipped = left[left["_merge"] == "left_only"].groupby(keys, sort=True).size().rename("skipped")
    out = agg.merge(skipped.reset_index(), on=keys, how="outer")
    out["objects"] = out["objects"].fillna(0).astype(int)
    out["empty"] = out["empty"].fillna(0).astype(int)
    out["skipped"] = out["skipped"].fillna(0).astype(int)
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


def per_volume_figure(
    points: pd.DataFrame, metric_label: str = "DICE (%)", protocols: list[str] | None = None
) -> Figure:
    """Each volume's final ``metric_label`` per protocol (x) and model (side by side): a strip
    of points, one per volume, over a short bar at the mean of the volumes (y 0-100 %, with a
    margin so that points at 0 or 100 are drawn whole).

    Drawn differently so that nothing reads as a zero it is not: a volume whose prediction was
    empty for all its objects is a hollow marker at its (convention) 0 ("no mask"); a
    (protocol, model) with rows but none ok says "skipped" (e.g. no prompt); one with no rows at
    all says "not run". ``points``: :func:`per_volume_points`."""
    if points.empty:
        return empty_figure("no evaluate-3d rows")
    protocols = protocols or sorted(points["protocol"].unique(), key=_protocol_order)
    models = sorted(map(str, points["model"].unique()))
    fig, (ax,) = new_figure(1, width=max(5.0, 1.6 * len(protocols) * max(1, len(models)) + 2.5),
                            height=3.9)  # fmt: skip
    width = 0.8 / len(models)
    jitter = np.random.default_rng(0)  # fixed: the same page every build
    drew_empty = False
    for j, model in enumerate(models):
        st = series_style(j)
        for i, proto in enumerate(protocols):
            xc = i + (j - (len(models) - 1) / 2) * width
            sub = points[(points["model"] == model) & (points["protocol"] == proto)]
            vals = sub[sub["objects"] > 0]
            if sub.empty or vals.empty:
                why = "not run" if sub.empty else "skipped"
                ax.text(xc, 2, why, rotation=90, ha="center", va="bottom", fontsize=7,
                        color="0.3")  # fmt: skip
                continue
            y = vals["value"].to_numpy(float)
            x = xc + jitter.uniform(-0.25, 0.25, size=y.size) * width
            hollow = (vals["empty"] == vals["objects"]).to_numpy()
            ax.scatter(x[~hollow], y[~hollow], s=22, marker=st["marker"], color=st["color"],
                       edgecolor="black", linewidth=0.4, alpha=0.85,
                       label=model if i == 0 else None, zorder=3)  # fmt: skip
            if hollow.any():
                drew_empty = True
                ax.scatter(x[hollow], y[hollow], s=30, marker=st["marker"], facecolor="none",
                           edgecolor=st["color"], linewidth=1.2, zorder=3)  # fmt: skip
            ax.hlines(float(y.mean()), xc - 0.4 * width, xc + 0.4 * width, color="black",
                      linewidth=1.5, zorder=4)  # fmt: skip
    if drew_empty:
        ax.scatter([], [], s=30, marker="o", facecolor="none", edgecolor="black",
                   label="no mask (empty prediction: 0 by convention)")  # fmt: skip
    ax.hlines([], 0, 0, color="black", linewidth=1.5, label="mean of the volumes")
    ax.set_xticks(np.arange(len(protocols)), protocols)
    ax.set_xlim(-0.6, len(protocols) - 0.4)
    ax.set_ylim(-5, 105)  # a margin: a point at 0 or 100 (no mask, perfect) is drawn whole
    ax.set_yticks(range(0, 101, 20))
    ax.set_xlabel("protocol (final step)")
    ax.set_ylabel(f"{metric_label}, one point per volume")
    legend_outside(ax)
    return fig


def _protocol_order(name: str) -> tuple[int, str]:
    known = ("slicewise-gt", "propagate", "interactive-3d", "sam2-video")
    return (known.index(name) if name in known else len(known), name)


def slicewise_vs_propagate_figure(side: pd.DataFrame) -> Figure:
    """Scatter of ``dice_slicewise-gt`` (x) against ``dice_propagate`` (y), one series per model.

    ``side``: :func:`sambench.analysis.volumes.slicewise_vs_propagate`."""
    if side.empty:
        return empty_figure("no object with both slicewise-gt and propagate rows")
    fig, (ax,) = new_figure(1, width=5.0, height=4.2)
    for i, (model, g) in enumerate(side.groupby("model", sort=True)):
        st = series_style(i)
        ax.scatter(g["dice_slicewise-gt"], g["dice_propagate"], marker=st["marker"],
                   color=st["color"], label=str(model), alpha=0.8)  # fmt: skip
    ax.plot([0, 100], [0, 100], color="0.5", linewidth=0.8, linestyle="--")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("slicewise-gt 3D DICE (%)  (every slice from its own GT)")
    ax.set_ylabel("propagate 3D DICE (%)  (one prompt)")
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
    CIs and tests by ``unit`` (``case`` or ``object``), named in every heading.

    ``results3d``: every row of the run (skipped rows too: the per-volume figure tells "skipped"
    from "not run"); the tables use the ok rows."""
    every = upgrade_results3d(results3d)
    results3d = every[every["status"] == "ok"] if "status" in every.columns else every
    protocols = set(results3d["protocol"])
    yield Part("heading", f"Mean per protocol (final step, {ci_label(unit)})")
    for metric, label in ((DICE, "3D DICE (%)"), (NSD, "NSD at the run's tolerance (%)"),
                          ("hd95", "HD95 (mm)"),
                          ("seconds", "model seconds of the final step")):  # fmt: skip
        if metric in results3d.columns:
            t = av.protocol_table(results3d, metric, rng=rng, n_boot=n_boot, unit=unit)
            yield Part("table", f"{label}, 95 % CI by {unit}", f"3d_{metric}_per_protocol", df=t)
    points = per_volume_points(every)
    n_vol = points[["dataset", "volume_id"]].drop_duplicates().shape[0]
    text = (f"Each volume's final DICE (%), one point per volume ({n_vol} in all; the mean over "
            "its objects), per protocol and model; bar: the mean of the volumes. Hollow: no mask "
            "(an empty prediction, 0 by convention); 'skipped': rows but none scored; 'not run': "
            "no rows.")  # fmt: skip
    yield Part("figure", text, "dice_per_volume", fig=per_volume_figure(points))
    if len(protocols) > 1:
        yield Part(
            "heading", f"Paired tests between protocols (Wilcoxon, Holm; {test_label(unit)})"
        )
        t = av.protocol_tests(results3d, DICE, unit=unit)
        yield Part("table", "", "3d_tests_protocols", df=t)
    if results3d["model"].nunique() > 1:
        yield Part("heading", f"Paired tests between models (Wilcoxon, Holm; {test_label(unit)})")
        t = av.protocol_tests(results3d, DICE, between="model", unit=unit)
        yield Part("table", "", "3d_tests_models", df=t)
    if "interactive-3d" in protocols:
        inter = av.interactive_table(results3d)
        summary = inter.groupby("model", sort=True)[
            ["DSC_AUC", "NSD_AUC", "DSC_Final", "NSD_Final", "seconds_mean", "seconds_total"]
        ].mean()
        yield Part("heading", "CVPR 2025 interactive 3D (mean per model; the challenge's 0-1 "
                   "scale: DSC/NSD_Final 0-1, AUCs over 5 clicks 0-4)")  # fmt: skip
        yield Part("table", "", "3d_interactive", df=summary.reset_index())
        nb = min(n_boot, 1000)
        curves = {
            "3D DICE (%)": av.click_curve(results3d, DICE, rng=rng, n_boot=nb, unit=unit),
        }
        if NSD in results3d.columns:
            curves["NSD (%)"] = av.click_curve(results3d, NSD, rng=rng, n_boot=nb, unit=unit)
        text = f"3D DICE and NSD per click step (band: {ci_label(unit)})"
        yield Part("figure", text, "dice_nsd_per_step", fig=click_step_figure(curves))
        yield Part("table", "Model seconds per step (mean over objects)", "3d_seconds_per_step",
                   df=av.step_seconds_table(results3d))  # fmt: skip
        yield Part("text", SECONDS_NOTE)
    if "effort" in protocols:  # RadioActive-style equal effort, 2D-lifted and native 3D alike
        eff = results3d[results3d["protocol"] == "effort"]
        n_budgets = int(eff.groupby(["volume_id", "label_value", "model"]).size().max())
        inter = av.interactive_table(results3d, protocol="effort", n_clicks=n_budgets)
        kinds = eff.groupby("model")["model_kind"].first() if "model_kind" in eff else None
        summary = inter.groupby("model", sort=True)[
            ["DSC_AUC", "NSD_AUC", "DSC_Final", "NSD_Final"]
        ].mean()
        if kinds is not None:
            summary.insert(0, "model_kind", kinds.reindex(summary.index))
        steps = sorted(int(v) for v in eff["step"].unique())
        if "cumulative_seconds" in eff.columns:  # the model time of all interactions / budget
            last = eff[eff["step"] == steps[-1]]
            per = (last["cumulative_seconds"] / steps[-1]).groupby(last["model"]).mean()
            summary["seconds_per_interaction"] = per.reindex(summary.index)
        budgets = ", ".join(map(str, steps))
        yield Part("heading", f"Equal effort: {budgets} interactions (mean per model)")
        yield Part("text", "One interaction = the initial box or one click, for 2D-lifted and "
                   "native 3D models alike (docs/models-3d.md). AUCs by the CVPR 2025 formula "
                   "over the budget points, on the challenge's 0-1 scale (DSC/NSD_Final 0-1, "
                   f"AUCs 0-{len(steps) - 1} over {len(steps)} budget points); as in the "
                   "challenge, NSD counts only where DSC > 0.2 (else 0), unlike the NSD curve "
                   "below, which is the run's NSD at its tolerance. Seconds per interaction: the "
                   f"model's time for all {steps[-1]} interactions, divided by "
                   f"{steps[-1]}.")  # fmt: skip
        yield Part("table", "", "3d_effort", df=summary.reset_index())
        nb = min(n_boot, 1000)
        curves = {
            "3D DICE (%)": av.click_curve(
                results3d, DICE, protocol="effort", rng=rng, n_boot=nb, unit=unit
            )
        }
        if NSD in results3d.columns:
            curves["NSD (%)"] = av.click_curve(
                results3d, NSD, protocol="effort", rng=rng, n_boot=nb, unit=unit
            )
        text = f"3D DICE and NSD against interactions (band: {ci_label(unit)})"
        yield Part("figure", text, "dice_nsd_per_interaction",
                   fig=click_step_figure(curves, "interactions"))  # fmt: skip
        yield Part("table", "Cumulative model seconds after each budget (step k = k "
                   "interactions; mean over objects)", "3d_seconds_per_budget",
                   df=av.step_seconds_table(results3d, "effort", cumulative=True))  # fmt: skip
        yield Part("text", SECONDS_NOTE)
    if {"slicewise-gt", "propagate"} <= protocols:
        side = av.slicewise_vs_propagate(results3d)
        yield Part("heading", "slicewise-gt vs propagate (what the slice protocol hides)")
        cols = ["volume_id", "object_name", "model", "dice_slicewise-gt", "dice_propagate",
                "dice_gap"]  # fmt: skip
        yield Part("table", "", "3d_slicewise_vs_propagate", df=side[cols])
        fig = slicewise_vs_propagate_figure(side)
        yield Part("figure", "slicewise-gt vs propagate", "slicewise_vs_propagate", fig=fig)
    if volume_dice_2d is not None and "slicewise-gt" in protocols:
        cmp = av.volume_dice_vs_3d(volume_dice_2d, results3d)
        yield Part("heading", "The paper's 2D volume DICE vs the true 3D DICE")
        yield Part("text", "2D volume DICE pools only the slices holding the object; the 3D DICE "
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
            f"protocols: {', '.join(sorted(map(str, df['protocol'].unique())))}. DICE (DSC) and NSD in %, "
            "distances in mm, scored over the whole volume (see docs/volumes.md)."
        )
    )
    for run in (ctx.run_dir, *ctx.compared_runs):  # each compared run's model, not the first's
        info = _model_info(run)
        if info:  # a native 3D model: the licence of its weights, as the session reported it
            sec.add(
                H.para_html(
                    f"Native 3D model {info.get('model', '?')} ({info.get('package', '?')}), "
                    f"weights {info.get('checkpoint', '?')}: licence "
                    f"{info.get('license', 'unknown')}. Results carry model_kind 3d; seconds per "
                    "step are the model's own."
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

        claims = volume_sentences(df, ctx.rng, ctx.ci_unit)
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
    for p in volume_parts(df, rng=ctx.rng, unit=ctx.ci_unit):
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
    ("volumes3d", "Volumetric (3D) evaluation: DICE and NSD (%), HD95 (mm)", volume_section),
    ("config3d", "3D run configuration", config_3d_section),
)
