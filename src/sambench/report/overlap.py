"""The report's training-data overlap section: results on datasets (or published training cases)
the evaluated model saw in training, by the ledger (:mod:`sambench.data.ledger`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sambench.data.ledger import flag_seen, ledger_table, load_ledger
from sambench.report import html as H
from sambench.store.atomic import write_text_atomic

ANCHOR = "training-overlap"


def overlap_section(results: pd.DataFrame, out: Path, ledger_file: Path | None = None) -> H.Section:
    """A section saying how many results are on data the model was trained on (flagged, not
    removed), per model and dataset, plus the ledger entries used with their sources; writes
    ``out/training_overlap.csv`` (model, dataset, results, flagged)."""
    ledger = load_ledger(ledger_file)
    sec = H.Section(ANCHOR, "Training-data overlap")
    if results.empty or "dataset" not in results:
        sec.add(H.note_html("No 2D results to check against the training-data ledger."))
        return sec
    seen = flag_seen(results, ledger)
    counts = (
        results.assign(flagged=seen)
        .groupby(["model", "dataset"], observed=True)["flagged"]
        .agg(results="size", flagged="sum")
        .reset_index()
    )
    write_text_atomic(out / "training_overlap.csv", counts.to_csv(index=False))
    n, total = int(seen.sum()), len(results)
    models = sorted(map(str, results["model"].unique()))
    unknown = [m for m in models if m not in ledger]
    if n:
        hit = counts[counts["flagged"] > 0]
        pairs = ", ".join(f"{r.model} on {r.dataset}" for r in hit.itertuples())
        sec.add(
            H.para_html(
                f"{n:,} of {total:,} results are FLAGGED: they are on data the model was trained "
                f"on ({pairs}), so they measure recall of training data, not generalization. "
                "They are kept in every table; read them apart."
            )
        )
    else:
        sec.add(
            H.para_html(
                f"None of the {total:,} results is on a dataset the ledger lists as training data of its model."
            )
        )
    if unknown:
        sec.add(
            H.note_html(
                f"No ledger entry for {', '.join(unknown)}: overlap unknown (add one with --ledger)."
            )
        )
    sec.add(H.table_html(counts, unit="count"))
    used = ledger_table({m: ledger[m] for m in models if m in ledger})
    if not used.empty:
        sec.add(H.table_html(used))
    return sec
