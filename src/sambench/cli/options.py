"""The options that several ``sambench`` commands share, each declared once.

An option that reads the same in every command is a type alias (``device: O.Device = None``);
one whose help, metavar or bounds differ between commands is a small factory that returns the
``typer.Option`` to put in ``Annotated[...]`` (``out: Annotated[Path, O.out("Run folder.")]``).
The defaults stay in each command's signature. The executor options of ``sambench evaluate``
(``--executor`` and its resources) live here too, beside :func:`comma_list`, the parser of the
comma-list options (``--datasets``, ``--strategies``, ``--cases`` ...), and :func:`config_of`,
which turns a command's option values into its settings dataclass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Protocol, TypeVar

import typer


class _Settings(Protocol):
    """A dataclass of settings (RunConfig, FinetuneConfig ...)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]


C = TypeVar("C", bound=_Settings)

RUNTIME_HELP = "torch (default), openvino, onnxruntime (CPU) or auto (docs/performance.md)."
PRECISION_HELP = (
    "Image encoder precision: fp32 (default), bf16 (CPU or CUDA; torch or openvino) or fp16 "
    "(CUDA). Not equal to fp32: docs/performance.md."
)
DEVICE_AUTO_HELP = "cpu, cuda, cuda:N, mps (default: auto)."
WAIT_LOCK_HELP = "Wait while another run holds the --out folder (default: refuse)."
PROGRESS_HELP = "Show progress bars."


def comma_list(value: str | None) -> tuple[str, ...] | None:
    """A comma-list option's value as a tuple of its non-empty items (None stays None)."""
    if value is None:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip())


def config_of(cls: type[C], values: Mapping[str, object], **converted: object) -> C:
    """``cls``, a dataclass of settings, from a command's option values (its ``locals()``).

    Each option named as a field of ``cls`` gives that field, a path as text (the configs keep
    paths as strings); options of other names are not passed. ``converted`` gives the fields that
    the command line holds in another form (a comma list, an option of another name) and wins.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    given = {k: str(v) if isinstance(v, Path) else v for k, v in values.items() if k in names}
    return cls(**{**given, **converted})


def prepared(text: str) -> Any:
    """The ``PREPARED`` argument: a ``sambench prepare`` output folder."""
    return typer.Argument(help=text)


def out(text: str) -> Any:
    """``--out`` / ``-o``: the folder a command writes (a run, a report, a session ...)."""
    return typer.Option("--out", "-o", help=text)


def model(text: str, *, metavar: str | None = "MODEL") -> Any:
    """``--model`` / ``-m``: a registry name (or ``package.module:builder``)."""
    return typer.Option("--model", "-m", metavar=metavar, help=text)


def checkpoint(text: str) -> Any:
    """``--checkpoint FILE``: the model's weights."""
    return typer.Option("--checkpoint", metavar="FILE", help=text)


def device(text: str = DEVICE_AUTO_HELP) -> Any:
    """``--device DEVICE``: cpu, cuda, cuda:N or mps."""
    return typer.Option("--device", metavar="DEVICE", help=text)


def seed(text: str, *, at_least: int | None = 0, metavar: str | None = None) -> Any:
    """``--seed``: the seed of what the command draws at random."""
    return typer.Option("--seed", min=at_least, metavar=metavar, help=text)


def progress(text: str = PROGRESS_HELP) -> Any:
    """``--progress/--no-progress``: progress bars on stderr."""
    return typer.Option("--progress/--no-progress", help=text)


def wait_lock(text: str = WAIT_LOCK_HELP) -> Any:
    """``--wait-lock``: wait for another run holding the ``--out`` folder instead of refusing."""
    return typer.Option("--wait-lock", help=text)


def max_images(text: str, *, at_least: int | None = None, metavar: str | None = None) -> Any:
    """``--max-images N``: an evenly spaced subset of the images."""
    return typer.Option("--max-images", min=at_least, metavar=metavar, help=text)


def datasets(*, metavar: str | None = None) -> Any:
    """``--datasets``: a comma list of dataset names (:func:`comma_list`)."""
    return typer.Option(
        "--datasets", metavar=metavar, help="Comma list of datasets (default: all)."
    )


def strategies(text: str) -> Any:
    """``--strategies`` / ``-s LIST``: a comma list of prompt strategies (:func:`comma_list`)."""
    return typer.Option("--strategies", "-s", metavar="LIST", help=text)


def cases(text: str) -> Any:
    """``--cases LIST``: a comma list of ``<dataset>/<case>`` (:func:`comma_list`)."""
    return typer.Option("--cases", metavar="LIST", help=text)


def nsd_tolerance_mm(text: str) -> Any:
    """``--nsd-tolerance-mm MM``: the NSD tolerance of the millimetre metrics."""
    return typer.Option("--nsd-tolerance-mm", metavar="MM", help=text)


def empty(text: str, *, metavar: str) -> Any:
    """``--empty``: the distances of an empty prediction, worst or nan."""
    return typer.Option("--empty", metavar=metavar, help=text)


def save_masks(text: str) -> Any:
    """``--save-masks``: write the predicted masks beside the results."""
    return typer.Option("--save-masks", help=text)


def shift(text: str, *, metavar: str | None = None) -> Any:
    """``--shift``: shifted prompts (a flag in 2D, a pixel range in 3D)."""
    return typer.Option("--shift", metavar=metavar, help=text)


def multimask(text: str, *, metavar: str | None = None, negative: str = "") -> Any:
    """``--multimask``: candidates per prompt (a mode, or a flag pair with ``negative``)."""
    return typer.Option(f"--multimask{negative}", metavar=metavar, help=text)


def skip_bad(text: str) -> Any:
    """``--skip-bad``: record bad inputs as skipped instead of stopping."""
    return typer.Option("--skip-bad", help=text)


def workers(text: str, *short: str, at_least: int | None = None, metavar: str | None = None) -> Any:
    """``--workers``: parallel processes (``prepare``) or Ray workers (``evaluate``)."""
    return typer.Option("--workers", *short, min=at_least, metavar=metavar, help=text)


Device = Annotated[str | None, device()]
# the web annotators' (annotate, annotate-volume)
Annotator = Annotated[str, typer.Option("--annotator", help="Who annotates (logged).")]
Host = Annotated[
    str, typer.Option("--host", help="Interface to listen on (default: this machine only).")
]
Runtime = Annotated[str, typer.Option("--runtime", metavar="RUNTIME", help=RUNTIME_HELP)]
Precision = Annotated[str, typer.Option("--precision", metavar="PRECISION", help=PRECISION_HELP)]
CacheDir = Annotated[
    Path | None,
    typer.Option("--cache-dir", metavar="DIR", help="On-disk embedding cache folder."),
]
ModelConfig = Annotated[
    Path | None,
    typer.Option("--model-config", metavar="FILE", help="sam2 Hydra YAML (sam2*, medsam2)."),
]
Progress = Annotated[bool, progress()]
WaitLock = Annotated[bool, wait_lock()]
Prepared = Annotated[Path, prepared("A `sambench prepare` output folder.")]

# The executor of `sambench evaluate` (docs/distributed.md) and its one-machine speed-ups.
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
Workers = Annotated[int | None, workers("Ray workers (default: as resources allow).", metavar="N")]
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
SingleFile = Annotated[
    bool,
    typer.Option(
        "--single-file/--no-single-file",
        help="Finish with results.parquet & co (in memory), or only the parts + manifest "
        "(out of core; `sambench report --out-of-core`).",
    ),
]
