"""The run's results as a partitioned Parquet dataset: the parts, their ``_manifest`` and a lazy
(out-of-core) view over them.

Layout (see :mod:`sambench.engine.results`, which writes it)::

    RUN_DIR/parts/part-NNNNNN.parquet   every row of the images it covers (written atomically)
    RUN_DIR/parts/_manifest.jsonl       one JSON object per part: {"part", "rows", "images"}

The manifest lets a resumed run (or any reader) know which images are done and how many rows the
run has without reading a single row: one line per part, ``images`` = the image ids it covers.
Writes: a part is renamed into place first, then its line is appended with one ``write`` of the
whole line (``O_APPEND``, then ``fsync``), so the manifest never names a missing or half-written
part; when the run is opened or finalized, :func:`reconcile_manifest` rewrites it atomically
(temp + rename) after dropping a torn last line (a crash during the append), adding parts that
have no line (read: their ``image_id`` column only) and dropping lines whose part is gone. Parts
written by another writer that does not append to the manifest are therefore still found.

:func:`scan_results` is the lazy accessor: a :class:`ResultsDataset`, a DuckDB view named
``results`` over the parts (or over the single per-protocol files of :mod:`sambench.store.run_files`
when a folder has no parts). Queries run out of core: DuckDB streams the Parquet files, keeps
only the aggregation state and spills to a temporary folder above ``memory_limit``. Why DuckDB
(and not Polars or ``pyarrow.dataset``): grouped aggregation, joins on object keys (paired tests,
prompt-shift drops), window functions and seeded hash sampling are all one SQL statement with a
hard memory limit and spilling to disk, and results come back as pandas DataFrames, the type every
analysis function already returns (``docs/scale.md``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from sambench.store.atomic import write_text_atomic
from sambench.store.run_files import PARTS_DIR, RESULTS_NAME, TABLE_NAMES

MANIFEST_NAME = "_manifest.jsonl"
PART_GLOB = "part-*.parquet"
#: DuckDB's memory limit for a :class:`ResultsDataset` (it spills to disk above it).
DEFAULT_MEMORY_LIMIT = "2GB"


@dataclass(frozen=True)
class PartEntry:
    """One line of the manifest: a part's file name, its row count and the image ids it covers."""

    part: str
    rows: int
    images: tuple[str, ...]

    def to_json(self) -> str:
        d = {"part": self.part, "rows": self.rows, "images": list(self.images)}
        return json.dumps(d, separators=(",", ":")) + "\n"


def manifest_path(parts_dir: Path | str) -> Path:
    return Path(parts_dir) / MANIFEST_NAME


def read_manifest(parts_dir: Path | str) -> dict[str, PartEntry]:
    """``{part file name: entry}`` from the manifest (empty when there is none).

    Text after the last newline (an append cut by a crash) is ignored: every complete entry ends
    with one. A bad complete line is an error naming the file and line (edited by hand).
    """
    path = manifest_path(parts_dir)
    if not path.is_file():
        return {}
    lines = path.read_text().split("\n")
    lines.pop()  # the text after the last newline: "" or a torn line (never a complete entry)
    out: dict[str, PartEntry] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            entry = PartEntry(str(d["part"]), int(d["rows"]), tuple(map(str, d["images"])))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: line {n} is not a manifest entry ({e})") from e
        out[entry.part] = entry
    return out


def append_manifest(parts_dir: Path | str, entry: PartEntry) -> None:
    """Append one entry (one ``write`` of the whole line, then ``fsync``); call it after the part
    itself is in place."""
    data = entry.to_json().encode()
    fd = os.open(manifest_path(parts_dir), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def part_entry(path: Path) -> PartEntry:
    """The manifest entry of a part file, read from its ``image_id`` column only."""
    table = pq.read_table(path, columns=["image_id"])
    ids = pd.unique(table.column("image_id").to_pandas())
    return PartEntry(path.name, table.num_rows, tuple(map(str, ids)))


def part_files(parts_dir: Path | str) -> list[Path]:
    """The part files of a run, sorted by name (the order rows were written in)."""
    return sorted(Path(parts_dir).glob(PART_GLOB))


def reconcile_manifest(parts_dir: Path | str) -> dict[str, PartEntry]:
    """The manifest made to match the part files on disk (see the module doc); rewritten
    atomically when it differed (or had a torn line). Returns the entries in part order."""
    parts_dir = Path(parts_dir)
    listed = read_manifest(parts_dir)
    files = part_files(parts_dir)
    entries = {p.name: listed[p.name] if p.name in listed else part_entry(p) for p in files}
    path = manifest_path(parts_dir)
    text = "".join(e.to_json() for e in entries.values())
    if files and (not path.is_file() or path.read_text() != text):
        write_text_atomic(path, text)
    return entries


def done_images(entries: Iterable[PartEntry]) -> set[str]:
    """Image ids covered by the given manifest entries."""
    return {i for e in entries for i in e.images}


def _table_files(run_dir: Path) -> list[Path]:
    return [run_dir / n for n in TABLE_NAMES if (run_dir / n).is_file()]


def _sql_list(paths: Sequence[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


class ResultsDataset:
    """A lazy view over Parquet result files: DuckDB view ``results`` (all rows, all protocols,
    columns unioned by name; a column a file lacks reads as NULL).

    NaN metric values written by pandas are stored as Parquet nulls, so SQL aggregates skip them
    like pandas does. Nothing is read until a query runs; :meth:`sql` returns a DataFrame of the
    query's result only. Use as a context manager (or :meth:`close`) to free the connection.
    """

    def __init__(
        self,
        files: Sequence[Path | str],
        *,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        threads: int | None = None,
        temp_directory: Path | str | None = None,
    ) -> None:
        self.files = [Path(f) for f in files]
        if not self.files:
            raise ValueError("files: a results dataset needs at least one Parquet file")
        self.con = duckdb.connect(":memory:")
        tmp = Path(temp_directory or Path(tempfile.gettempdir()) / "sambench-duckdb")
        self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self.con.execute(f"SET temp_directory = '{tmp}'")
        if threads is not None:
            self.con.execute(f"SET threads = {int(threads)}")
        self.restrict("true")

    def restrict(self, where: str) -> None:
        """Redefine the view ``results`` as the files' rows that satisfy the SQL condition
        ``where`` (e.g. ``"model = 'litemedsam'"``; ``"true"``: every row)."""
        self.con.execute(
            "CREATE OR REPLACE VIEW results AS SELECT * FROM read_parquet("
            f"{_sql_list(self.files)}, union_by_name = true) WHERE {where}"
        )
        self.columns: tuple[str, ...] = tuple(
            r[0] for r in self.con.execute("DESCRIBE results").fetchall()
        )

    def sql(self, query: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """Run ``query`` (it may name the view ``results``) and return its result as a DataFrame."""
        return self.con.execute(query, params or []).df()

    def numpy(self, query: str, params: Sequence[Any] | None = None) -> dict[str, np.ndarray]:
        """Run ``query``; its columns as numpy arrays (no pandas index built); SQL NULL is NaN
        in a float column, None in an object array otherwise."""
        out = self.con.execute(query, params or []).fetchnumpy()
        return {k: _unmask(v) for k, v in out.items()}

    def count(self) -> int:
        """Number of rows (from the Parquet footers)."""
        row = self.con.execute("SELECT count(*) FROM results").fetchone()
        return int(row[0]) if row else 0

    def to_pandas(self) -> pd.DataFrame:
        """Every row as one DataFrame (materialises the whole dataset: small runs only)."""
        return self.sql("SELECT * FROM results")

    def has(self, *cols: str) -> bool:
        return all(c in self.columns for c in cols)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> ResultsDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _unmask(v: Any) -> np.ndarray:
    if isinstance(v, np.ma.MaskedArray):
        if v.dtype.kind == "f":
            return v.filled(np.nan)
        if not v.mask.any():
            return np.asarray(v.data)
        obj = np.asarray(v.data, dtype=object)
        obj[np.ma.getmaskarray(v)] = None
        return obj
    return np.asarray(v)


def scan_results(run_dir: Path | str, **kw: Any) -> ResultsDataset:
    """The lazy results of a run folder: its parts (finished or not), else its single
    per-protocol files (a folder whose parts were removed). ``kw``: :class:`ResultsDataset`
    options (``memory_limit``, ``threads``, ``temp_directory``). No rows and no files is a
    :class:`FileNotFoundError` naming the folder."""
    run_dir = Path(run_dir)
    files = part_files(run_dir / PARTS_DIR) or _table_files(run_dir)
    if not files:
        raise FileNotFoundError(
            f"{run_dir}: no {PARTS_DIR}/{PART_GLOB} and no {RESULTS_NAME}; run "
            f"`sambench evaluate ... --out {run_dir}`"
        )
    return ResultsDataset(files, **kw)


__all__ = [
    "MANIFEST_NAME",
    "PartEntry",
    "ResultsDataset",
    "append_manifest",
    "done_images",
    "part_entry",
    "read_manifest",
    "reconcile_manifest",
    "scan_results",
]
