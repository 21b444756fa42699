"""Output-folder safety: sambench writes only into an empty folder or one of its own run folders.

A run folder is recognised by the configuration file its command writes first (``config.json``
for ``evaluate``, ``finetune.json`` for ``finetune``, ``.sambench-report`` for a report folder). Any
other folder that is not empty (e.g. the user's own ``results.parquet``, ``tables/*.csv``, notes)
is refused before anything is written, naming the folder and what was found in it, so a mistyped
``--out`` never overwrites the user's files. (``prepare`` makes the same check on its datasets.)
"""

from __future__ import annotations

from pathlib import Path

from sambench.errors import DataError

REPORT_MARKER = ".sambench-report"
"""Written first into a report folder by :func:`sambench.report.build.build_report`."""

# The marker file of each kind of run folder, written before anything else (so an interrupted run
# is still recognised as ours).
RUN_MARKERS = {
    "evaluate": "config.json",
    "evaluate-3d": "config-3d.json",
    "finetune": "finetune.json",
    "report": REPORT_MARKER,
}
# Entries that never make a folder "not empty": the run lock (see :mod:`sambench.store.runlock`).
IGNORED_ENTRIES = frozenset({".sambench.lock"})


def _describe(entries: list[Path], limit: int = 6) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in entries)
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def ensure_run_folder(path: Path | str, kind: str, option: str = "--out") -> Path:
    """Check that ``path`` may receive the output of a ``kind`` run; return it as a Path.

    Accepted: a folder that does not exist yet (it is not created here), an empty folder, or a
    folder holding ``RUN_MARKERS[kind]`` (a run of that kind, resumed or extended as before).
    Raises :class:`~sambench.errors.DataError` naming the folder and its entries otherwise,
    or when ``path`` is a file. ``option`` names the command-line option in the message.
    """
    if kind not in RUN_MARKERS:
        raise ValueError(f"kind: {kind!r} is not one of {', '.join(RUN_MARKERS)}")
    path = Path(path)
    marker = RUN_MARKERS[kind]
    if not path.exists():
        return path
    if not path.is_dir():
        raise DataError(path, f"is a file; {option} expects a folder (empty, new or a {kind} run)")
    if (path / marker).is_file() or (kind == "report" and (path / "report.html").is_file()):
        return path  # (report folders written before the marker existed hold report.html)
    entries = [p for p in path.iterdir() if p.name not in IGNORED_ENTRIES]
    if entries:
        raise DataError(
            path,
            f"is not empty and is not a sambench {kind} run folder (no {marker}); found "
            f"{_describe(entries)}. Refusing to write there: give {option} a new or empty folder",
        )
    return path


def remove_if_unused(path: Path | str) -> bool:
    """Remove the folder ``path`` when it holds nothing but :data:`IGNORED_ENTRIES` (a run that
    was refused before it wrote anything leaves nothing behind); True when it was removed."""
    path = Path(path)
    if not path.is_dir():
        return False
    entries = list(path.iterdir())
    if any(p.name not in IGNORED_ENTRIES or not p.is_file() for p in entries):
        return False
    for p in entries:
        p.unlink(missing_ok=True)
    try:
        path.rmdir()
    except OSError:  # something appeared meanwhile: keep it
        return False
    return True
