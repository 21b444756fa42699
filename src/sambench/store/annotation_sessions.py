"""The annotation session folder written by ``sambench annotate`` and read by the analysis/report.

A session is one annotator annotating one prepared folder in one mode (with the model, or the
manual baseline). Its folder::

    SESSION/session.json                         format version, prepared folder + manifest
                                                 fingerprint, annotator, mode, model, created
    SESSION/events.jsonl                         one JSON object per event (flushed + fsynced)
    SESSION/objects.jsonl                        one JSON object per accepted object
    SESSION/masks/<image_id>/<label_value>.png   accepted object mask, uint8 0/255, image size
    SESSION/labels/<dataset>/<image_id>.png      the accepted label map (prepared layout: uint8,
                                                 0 background, the object's label value inside)
    SESSION/labels/<dataset>/<image_id>.json     {"image_id", "dataset", "info": {value: name},
                                                 "annotator", "mode", "model"}

Every file but the two ``.jsonl`` logs is written atomically (temp name + rename). The logs are
append-only, one line per record, flushed and fsynced per line, so a killed server loses at most
the line being written; a line that does not parse (a torn last line) is skipped with a warning
naming the file and line number, and nothing else is lost. The event log is the raw record
(what the annotator did, when, and the model latency); ``objects.jsonl`` is the per-object
summary (``OBJECT_FIELDS``), written when an object is accepted. An object accepted twice (a
re-annotation) keeps its last record.

Times are UTC ISO 8601 strings (``2026-12-02T04:30:00.123456+00:00``); ``active_s`` is seconds.
This module is the contract between the annotator app (``sambench.annotate``) and the
``annotation-report`` analysis; it imports nothing above the data stage.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sambench.errors import DataError
from sambench.store.atomic import write_json_atomic, write_png_atomic

SESSION_FORMAT_VERSION = 1
SESSION_JSON = "session.json"
EVENTS_NAME = "events.jsonl"
OBJECTS_NAME = "objects.jsonl"
MASKS_DIR = "masks"
LABELS_DIR = "labels"

MODES = ("model", "manual")
MODELS = ("litemedsam", "none")
"""``--model`` choices; ``"none"`` is the manual baseline (mode ``"manual"``)."""

INTERACTION_KINDS = ("box", "click_pos", "click_neg", "brush", "erase", "polygon", "undo")
"""The counted interactions; ``n_<kind>`` columns, ``n_interactions`` is their sum."""

EVENT_TYPES = (
    "session_open",
    "session_close",
    "image_open",
    "object_start",
    *INTERACTION_KINDS,
    "accept",
    "skip",
)
"""Values of an event's ``"type"``. Every event has ``type``, ``t`` (UTC ISO time), and where it
applies ``image_id``, ``label_value``, ``coords`` (pixel coordinates of the image, see the app's
docs) and ``latency_ms`` (model decode time for box/click events in model mode)."""

OBJECT_FIELDS = (
    "annotator",
    "mode",
    "model",
    "dataset",
    "image_id",
    "label_value",
    "object_name",
    "started_utc",
    "accepted_utc",
    "active_s",
    *(f"n_{k}" for k in INTERACTION_KINDS),
    "n_interactions",
    "mean_latency_ms",
    "mask_path",
)
"""Fields of one ``objects.jsonl`` line; ``mask_path`` is relative to the session folder."""

OBJECT_COLUMNS = ("session", "prepared", *OBJECT_FIELDS)
"""Columns of :func:`load_session_objects` (``session``, ``prepared``, ``mask_path`` absolute)."""


def utc_now() -> str:
    """The current time as a UTC ISO 8601 string (microseconds)."""
    return datetime.now(timezone.utc).isoformat()


def mode_for_model(model: str) -> str:
    """``"manual"`` for ``model == "none"``, ``"model"`` for a model name in ``MODELS``."""
    if model not in MODELS:
        raise ValueError(f"model: expected one of {', '.join(MODELS)}, got {model!r}")
    return "manual" if model == "none" else "model"


def manifest_fingerprint(manifest: pd.DataFrame) -> str:
    """A SHA-256 hex digest of the objects a manifest offers for annotation.

    Hashes (dataset, image_id, label_value, object_name, height, width) per row, sorted, so it does
    not change when the manifest is rewritten with the same content or the folder moves.
    """
    cols = ["dataset", "image_id", "label_value", "object_name", "height", "width"]
    rows = sorted(
        tuple(str(v) for v in r) for r in manifest.loc[:, cols].itertuples(index=False, name=None)
    )
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


@dataclass(frozen=True)
class SessionInfo:
    """The contents of ``session.json``. ``prepared`` is an absolute path."""

    format_version: int
    prepared: str
    manifest_fingerprint: str
    annotator: str
    mode: str
    model: str
    created_utc: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_session_info(session_dir: Path | str) -> SessionInfo:
    """Read ``SESSION/session.json``; ``DataError`` naming the file when missing or malformed."""
    path = Path(session_dir) / SESSION_JSON
    if not path.is_file():
        raise DataError(path, "not found; expected a `sambench annotate` session folder")
    try:
        raw = json.loads(path.read_text())
        info = SessionInfo(**{k: raw[k] for k in SessionInfo.__dataclass_fields__})
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DataError(
            path, f"malformed session file ({e}); expected the fields of SessionInfo"
        ) from e
    if info.format_version != SESSION_FORMAT_VERSION:
        raise DataError(
            path,
            f"format_version {info.format_version}; this sambench reads {SESSION_FORMAT_VERSION}",
        )
    return info


def open_session(
    session_dir: Path | str,
    prepared: Path | str,
    fingerprint: str,
    annotator: str,
    model: str,
) -> SessionInfo:
    """Create ``session.json`` in a new or empty folder, or check an existing one matches.

    An existing session must have the same manifest fingerprint (else ``DataError``: the session
    belongs to another prepared dataset), the same annotator and the same model (a session is one
    annotator in one mode; start another session folder for another). A non-empty folder that is
    not a session is refused (hidden files, such as a lock file, do not count).
    """
    session_dir = Path(session_dir).resolve()
    path = session_dir / SESSION_JSON
    if path.exists():
        info = read_session_info(session_dir)
        if info.manifest_fingerprint != fingerprint:
            raise DataError(
                path,
                f"this session was made on another prepared dataset ({info.prepared}); "
                "use a new --out folder for this one",
            )
        for name, want in (("annotator", annotator), ("model", model)):
            have = getattr(info, name)
            if have != want:
                raise DataError(
                    path,
                    f"this session's {name} is {have!r}, not {want!r}; "
                    "use a new --out folder (one session = one annotator in one mode)",
                )
        return info
    if session_dir.exists() and any(not p.name.startswith(".") for p in session_dir.iterdir()):
        raise DataError(
            session_dir,
            "is a non-empty folder without session.json; expected a new "
            "or empty folder, or an existing session",
        )
    info = SessionInfo(
        format_version=SESSION_FORMAT_VERSION,
        prepared=str(Path(prepared).resolve()),
        manifest_fingerprint=fingerprint,
        annotator=annotator,
        mode=mode_for_model(model),
        model=model,
        created_utc=utc_now(),
    )
    write_json_atomic(path, info.to_dict())
    return info


def append_jsonl(path: Path | str, record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line to ``path``; flushed and fsynced before returning.

    A torn last line (a process killed mid-write) is ended first, so the new record is a line of
    its own and only the torn one is lost.
    """
    data = (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        if f.tell() > 0:
            with open(path, "rb") as r:
                r.seek(-1, os.SEEK_END)
                if r.read(1) != b"\n":
                    data = b"\n" + data
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: Path | str) -> list[dict[str, Any]]:
    """Every JSON object line of ``path`` (missing file: ``[]``).

    A line that is not a JSON object is skipped with a ``UserWarning`` naming ``path:line``.
    """
    path = Path(path)
    if not path.is_file():
        return []
    out: list[dict[str, Any]] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                obj = None
            if not isinstance(obj, dict):
                warnings.warn(f"{path}:{n}: not a JSON object; line skipped", stacklevel=2)
                continue
            out.append(obj)
    return out


def mask_relpath(image_id: str, label_value: int) -> str:
    """``masks/<image_id>/<label_value>.png`` (POSIX, relative to the session folder)."""
    return f"{MASKS_DIR}/{image_id}/{int(label_value)}.png"


def write_object_mask(
    session_dir: Path | str, image_id: str, label_value: int, mask: np.ndarray
) -> Path:
    """Write an HxW bool/0-1 mask as a uint8 0/255 PNG at :func:`mask_relpath`, atomically."""
    arr = np.where(np.asarray(mask) > 0, 255, 0).astype(np.uint8)
    if arr.ndim != 2:
        raise ValueError(f"mask of {image_id}/{label_value}: expected HxW, got shape {arr.shape}")
    return write_png_atomic(Path(session_dir) / mask_relpath(image_id, label_value), arr)


def write_label_map(
    session_dir: Path | str,
    dataset: str,
    image_id: str,
    label_map: np.ndarray,
    info: dict[int, str],
    session: SessionInfo,
) -> Path:
    """Write the accepted label map (HxW uint8) and its JSON under ``labels/<dataset>/``.

    The PNG first, then the JSON (both atomic); returns the PNG path.
    """
    folder = Path(session_dir) / LABELS_DIR / dataset
    png = write_png_atomic(folder / f"{image_id}.png", np.asarray(label_map, np.uint8))
    write_json_atomic(
        folder / f"{image_id}.json",
        {
            "image_id": image_id,
            "dataset": dataset,
            "info": {str(int(k)): v for k, v in sorted(info.items())},
            "annotator": session.annotator,
            "mode": session.mode,
            "model": session.model,
        },
    )
    return png


def append_event(session_dir: Path | str, event: dict[str, Any]) -> None:
    """Append one event (adds ``t`` when absent) to ``events.jsonl``."""
    if event.get("type") not in EVENT_TYPES:
        raise ValueError(f"event type: expected one of {EVENT_TYPES}, got {event.get('type')!r}")
    record = {"t": utc_now(), **event}
    append_jsonl(Path(session_dir) / EVENTS_NAME, record)


def append_object(session_dir: Path | str, record: dict[str, Any]) -> None:
    """Append one accepted object (exactly the fields ``OBJECT_FIELDS``) to ``objects.jsonl``."""
    missing = [k for k in OBJECT_FIELDS if k not in record]
    if missing:
        raise ValueError(f"object record: missing fields {missing}")
    rec = {k: record[k] for k in OBJECT_FIELDS}
    if rec["mean_latency_ms"] is not None and not np.isfinite(rec["mean_latency_ms"]):
        rec["mean_latency_ms"] = None  # JSON has no NaN; read back as NaN
    append_jsonl(Path(session_dir) / OBJECTS_NAME, rec)


def read_events(session_dir: Path | str) -> list[dict[str, Any]]:
    """The session's events in log order (corrupt lines skipped with a warning)."""
    return read_jsonl(Path(session_dir) / EVENTS_NAME)


def accepted_keys(session_dir: Path | str) -> set[tuple[str, int]]:
    """``(image_id, label_value)`` of every accepted object of the session."""
    return {
        (str(r["image_id"]), int(r["label_value"]))
        for r in read_jsonl(Path(session_dir) / OBJECTS_NAME)
        if "image_id" in r and "label_value" in r
    }


def load_session_objects(session_dir: Path | str) -> pd.DataFrame:
    """One row per accepted object of a session, columns ``OBJECT_COLUMNS`` (in that order).

    ``session`` and ``prepared`` are absolute folder paths, ``mask_path`` the absolute path of the
    object's uint8 0/255 PNG (image size). ``active_s`` and ``mean_latency_ms`` are float64
    (``mean_latency_ms`` NaN in manual mode), ``label_value`` and the ``n_*`` counts int64, the
    rest str. An object accepted more than once keeps its last record; rows are in acceptance
    order. Raises ``DataError`` when the folder is not a session; corrupt lines of
    ``objects.jsonl`` are skipped with a warning naming the line.
    """
    session_dir = Path(session_dir).resolve()
    info = read_session_info(session_dir)
    records = read_jsonl(session_dir / OBJECTS_NAME)
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for n, r in enumerate(records):
        missing = [k for k in OBJECT_FIELDS if k not in r]
        if missing:
            warnings.warn(
                f"{session_dir / OBJECTS_NAME}: record {n + 1} lacks {missing}; skipped",
                stacklevel=2,
            )
            continue
        key = (str(r["image_id"]), int(r["label_value"]))
        latest.pop(key, None)  # re-insert so the order is that of the last acceptance
        latest[key] = r
    rows = []
    for r in latest.values():
        row = {"session": str(session_dir), "prepared": info.prepared}
        row.update({k: r[k] for k in OBJECT_FIELDS})
        row["mask_path"] = str(session_dir / r["mask_path"])
        rows.append(row)
    df = pd.DataFrame(rows, columns=list(OBJECT_COLUMNS))
    for c in OBJECT_COLUMNS:
        if c == "label_value" or c.startswith("n_"):
            df[c] = df[c].astype(np.int64)
        elif c in ("active_s", "mean_latency_ms"):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(np.float64)
        else:
            df[c] = df[c].astype(str)
    return df
