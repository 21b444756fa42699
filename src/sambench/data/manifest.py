"""The prepared-folder manifest: read every ``OUT/<dataset>/manifest.parquet``, write one atomically.

Columns are exactly ``MANIFEST_COLUMNS`` (the fields of ``ObjectRecord``), one row per kept
(image, object); rows are sorted by ``image_id`` then ``label_value``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sambench.data.records import MANIFEST_COLUMNS, MANIFEST_NAME, OPTIONAL_COLUMNS
from sambench.errors import DataError
from sambench.store.atomic import write_parquet_atomic

_INT_COLUMNS = (
    "slice_index",
    "label_value",
    "height",
    "width",
    "slice_axis",
    "area",
    "bbox_x_min",
    "bbox_y_min",
    "bbox_x_max",
    "bbox_y_max",
)
_FLOAT_COLUMNS = ("spacing_x", "spacing_y", "spacing_z")


def manifest_frame(rows: Iterable[Mapping[str, object]] | pd.DataFrame) -> pd.DataFrame:
    """Rows (``ObjectRecord.to_row()`` dicts or a DataFrame) as a manifest DataFrame.

    Columns exactly ``MANIFEST_COLUMNS`` in that order; ints as int64, spacings float64, the rest
    str; sorted by (``image_id``, ``label_value``) with a fresh index. A missing column raises
    ``ValueError`` naming it.
    """
    df = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if df.empty and len(df.columns) == 0:
        df = pd.DataFrame({c: pd.Series(dtype=object) for c in MANIFEST_COLUMNS})
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"manifest rows: missing columns {missing}; expected {MANIFEST_COLUMNS}")
    df = df.loc[:, list(MANIFEST_COLUMNS)]
    for c in MANIFEST_COLUMNS:
        if c in _INT_COLUMNS:
            df[c] = df[c].astype(np.int64)
        elif c in _FLOAT_COLUMNS:
            df[c] = df[c].astype(np.float64)
        else:
            df[c] = df[c].astype(str)
    return df.sort_values(["image_id", "label_value"], kind="stable").reset_index(drop=True)


def write_manifest(path: Path, rows: Iterable[Mapping[str, object]] | pd.DataFrame) -> Path:
    """Write ``rows`` (see :func:`manifest_frame`) to ``path`` as Parquet, atomically."""
    return write_parquet_atomic(path, manifest_frame(rows))


def load_manifest(prepared_root: Path, datasets: Sequence[str] | None = None) -> pd.DataFrame:
    """All manifests of a prepared folder, concatenated (``OUT/*/manifest.parquet``).

    ``datasets`` selects dataset folders by name (default: every one, in sorted order). Raises
    ``DataError`` naming the folder when it holds no manifest, when a requested dataset has none
    (listing the available ones), or when a manifest lacks a column of ``MANIFEST_COLUMNS``
    (manifests written before ``OPTIONAL_COLUMNS`` existed get them with their default).
    """
    root = Path(prepared_root)
    if not root.is_dir():
        raise DataError(root, "is not a folder; expected a `sambench prepare` output folder")
    available = {p.parent.name: p for p in sorted(root.glob(f"*/{MANIFEST_NAME}"))}
    if not available:
        raise DataError(
            root,
            f"no <dataset>/{MANIFEST_NAME} found; expected a `sambench prepare` output folder "
            "(a run that did not finish writes its manifest only at the end)",
        )
    if datasets is None:
        names = sorted(available)
    else:
        names = list(dict.fromkeys(datasets))
        unknown = [n for n in names if n not in available]
        if unknown:
            raise DataError(
                root,
                f"no prepared dataset named {', '.join(map(repr, unknown))}; "
                f"available: {', '.join(sorted(available))}",
            )
    frames = []
    for name in names:
        df = pd.read_parquet(available[name])
        for col, default in OPTIONAL_COLUMNS.items():
            if col not in df.columns:
                df[col] = default
        missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
        if missing:
            raise DataError(available[name], f"missing manifest columns {missing}")
        frames.append(df.loc[:, list(MANIFEST_COLUMNS)])
    return pd.concat(frames, ignore_index=True)
