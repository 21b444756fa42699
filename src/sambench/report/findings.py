"""The report's leading sections: the findings summary and the paper's Tables 2 and 3 with our
numbers beside the paper's; and the trailing ones: run details and the (folded) configuration.

Conventions: "main" rows (:func:`sambench.analysis.summary.main_rows`), ``status == "ok"`` rows of
the ``oracle`` selection enter every statistic; DICE in %, distances in pixels. An object is one
(dataset, image_id, label_value). Cells without a number say why: ``not run`` (the model has no
row of that strategy for that target), ``n = 0 (k skipped)`` (every row was skipped),
``no paper row`` / ``paper: CT only`` (the paper has no such target-modality).
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sambench.analysis import stats
from sambench.analysis.concept import concept_sentences
from sambench.analysis.summary import (
    main_rows,
    strategy_sorted,
    summary_long,
    with_target_modality,
)
from sambench.prompts.names import INTERACTIVE
from sambench.report import html as H
from sambench.report.effort import hce_sentences
from sambench.report.reference import PAPER_MODELS, paper_values

if TYPE_CHECKING:
    from sambench.engine.config import RunConfig
    from sambench.report.aliases import AliasTable
    from sambench.report.context import ReportContext

PAPER_LABEL = {"vit_b": "paper ViT-B", "vit_h": "paper ViT-H"}
NOT_RUN = "not run"
NO_PAPER_ROW = "no paper row"
OBJECT_KEYS = ["dataset", "image_id", "label_value"]


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["status"] == "ok") & (df["selection"] == "oracle")]


def n_objects(df: pd.DataFrame) -> int:
    """Distinct objects (dataset, image_id, label_value) of ``df``."""
    return int(df[OBJECT_KEYS].drop_duplicates().shape[0]) if len(df) else 0


def _tm_names(df: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """target_modality -> (object_name, modality)."""
    keys = df[["object_name", "modality"]].drop_duplicates()
    return {
        f"{o}-{m}": (str(o), str(m))
        for o, m in zip(keys["object_name"], keys["modality"], strict=True)
    }


def paper_reason(aliases: AliasTable, target: str, modality: str) -> str:
    """Why the paper has no number for our (target, modality): its other modalities, or none."""
    mods = aliases.paper_modalities(target)
    return f"paper: {', '.join(mods)} only" if mods else NO_PAPER_ROW


def _paper_cells(
    aliases: AliasTable, target: str, modality: str, strategy: str, metric: str = "dice"
) -> tuple[str, dict[str, object]]:
    """(paper row label or reason, {"vit_b": value or reason, "vit_h": ...}) for one strategy."""
    hit = aliases.resolve(target, modality)
    if hit is None:
        reason = paper_reason(aliases, target, modality)
        return reason, dict.fromkeys(PAPER_MODELS, reason)
    row = paper_values(metric)[(hit.target, hit.modality)]
    cells: dict[str, object] = {}
    for m in PAPER_MODELS:
        v = row.get(f"{m}_{strategy}", math.nan)
        cells[m] = v if not math.isnan(v) else f"not in paper ({strategy})"
    return hit.label, cells


def _fmt(v: float, decimals: int = 2) -> str:
    return f"{v:.{decimals}f}"


# ---------------------------------------------------------------- summary (first section)


def _best(ci: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The row of highest mean per ``keys`` group (first in strategy order on ties)."""
    ci = ci[ci["n"] > 0].copy()
    if ci.empty:
        return ci
    order = {s: i for i, s in enumerate(strategy_sorted(list(ci["strategy"])))}
    ci["_o"] = ci["strategy"].map(order)
    ci = ci.sort_values([*keys, "mean", "_o"], ascending=[True] * len(keys) + [False, True])
    return ci.groupby(keys, sort=True).head(1).drop(columns="_o").reset_index(drop=True)


def problems(results: pd.DataFrame, aliases: AliasTable) -> list[str]:
    """Plain-language failures and caveats of a run (empty list when there are none)."""
    out: list[str] = []
    main = main_rows(results)
    oracle = main[main["selection"] == "oracle"]
    if "n_generated" in oracle.columns:
        s1 = oracle[(oracle["strategy"] == "S1") & (oracle["status"] == "ok")]
        for (model, _grid), g in s1.groupby(["model", "grid"], sort=True):
            per_image = g.drop_duplicates("image_id")
            none = per_image[per_image["n_generated"] == 0]
            if len(none):
                lost = n_objects(g[g["image_id"].isin(none["image_id"])])
                what = (
                    "no S1 mask passes the filters"
                    if len(none) == len(per_image)
                    else ("no S1 mask passes the filters on some images")
                )
                out.append(
                    f"{model}: {what} ({len(none)} of {len(per_image)} images, grid {int(g['grid'].iloc[0])}); "
                    f"their {lost} objects get an empty prediction (DICE 0)."
                )
    skipped = oracle[oracle["status"] != "ok"]
    for (model, strategy), g in skipped.groupby(["model", "strategy"], sort=True):
        total = n_objects(oracle[(oracle["model"] == model) & (oracle["strategy"] == strategy)])
        reasons = g["skip_reason"].astype(str).value_counts()
        top = "; ".join(f"{r} ({c})" for r, c in reasons.head(3).items())
        out.append(f"{model} {strategy}: {n_objects(g)} of {total} objects skipped: {top}.")
    ok = _ok(main)
    if "empty_prediction" in ok.columns and len(ok):
        for model_key, g in ok.groupby("model", sort=True):
            model = str(model_key)
            e = g.groupby("strategy")["empty_prediction"].agg(["sum", "size"])
            e = e[e["sum"] > 0]
            if len(e):
                parts = [
                    f"{s} {int(r['sum'])}/{int(r['size'])} ({100 * r['sum'] / r['size']:.0f} %)"
                    for s, r in e.loc[strategy_sorted(list(e.index))].iterrows()
                ]
                out.append(
                    f"{model}: empty predictions (DICE 0; distances by the run's empty "
                    f"convention): {', '.join(parts)}."
                )
    models = sorted(map(str, main["model"].unique()))
    strategies = strategy_sorted(list(map(str, main["strategy"].unique())))
    for model in models:
        missing = [
            s for s in strategies if not ((main["model"] == model) & (main["strategy"] == s)).any()
        ]
        if missing and len(models) > 1:
            out.append(f"{model}: not run for {', '.join(missing)}.")
    names = _tm_names(main)
    unmatched = [tm for tm, (t, m) in names.items() if aliases.resolve(t, m) is None]
    if unmatched:
        out.append(
            "No paper row for "
            + ", ".join(f"{tm} ({paper_reason(aliases, *names[tm])})" for tm in sorted(unmatched))
            + "; name aliases: sambench report --aliases FILE."
        )
    return out


def _model_list(results: pd.DataFrame, main: pd.DataFrame) -> str:
    """Every model of the run, the ones without single-round rows (e.g. the random walker, clicks
    only) with the protocols they ran."""
    single = set(map(str, main["model"].unique()))
    out = []
    for model in sorted(map(str, results["model"].unique())):
        if model in single:
            out.append(model)
        else:
            ran = sorted(map(str, results.loc[results["model"] == model, "strategy"].unique()))
            out.append(f"{model} ({', '.join(ran)} only)")
    return ", ".join(out)


def _ci_text(rec: Mapping[Any, Any], unit: str = "case") -> str:
    """`` (95 % CI by case lo to hi %)`` of a :func:`~sambench.analysis.stats.mean_with_ci` row (its
    :func:`ci_text`), `` (no CI: n = 2 cases: too few)`` when it has none, ``""`` when its
    bounds are NaN without a note."""
    if rec.get("ci_note"):
        return f" (no CI: {rec['ci_note']})"
    lo, hi = rec.get("ci_lo"), rec.get("ci_hi")
    if isinstance(lo, float) and isinstance(hi, float) and not (math.isnan(lo) or math.isnan(hi)):
        return f" (95 % CI by {unit} {ci_text(rec)} %)"
    return ""


def interactive_sentences(
    results: pd.DataFrame, rng: np.random.Generator, unit: str = "case"
) -> list[str]:
    """One claim per model of the interactive protocol: DICE after the first and the last click
    (with its CI by ``unit``) and NoC@85, the clicks to reach 85 % IoU (paper 4.11)."""
    from sambench.analysis.interactive import noc_table

    r = results
    if "click_index" not in r.columns:
        return []
    rows = r[(r["strategy"] == INTERACTIVE) & (r["status"] == "ok")]
    if rows.empty:
        return []
    out = []
    noc = {
        str(rec["model"]): rec
        for rec in noc_table(rows, thresholds=(85,), by=("model",), rng=rng, unit=unit).to_dict(
            "records"
        )
    }
    for model, g in rows.groupby("model", sort=True):
        last = int(g["click_index"].max())
        at = {k: g[g["click_index"] == k] for k in (1, last)}
        ci = stats.mean_with_ci(
            at[last].assign(strategy=INTERACTIVE),
            ("model",),
            "dice",
            selection=None,
            rng=rng,
            unit=unit,
        ).to_dict("records")[0]
        text = (
            f"{model}, interactive ({last} clicks): DICE {at[1]['dice'].mean():.1f} % after 1 "
            f"click, {ci['mean']:.1f} %{_ci_text(ci, unit)} after {last}"
        )
        if str(model) in noc:
            n, never = float(noc[str(model)]["NoC@85"]), int(noc[str(model)]["NoF@85"])
            text += f"; NoC@85 {n:.1f} clicks ({never} of {len(at[last])} objects never reach 85 %)"
        out.append(text + ".")
    return out


def volume_sentences(
    results3d: pd.DataFrame | None, rng: np.random.Generator, unit: str = "case"
) -> list[str]:
    """One claim per model and 3D protocol: the final step's mean DSC with its CI (and NSD)."""
    if results3d is None or results3d.empty:
        return []
    from sambench.analysis.volumes import protocol_table

    out = []
    table = protocol_table(results3d, "dice", rng=rng, unit=unit)
    nsd = protocol_table(results3d, "nsd", rng=rng, unit=unit).set_index(["model", "protocol"])
    for rec in table.to_dict("records"):
        key = (rec["model"], rec["protocol"])
        text = (
            f"{rec['model']}, 3D {rec['protocol']}: DICE {rec['mean']:.1f} %{_ci_text(rec, unit)} over "
            f"{int(rec['n'])} object{'s' * (int(rec['n']) != 1)} (final step)"
        )
        if key in nsd.index:
            text += f", NSD {float(nsd.loc[key, 'mean']):.1f} %"
        out.append(text + ".")
    return out


def ci_text(rec: Mapping[Hashable, Any]) -> str:
    """``lo to hi`` of a :func:`~sambench.analysis.stats.mean_with_ci` row (one decimal), or its
    note when it has no CI (``n = 2 cases: too few``)."""
    if rec.get("ci_note"):
        return str(rec["ci_note"])
    return f"{float(rec['ci_lo']):.1f} to {float(rec['ci_hi']):.1f}"


def _cases(rec: Mapping[Hashable, Any]) -> object:
    n = rec.get("n_cases")
    return int(n) if isinstance(n, int | float) and math.isfinite(n) else "n/a"


def findings(ctx: ReportContext, sec: H.Section) -> None:
    sec.css_class = "findings"
    main = main_rows(ctx.results)
    ok = _ok(main)
    if ok.empty:
        sec.add(H.note_html("No ok single-round rows (S1-S6): nothing to summarize."))
        extra = interactive_sentences(ctx.results, ctx.rng, ctx.ci_unit)
        extra += concept_sentences(ctx.results, rng=ctx.rng, unit=ctx.ci_unit)
        extra += volume_sentences(ctx.results3d, ctx.rng, ctx.ci_unit)
        sec.add(H.list_html(extra + problems(ctx.results, ctx.aliases)))
        return
    tm = with_target_modality(main)
    names = _tm_names(main)
    n_img = int(main["image_id"].nunique())
    sec.add(
        H.para_html(
            f"{n_objects(main)} objects in {n_img} images, {len(names)} target-modalities; "
            f"models: {_model_list(ctx.results, main)}; DICE in %, oracle "
            f"selection, {stats.ci_label(ctx.ci_unit)}. Paper: SAM ViT-B / ViT-H on COSMOS "
            "1050K (Tables 2 and 3) at the same strategy."
        )
    )
    unit = ctx.ci_unit
    pooled = _best(
        stats.mean_with_ci(main, ("model", "strategy"), "dice", rng=ctx.rng, unit=unit), ["model"]
    )
    per_tm = stats.mean_with_ci(
        tm, ("target_modality", "model", "strategy"), "dice", rng=ctx.rng, unit=unit
    )
    best_tm = _best(per_tm, ["target_modality", "model"])
    bullets, rows = [], []
    for rec in pooled.to_dict("records"):
        model, s = str(rec["model"]), str(rec["strategy"])
        # paper figure on the same targets: the paper's per-target values weighted by our objects
        sub = per_tm[(per_tm["model"] == model) & (per_tm["strategy"] == s) & (per_tm["n"] > 0)]
        paper = {m: [0.0, 0] for m in PAPER_MODELS}
        matched, ours_sum = 0, 0.0
        for t in sub.to_dict("records"):
            _, cells = _paper_cells(ctx.aliases, *names[str(t["target_modality"])], s)
            if all(isinstance(cells[m], float) for m in PAPER_MODELS):
                matched += 1
                ours_sum += float(t["mean"]) * int(t["n"])
                for m in PAPER_MODELS:
                    paper[m][0] += float(cells[m]) * int(t["n"])  # type: ignore[arg-type]
                    paper[m][1] += int(t["n"])
        vals = {m: (p[0] / p[1] if p[1] else math.nan) for m, p in paper.items()}
        n_matched = int(paper[PAPER_MODELS[0]][1])
        ours_matched = ours_sum / n_matched if n_matched else math.nan
        row = {
            "model": model,
            "best strategy": s,
            "objects": int(rec["n"]),
            "cases": _cases(rec),
            "mean DICE": rec["mean"],
            f"95 % CI by {unit}": ci_text(rec),
            "paper targets": f"{matched} of {len(sub)} matched",
            "ours, matched targets": ours_matched,
            **{PAPER_LABEL[m]: vals[m] for m in PAPER_MODELS},
        }
        rows.append(row)
        ci = ci_text(rec)
        ci = f"95 % CI by {unit} {ci}" if not rec["ci_note"] else f"no CI: {ci}"
        text = (
            f"{model}: best strategy {s}, mean DICE {rec['mean']:.1f} % ({ci}), "
            f"{int(rec['n'])} objects in {_cases(rec)} cases"
        )
        if matched:
            text += (
                f"; on the {matched} of {len(sub)} targets the paper has, ours "
                f"{ours_matched:.1f} % ({n_matched} objects) vs the paper's SAM at {s}: ViT-B "
                f"{vals['vit_b']:.1f} %, ViT-H {vals['vit_h']:.1f} %"
            )
        else:
            text += "; no paper number for these targets"
        bullets.append(text + ".")
    bullets += hce_sentences(ctx.results)
    bullets += interactive_sentences(ctx.results, ctx.rng, ctx.ci_unit)
    bullets += concept_sentences(ctx.results, rng=ctx.rng, unit=ctx.ci_unit)
    bullets += volume_sentences(ctx.results3d, ctx.rng, ctx.ci_unit)
    sec.add(H.list_html(bullets))
    probs = problems(ctx.results, ctx.aliases)
    sec.add("<h3>Failures and caveats</h3>")
    sec.add(H.list_html(probs or ["No skipped rows, no empty predictions, every target matched."]))
    ctx.table(
        sec,
        "summary_best_strategy",
        pd.DataFrame(rows),
        f"Best strategy per model (all objects), {stats.ci_label(unit)}",
        floatfmt=".2f",
        blank="no paper row for these targets",
    )
    trows = []
    for rec in best_tm.to_dict("records"):
        tgt, mod = names[str(rec["target_modality"])]
        label, cells = _paper_cells(ctx.aliases, tgt, mod, str(rec["strategy"]))
        trows.append(
            {
                "target-modality": rec["target_modality"],
                "paper row": label,
                "model": rec["model"],
                "best strategy": rec["strategy"],
                "n": int(rec["n"]),
                "cases": _cases(rec),
                "mean DICE": rec["mean"],
                f"95 % CI by {unit}": ci_text(rec),
                **{PAPER_LABEL[k]: cells[k] for k in PAPER_MODELS},
            }
        )
    ctx.table(
        sec,
        "summary_best_by_target",
        pd.DataFrame(trows),
        "Best strategy per target-modality and model, the paper's number at that strategy, "
        f"{stats.ci_label(unit)}",
        floatfmt=".2f",
    )


# ---------------------------------------------------------------- ours beside the paper


def side_by_side(
    results: pd.DataFrame,
    metric: str,
    aliases: AliasTable,
    *,
    selection: str = "oracle",
    decimals: int = 2,
) -> pd.DataFrame:
    """The paper's Table 2 (``metric="dice"``) or 3 (``"hd"``) layout with ours beside the paper:
    one row per target-modality, per strategy one column per model then ``paper ViT-B`` and
    ``paper ViT-H``. Cells are strings: ``mean`` to ``decimals`` places, or the reason there is
    none (``not run``, ``n = 0 (k skipped)``, ``no paper row``, ``paper: CT only``)."""
    long = summary_long(results, metric, selection=selection)
    names = _tm_names(results)
    models = sorted(map(str, long["model"].unique()))
    strategies = strategy_sorted(list(map(str, long["strategy"].unique())))
    idx = long.set_index(["target_modality", "model", "strategy"])
    rows = []
    for tmk in sorted(names):
        t, m = names[tmk]
        hit = aliases.resolve(t, m)
        row: dict[str, object] = {
            "target-modality": tmk,
            "paper row": hit.label if hit else paper_reason(aliases, t, m),
        }
        for s in strategies:
            for model in models:
                key = (tmk, model, s)
                if key not in idx.index:
                    cell = NOT_RUN
                else:
                    r = idx.loc[key]  # type: ignore[index]
                    cell = (
                        _fmt(float(r["mean"]), decimals)
                        if int(r["n"]) > 0
                        else f"n = 0 ({int(r['n_skipped'])} skipped)"
                    )
                row[f"{s} {model}"] = cell
            if s.startswith("S"):
                _, cells = _paper_cells(aliases, t, m, s, metric)
                for pm in PAPER_MODELS:
                    v = cells[pm]
                    row[f"{s} {PAPER_LABEL[pm]}"] = (
                        _fmt(float(v), decimals) if isinstance(v, float) else v
                    )
        rows.append(row)
    return pd.DataFrame(rows)


def compact_side_by_side(long: pd.DataFrame) -> pd.DataFrame:
    """:func:`side_by_side`'s wide layout as the paper prints it: one row per target-modality and
    source (each of our models, then ``paper ViT-B`` and ``paper ViT-H`` where the paper has the
    target), one column per strategy. Cells are the long form's strings."""
    if long.empty:
        return long
    strategies: list[str] = []
    sources: list[str] = []
    for col in long.columns[2:]:
        s, _, src = str(col).partition(" ")
        strategies += [s] if s not in strategies else []
        sources += [src] if src not in sources else []
    rows = []
    for _, r in long.iterrows():
        has_paper = not str(r["paper row"]).startswith(("no paper", "paper:"))
        for src in sources:
            if src.startswith("paper") and not has_paper:
                continue
            row: dict[str, object] = {
                "target-modality": r["target-modality"],
                "source": src,
                "paper row": r["paper row"] if src == sources[0] else "",
            }
            for s in strategies:
                row[s] = r.get(f"{s} {src}", "")
            rows.append(row)
    return pd.DataFrame(rows)


def distance_summary(
    results: pd.DataFrame, by: tuple[str, ...] = ("model", "strategy")
) -> pd.DataFrame:
    """Per ``by`` group (ok oracle main rows): n, HD and HD95 mean and median (pixels), empty
    predictions (count and % of n). Means of distances are pulled up by empty predictions (their
    distance follows the run's ``empty`` convention), hence the medians beside them."""
    ok = with_target_modality(_ok(main_rows(results)))
    rows = []
    for key, g in ok.groupby(list(by), sort=True):
        keys = key if isinstance(key, tuple) else (key,)
        empty = (
            g["empty_prediction"].fillna(False).astype(bool) if "empty_prediction" in g else None
        )
        rec: dict[str, object] = dict(zip(by, keys, strict=True))
        rec["n"] = len(g)
        for col in ("hd", "hd95"):
            v = g[col].dropna() if col in g else pd.Series(dtype=float)
            rec[f"{col} mean"] = float(v.mean()) if len(v) else math.nan
            rec[f"{col} median"] = float(v.median()) if len(v) else math.nan
        rec["empty"] = int(empty.sum()) if empty is not None else 0
        rec["empty %"] = 100.0 * rec["empty"] / len(g) if len(g) else math.nan  # type: ignore[operator]
        rows.append(rec)
    df = pd.DataFrame(rows)
    if "strategy" in by and len(df):
        order = {s: i for i, s in enumerate(strategy_sorted(list(df["strategy"])))}
        df = (
            df.assign(_o=df["strategy"].map(order))
            .sort_values([c for c in by if c != "strategy"] + ["_o"])
            .drop(columns="_o")
            .reset_index(drop=True)
        )
    return df


def paper_tables(ctx: ReportContext, sec: H.Section) -> None:
    main = main_rows(ctx.results)
    if main.empty:
        sec.add(H.note_html("No single-round rows (S1-S6)."))
        return
    sec.add(
        H.para_html(
            "Ours (oracle selection, mean) beside the paper's SAM ViT-B / ViT-H (COSMOS 1050K); "
            "models adjacent within each strategy. Target names are matched to the paper's through "
            f"the alias table ({', '.join(ctx.aliases.sources)}); 'paper row' names the row used. "
            "The paper's images differ from ours: a difference is not a reproduction error by "
            "itself."
        )
    )
    for metric, number, label in (("dice", 2, "DICE (%)"), ("hd", 3, "HD (pixels, mean)")):
        long = side_by_side(main, metric, ctx.aliases)
        stem = ctx.csv(f"paper_side_by_side_{metric}", long)
        ctx.table(
            sec,
            f"paper_table{number}_{metric}",
            compact_side_by_side(side_by_side(main, metric, ctx.aliases, decimals=1)),
            f"Table {number}: {label}, ours beside the paper",
            blank="",
        )
        sec.add(
            H.note_html(
                "Rows: each target-modality, ours per model, then the paper's SAM ViT-B and ViT-H "
                "at the same strategy (only where the paper has the target). Long form (one row "
                "per target-modality): "
            )[:-4]
            + H.link_html(f"tables/{stem}.csv")
            + "</p>"
        )
    ctx.table(
        sec,
        "distances_by_target",
        distance_summary(main, ("target_modality", "model", "strategy")),
        "Distances (pixels): means with medians and the share of empty predictions",
        floatfmt=".2f",
        blank="n = 0",
        folded="Distances (pixels) per target-modality: means, medians, empty predictions",
    )


# ---------------------------------------------------------------- run details, config (last)


def case_scope(config: RunConfig | None) -> str | None:
    """Which cases a run with a fine-tuned decoder scored (issue 27); None without a decoder."""
    if config is None or config.decoder is None:
        return None
    if config.all_cases:
        return (
            "Cases: every case, the fine-tuned decoder's training and validation cases included "
            "(--all-cases): these results do not measure how the decoder generalizes."
        )
    return (
        "Cases: only the test cases of the decoder's fine-tuning split (split.csv beside the "
        "decoder); its training and validation cases were not scored (--all-cases scores them)."
    )


def run_details(ctx: ReportContext, sec: H.Section) -> None:
    r = ctx.results
    scope = case_scope(ctx.config)
    if scope is not None:
        sec.add(H.para_html(scope))
    counts = {
        "rows": len(r),
        "images": r["image_id"].nunique(),
        "objects": n_objects(r),
        "target-modalities": with_target_modality(r)["target_modality"].nunique(),
        "models": ", ".join(sorted(map(str, r["model"].unique()))),
        "strategies": ", ".join(strategy_sorted(list(map(str, r["strategy"].unique())))),
        "ok rows": int((r["status"] == "ok").sum()),
        "skipped rows": int((r["status"] != "ok").sum()),
    }
    if "empty_prediction" in r.columns:
        counts["empty predictions (ok rows)"] = int(
            r.loc[r["status"] == "ok", "empty_prediction"].fillna(False).astype(bool).sum()
        )
    ctx.table(
        sec,
        "counts",
        pd.DataFrame({"item": list(counts), "value": list(map(str, counts.values()))}),
        "Counts",
    )
    by = r.groupby(["model", "strategy", "selection", "status"]).size().rename("rows").reset_index()
    ctx.table(sec, "rows_by_status", by, "Rows per model, strategy, selection and status")
    skipped = r[r["status"] != "ok"]
    if skipped.empty:
        sec.add(H.para_html("No row was skipped."))
    else:
        reasons = skipped.groupby(["strategy", "skip_reason"]).size().rename("rows").reset_index()
        ctx.table(sec, "skip_reasons", reasons, "Skipped rows and reasons")


def run_config(ctx: ReportContext, sec: H.Section) -> None:
    if ctx.config is None:
        sec.add(H.note_html("No config.json in the run folder."))
        return
    cfg = pd.DataFrame(
        [
            {"field": k, "value": json.dumps(v) if isinstance(v, list | dict) else v}
            for k, v in ctx.config.to_json_dict().items()
        ]
    )
    ctx.table(sec, "config", cfg, "", blank="not set", folded="Run configuration (config.json)")
