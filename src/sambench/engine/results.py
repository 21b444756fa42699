"""Resumable results storage: whole images per Parquet part, one table per protocol at the end.

A run folder holds ``config.json``, ``parts/part-NNNNNN.parquet`` (each part holds every row, of
every protocol, of the images it covers, written atomically) and, once the run completes, the
per-protocol tables of :mod:`sambench.store.run_files` (``results.parquet`` = single-round S2-S6,
oracle selection; ``results_score.parquet``; ``shift.parquet``; ``interactive.parquet``;
``everything.parquet``; only those that ran) plus ``prompts.jsonl`` (the prompts used, see
:mod:`sambench.engine.prompt_file`). A killed run loses at most the images of its unwritten
buffer; on resume the images found in the parts are skipped, so no row is duplicated or missing.

The parts are a partitioned Parquet dataset with a manifest (``parts/_manifest.jsonl``, see
:mod:`sambench.store.results_dataset`): each flush appends the new part's row count and image ids,
so resume detection (:meth:`ResultsStore.done_image_ids`) reads the manifest, not the rows.
:meth:`ResultsStore.finalize` (the single per-protocol files, built in memory) is for runs that fit
in memory; :meth:`ResultsStore.finalize_dataset` never materialises the rows and returns the lazy
dataset (:func:`sambench.store.results_dataset.scan_results`), writing the single files only when
asked (``single_file=True``, streamed by DuckDB).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from sambench.prompts.names import CONCEPT_STRATEGIES
from sambench.store.atomic import atomic_path, write_parquet_atomic
from sambench.store.results_dataset import (
    PartEntry,
    ResultsDataset,
    append_manifest,
    done_images,
    reconcile_manifest,
    scan_results,
)
from sambench.store.run_files import (
    PARTS_DIR,
    PROMPTS_NAME,
    PROTOCOL_COLUMNS,
    PROTOCOL_FILES,
    RESULTS_NAME,
    RESULTS_SCORE_NAME,
    TABLE_NAMES,
    load_all,
    load_run,
    split_results,
)

__all__ = [
    "PARTS_DIR",
    "RESULTS_NAME",
    "ResultsStore",
    "copy_tables",
    "load_results",
    "load_run",
    "scan_results",
]
SORT_KEYS = (
    "dataset",
    "image_id",
    "label_value",
    "strategy",
    "grid",
    "shift_range",
    "shift_repeat",
    "click_index",
    "phrase_index",
    "selection",
)


class ResultsStore:
    """Append rows image by image; flush every ``flush_every`` images, or as soon as an image
    is added ``flush_seconds`` or more after the last flush (so a killed slow run loses at most
    about that much work). ``clock`` (seconds, monotonic) is injectable for tests.
    ``part_tag``/``first_part``: parts named ``part-<first_part + i>-<part_tag>.parquet`` (the
    Ray executor's workers: unique and the same on a retried batch, see ``ray_executor``)."""

    def __init__(
        self,
        run_dir: Path | str,
        flush_every: int = 16,
        flush_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        part_tag: str = "",
        first_part: int | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.parts_dir = self.run_dir / PARTS_DIR
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._clock = clock
        self._last_flush = clock()
        self._buffer: list[dict[str, object]] = []
        self._buffered_images = 0
        self._tag = f"-{part_tag}" if part_tag else ""
        # A Ray worker's store (first_part given) writes one part of a run that other workers
        # write at the same time: it appends its manifest line but never rewrites the manifest
        # (the driver's finalize reconciles it with the part files).
        self._entries: dict[str, PartEntry] = (
            reconcile_manifest(self.parts_dir) if first_part is None else {}
        )
        if first_part is None:
            numbers = [p.split("-")[1].split(".")[0] for p in self._entries]
            first_part = 1 + max((int(n) for n in numbers if n.isdigit()), default=0)
        self.next_part: int = first_part

    def done_image_ids(self) -> set[str]:
        """Image ids whose rows are already stored in a part (read from the manifest)."""
        return done_images(self._entries.values())

    @property
    def n_rows(self) -> int:
        """Rows stored in the parts so far (from the manifest)."""
        return sum(e.rows for e in self._entries.values())

    def add_image(self, rows: Iterable[dict[str, object]]) -> None:
        """Buffer all rows of one image (never split an image across parts)."""
        self._buffer.extend(rows)
        self._buffered_images += 1
        if (
            self._buffered_images >= self.flush_every
            or self._clock() - self._last_flush >= self.flush_seconds
        ):
            self.flush()

    def flush(self) -> None:
        self._last_flush = self._clock()
        if not self._buffer:
            self._buffered_images = 0
            return
        path = self.parts_dir / f"part-{self.next_part:06d}{self._tag}.parquet"
        df = pd.DataFrame(self._buffer)
        write_parquet_atomic(path, df)
        ids = tuple(map(str, pd.unique(df["image_id"]))) if "image_id" in df else ()
        entry = PartEntry(path.name, len(df), ids)
        append_manifest(self.parts_dir, entry)  # after the part is in place
        self._entries[path.name] = entry
        self.next_part += 1
        self._buffer = []
        self._buffered_images = 0

    def read_parts(self) -> pd.DataFrame:
        parts = sorted(self.parts_dir.glob("part-*.parquet"))
        if not parts:
            return pd.DataFrame()
        return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)

    def finalize(self) -> pd.DataFrame:
        """Flush, then write the per-protocol tables and ``prompts.jsonl`` (sorted, de-duplicated
        by construction). Returns every row of the run (all protocols) in one table."""
        from sambench.engine.prompt_file import write_prompts

        self.flush()
        df = self.read_parts()
        if not df.empty:
            keys = [k for k in SORT_KEYS if k in df.columns]
            df = df.sort_values(keys, kind="stable").reset_index(drop=True)
        tables = split_results(df)
        for name in TABLE_NAMES:
            path = self.run_dir / name
            if name in tables:
                write_parquet_atomic(path, tables[name])
            elif path.exists():
                path.unlink()  # a table of an earlier layout or protocol that did not run now
        write_prompts(self.run_dir / PROMPTS_NAME, df)
        return df

    def finalize_dataset(self, single_file: bool = False) -> ResultsDataset:
        """Flush and return the lazy dataset of the run's rows, without materialising them.

        ``prompts.jsonl`` is written part by part (records in part order: a part holds whole
        images, so no record repeats). ``single_file``: also write the per-protocol files of
        :mod:`sambench.store.run_files`, sorted, streamed by DuckDB (``COPY``); otherwise any such
        files of an earlier finalize are removed (they would be stale).
        """
        from sambench.engine.prompt_file import prompt_records

        self.flush()
        self._entries = reconcile_manifest(self.parts_dir)
        ds = scan_results(self.run_dir)
        with atomic_path(self.run_dir / PROMPTS_NAME) as tmp, open(tmp, "w") as f:
            for part in self._entries:
                for r in prompt_records(pd.read_parquet(self.parts_dir / part)):
                    f.write(json.dumps(r, separators=(",", ":")) + "\n")
        for name in TABLE_NAMES:
            (self.run_dir / name).unlink(missing_ok=True)
        if single_file:
            copy_tables(ds, self.run_dir)
        return ds


def finish_run(store: ResultsStore, single_file: bool) -> pd.DataFrame | ResultsDataset:
    """The end of a run, for every executor: :meth:`ResultsStore.finalize` (every row, in
    memory, and the per-protocol files) or, with ``single_file=False``, the lazy dataset of
    :meth:`ResultsStore.finalize_dataset` (parts + manifest + ``prompts.jsonl`` only)."""
    return store.finalize() if single_file else store.finalize_dataset(single_file=False)


def _protocol_sql(cols: tuple[str, ...]) -> str:
    """SQL expression of :func:`sambench.store.run_files.protocol_of` over the view's columns."""
    shifted = (
        "shift_range IS NOT NULL AND CAST(shift_range AS VARCHAR) <> ''"
        if "shift_range" in cols
        else "false"
    )
    concept = ", ".join(f"'{s}'" for s in CONCEPT_STRATEGIES)
    return (
        "CASE WHEN strategy = 'S1' THEN 'everything' WHEN strategy = 'interactive' THEN "
        f"'interactive' WHEN strategy IN ({concept}) THEN 'concept' "
        f"WHEN {shifted} THEN 'shift' ELSE 'single_round' END"
    )


def copy_tables(ds: ResultsDataset, run_dir: Path | str) -> list[Path]:
    """Write the per-protocol files of :mod:`sambench.store.run_files` from a lazy dataset
    (DuckDB ``COPY``, sorted by the run's keys, out of core); each atomically, only those with
    rows. Returns the paths written."""
    run_dir = Path(run_dir)
    proto = _protocol_sql(ds.columns)
    order = ", ".join(k for k in SORT_KEYS if k in ds.columns) or "image_id"
    written = []
    for name, files in PROTOCOL_FILES.items():
        foreign = [c for p, cs in PROTOCOL_COLUMNS.items() if p != name for c in cs]
        drop = [c for c in foreign if c in ds.columns]
        select = "* EXCLUDE (" + ", ".join(drop) + ")" if drop else "*"
        where = [f"({proto}) = '{name}'"]
        if name == "single_round":
            targets = [
                (RESULTS_NAME, "selection = 'oracle'"),
                (RESULTS_SCORE_NAME, "selection = 'score'"),
            ]
        else:
            targets = [(files[0], "true")]
        for fname, extra in targets:
            cond = " AND ".join([*where, extra])
            row = ds.con.execute(f"SELECT count(*) FROM results WHERE {cond}").fetchone()
            if not row or not row[0]:
                continue
            with atomic_path(run_dir / fname) as tmp:
                ds.con.execute(
                    f"COPY (SELECT {select} FROM results WHERE {cond} ORDER BY {order}) "
                    f"TO '{tmp}' (FORMAT parquet)"
                )
            written.append(run_dir / fname)
    return written


def load_results(run_dir: Path | str) -> pd.DataFrame:
    """Every row of a finished run, all protocols in one table (:func:`sambench.store.run_files.
    load_all`); per-protocol tables: :func:`load_run`; lazily, without reading the rows:
    :func:`scan_results`."""
    return load_all(run_dir)
