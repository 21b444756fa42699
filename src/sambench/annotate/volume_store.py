"""The session folder of ``sambench annotate-volume`` (read by ``annotation-report``).

::

    SESSION/session.json          {"format": "sambench-annotate-volume", "version", "source",
                                   "items", "annotator", "mode", "model", "model_sha256",
                                   "created_utc"}
    SESSION/events.jsonl          one JSON object per event (flushed + fsynced, as the 2D tool's)
    SESSION/objects.jsonl         one line per label of an accepted volume (the last one counts)
    SESSION/export/<item_id>/     labels.nii.gz (label map on the source grid), labels.json
                                  (value -> name, colour, how made), seg.dcm (DICOM sources),
                                  slicer/ (image.nii.gz, labels.nii.gz, labels.ctbl)

An event has ``type``, ``t`` (UTC ISO time), ``item_id``, ``label_value`` and per interaction
``view``, ``slice``, ``coords`` (pixels of the view's slice, (X, Y)), ``voxels_changed``,
``latency_ms`` (model decode or propagation time), ``encode_ms`` (the slice embedding's wait:
0 when the background encoder had it ready), ``model`` and ``model_sha256``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sambench.errors import DataError
from sambench.store.annotation_sessions import append_jsonl, read_jsonl, utc_now
from sambench.store.atomic import write_json_atomic

FORMAT = "sambench-annotate-volume"
VERSION = 1
SESSION_JSON = "session.json"
EVENTS_NAME = "events.jsonl"
OBJECTS_NAME = "objects.jsonl"
EXPORT_DIR = "export"
INTERACTION_KINDS = ("box", "click_pos", "click_neg", "propagate", "scribble", "lasso", "brush",
                     "erase", "polygon", "undo")  # fmt: skip
"""The counted interactions (``n_<kind>`` columns; ``n_interactions`` their sum)."""

__all__ = ["utc_now"]


def is_volume_session(folder: Path | str) -> bool:
    """Whether ``folder`` holds a volume annotation session."""
    p = Path(folder) / SESSION_JSON
    if not p.is_file():
        return False
    try:
        return json.loads(p.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def read_session(folder: Path | str) -> dict[str, Any]:
    p = Path(folder) / SESSION_JSON
    if not is_volume_session(folder):
        raise DataError(p, f"not a volume annotation session (expected format {FORMAT!r})")
    return dict(json.loads(p.read_text(encoding="utf-8")))


def open_session(
    folder: Path, *, source: str, items: list[str], annotator: str, model: str, model_sha256: str
) -> dict[str, Any]:
    """Create ``folder``'s session.json, or check that a resumed session is the same study
    (source, annotator and model); returns its content."""
    p = folder / SESSION_JSON
    mode = "manual" if model == "none" else "model"
    if p.exists():
        info = read_session(folder)
        for key, want in (("source", source), ("annotator", annotator), ("model", model)):
            if info.get(key) != want:
                raise DataError(
                    p, f"this session's {key} is {info.get(key)!r}, not {want!r}; use a new --out"
                )
        append_event(folder, {"type": "session_open", "resumed": True})
        return info
    if folder.exists() and any(not p.name.startswith(".") for p in folder.iterdir()):
        raise DataError(folder, "exists and is not a volume annotation session; use a new --out")
    info = {
        "format": FORMAT, "version": VERSION, "source": source, "items": items,
        "annotator": annotator, "mode": mode, "model": model, "model_sha256": model_sha256,
        "created_utc": utc_now(),
    }  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(p, info)
    append_event(folder, {"type": "session_open", "resumed": False})
    return info


def append_event(folder: Path, event: dict[str, Any]) -> None:
    append_jsonl(folder / EVENTS_NAME, {"t": utc_now(), **event})


def append_object(folder: Path, record: dict[str, Any]) -> None:
    append_jsonl(folder / OBJECTS_NAME, record)


def read_events(folder: Path | str) -> list[dict[str, Any]]:
    return read_jsonl(Path(folder) / EVENTS_NAME)


def read_objects(folder: Path | str) -> list[dict[str, Any]]:
    """The label records of the accepted volumes (the last record of each (item, label))."""
    last: dict[tuple[str, int], dict[str, Any]] = {}
    rows = read_jsonl(Path(folder) / OBJECTS_NAME)
    final_accept = {}
    for r in rows:
        final_accept[r["item_id"]] = r["accepted_utc"]
    for r in rows:
        if r["accepted_utc"] == final_accept[r["item_id"]]:  # a label removed later is dropped
            last[(r["item_id"], int(r["label_value"]))] = r
    return list(last.values())


def accepted_items(folder: Path) -> set[str]:
    return {str(r["item_id"]) for r in read_jsonl(folder / OBJECTS_NAME)} | {
        str(e["item_id"]) for e in read_events(folder) if e.get("type") == "volume_accepted"
    }


def read_saved_labels(folder: Path, vol: Any) -> tuple[np.ndarray, dict[int, Any]] | None:
    """(canonical label map, {value: {name, colour}}) of ``vol``'s earlier export, or None."""
    from sambench.annotate.export import read_label_map

    out = folder / EXPORT_DIR / vol.item.item_id
    nii, meta = out / "labels.nii.gz", out / "labels.json"
    if not nii.is_file() or not meta.is_file():
        return None
    names = {int(k): v for k, v in json.loads(meta.read_text(encoding="utf-8"))["labels"].items()}
    return read_label_map(nii, vol), names
