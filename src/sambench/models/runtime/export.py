"""Export the encoder and decoder graphs to ONNX once per checkpoint, cached and checked.

Layout: ``<export_dir>/<model>-<part>-<runtime>-<weights[:16]>/`` holding ``model.onnx`` (plus
``model.onnx.data`` when the weights exceed protobuf's 2 GB) and ``meta.json`` with the full key:
the weights' SHA-256, the part, the runtime and its version, sambench, torch and onnx versions, the
input size. A folder whose ``meta.json`` differs from this run's key (another sambench, runtime or
torch version; a damaged file) is rebuilt with a warning, never silently reused. Exports are written
to a temporary folder and renamed into place.

Export: ``torch.onnx.export(..., dynamo=False)`` (the TorchScript exporter: dynamic batch and point
axes without symbolic-shape hints), opset 17.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sambench.version import __version__

log = logging.getLogger(__name__)

OPSET = 17
PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}
"""Runtime name -> the PyPI package that provides it."""


def package_version(name: str) -> str:
    """Installed version of a distribution, or "" when absent."""
    try:
        return version(name)
    except PackageNotFoundError:
        return ""


def default_export_dir(cache_dir: str | Path | None) -> Path:
    """Beside the embedding cache (``<cache_dir>-exports``), else ``~/.cache/sambench/exports``."""
    if cache_dir:
        p = Path(cache_dir).absolute()
        return p.with_name(p.name + "-exports")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sambench" / "exports"


def export_key(
    weights_sha256: str, part: str, runtime: str, input_shape: tuple[int, ...]
) -> dict[str, str]:
    """Everything an exported file depends on (its ``meta.json``)."""
    return {
        "weights_sha256": weights_sha256,
        "part": part,
        "runtime": runtime,
        "runtime_version": package_version(PACKAGES[runtime]),
        "onnx_version": package_version("onnx"),
        "torch_version": torch.__version__,
        "sambench_version": __version__,
        "input_shape": "x".join(str(int(v)) for v in input_shape),
        "opset": str(OPSET),
    }


def _example(part: str, model: nn.Module, input_shape: tuple[int, ...]) -> tuple[Any, dict]:
    """Example inputs and ONNX naming of ``part`` ("encoder" or "decoder")."""
    if part == "encoder":
        x = torch.zeros(1, *input_shape[1:])
        return (x,), {
            "input_names": ["image"],
            "output_names": ["features"],
            "dynamic_axes": {"image": {0: "batch"}, "features": {0: "batch"}},
        }
    pe: Any = model.prompt_encoder
    emb_h, emb_w = pe.image_embedding_size
    mh, mw = (4 * emb_h, 4 * emb_w)
    args = (
        torch.randn(1, pe.embed_dim, emb_h, emb_w),
        torch.randn(1, pe.embed_dim, emb_h, emb_w),
        torch.rand(2, 3, 2) * 100,
        torch.tensor([[1, 2, 3], [0, 1, -1]], dtype=torch.int64),
        torch.randn(2, 1, mh, mw),
        torch.ones(1),
    )
    names = ["image_embeddings", "image_pe", "point_coords", "point_labels"]
    names += ["mask_input", "has_mask_input"]
    return args, {
        "input_names": names,
        "output_names": ["masks", "iou_predictions"],
        "dynamic_axes": {
            "point_coords": {0: "batch", 1: "points"},
            "point_labels": {0: "batch", 1: "points"},
            "mask_input": {0: "mask_batch"},
            "masks": {0: "batch"},
            "iou_predictions": {0: "batch"},
        },
    }


def _read_meta(folder: Path) -> dict[str, str] | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def exported_file(
    module: nn.Module,
    *,
    part: str,
    runtime: str,
    model_name: str,
    weights_sha256: str,
    input_shape: tuple[int, ...],
    export_dir: Path,
    graph_owner: nn.Module | None = None,
) -> Path:
    """The ONNX file of ``module`` for this key: reused when its ``meta.json`` matches, else
    (absent, other version, damaged) exported now. ``graph_owner`` is the full model (decoder:
    its prompt encoder gives the example shapes). Raises whatever the exporter raises."""
    key = export_key(weights_sha256, part, runtime, input_shape)
    safe_sha = weights_sha256.replace("state:", "")[:16]
    folder = Path(export_dir) / f"{model_name}-{part}-{runtime}-{safe_sha}"
    onnx_path = folder / "model.onnx"
    meta = _read_meta(folder) if folder.exists() else None
    if meta == key and onnx_path.is_file():
        return onnx_path
    if folder.exists():
        diff = sorted(k for k in key if (meta or {}).get(k) != key[k]) if meta else ["meta.json"]
        log.warning("%s: cached export not reused (differs in %s); rebuilding", folder, diff)
        warnings.warn(
            f"{folder}: cached export made with another set-up ({', '.join(diff)}); rebuilding",
            stacklevel=2,
        )
    args, naming = _example(part, graph_owner if graph_owner is not None else module, input_shape)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module.eval(),
                args,
                str(tmp / "model.onnx"),
                dynamo=False,
                opset_version=OPSET,
                do_constant_folding=True,
                **naming,
            )
        (tmp / "meta.json").write_text(json.dumps(key, indent=1, sort_keys=True))
        for p in tmp.iterdir():
            p.chmod(0o666 & ~_umask())
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
        folder.chmod(0o777 & ~_umask())
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return onnx_path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def runtime_label(runtime: str) -> str:
    """``"torch"`` or ``"<runtime> <version>"`` (the adapter signature's ``runtime`` value)."""
    if runtime == "torch":
        return "torch"
    return f"{runtime} {package_version(PACKAGES[runtime])}"
