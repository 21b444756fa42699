"""The paper's published tables (package data) and their side-by-side comparison with a run.

The CSV files under ``sambench/report/reference/`` are copies of the paper's Tables 2-8 (SAM ViT-B
and ViT-H on COSMOS 1050K; see the folder's README in the project's ``shared/reference``). They are
read with :mod:`importlib.resources`, so they work from an installed wheel.

Matching rule: a row of ours (``object_name``, ``modality``) matches a paper row (``target``,
``modality``) through :class:`sambench.report.aliases.AliasTable` (names equal ignoring case,
spaces and punctuation, or renamed by an alias: ``WholeBrain -> Brain``, ``MRI -> T1W MRI``, ...).
"""

from __future__ import annotations

import pandas as pd

from sambench.analysis.summary import STRATEGY_ORDER, summary_long
from sambench.report.aliases import AliasTable
from sambench.report.paper import PAPER_MODELS, paper_table


def match_key(target: object, modality: object) -> str:
    """The case-insensitive key ``"<target>-<modality>"`` used to match our rows to the paper's."""
    return f"{str(target).strip().lower()}-{str(modality).strip().lower()}"


def paper_values(
    metric: str = "dice",
) -> dict[tuple[str, str], dict[str, float]]:
    """The paper's Table 2 (``"dice"``) or 3 (``"hd"``): (target, modality) -> {"vit_b_S2": ...}."""
    tables = {"dice": "table2_dice", "hd": "table3_hd"}
    if metric not in tables:
        raise ValueError(f"metric: {metric!r}; expected one of {list(tables)}")
    paper = paper_table(tables[metric])
    out: dict[tuple[str, str], dict[str, float]] = {}
    for rec in paper.to_dict("records"):
        key = (str(rec.pop("target")), str(rec.pop("modality")))
        out[key] = {str(k): float(v) for k, v in rec.items()}
    return out


def paper_comparison(
    results: pd.DataFrame,
    metric: str = "dice",
    *,
    selection: str = "oracle",
    aliases: AliasTable | None = None,
) -> pd.DataFrame:
    """Our mean per (target-modality, strategy, model) beside the paper's published numbers.

    ``metric`` is ``"dice"`` (paper Table 2) or ``"hd"`` (Table 3). Only target-modalities that
    match a paper row (see module docstring; ``aliases`` default :meth:`AliasTable.default`)
    appear. Columns: target_modality, paper_target (the paper's "target-modality"), strategy, model, n,
    mean, std (ours, ``selection`` rows), ``paper_vit_b``, ``paper_vit_h`` (NaN where the paper has
    no value for the strategy), ``diff_vit_b`` / ``diff_vit_h`` = ours - paper. Empty (with these
    columns) when nothing matches.
    """
    values = paper_values(metric)
    aliases = aliases or AliasTable.default()
    cols = [
        "target_modality",
        "paper_target",
        "strategy",
        "model",
        "n",
        "mean",
        "std",
        *[f"paper_{m}" for m in PAPER_MODELS],
        *[f"diff_{m}" for m in PAPER_MODELS],
    ]
    needed = {"object_name", "modality", "selection", "status", metric}
    if results.empty or not needed <= set(results.columns):
        return pd.DataFrame(columns=cols)
    keys = results[["object_name", "modality"]].drop_duplicates()
    matched = {}
    for o, m in zip(keys["object_name"], keys["modality"], strict=True):
        hit = aliases.resolve(o, m)
        if hit is not None:
            matched[f"{o}-{m}"] = hit
    if not matched:
        return pd.DataFrame(columns=cols)
    long = summary_long(results, metric, selection=selection)
    long = long[long["target_modality"].isin(list(matched))]
    rows = []
    for rec in long.to_dict("records"):
        hit = matched[rec["target_modality"]]
        prow = values[(hit.target, hit.modality)]
        out = {k: rec[k] for k in ("target_modality", "strategy", "model", "n", "mean", "std")}
        out["paper_target"] = hit.label
        for m in PAPER_MODELS:
            value = prow.get(f"{m}_{rec['strategy']}", float("nan"))
            out[f"paper_{m}"] = float(value)
            out[f"diff_{m}"] = float(rec["mean"]) - float(value)
        rows.append(out)
    df = pd.DataFrame(rows, columns=cols)
    order = {s: i for i, s in enumerate(STRATEGY_ORDER)}
    df["_o"] = df["strategy"].map(lambda s: order.get(s, len(order)))
    return (
        df.sort_values(["target_modality", "model", "_o"]).drop(columns="_o").reset_index(drop=True)
    )
