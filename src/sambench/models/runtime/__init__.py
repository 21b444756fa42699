"""Model runtimes: eager PyTorch, or the image encoder and prompt encoder + mask decoder exported
to ONNX and run by ONNX Runtime or OpenVINO on the CPU (docs/performance.md).

- ``torch``: eager PyTorch (the default; the reference every other runtime is tested against);
- ``onnxruntime`` / ``openvino``: the graphs of :mod:`.graphs`, exported once per checkpoint
  (:mod:`.export`), CPU only;
- ``auto``: OpenVINO when the device is the CPU and ``openvino`` is installed, else torch; an
  export that fails under ``auto`` falls back to torch with a warning naming the reason (asked
  for explicitly, the failure is an error).

The runtime is part of the adapter's ``signature()`` (``runtime``: name and version), hence of
the embedding cache's key and of the run configuration.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from sambench.errors import OptionError
from sambench.models.precision import check_precision
from sambench.models.runtime.export import PACKAGES, default_export_dir, exported_file
from sambench.models.runtime.export import package_version as package_version
from sambench.models.runtime.export import runtime_label as runtime_label

log = logging.getLogger(__name__)

RUNTIMES: tuple[str, ...] = ("torch", "openvino", "onnxruntime", "auto")


class RuntimeExportError(OptionError):
    """An explicitly requested runtime whose export or compilation failed."""


def _installed(runtime: str) -> bool:
    return importlib.util.find_spec(PACKAGES[runtime]) is not None


def resolve_runtime(runtime: str, device: str | torch.device) -> str:
    """The concrete runtime (``torch``, ``openvino`` or ``onnxruntime``) for ``runtime`` on
    ``device``. Raises :class:`~sambench.errors.OptionError` (``--runtime``) for an unknown name,
    a runtime that is not installed (naming the package to install) or a non-CPU device."""
    if runtime not in RUNTIMES:
        raise OptionError("--runtime", f"{runtime!r} is not one of {', '.join(RUNTIMES)}")
    dev = torch.device(device)
    if runtime == "auto":
        return "openvino" if dev.type == "cpu" and _installed("openvino") else "torch"
    if runtime == "torch":
        return runtime
    if not _installed(runtime):
        raise OptionError(
            "--runtime",
            f"{runtime!r} is not installed; install the package {PACKAGES[runtime]!r} "
            f"(pip install {PACKAGES[runtime]}, or sambench[runtime])",
        )
    if dev.type != "cpu":
        raise OptionError(
            "--runtime", f"{runtime!r} runs on the CPU; use --device cpu (got {dev.type!r})"
        )
    return runtime


def apply_runtime(
    adapter: Any,
    runtime: str,
    *,
    export_dir: str | Path | None = None,
    precision: str = "fp32",
    decoder: bool = False,
) -> Any:
    """Put a :class:`~sambench.models.sam_family.SamFamilyAdapter` on ``runtime`` (in place).

    Exports (or reuses) the encoder graph under ``export_dir`` (default
    :func:`~.export.default_export_dir` of no cache) and swaps ``adapter.image_encoder``.

    - ``decoder``: also export the prompt encoder + mask decoder graph, set as
      ``adapter.runtime_decoder`` and used by every decode without gradient. Off by default:
      sambench's eager batched decoder (:mod:`sambench.models.batched_decoder`) was faster than
      the exported official decoder under both runtimes on every CPU measured
      (docs/performance.md).
    - ``precision`` (:mod:`sambench.models.precision`, checked here): the image encoder's;
      autocast under torch, OpenVINO's inference precision for the encoder graph (the decoder
      graph stays f32).

    Returns the adapter.
    """
    from sambench.models.checkpoints import state_hash
    from sambench.models.runtime.backend import RuntimeDecoder, RuntimeEncoder, Session
    from sambench.models.runtime.graphs import DecoderGraph

    concrete = resolve_runtime(runtime, adapter.device)
    check_precision(precision, adapter.device, concrete)
    adapter.precision = precision
    if concrete == "torch":
        adapter.runtime = "torch"
        return adapter
    folder = Path(export_dir) if export_dir is not None else default_export_dir(None)
    model = adapter.model
    weights = adapter.checkpoint_sha256 or f"state:{state_hash(model)}"
    size = tuple(int(v) for v in model.prompt_encoder.input_image_size)
    common = dict(runtime=concrete, model_name=adapter.name, export_dir=folder)
    try:
        enc_path = exported_file(
            model.image_encoder.cpu(),
            part="encoder",
            weights_sha256=weights,
            input_shape=(1, 3, *size),
            **common,  # type: ignore[arg-type]
        )
        encoder = RuntimeEncoder(Session(enc_path, concrete, precision))
        runtime_decoder = None
        if decoder:
            dec_weights = f"{weights}+decoder:{adapter.decoder_sha256 or ''}"
            if adapter.decoder_sha256 is None and adapter.checkpoint_sha256 is None:
                dec_weights = weights
            dec_path = exported_file(
                DecoderGraph(model).cpu(),
                part="decoder",
                weights_sha256=_short(dec_weights),
                input_shape=(1, 3, *size),
                graph_owner=model,
                **common,  # type: ignore[arg-type]
            )
            runtime_decoder = RuntimeDecoder(Session(dec_path, concrete), adapter.mask_input_size)
    except Exception as e:
        reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        model.to(adapter.device)
        if runtime == "auto":
            warnings.warn(
                f"--runtime auto: exporting {adapter.name} for {concrete} failed ({reason}); "
                "using torch",
                stacklevel=2,
            )
            adapter.runtime = "torch"
            return adapter
        raise RuntimeExportError(
            "--runtime", f"exporting {adapter.name} for {concrete} failed ({reason})"
        ) from e
    model.to(adapter.device)
    adapter.image_encoder = encoder
    adapter.runtime_decoder = runtime_decoder
    adapter.runtime = concrete
    return adapter


def _short(weights: str) -> str:
    import hashlib

    if "+" not in weights:
        return weights
    return hashlib.sha256(weights.encode()).hexdigest()
