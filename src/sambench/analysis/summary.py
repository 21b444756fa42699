"""Summary tables in the paper's layout (Tables 2, 3 and 4) from a results table.

All functions take the tidy results DataFrame (every row of a run: what ``evaluate`` returns, or
:func:`sambench.store.run_files.load_all` of a run folder; ``results.parquet`` alone, the S2-S6
oracle rows, also works for the single-round tables) and return DataFrames; rows with
``status != "ok"`` are left out of means and counted in ``n_skipped``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from sambench.prompts.names import CONCEPT_STRATEGIES, INTERACTIVE, STRATEGY_ORDER
from sambench.store.atomic import write_text_atomic

DEFAULT_GRID = 32


def main_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of the paper's main tables: unshifted, non-interactive (S1-S6), and for S1 one
    grid size only (32, the paper's, if present, else the largest) when several were run.

    Shifted repeats (prompt-shift robustness), interactive clicks and other S1 grids have their
    own tables (:mod:`sambench.analysis.robustness`, the report's sections).
    """
    from sambench.analysis.robustness import unshifted

    df = unshifted(results)
    df = df[(df["strategy"] != INTERACTIVE) & ~df["strategy"].isin(CONCEPT_STRATEGIES)]
    if "grid" in df.columns and (df["strategy"] == "S1").any():
        grids = df.loc[df["strategy"] == "S1", "grid"].dropna().unique()
        if len(grids) > 1:
            keep = DEFAULT_GRID if DEFAULT_GRID in grids else max(grids)
            df = df[(df["strategy"] != "S1") | (df["grid"] == keep)]
    return df


def with_target_modality(results: pd.DataFrame) -> pd.DataFrame:
    """Add ``target_modality`` = ``"<object_name>-<modality>"`` (the paper's grouping key)."""
    df = results.copy()
    df["target_modality"] = df["object_name"].astype(str) + "-" + df["modality"].astype(str)
    return df


def strategy_sorted(values: Sequence[str]) -> list[str]:
    """Distinct strategy names in S1..S6, interactive order (unknown names last, alphabetically)."""
    order = {s: i for i, s in enumerate(STRATEGY_ORDER)}
    return sorted(dict.fromkeys(values), key=lambda s: (order.get(s, len(order)), s))


def summary_long(
    results: pd.DataFrame,
    metric: str = "dice",
    *,
    by: str = "target_modality",
    selection: str = "oracle",
) -> pd.DataFrame:
    """Mean, std and count of ``metric`` per (``by`` group, model, strategy) for one selection.

    Columns: ``by``, model, strategy, n, n_skipped, mean, std (std is the sample std, ddof=1).
    """
    df = with_target_modality(results)
    if metric not in df.columns:
        raise ValueError(f"metric: {metric!r} is not a column of the results")
    if by not in df.columns:
        raise ValueError(f"by: {by!r} is not a column of the results")
    df = df[df["selection"] == selection]
    keys = [by, "model", "strategy"]
    ok = df[df["status"] == "ok"]
    g = ok.groupby(keys, sort=True)[metric]
    out = pd.DataFrame({"n": g.count(), "mean": g.mean(), "std": g.std(ddof=1)})
    skipped = df[df["status"] != "ok"].groupby(keys).size().rename("n_skipped")
    out = out.join(skipped, how="outer").fillna({"n": 0, "n_skipped": 0})
    out[["n", "n_skipped"]] = out[["n", "n_skipped"]].astype(int)
    return out.reset_index()[[*keys, "n", "n_skipped", "mean", "std"]]


def paper_table(
    results: pd.DataFrame,
    metric: str = "dice",
    *,
    by: str = "target_modality",
    selection: str = "oracle",
    decimals: int = 2,
) -> pd.DataFrame:
    """The paper's layout: one row per group, one column per (model, strategy), "mean (std)"."""
    long = summary_long(results, metric, by=by, selection=selection)
    return paper_table_from_long(long, by=by, decimals=decimals)


def paper_table_from_long(
    long: pd.DataFrame, *, by: str = "target_modality", decimals: int = 2
) -> pd.DataFrame:
    """:func:`paper_table`'s pivot of a :func:`summary_long` table (in memory or from
    :func:`sambench.analysis.lazy.summary_long_lazy`)."""
    long = long.copy()
    long["cell"] = [
        f"{m:.{decimals}f} ({s:.{decimals}f})"
        if pd.notna(s)
        else (f"{m:.{decimals}f}" if pd.notna(m) else "")
        for m, s in zip(long["mean"], long["std"], strict=True)
    ]
    models = sorted(long["model"].unique())
    wide = long.pivot_table(index=by, columns=["model", "strategy"], values="cell", aggfunc="first")
    cols = [(m, s) for m in models for s in strategy_sorted(list(long["strategy"].unique()))]
    wide = wide.reindex(columns=[c for c in cols if c in wide.columns])
    pairs: list[tuple[str, str]] = [tuple(c) for c in wide.columns]  # type: ignore[misc]
    if len(models) == 1:
        wide.columns = [s for _, s in pairs]
    else:
        wide.columns = [f"{m} {s}" for m, s in pairs]
    wide.columns.name = None
    return wide.reset_index()


def timing_table(results: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 4: seconds per image for the embedding (cache misses only) and per
    object for prompt encoding + mask decoding under each strategy, per model (``interactive``:
    seconds per click; shifted repeats included), strategy columns in the paper's order."""
    ok = results[results["status"] == "ok"]
    rows = []
    for model, g in ok.groupby("model", sort=True):
        per_image = g.drop_duplicates("image_id")
        fresh = per_image[~per_image["embedding_cached"].astype(bool)]
        row: dict[str, object] = {
            "model": model,
            "images": int(per_image.shape[0]),
            "embedding": float(fresh["embed_seconds"].mean()) if len(fresh) else float("nan"),
        }
        for s, gs in g.groupby("strategy", sort=True):
            # each row of one selection carries the object's decoding time once
            one = gs[gs["selection"] == gs["selection"].iloc[0]]
            row[str(s)] = float(one["decode_seconds"].mean())
        rows.append(row)
    out = pd.DataFrame(rows)
    lead = ["model", "images", "embedding"]
    strategies = strategy_sorted([c for c in out.columns if c not in lead])
    return out[[c for c in lead if c in out.columns] + strategies]


def to_markdown(df: pd.DataFrame, floatfmt: str = ".4g") -> str:
    return df.to_markdown(index=False, floatfmt=floatfmt)


def write_tables(results: pd.DataFrame, folder: Path | str) -> dict[str, Path]:
    """Write the standard summary tables as CSV and Markdown into ``folder``; return their paths.

    The paper tables use :func:`main_rows` (no shifted repeats, no interactive rows);
    ``hce_by_target`` (mean Human Correction Effort) is written when the results have ``hce``.
    """
    main = main_rows(results)
    tables = standard_tables(
        lambda metric, **kw: paper_table(main, metric, **kw),
        lambda: timing_table(results),
        with_hce="hce" in main.columns,  # results written before HCE was a column have none
    )
    return write_table_files(tables, folder)


def standard_tables(
    paper: Callable[..., pd.DataFrame], timing: Callable[[], pd.DataFrame], *, with_hce: bool
) -> dict[str, pd.DataFrame]:
    """The tables of :func:`write_tables` by file name, made in order by ``paper(metric,
    **options)`` (:func:`paper_table` of the main rows, or its out-of-core twin) and ``timing()``;
    ``hce_by_target`` only ``with_hce``."""
    tables = {
        "dice_by_target": paper("dice"),
        "jaccard_by_target": paper("jaccard"),
        "hd_by_target": paper("hd"),
        "dice_by_modality": paper("dice", by="modality"),
        "dice_by_target_score_selection": paper("dice", selection="score"),
        "timing_seconds": timing(),
    }
    if with_hce:
        tables["hce_by_target"] = paper("hce")
    return tables


def write_table_files(tables: dict[str, pd.DataFrame], folder: Path | str) -> dict[str, Path]:
    """Each table as ``<name>.csv`` and ``<name>.md`` (:func:`to_markdown`) in ``folder``
    (atomic writes); returns name -> CSV path."""
    folder = Path(folder)
    paths: dict[str, Path] = {}
    for name, df in tables.items():
        csv = folder / f"{name}.csv"
        write_text_atomic(csv, df.to_csv(index=False))
        write_text_atomic(folder / f"{name}.md", to_markdown(df) + "\n")
        paths[name] = csv
    return paths
