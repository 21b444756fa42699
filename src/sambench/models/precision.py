"""Reduced precision for the image encoder: ``--precision fp32|bf16|fp16`` (docs/performance.md).

- ``fp32`` (default): the reference; every equality test of the runtimes is against it.
- ``bf16``: the SAM family's image encoder under ``torch.autocast(device, torch.bfloat16)``
  (eager torch, CPU or CUDA), or compiled by OpenVINO with ``INFERENCE_PRECISION_HINT=bf16``
  (``--runtime openvino``). Fast on CPUs with AMX or AVX512-BF16 and on recent GPUs.
- ``fp16``: ``torch.autocast("cuda", torch.float16)``; CUDA only.

The prompt encoder and mask decoder stay fp32 (measured on a CPU: the official decoder under
bf16 autocast was slower than the fp32 batched decoder; docs/performance.md). Features are returned as float32 whatever the precision, so
caches, decoders and metrics see one dtype. Reduced precision is not numerically equal to fp32:
it is opt-in, recorded in the run's config and in the adapter's signature (so the embedding
cache keeps its entries apart), and measured against fp32 in ``benchmarks/precision_check.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from sambench.errors import OptionError

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision_name(precision: str) -> None:
    """Raise :class:`~sambench.errors.OptionError` (``--precision``) for an unknown name."""
    if precision not in PRECISIONS:
        raise OptionError("--precision", f"{precision!r} is not one of {', '.join(PRECISIONS)}")


def check_precision(precision: str, device: str | torch.device, runtime: str = "torch") -> None:
    """Raise :class:`~sambench.errors.OptionError` (``--precision``) unless ``precision`` can run
    on ``device`` with ``runtime`` (``torch``, ``openvino``, ``onnxruntime`` or ``auto``)."""
    check_precision_name(precision)
    if precision == "fp32":
        return
    dev = torch.device(device)
    if precision == "fp16" and dev.type != "cuda":
        raise OptionError(
            "--precision", f"fp16 needs a CUDA device (got {dev.type!r}); on a CPU use bf16"
        )
    if runtime == "onnxruntime":
        raise OptionError(
            "--precision",
            f"{precision} is not available with --runtime onnxruntime; use torch "
            "or openvino, or --precision fp32",
        )


@contextlib.contextmanager
def encoder_autocast(precision: str, device: torch.device) -> Iterator[None]:
    """``torch.autocast`` for ``precision`` on ``device`` (nothing for fp32)."""
    dtype = DTYPES.get(precision)
    if dtype is None:
        yield
        return
    with torch.autocast(device.type, dtype=dtype):
        yield


def openvino_hint(precision: str) -> str:
    """OpenVINO's ``INFERENCE_PRECISION_HINT`` for ``precision`` (``f32`` or ``bf16``)."""
    return "bf16" if precision == "bf16" else "f32"
