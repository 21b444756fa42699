"""The bookkeeping of a prepared dataset folder (:mod:`sambench.data.prepare`): the per-unit part
files that are ``prepare``'s resume checkpoints (manifest rows + counters in one Parquet), and
``sambench-dataset.json`` (claiming a folder for one source and settings; its contents).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sambench.data.describe import DatasetDescription
from sambench.data.manifest import manifest_frame
from sambench.data.records import DATASET_JSON_NAME, LEGACY_DATASET_JSON_NAME, OPTIONAL_COLUMNS
from sambench.data.standardize import LabelMapping
from sambench.errors import DataError
from sambench.store.atomic import write_atomic, write_json_atomic
from sambench.store.runfolder import IGNORED_ENTRIES

_STATS_KEY = b"sambench_case_stats"


def mapping_for(desc: DatasetDescription) -> LabelMapping | None:
    """The label mapping of the description's classes; None for instances or auto classes."""
    if desc.instance or desc.classes is None:
        return None
    return LabelMapping.from_classes(desc.classes, keep_values=desc.paper_layout)


def write_part(path: Path, rows: list[dict[str, object]], stats: dict[str, int]) -> None:
    """A finished unit's manifest rows and counters (``stats``) as one Parquet, atomically."""
    table = pa.Table.from_pandas(manifest_frame(rows), preserve_index=False)
    meta = {**(table.schema.metadata or {}), _STATS_KEY: json.dumps(stats).encode()}
    table = table.replace_schema_metadata(meta)
    write_atomic(path, lambda p: pq.write_table(table, p), suffix=".parquet")


def read_part(path: Path) -> tuple[pd.DataFrame, dict[str, int]] | None:
    """(rows, stats) of a finished case; None when missing or unreadable."""
    if not path.is_file():
        return None
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid):
        return None
    stats = json.loads((table.schema.metadata or {}).get(_STATS_KEY, b"{}"))
    df = table.to_pandas()
    for col, default in OPTIONAL_COLUMNS.items():  # parts written before these columns
        if col not in df.columns:
            df[col] = default
    return df, stats


def part_is_complete(root: Path, df: pd.DataFrame) -> bool:
    """Every image, label and ROI file the part lists exists under ``root``, and every volume
    slice has its plane: a volume case prepared before the canonical orientation (no ``plane``)
    was cut along the file's own axes and is redone."""
    if ((df["slice_axis"].astype(int) >= 0) & (df["plane"].astype(str) == "")).any():
        return False
    files = set(df["image_path"]) | set(df["label_path"]) | (set(df["roi_path"]) - {""})
    return all((root / f).is_file() for f in files)


def claim_dataset(ds_dir: Path, desc: DatasetDescription) -> None:
    """Refuse an existing dataset folder from another source or other settings; else mark it.

    A folder prepared before the description was renamed holds ``dataset.json`` instead."""
    meta_path = ds_dir / DATASET_JSON_NAME
    if not meta_path.is_file() and (ds_dir / LEGACY_DATASET_JSON_NAME).is_file():
        meta_path = ds_dir / LEGACY_DATASET_JSON_NAME
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as e:
            raise DataError(
                meta_path, f"cannot be read ({e}); expected a sambench {DATASET_JSON_NAME}"
            ) from None
        if meta.get("source") != str(desc.source):
            raise DataError(
                ds_dir,
                f"dataset {desc.name!r} here was prepared from {meta.get('source')!r}, not from "
                f"{str(desc.source)!r}; expected the same source (give another 'name' or --out)",
            )
        if meta.get("settings") != desc.fingerprint():
            raise DataError(
                ds_dir,
                "was prepared from this source with different settings (classes, filters, plane, "
                "modality...); delete the folder to re-prepare, or use another --out",
            )
        return
    if ds_dir.exists() and any(p.name not in IGNORED_ENTRIES for p in ds_dir.iterdir()):
        raise DataError(
            ds_dir, f"exists but has no {DATASET_JSON_NAME}; expected an empty or sambench folder"
        )
    write_json_atomic(meta_path, dataset_json(desc, None, "incomplete"))


def dataset_json(
    desc: DatasetDescription, manifest: pd.DataFrame | None, status: str
) -> dict[str, object]:
    """``sambench-dataset.json``'s contents (paper layout, modality, source, settings, and the
    manifest's figures when given) with ``status`` ("incomplete" or "complete")."""
    mapping = mapping_for(desc)
    meta: dict[str, object]
    if mapping is not None:
        meta = dict(mapping.info_json())
    elif desc.instance:
        meta = {
            "info": {},
            "color": {},
            "instance": {"name": desc.instance_name, "max_per_image": 255},
        }
    else:  # auto classes: the values seen in kept objects
        seen = (
            {}
            if manifest is None
            else dict(zip(manifest["label_value"], manifest["object_name"], strict=True))
        )
        order = sorted(int(v) for v in seen)
        meta = {
            "info": {str(i): seen[v] for i, v in enumerate(order, 1)},
            "color": {str(i): v for i, v in enumerate(order, 1)},
        }
    meta.update(modality=desc.modality, source=str(desc.source), settings=desc.fingerprint())
    if desc.window is not None:
        meta["window"] = {"level": desc.window[0], "width": desc.window[1]}
    if desc.channel_names or desc.channel is not None:
        meta["channels"] = {
            "names": list(desc.channel_names),
            "selected": desc.channel if desc.channel is not None else "first",
        }
    if desc.source_json is not None:
        meta["source_layout"] = desc.source_json
    meta["description"] = {k: v for k, v in asdict(desc).items() if k not in ("source",)}
    if manifest is not None and len(manifest):
        med = manifest[["spacing_x", "spacing_y", "spacing_z"]].median()
        meta["spacing_median_mm"] = [None if math.isnan(v) else float(v) for v in med]
        meta["slice_axes"] = sorted(int(a) for a in manifest["slice_axis"].unique())
        meta["planes"] = sorted(str(p) for p in manifest["plane"].unique() if p)
        meta["images"] = int(manifest["image_id"].nunique())
        meta["objects"] = len(manifest)
    meta["status"] = status
    return json.loads(json.dumps(meta, default=str))
