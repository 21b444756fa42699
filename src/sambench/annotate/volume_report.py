"""The numbers of volume annotation sessions: per object (label of an accepted volume) and per
volume, as DataFrames (rendered by :mod:`sambench.report.annotation_volumes`).

Per object: time (``active_s``: the time of the events acting on that label, each gap capped at
the session's idle cap), interactions by kind, ``hand_voxels_after_model`` (voxels a brush,
eraser or polygon changed on a label after a model interaction had changed it; 0 for a manual
label), the label's voxels and, when the volume has a reference label with the same value,
3D DSC and NSD (%, tolerance ``nsd_tolerance_mm``) of the exported label map (re-read from its
NIfTI, on the source grid) against the reference (read by the same reader), with the reference's
voxel spacing. Per volume: the time of every event on it (``volume_active_s``), objects and
interactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sambench.annotate import volume_store as VS
from sambench.errors import DataError

OBJECT_COLUMNS = ("annotator", "mode", "model", "item_id", "label_value", "object_name", "made",
                  "active_s", "n_interactions", "n_box", "n_click_pos", "n_click_neg",
                  "n_propagate", "n_scribble", "n_lasso", "n_brush", "n_erase", "n_polygon",
                  "n_undo", "hand_voxels_after_model", "voxels", "dice", "nsd")  # fmt: skip


def _read_canonical(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """(canonical (z, y, x) array, canonical (z, y, x) spacing mm) of a label file."""
    from sambench.data.readers import _Volume

    v = _Volume(Path(path))
    arr = np.asarray(v.read_canonical(None))
    sx, sy, sz = v.orientation.canonical_xyz(v.spacing)
    return arr, (float(sz), float(sy), float(sx))


def _scores(row: dict[str, Any], tolerance: float, cache: dict[str, Any]) -> tuple[float, float]:
    from sambench.metrics.volume import volume_metrics

    ref_path, lab_path = row.get("reference_path"), row.get("labels_path")
    if not ref_path or not lab_path or not Path(ref_path).is_file():
        return float("nan"), float("nan")
    if ref_path not in cache:
        cache[ref_path] = _read_canonical(Path(ref_path))
    if lab_path not in cache:
        cache[lab_path] = _read_canonical(Path(lab_path))
    ref, spacing = cache[ref_path]
    lab, _ = cache[lab_path]
    if ref.shape != lab.shape:
        raise DataError(lab_path, f"shape {lab.shape} differs from its reference {ref_path}")
    gt = ref == int(row["label_value"])
    if not gt.any():
        return float("nan"), float("nan")
    m = volume_metrics(lab == int(row["label_value"]), gt, spacing, nsd_tolerance_mm=tolerance)
    return float(m["dsc"]), float(m["nsd"])


def volume_objects(
    sessions: Sequence[str | Path], *, nsd_tolerance_mm: float = 2.0
) -> pd.DataFrame:
    """One row per object of every accepted volume of ``sessions`` (:data:`OBJECT_COLUMNS`,
    plus ``session`` and ``volume_active_s``); DataError naming a folder that is not a volume
    session or has no accepted volume."""
    rows: list[dict[str, Any]] = []
    cache: dict[str, Any] = {}
    for s in sessions:
        VS.read_session(s)
        objs = VS.read_objects(s)
        if not objs:
            raise DataError(Path(s), "has no accepted volume yet (nothing to report)")
        for r in objs:
            dsc, nsd = _scores(r, nsd_tolerance_mm, cache)
            # a session written before scribbles and lassos existed counts none of them
            cols = {c: r.get(c, 0 if c.startswith("n_") else None) for c in OBJECT_COLUMNS}
            rows.append({**cols, "dice": dsc, "nsd": nsd,
                         "session": str(s), "volume_active_s": r.get("volume_active_s")})  # fmt: skip
    return pd.DataFrame(rows)


def volume_table(objects: pd.DataFrame) -> pd.DataFrame:
    """The 3D annotation table: per annotator, mode and volume: objects, time per volume and
    per object, interactions per object, hand-edited voxels after the model, mean 3D DICE/NSD
    in % (``dice``, ``nsd``: the names of every other table)."""
    g = objects.groupby(["annotator", "mode", "model", "item_id"], sort=True)
    out = g.agg(
        objects=("label_value", "count"),
        time_per_volume_s=("volume_active_s", "max"),
        time_per_object_s=("active_s", "mean"),
        interactions_per_object=("n_interactions", "mean"),
        propagations=("n_propagate", "sum"),
        hand_voxels_after_model=("hand_voxels_after_model", "sum"),
        dice=("dice", "mean"),
        nsd=("nsd", "mean"),
    ).reset_index()
    return out
