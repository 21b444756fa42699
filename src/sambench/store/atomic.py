"""Atomic file writers: write to a temporary file in the same folder, then rename over the target.

A reader never sees a half-written file, and an interrupted write leaves the previous version (or
nothing) in place. (Owned by the data stage; the engine uses the same writers.)

Permissions: ``tempfile.mkstemp`` creates its file with mode 0600; before the rename the file is
given ``0o666 & ~umask`` (what ``open(path, "w")`` would have made), so every file sambench writes
follows the user's umask (e.g. 0644 under the usual 022).
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_UMASK: int | None = None
_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read once and remembered.

    Read from ``/proc/self/status`` where the kernel provides it (no side effect); elsewhere by the
    classic ``os.umask`` set-and-restore, under a lock so threads of this module never race on it.
    :func:`reset_umask_cache` forgets the value (tests that change the umask call it).
    """
    global _UMASK
    with _UMASK_LOCK:
        if _UMASK is None:
            _UMASK = _read_umask()
        return _UMASK


def reset_umask_cache() -> None:
    global _UMASK
    with _UMASK_LOCK:
        _UMASK = None


def _read_umask() -> int:
    try:
        with open("/proc/self/status") as f:
            m = re.search(r"^Umask:\s*([0-7]+)", f.read(), re.MULTILINE)
        if m:
            return int(m.group(1), 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path | str, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    ``suffix`` ends the temporary name, so writers that dispatch on the extension (e.g.
    ``".png"``, ``".nii.gz"``) see it: ``.<name>.<random>.tmp<suffix>``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())
        os.replace(tmp_path, path)
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        if e.errno in (errno.ENOSPC, errno.EDQUOT) and e.filename in (None, str(tmp_path)):
            # name the file being written (a full disk otherwise names none)
            raise OSError(e.errno, os.strerror(e.errno), str(path)) from e
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def temp_dir_beside(path: Path | str, suffix: str = "") -> Path:
    """A new empty temporary folder beside ``path``, ``.<name>.<random>.tmp<suffix>`` (removed
    by :func:`remove_atomic_temps` when a killed writer leaves it), later put in place by
    :func:`commit_dir`: a reader never sees a half-written folder (a zarr store)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent))


def commit_dir(tmp: Path, path: Path | str) -> Path:
    """Put the finished folder ``tmp`` (from :func:`temp_dir_beside`) at ``path``: mode
    ``0o777 & ~umask``; an existing ``path`` is moved aside, ``tmp`` renamed in, the old removed."""
    import shutil

    path = Path(path)
    os.chmod(tmp, 0o777 & ~current_umask())
    if path.exists():
        old = temp_dir_beside(path, ".old")
        os.replace(path, old / path.name)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)
    return path


def write_atomic(path: Path | str, writer: Callable[[Path], Any], suffix: str = "") -> Path:
    """Call ``writer(tmp_path)`` then rename the result onto ``path``."""
    with atomic_path(path, suffix) as tmp:
        writer(tmp)
    return Path(path)


def write_bytes_atomic(path: Path | str, data: bytes) -> Path:
    return write_atomic(path, lambda p: p.write_bytes(data))


def write_text_atomic(path: Path | str, text: str) -> Path:
    return write_atomic(path, lambda p: p.write_text(text))


def write_json_atomic(path: Path | str, obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_parquet_atomic(path: Path | str, df: Any) -> Path:
    """Write a pandas DataFrame as Parquet (pyarrow), atomically."""
    return write_atomic(path, lambda p: df.to_parquet(p, index=False))


def write_png_atomic(path: Path | str, array: Any) -> Path:
    """Write an HxW (gray) or HxWx3 (RGB) uint8 array as a PNG, atomically.

    Raises ``ValueError`` for any other dtype or shape (a prepared PNG is always 8-bit).
    """
    import numpy as np
    from PIL import Image

    arr = np.asarray(array)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(
            f"{path}: expected an HxW or HxWx3 uint8 array, got {arr.dtype} of shape {arr.shape}"
        )
    image = Image.fromarray(np.ascontiguousarray(arr))
    return write_atomic(path, lambda p: image.save(p, format="PNG"), suffix=".png")


# ``tempfile.mkstemp`` names: prefix ``.<target name>.``, 8 random characters, ``.tmp<suffix>``.
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9.]+)?$")


def is_atomic_temp(name: str) -> bool:
    """True for a temporary file name made by :func:`atomic_path` (``.<name>.<random>.tmp<sfx>``)."""
    return bool(_TEMP_NAME.match(name))


def remove_atomic_temps(folder: Path | str) -> list[Path]:
    """Delete the temporary files :func:`atomic_path` (and folders :func:`temp_dir_beside`) left in
    ``folder`` and its sub-folders.

    A killed process cannot rename or remove its temporary files; call this on start, before
    writing, in a folder this run owns (a concurrent writer's live temporaries would go too).
    Returns the removed paths. A missing folder is no error.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    import shutil

    for p in sorted(folder.rglob(".*.tmp*")):
        if any(p.is_relative_to(r) for r in removed):
            continue  # inside a temporary folder already removed
        if p.is_file() and is_atomic_temp(p.name):
            p.unlink(missing_ok=True)
            removed.append(p)
        elif p.is_dir() and not p.is_symlink() and is_atomic_temp(p.name):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed
