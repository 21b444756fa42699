"""The run lock: a second process on the same run folder refuses (or waits); stale locks of dead
processes are broken with a message; locks of another host are never broken automatically."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate
from sambench.store.runlock import LOCK_NAME, RunLock, RunLockedError

from fakes import FakeModel, make_prepared

SRC = str(Path(__file__).resolve().parents[1] / "src")
HOLDER = """
import sys
from sambench.store.runlock import RunLock
lock = RunLock(sys.argv[1], "evaluate").acquire()
print("locked", flush=True)
sys.stdin.readline()
lock.release()
print("released", flush=True)
"""


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    return make_prepared(tmp_path / "prepared", n_images=2)


def run(prepared: Path, out: Path, wait_lock: bool = False) -> pd.DataFrame:
    cfg = RunConfig(prepared=str(prepared), model="fake", progress=False, strategies=("S5",))
    return evaluate(cfg, out, model=FakeModel(), flush_every=1, wait_lock=wait_lock)


def start_holder(run_dir: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "locked"
    return p


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_second_process_is_refused_naming_host_and_pid(prepared: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    holder = start_holder(out)
    try:
        with pytest.raises(RunLockedError) as e:
            run(prepared, out)
        msg = str(e.value)
        assert f"pid {holder.pid}" in msg and socket.gethostname() in msg
        assert str(out / LOCK_NAME) in msg and "--wait-lock" in msg
        assert not (out / "parts").exists() and not (out / "config.json").exists()
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)
    # once released, the run goes ahead and removes its own lock at the end
    run(prepared, out)
    assert (out / "results.parquet").exists() and not (out / LOCK_NAME).exists()


def test_wait_lock_waits_for_the_holder(
    prepared: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "run"
    holder = start_holder(out)

    def release_later() -> None:
        time.sleep(1.5)
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()

    t = threading.Thread(target=release_later)
    t0 = time.monotonic()
    t.start()
    with caplog.at_level(logging.WARNING, logger="sambench.store.runlock"):
        res = run(prepared, out, wait_lock=True)
    waited = time.monotonic() - t0
    t.join()
    holder.wait(timeout=30)
    assert waited >= 1.4 and len(res) > 0
    assert f"waiting for evaluate pid {holder.pid}" in caplog.text


def test_stale_lock_of_a_dead_pid_is_broken_with_a_message(
    prepared: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    pid = dead_pid()
    info = {"host": socket.gethostname(), "pid": pid, "started": "2026-01-01T00:00:00+00:00"}
    (out / LOCK_NAME).write_text(json.dumps(info))
    with caplog.at_level(logging.WARNING, logger="sambench.store.runlock"):
        res = run(prepared, out)  # a folder holding only our lock file is not "foreign"
    assert len(res) > 0
    assert f"broke a stale lock of sambench pid {pid}" in caplog.text
    assert "no longer running" in caplog.text


def test_lock_of_a_killed_holder_is_stale(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    holder = start_holder(tmp_path)
    holder.send_signal(signal.SIGKILL)  # no clean-up: the lock file stays behind
    holder.wait(timeout=30)
    assert (tmp_path / LOCK_NAME).exists()
    with caplog.at_level(logging.WARNING, logger="sambench.store.runlock"):
        with RunLock(tmp_path, "test") as lock:
            assert lock.held
            mine = json.loads((tmp_path / LOCK_NAME).read_text())
            assert mine["pid"] == os.getpid() and mine["command"] == "test"
    assert f"pid {holder.pid}" in caplog.text and "stale" in caplog.text
    assert not (tmp_path / LOCK_NAME).exists()


def test_lock_of_another_host_is_not_broken(tmp_path: Path) -> None:
    info = {"host": "other-host.example", "pid": dead_pid(), "started": "x", "command": "evaluate"}
    (tmp_path / LOCK_NAME).write_text(json.dumps(info))
    with pytest.raises(RunLockedError, match=r"on host other-host\.example"):
        RunLock(tmp_path).acquire()
    assert json.loads((tmp_path / LOCK_NAME).read_text()) == info


def test_same_process_cannot_take_the_lock_twice(tmp_path: Path) -> None:
    with RunLock(tmp_path, "first"), pytest.raises(RunLockedError, match="first pid"):
        RunLock(tmp_path, "second").acquire()
