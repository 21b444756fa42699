"""What ``sambench report`` checks before it writes anything: the run has finished, each results
file has the columns and types the sections read, and no row repeats another's key.

Every problem is a :class:`~sambench.errors.DataError` naming the file (or run folder) and what
was expected, raised before the report folder is created:

- an unfinished ``sambench evaluate`` run (``config.json`` but neither the per-protocol files
  such as ``results.parquet`` nor ``prompts.jsonl``, which every finished run writes last):
  resume it first, as for an unfinished ``evaluate-3d`` run;
- a results file without the columns every section reads (:data:`REQUIRED_COLUMNS`), with text
  where numbers are expected (``dice``, ``hd``, ...) or numbers where text is expected
  (``model``, ``strategy``, ...);
- rows that repeat another row's key (model, image, object, strategy, selection, shift repeat,
  click, grid): they would count an object twice, doubling ``n`` and narrowing every CI;
- an ``evaluate-3d`` run folder given to ``--compare-with`` (which joins 2D runs).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sambench.engine.results import SORT_KEYS
from sambench.errors import DataError
from sambench.report.volumes import CONFIG_3D_NAME, RESULTS3D_NAME
from sambench.store.results_dataset import read_manifest
from sambench.store.run_files import PARTS_DIR, PROMPTS_NAME, TABLE_NAMES, load_all

#: the columns every report section reads
REQUIRED_COLUMNS = ("image_id", "model", "strategy", "selection", "status", "dice")
#: columns that must hold text (when present)
TEXT_COLUMNS = ("image_id", "model", "strategy", "selection", "status", "dataset")
#: columns that must hold numbers (when present)
NUMERIC_COLUMNS = (
    "dice",
    "jaccard",
    "hd",
    "hd95",
    "assd",
    "nsd",
    "hd_mm",
    "hd95_mm",
    "assd_mm",
    "nsd_mm",
    "predicted_iou",
    "label_value",
    "hce",
    "embed_seconds",
    "decode_seconds",
    "click_index",
    "grid",
    "shift_repeat",
)
#: one row per value of these columns (those present): the key of a result row
ROW_KEYS = ("model", *SORT_KEYS, "start_with")
RUN_CONFIG_NAME = "config.json"


def has_tables(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a per-protocol results file (``results.parquet``, ...)."""
    return any((run_dir / n).is_file() for n in TABLE_NAMES)


def is_3d_run(run_dir: Path) -> bool:
    """An ``evaluate-3d`` run folder (and no 2D results files)."""
    three_d = (run_dir / RESULTS3D_NAME).is_file() or (run_dir / CONFIG_3D_NAME).is_file()
    return three_d and not has_tables(run_dir)


def check_finished(run_dir: Path) -> None:
    """Refuse an ``evaluate`` run that has not finished: its parts are a part of the rows, and a
    report of them would show them as final."""
    run_dir = Path(run_dir)
    if not (run_dir / RUN_CONFIG_NAME).is_file() or (run_dir / CONFIG_3D_NAME).is_file():
        return  # not started by `sambench evaluate` (3D runs are checked by the 3D report)
    if has_tables(run_dir) or (run_dir / PROMPTS_NAME).is_file():
        return  # finished (prompts.jsonl alone: finished with --no-single-file)
    try:
        done = sum(len(e.images) for e in read_manifest(run_dir / PARTS_DIR).values())
    except ValueError:
        done = 0
    raise DataError(
        run_dir,
        f"this `sambench evaluate` run has not finished ({done} image(s) done, no "
        f"{TABLE_NAMES[0]} or {PROMPTS_NAME} yet); run the same `sambench evaluate ... --out "
        f"{run_dir}` again to resume it, then report",
    )


def check_results_columns(results: pd.DataFrame, path: Path) -> None:
    """Refuse a results table without the columns every report section reads (a DataError
    naming the file, the missing columns and what it has), instead of a ``KeyError`` later."""
    missing = [c for c in REQUIRED_COLUMNS if c not in results.columns]
    if missing:
        has = ", ".join(map(str, results.columns[:8])) if len(results.columns) else "no columns"
        raise DataError(
            path,
            f"not a sambench results table: lacks the columns {', '.join(missing)} "
            f"(it has {has}); expected a file written by `sambench evaluate`",
        )


def _is_numeric(s: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(s):
        return False
    return bool(pd.api.types.is_numeric_dtype(s) or s.isna().all())


def _is_text(s: pd.Series) -> bool:
    if pd.api.types.is_string_dtype(s) or s.isna().all():
        return True
    return bool(s.dtype == object and s.dropna().map(lambda v: isinstance(v, str)).all())


def check_table(results: pd.DataFrame, path: Path) -> None:
    """Columns (:func:`check_results_columns`), their types and unique row keys, or a
    :class:`DataError` naming ``path``."""
    check_results_columns(results, path)
    for c in NUMERIC_COLUMNS:
        if c in results.columns and not _is_numeric(results[c]):
            raise DataError(path, f"column {c!r} holds {results[c].dtype} values, expected numbers")
    for c in TEXT_COLUMNS:
        if c in results.columns and not _is_text(results[c]):
            raise DataError(path, f"column {c!r} holds {results[c].dtype} values, expected text")
    keys = [k for k in ROW_KEYS if k in results.columns]
    repeated = results.duplicated(keys, keep="first")
    if repeated.any():
        first = results.loc[repeated.to_numpy(), keys].iloc[0]
        key = ", ".join(f"{k}={first[k]}" for k in keys if pd.notna(first[k]))
        raise DataError(
            path,
            f"{int(repeated.sum())} row(s) repeat the key of an earlier row (first: {key}); "
            "a run has one row per object, strategy and selection (and shift repeat, click, "
            "grid): remove the repeated rows or evaluate again",
        )


def read_table(path: Path) -> pd.DataFrame:
    """One results file, checked (:func:`check_table`)."""
    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError) as e:
        if isinstance(e, FileNotFoundError | PermissionError):
            raise
        line = " ".join(str(e).split())[:200]
        raise DataError(path, f"not a readable Parquet file ({type(e).__name__}: {line})") from e
    check_table(df, path)
    return df


def load_checked(run_dir: Path) -> pd.DataFrame:
    """Every row of a finished ``evaluate`` run (its per-protocol files, or its parts when it
    finished with ``--no-single-file``), each file checked; the same rows and order as
    :func:`sambench.store.run_files.load_all`. Nothing there: a FileNotFoundError."""
    run_dir = Path(run_dir)
    check_finished(run_dir)
    names = [n for n in TABLE_NAMES if (run_dir / n).is_file()]
    if not names:
        results = load_all(run_dir)  # FileNotFoundError naming results.parquet when nothing
        check_table(results, run_dir / PARTS_DIR)
        return results
    frames = [read_table(run_dir / n) for n in names]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def check_compared_run(other: Path) -> None:
    """A folder given to ``--compare-with``: an existing ``sambench evaluate`` run folder."""
    if not other.is_dir():
        raise FileNotFoundError(f"{other}: run folder to compare with does not exist")
    if is_3d_run(other):
        raise DataError(
            other,
            "an `evaluate-3d` run folder: --compare-with joins `sambench evaluate` (2D) runs; "
            "report 3D runs one by one",
        )
