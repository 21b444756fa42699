"""Human Correction Effort per strategy: how many mouse operations each strategy's output would
cost to fix (the ``hce``, ``hce_fp``, ``hce_fn`` columns of the results, see
:mod:`sambench.metrics.hce`).

Functions take the tidy results DataFrame (``results.parquet``) and return DataFrames. Like the
paper tables they use :func:`sambench.analysis.summary.main_rows` (unshifted S1-S6, one S1 grid)
unless given other rows; rows with ``status != "ok"`` are left out of the means and counted in
``n_skipped``.
"""

from __future__ import annotations

import pandas as pd

from sambench.analysis.summary import main_rows, paper_table, strategy_sorted, with_target_modality

HCE_COLUMNS = ("hce", "hce_fp", "hce_fn")


def hce_summary(
    results: pd.DataFrame,
    *,
    by: str | None = "target_modality",
    selection: str = "oracle",
    main: bool = True,
) -> pd.DataFrame:
    """Mean HCE and its FP and FN parts per (``by`` group, model, strategy) for one selection.

    ``by=None`` pools every object (one row per model and strategy). ``main``: restrict to
    :func:`main_rows` first (default). Columns: [``by``], model, strategy, n, n_skipped,
    hce (mean), hce_std (sample std, ddof=1), hce_fp (mean), hce_fn (mean). Rows are in model
    order, then strategy order S1..S6.
    """
    missing = [c for c in HCE_COLUMNS if c not in results.columns]
    if missing:
        raise ValueError(
            f"results: no {missing} column(s); HCE columns come from runs of sambench >= this "
            "version (re-run the evaluation)"
        )
    df = main_rows(results) if main else results
    df = with_target_modality(df)
    if by is not None and by not in df.columns:
        raise ValueError(f"by: {by!r} is not a column of the results")
    df = df[df["selection"] == selection]
    keys = ([by] if by is not None else []) + ["model", "strategy"]
    ok = df[df["status"] == "ok"]
    g = ok.groupby(keys, sort=True)
    out = pd.DataFrame(
        {
            "n": g["hce"].count(),
            "hce": g["hce"].mean(),
            "hce_std": g["hce"].std(ddof=1),
            "hce_fp": g["hce_fp"].mean(),
            "hce_fn": g["hce_fn"].mean(),
        }
    )
    skipped = df[df["status"] != "ok"].groupby(keys).size().rename("n_skipped")
    out = out.join(skipped, how="outer").fillna({"n": 0, "n_skipped": 0})
    out[["n", "n_skipped"]] = out[["n", "n_skipped"]].astype(int)
    out = out.reset_index()
    order = {s: i for i, s in enumerate(strategy_sorted(list(out["strategy"])))}
    out = out.sort_values(
        [*keys[:-1], "strategy"], key=lambda c: c.map(order) if c.name == "strategy" else c
    )
    cols = [*keys, "n", "n_skipped", "hce", "hce_std", "hce_fp", "hce_fn"]
    return out[cols].reset_index(drop=True)


def hce_table(
    results: pd.DataFrame, *, by: str = "target_modality", selection: str = "oracle"
) -> pd.DataFrame:
    """Mean HCE in the paper's table layout: one row per ``by`` group, one column per
    (model, strategy), cells "mean (std)" (the layout of the report's DICE tables)."""
    if "hce" not in results.columns:
        raise ValueError("results: no 'hce' column; re-run the evaluation with this version")
    return paper_table(main_rows(results), "hce", by=by, selection=selection)


__all__ = ["HCE_COLUMNS", "hce_summary", "hce_table"]
