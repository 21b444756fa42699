"""Resumable results storage: whole images per Parquet part, one table per protocol at the end.

A run folder holds ``config.json``, ``parts/part-NNNNNN.parquet`` (each part holds every row, of
every protocol, of the images it covers, written atomically) and, once the run completes, the
per-protocol tables of :mod:`sambench.data.run_files` (``results.parquet`` = single-round S2-S6,
oracle selection; ``results_score.parquet``; ``shift.parquet``; ``interactive.parquet``;
``everything.parquet``; only those that ran) plus ``prompts.jsonl`` (the prompts used, see
:mod:`sambench.engine.prompt_file`). A killed run loses at most the images of its unwritten
buffer; on resume the images found in the parts are skipped, so no row is duplicated or missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from sambench.data.atomic import write_parquet_atomic
from sambench.data.run_files import (
    PARTS_DIR,
    PROMPTS_NAME,
    RESULTS_NAME,
    TABLE_NAMES,
    load_all,
    load_run,
    split_results,
)

__all__ = ["PARTS_DIR", "RESULTS_NAME", "ResultsStore", "load_results", "load_run"]
SORT_KEYS = (
    "dataset",
    "image_id",
    "label_value",
    "strategy",
    "grid",
    "shift_range",
    "shift_repeat",
    "click_index",
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
        if first_part is None:
            existing = sorted(self.parts_dir.glob("part-*.parquet"))
            first_part = 1 + max((int(p.stem.split("-")[1]) for p in existing), default=0)
        self.next_part: int = first_part

    def done_image_ids(self) -> set[str]:
        """Image ids whose rows are already stored in a part."""
        done: set[str] = set()
        for p in sorted(self.parts_dir.glob("part-*.parquet")):
            done.update(pd.read_parquet(p, columns=["image_id"])["image_id"].unique())
        return done

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
        write_parquet_atomic(path, pd.DataFrame(self._buffer))
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


def load_results(run_dir: Path | str) -> pd.DataFrame:
    """Every row of a finished run, all protocols in one table (:func:`sambench.data.run_files.
    load_all`); per-protocol tables: :func:`load_run`."""
    return load_all(run_dir)
