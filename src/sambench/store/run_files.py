"""The files of a ``sambench evaluate`` run folder, one table per protocol, and their loader.

A finished run folder holds (see ``docs/results-columns.md`` for every column):

- ``results.parquet``: the single-round strategies S2-S6, unshifted, **oracle** selection (the
  paper's number): one row per (image, object, strategy). A plain
  ``df.groupby("strategy")["dice"].mean()`` gives the paper's table.
- ``results_score.parquet``: the same rows with the **score** selection (the candidate of highest
  predicted IoU, what a user without ground truth gets). For a single-mask model (one candidate)
  both files hold the same masks.
- ``shift.parquet``: prompt-shift repeats (SPEC 6), both selections (column ``selection``), one
  row per (object, strategy, shift range, repeat, selection);
- ``interactive.parquet``: multi-round clicks (SPEC 7), one row per (object, click index);
- ``everything.parquet``: S1 everything mode, one row per (object, grid, selection);
- ``concept.parquet``: the concept strategies of a text-promptable model (``T``, ``T-para``,
  ``T-neg``, ``E``; docs/text-prompts.md): one row per (object, strategy, phrasing), and per
  (image, absent target) under ``T-neg``;
- ``prompts.jsonl``: the prompts used (one JSON object per line).

Only the files of the protocols that ran are written. This module sits in :mod:`sambench.data`
(the lowest layer) so that analysis and report code can read runs without importing the engine.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sambench.metrics.instances import INSTANCE_COLUMNS
from sambench.prompts.names import CONCEPT_STRATEGIES

RESULTS_NAME = "results.parquet"
RESULTS_SCORE_NAME = "results_score.parquet"
SHIFT_NAME = "shift.parquet"
INTERACTIVE_NAME = "interactive.parquet"
EVERYTHING_NAME = "everything.parquet"
CONCEPT_NAME = "concept.parquet"
PROMPTS_NAME = "prompts.jsonl"
PARTS_DIR = "parts"

#: protocol -> files (the single-round protocol has two: one per selection)
PROTOCOL_FILES: dict[str, tuple[str, ...]] = {
    "single_round": (RESULTS_NAME, RESULTS_SCORE_NAME),
    "shift": (SHIFT_NAME,),
    "interactive": (INTERACTIVE_NAME,),
    "everything": (EVERYTHING_NAME,),
    "concept": (CONCEPT_NAME,),
}
TABLE_NAMES: tuple[str, ...] = tuple(n for names in PROTOCOL_FILES.values() for n in names)

#: columns that only one protocol fills (dropped from the other protocols' files)
PROTOCOL_COLUMNS: dict[str, tuple[str, ...]] = {
    "shift": ("shift_range", "shift_repeat"),
    "interactive": (
        "click_index",
        "carried_forward",
        "click_x",
        "click_y",
        "click_positive",
        "start_with",
    ),
    "everything": ("grid", "n_generated", "stability_score", "s1_image_seconds"),
    "concept": (
        "phrase",
        "phrase_index",
        "present",
        "n_instances",
        "max_instance_score",
        "instance_scores",
        "instance_type",
        *INSTANCE_COLUMNS,
    ),
}


def protocol_of(df: pd.DataFrame) -> pd.Series:
    """The protocol of each row: ``everything`` (S1), ``interactive``, ``shift`` (a row with a
    ``shift_range``) or ``single_round`` (S2-S6, unshifted)."""
    out = pd.Series("single_round", index=df.index, dtype=object)
    if "shift_range" in df.columns:
        shifted = df["shift_range"].notna() & (df["shift_range"].astype(str) != "")
        out[shifted] = "shift"
    if "strategy" in df.columns:
        out[df["strategy"] == "interactive"] = "interactive"
        out[df["strategy"] == "S1"] = "everything"
        out[df["strategy"].isin(CONCEPT_STRATEGIES)] = "concept"
    return out


def split_results(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """All rows of a run -> ``{file name: table}`` for the protocols present (see the module doc).

    Each table drops the columns that belong only to other protocols; row order is kept.
    """
    if df.empty:
        return {}
    proto = protocol_of(df)
    out: dict[str, pd.DataFrame] = {}
    for name in PROTOCOL_FILES:
        sub = df[proto == name]
        if sub.empty:
            continue
        foreign = [
            c for p, cols in PROTOCOL_COLUMNS.items() if p != name for c in cols if c in sub.columns
        ]
        sub = sub.drop(columns=foreign).reset_index(drop=True)
        if name == "single_round":
            for sel, fname in (("oracle", RESULTS_NAME), ("score", RESULTS_SCORE_NAME)):
                part = sub[sub["selection"] == sel].reset_index(drop=True)
                if not part.empty:
                    out[fname] = part
        else:
            out[PROTOCOL_FILES[name][0]] = sub
    return out


def load_run(run_dir: Path | str) -> dict[str, pd.DataFrame]:
    """The tables of a run folder by protocol: ``single_round`` (S2-S6, both selections, column
    ``selection``), ``shift``, ``interactive``, ``everything``; only those present.

    An unfinished run (no tables yet, only ``parts/``) is read from its parts and split the same
    way. No tables and no parts is a :class:`FileNotFoundError` naming the folder.
    """
    run_dir = Path(run_dir)
    found = [n for n in TABLE_NAMES if (run_dir / n).exists()]
    if found:
        tables = {n: pd.read_parquet(run_dir / n) for n in found}
    else:
        parts = sorted((run_dir / PARTS_DIR).glob("part-*.parquet"))
        if not parts:
            raise FileNotFoundError(
                f"{run_dir}: no results ({RESULTS_NAME}, {SHIFT_NAME}, {INTERACTIVE_NAME}, "
                f"{EVERYTHING_NAME}) and no {PARTS_DIR}/; run `sambench evaluate ... --out {run_dir}`"
            )
        tables = split_results(pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True))
    out: dict[str, pd.DataFrame] = {}
    for proto, names in PROTOCOL_FILES.items():
        frames = [tables[n] for n in names if n in tables]
        if frames:
            out[proto] = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return out


def load_all(run_dir: Path | str) -> pd.DataFrame:
    """Every row of a run in one tidy table (all protocols, column ``selection``; the analysis
    functions filter by strategy, selection, shift and click columns themselves)."""
    tables = load_run(run_dir)
    return pd.concat(list(tables.values()), ignore_index=True) if tables else pd.DataFrame()
