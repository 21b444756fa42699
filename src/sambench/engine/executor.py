"""How ``sambench evaluate`` runs: in this process (``local``) or on a Ray cluster (``ray``).

These options never change a number in the results (the config's fields do), so they are not
part of ``config.json``: a run folder started by one executor is resumed by the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sambench.engine.config import check_min_ints
from sambench.errors import OptionError

EXECUTORS = ("local", "ray")
DEFAULT_GPU_ENCODER_BATCH = 4
"""Images per encoder pass on a GPU when ``--encoder-batch`` is not given."""


@dataclass(frozen=True)
class ExecutorOptions:
    """The executor and its resources.

    - ``executor``: ``"local"`` (one process, the default) or ``"ray"``.
    - ``address``: the Ray cluster (``"auto"``, ``"HOST:PORT"``); None starts a local Ray
      instance on this machine (or uses the one this process already initialised).
    - ``workers``: Ray actors (model replicas); None = as many as the cluster's CPUs (or GPUs
      with ``gpus_per_worker``) allow, at most one per batch.
    - ``gpus_per_worker`` / ``cpus_per_worker``: Ray resources of each actor (fractions allowed:
      0.5 GPU puts two replicas on one GPU).
    - ``batch_images``: images per Ray task (the unit a killed worker loses and Ray retries; one
      result part per batch).
    - ``max_retries``: Ray restarts of a dead actor and retries of its batch.
    - ``connect_timeout``: seconds to wait for ``address`` to answer.
    - ``encoder_batch``: images per encoder pass on a GPU (None: 4 on a GPU, 1 on a CPU).
    - ``prefetch``: images read ahead by the reader thread (0 = read in the model's thread).
    - ``single_file``: finish with the per-protocol files (``results.parquet``, ...; built in
      memory, :meth:`ResultsStore.finalize`); False: only the parts, their manifest and
      ``prompts.jsonl``, rows never materialised (:meth:`ResultsStore.finalize_dataset`).
    """

    executor: str = "local"
    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    batch_images: int = 8
    max_retries: int = 3
    connect_timeout: float = 10.0
    encoder_batch: int | None = None
    prefetch: int = 2
    single_file: bool = True

    def validate(self) -> None:
        """Raise :class:`OptionError` naming the option of a bad value."""
        if self.executor not in EXECUTORS:
            raise OptionError(
                "--executor", f"{self.executor!r} is not one of {', '.join(EXECUTORS)}"
            )
        ints = (
            ("--workers", self.workers, 1),
            ("--encoder-batch", self.encoder_batch, 1),
            ("batch_images", self.batch_images, 1),
            ("max_retries", self.max_retries, 0),
            ("prefetch", self.prefetch, 0),
        )
        check_min_ints(ints, none_ok=True)
        for option, x in (
            ("--gpus-per-worker", self.gpus_per_worker),
            ("--cpus-per-worker", self.cpus_per_worker),
        ):
            if not (isinstance(x, (int, float)) and math.isfinite(x) and x >= 0):
                raise OptionError(option, f"expected a number >= 0, got {x!r}")
        if self.cpus_per_worker == 0 and self.gpus_per_worker == 0:
            raise OptionError("--cpus-per-worker", "a worker needs CPUs or GPUs; got 0 of both")
        if not (math.isfinite(self.connect_timeout) and self.connect_timeout > 0):
            raise OptionError(
                "connect_timeout", f"expected seconds > 0, got {self.connect_timeout}"
            )
        if self.executor == "local":
            for option, given in (
                ("--address", self.address is not None),
                ("--workers", self.workers is not None),
                ("--gpus-per-worker", self.gpus_per_worker != 0.0),
            ):
                if given:
                    raise OptionError(option, "only applies with --executor ray")

    def resolved_encoder_batch(self, model: object) -> int:
        """Images per encoder pass for ``model``: ``encoder_batch``, or 4 on a GPU, 1 on a CPU."""
        if self.encoder_batch is not None:
            return self.encoder_batch
        device = str(getattr(model, "device", "cpu"))
        return DEFAULT_GPU_ENCODER_BATCH if device.startswith("cuda") else 1
