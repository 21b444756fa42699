"""The ``sambench evaluate`` options of the executor (``--executor local|ray`` and its resources)
and of the one-machine speed-ups, as reusable typer annotations (cli.py stays short)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # pragma: no cover
    from sambench.engine.executor import ExecutorOptions

Executor = Annotated[
    str,
    typer.Option(
        "--executor",
        metavar="EXECUTOR",
        help="local (this process) or ray (one model replica per Ray actor; docs/distributed.md).",
    ),
]
Address = Annotated[
    str | None,
    typer.Option(
        "--address",
        metavar="ADDRESS",
        help="Ray cluster: auto or HOST:PORT (default: start a local one).",
    ),
]
Workers = Annotated[
    int | None,
    typer.Option("--workers", metavar="N", help="Ray workers (default: as resources allow)."),
]
GpusPerWorker = Annotated[
    float,
    typer.Option("--gpus-per-worker", metavar="F", help="GPUs per Ray worker (0.5: 2 per GPU)."),
]
CpusPerWorker = Annotated[
    float, typer.Option("--cpus-per-worker", metavar="F", help="CPUs per Ray worker.")
]
EncoderBatch = Annotated[
    int | None,
    typer.Option(
        "--encoder-batch", metavar="N", help="Images per encoder pass on a GPU (default 4)."
    ),
]
CacheDtype = Annotated[
    str,
    typer.Option(
        "--cache-dtype",
        metavar="DTYPE",
        help="float32, or float16: embeddings rounded to fp16 (half the cache; see docs).",
    ),
]


def options(
    executor: str,
    address: str | None,
    workers: int | None,
    gpus_per_worker: float,
    cpus_per_worker: float,
    encoder_batch: int | None,
) -> ExecutorOptions:
    """The :class:`~sambench.engine.executor.ExecutorOptions` of the command line's values."""
    from sambench.engine.executor import ExecutorOptions

    return ExecutorOptions(
        executor=executor,
        address=address,
        workers=workers,
        gpus_per_worker=gpus_per_worker,
        cpus_per_worker=cpus_per_worker,
        encoder_batch=encoder_batch,
    )
