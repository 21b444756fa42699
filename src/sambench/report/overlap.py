"""The report's training-data overlap section: results on datasets (or published training cases)
the evaluated model saw in training, by the ledger (:mod:`sambench.data.ledger`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sambench.data.ledger import flag_seen, ledger_table, load_ledger
from sambench.report import html as H
from sambench.store.atomic import write_text_atomic

ANCHOR = "training-overlap"


def overlap_sentence(out: Path, ledger_file: Path | None = None) -> str:
    """The summary's claim on training-data overlap, from ``out/training_overlap.csv`` (written
    by the section): how many results are flagged, and which models have no ledger entry (their
    overlap is unknown, not absent); "" without the file."""
    path = out / "training_overlap.csv"
    if not path.is_file():
        return ""
    per = pd.read_csv(path)
    ledger = load_ledger(ledger_file)
    unknown = sorted(m for m in map(str, per["model"].unique()) if m not in ledger)
    n, total = int(per["flagged"].sum()), int(per["results"].sum())
    if n:
        hit = per[per["flagged"] > 0]
        pairs = ", ".join(f"{r.model} on {r.dataset}" for r in hit.itertuples())
        text = (
            f"Training-data overlap: {n:,} of {total:,} results are on data the model was "
            f"trained on ({pairs}); they are flagged, kept in the tables, and read apart"
        )
    else:
        known = total - int(per.loc[per["model"].astype(str).isin(unknown), "results"].sum())
        text = (
            f"Training-data overlap: none of the {known:,} results of models in the ledger is "
            "flagged"
            if known
            else "Training-data overlap: not checked"
        )
    if unknown:
        text += f"; unknown for {', '.join(unknown)} (no ledger entry)"
    return text + "."


def place_overlap(
    sections: list[H.Section], overlap: H.Section, out: Path, ledger_file: Path | None = None
) -> None:
    """Put the overlap section right after the summary (first when there is none) and its claim
    into the summary, so the page still leads with the summary. With the claim in the summary
    and no result flagged, the section is folded (its tables are detail)."""
    at = next((i + 1 for i, s in enumerate(sections) if s.anchor == "summary"), 0)
    sections.insert(at, overlap)
    text = overlap_sentence(out, ledger_file)
    if at and text:
        sections[at - 1].add(H.para_html(text))
        path = out / "training_overlap.csv"
        overlap.folded = path.is_file() and int(pd.read_csv(path)["flagged"].sum()) == 0


def overlap_section(results: pd.DataFrame, out: Path, ledger_file: Path | None = None) -> H.Section:
    """A section saying how many results are on data the model was trained on (flagged, not
    removed), per model and dataset, plus the ledger entries used with their sources; writes
    ``out/training_overlap.csv`` (model, dataset, results, flagged)."""
    if results.empty or "dataset" not in results:
        sec = H.Section(ANCHOR, "Training-data overlap")
        sec.add(H.note_html("No 2D results to check against the training-data ledger."))
        return sec
    keys = [c for c in ("model", "dataset", "case") if c in results]
    counts = results.groupby(keys, observed=True).size().rename("n").reset_index()
    return overlap_section_counts(counts, out, ledger_file)


def overlap_section_counts(
    counts: pd.DataFrame, out: Path, ledger_file: Path | None = None
) -> H.Section:
    """:func:`overlap_section` from result counts: columns ``model``, ``dataset``, optionally
    ``case``, and ``n`` (results per group), as the out-of-core report gets them from DuckDB."""
    ledger = load_ledger(ledger_file)
    sec = H.Section(ANCHOR, "Training-data overlap")
    seen = flag_seen(counts, ledger)
    per = (
        counts.assign(flagged=counts["n"].where(seen, 0))
        .groupby(["model", "dataset"], observed=True)[["n", "flagged"]]
        .sum()
        .reset_index()
        .rename(columns={"n": "results"})
    )
    write_text_atomic(out / "training_overlap.csv", per.to_csv(index=False))
    n, total = int(per["flagged"].sum()), int(per["results"].sum())
    models = sorted(map(str, per["model"].unique()))
    unknown = [m for m in models if m not in ledger]
    if n:
        hit = per[per["flagged"] > 0]
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
                f"None of the {total:,} results is on a dataset the ledger lists as training "
                "data of its model."
            )
        )
    if unknown:
        sec.add(
            H.note_html(
                f"No ledger entry for {', '.join(unknown)}: overlap unknown (add one with --ledger)."
            )
        )
    sec.add(H.table_html(per, unit="count"))
    used = ledger_table({m: ledger[m] for m in models if m in ledger})
    if not used.empty:
        sec.add(H.table_html(used.drop(columns="note")))
        for model, note in zip(used["model"], used["note"], strict=True):
            if note:
                sec.add(H.note_html(f"Ledger note on {model}: {note}"))
    return sec
