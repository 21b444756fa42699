"""One process per run folder: a lock file with the holder's host, pid and start time.

``RUN_DIR/.sambench.lock`` holds a JSON object ``{"host", "pid", "started", "command"}`` while a
run writes the folder. The lock is an ``fcntl.flock`` on that file, so the kernel releases it
when the holder dies (even by ``kill -9``); the JSON says who holds it, for the messages.

- A second run on the same folder refuses (:class:`RunLockedError`, naming the holder's host and
  pid), or with ``wait=True`` waits until the lock is free.
- A lock file left behind by a process that is gone (same host, lock not held: the pid is not
  running, or now belongs to another program) is stale: it is taken over with a warning naming the
  dead holder.
- A lock file written on another host whose lock this host cannot see held (e.g. a network file
  system without shared locks) is never broken automatically: the message says to delete the file
  once that process is known to be gone.

Without ``fcntl`` (Windows) the JSON alone decides, with the same rules (best effort).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from sambench.errors import DataError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LOCK_NAME = ".sambench.lock"


class RunLockedError(DataError):
    """The run folder is in use by another sambench process."""


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a permission error means it does)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _holder_text(info: dict[str, Any]) -> str:
    if not info:
        return "another process (its lock file is being written)"
    return (
        f"{info.get('command', 'sambench')} pid {info.get('pid', '?')} on host "
        f"{info.get('host', '?')} (started {info.get('started', '?')})"
    )


class RunLock:
    """The lock of one run folder; use as a context manager or with :meth:`acquire`/:meth:`release`.

    - ``run_dir``: the run folder (created if missing).
    - ``command``: what holds the lock, for the messages (e.g. ``"evaluate"``).
    - ``wait``: wait for a held lock instead of refusing; ``poll_seconds`` between tries.
    """

    def __init__(
        self,
        run_dir: Path | str,
        command: str = "sambench",
        *,
        wait: bool = False,
        poll_seconds: float = 1.0,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.command = command
        self.wait = wait
        self.poll_seconds = poll_seconds
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock; raise :class:`RunLockedError` if held (unless ``wait``)."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path}: this RunLock is already held")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        announced = False
        while True:
            holder = self._try_acquire()
            if holder is None:
                return self
            if not self.wait:
                raise RunLockedError(
                    self.path,
                    f"run folder in use by {_holder_text(holder)}; wait for it to finish, pass "
                    "--wait-lock to wait, or delete this file if that process is gone",
                )
            if not announced:
                log.warning("%s: waiting for %s to finish", self.path, _holder_text(holder))
                announced = True
            time.sleep(self.poll_seconds)

    def release(self) -> None:
        """Remove the lock file and release the lock (no-op when not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still locked: see _try_acquire's inode check
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    # -- internals -----------------------------------------------------------------------------

    def _try_acquire(self) -> dict[str, Any] | None:
        """None when the lock is now ours, else what the lock file says of its holder."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                if fcntl is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        os.close(fd)
                        return self._read_info(self.path)
                    try:
                        same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                    except FileNotFoundError:
                        same = False
                    if not same:  # the holder removed the file as we opened it: try again
                        os.close(fd)
                        continue
                info = self._read_info(self.path)
                if info and not self._stale(info):
                    os.close(fd)
                    return info
                self._write_info(fd)
            except BaseException:
                if self._fd is None:
                    os.close(fd)
                raise
            self._fd = fd
            return None

    def _stale(self, info: dict[str, Any]) -> bool:
        """Whether a lock file whose lock we could take was left by a process that is gone."""
        pid, host = info.get("pid"), info.get("host")
        if host != socket.gethostname() or not isinstance(pid, int):
            return False
        alive = pid_alive(pid)
        if fcntl is None and alive:
            return False
        # With flock, a live sambench holder always holds the lock: a live pid here is a reused one.
        log.warning(
            "%s: broke a stale lock of %s; that process %s",
            self.path,
            _holder_text(info),
            "is no longer running" if not alive else "no longer holds it (pid reused)",
        )
        return True

    @staticmethod
    def _read_info(path: Path) -> dict[str, Any]:
        try:
            d = json.loads(path.read_text() or "{}")
        except (OSError, ValueError):
            return {}
        return d if isinstance(d, dict) else {}

    def _write_info(self, fd: int) -> None:
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": self.command,
        }
        data = (json.dumps(info) + "\n").encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
