"""The GrabCut baseline with injected faults, as ``--model ray_fault_adapter:build`` (tests only).

It is :class:`~sambench.models.baselines.GrabCutBaseline` under its own name (``grabcut``), so its
rows equal a plain GrabCut run's. Faults are driven by files in ``$SAMBENCH_TEST_FAULTS`` (the
Ray workers are other processes, so the test talks to them through the file system):

- ``die_at``: holds N; the N-th ``embed`` call, counted over every process in ``calls``, ends its
  process with ``os._exit(1)`` (once: ``died`` is written first), like a node killed mid-batch;
- ``raise_at``: holds N; every ``embed`` call from the N-th on raises ``RuntimeError`` while the
  file exists (an interrupted run, resumed once the file is removed).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sambench.models.base import Embedding
from sambench.models.baselines import GrabCutBaseline


def _dir() -> Path:
    return Path(os.environ["SAMBENCH_TEST_FAULTS"])


def _count_call() -> int:
    fd = os.open(_dir() / "calls", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, b".")
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def _read_int(name: str) -> int | None:
    p = _dir() / name
    return int(p.read_text()) if p.exists() else None


class FaultyGrabCut(GrabCutBaseline):
    def embed(self, image: np.ndarray) -> Embedding:
        n = _count_call()
        die_at = _read_int("die_at")
        if die_at is not None and n >= die_at and not (_dir() / "died").exists():
            (_dir() / "died").write_text(str(os.getpid()))
            os._exit(1)
        raise_at = _read_int("raise_at")
        if raise_at is not None and n >= raise_at:
            raise RuntimeError(f"injected failure at embed call {n}")
        return super().embed(image)


def build(checkpoint: str | None, *, device: str) -> FaultyGrabCut:
    return FaultyGrabCut()
