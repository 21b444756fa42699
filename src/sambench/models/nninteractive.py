"""nnInteractive (Isensee et al. 2025) through its authors' session: ``--model nninteractive``.

Everything runs through ``nnInteractive.inference.inference_session.
nnInteractiveInferenceSession`` (PyPI ``nninteractive``), the path its napari / 3D Slicer
plug-ins take: ``initialize_from_trained_model_folder`` loads the user's model folder,
``set_image`` + ``set_target_buffer`` open a volume, each interaction is one
``add_*_interaction(..., run_prediction=True)`` call that updates the target buffer in place,
``reset_interactions`` forgets them. The adapter only translates records
(:mod:`sambench.models.volume_base`) into those calls:

- the image is passed as ``intensities[None]`` (1, Z, Y, X) float32; the session works in voxel
  space (it ignores spacing) and normalizes by the mean and std of the nonzero region itself;
- points are (z, y, x); boxes are half-open ``[[z0, z1], [y0, y1], [x0, x1]]``; a 2D box (one
  slice) goes as the session's 2D box, a 3D box as its 3D box when the weights declare
  ``bbox3d`` (:attr:`NnInteractiveAdapter.supports`), else refused (the protocols fall back to
  the box's middle slice);
- scribbles and lassos are rasterized by :mod:`sambench.models.volume_raster` on their plane
  (axial, coronal or sagittal: the record's ``axis``; the scribble's width defaults to the
  weights' ``preferred_scribble_thickness`` along that plane's two axes, the larger of them) and
  passed as full (Z, Y, X) uint8 images, as SlicerNNInteractive sends a stroke painted on any
  slice view;
- an initial mask goes through ``add_initial_seg_interaction`` (which resets the interactions,
  as the session documents).

Loading. The folder must hold ``plans.json``, ``dataset.json``, ``inference_info.json`` (or the
legacy ``inference_session_class.json``) and one ``fold_*/checkpoint_final.pth`` (the layout of
the released weights, e.g. ``nnInteractive_v1.0``); anything else is refused with one line
naming the layout. The session itself calls ``torch.load(..., weights_only=False)``: sambench
runs that call with ``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`` (honoured by ``torch.load`` on every
call since torch 2.4), so the authors' code loads the file with ``weights_only=True``; numpy
scalars and plain arrays (nnU-Net's training log) are allow-listed, nothing else is. A
checkpoint holding other objects is refused with a :class:`CheckpointError` naming them.

Licence: the session reads the folder's ``LICENSE`` (first line) and reports the released v1.0
weights as ``CC BY-NC-SA 4.0`` (non-commercial); :meth:`NnInteractiveAdapter.info` carries it
into the run config and the report. nnInteractive's own code is Apache-2.0.

nnInteractive draws from numpy's global random state when it plans refinement patches
(``nnInteractive.utils.bboxes.random_sampling_fallback``); :meth:`NnInteractiveAdapter.reset`
takes a seed so runs repeat exactly.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sambench.errors import DataError, OptionError
from sambench.models.checkpoints import CheckpointError
from sambench.models.volume_base import (
    MODEL_KIND_3D,
    BoxInteraction,
    InitialMaskInteraction,
    Interaction,
    LassoInteraction,
    PointInteraction,
    ScribbleInteraction,
    VolumeImage,
    check_interaction,
    stdout_to_debug_log,
)
from sambench.models.volume_raster import lasso_mask, scribble_mask

log = logging.getLogger(__name__)

LAYOUT = (
    "an nnInteractive model folder: plans.json, dataset.json, inference_info.json (or "
    "inference_session_class.json) and fold_<k>/checkpoint_final.pth (e.g. the released "
    "nnInteractive_v1.0 folder)"
)
LICENSE_MISSING = "!!MISSING!!"  # the session's own marker for an unknown licence
_KIND_OF = {"points": "point", "bbox2d": "box2d", "bbox3d": "box3d", "scribble": "scribble",
            "lasso": "lasso"}  # fmt: skip


def _numpy_safe_globals() -> list[Any]:
    """The numpy reconstructors a weights-only load may accept (no code, only numbers)."""
    core = getattr(np, "_core", None) or np.core
    out: list[Any] = [np.ndarray, np.dtype, core.multiarray._reconstruct, core.multiarray.scalar]
    out += [type(np.dtype(t)) for t in ("f8", "f4", "f2", "i8", "i4", "i2", "u1", "b1")]
    return out


@contextlib.contextmanager
def weights_only_loads() -> Iterator[None]:
    """Every ``torch.load`` in the block runs with ``weights_only=True`` (even one that asks
    for False): ``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1``, with numpy scalars allow-listed."""
    old = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            yield
    finally:
        if old is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = old


def _quiet() -> contextlib.AbstractContextManager[None]:
    """The session prints progress to stdout; keep it in the debug log instead."""
    return stdout_to_debug_log(log, "nnInteractive")


def checkpoint_file(folder: Path) -> Path:
    """The one ``fold_*/checkpoint_final.pth`` of ``folder``; DataError naming :data:`LAYOUT`."""
    if not folder.is_dir():
        raise DataError(folder, f"is not a folder; expected {LAYOUT}")
    missing = [n for n in ("plans.json", "dataset.json") if not (folder / n).is_file()]
    if not any((folder / n).is_file() for n in
               ("inference_info.json", "inference_session_class.json")):  # fmt: skip
        missing.append("inference_info.json")
    folds = sorted(p for p in folder.glob("fold_*") if (p / "checkpoint_final.pth").is_file())
    if not folds:
        missing.append("fold_<k>/checkpoint_final.pth")
    if missing:
        raise DataError(folder, f"lacks {', '.join(missing)}; expected {LAYOUT}")
    if len(folds) > 1:
        names = ", ".join(p.name for p in folds)
        raise DataError(folder, f"holds several folds ({names}); expected one fold_<k> ({LAYOUT})")
    return folds[0] / "checkpoint_final.pth"


def package_version() -> str:
    try:
        return version("nninteractive")
    except PackageNotFoundError:
        return "unknown"


def new_session(device: str | torch.device = "cpu") -> Any:
    """A fresh ``nnInteractiveInferenceSession`` with the settings sambench uses (also the
    equality tests' reference): no torch.compile, autozoom on (the authors' default), undo off
    (never called), torch's current thread count kept (the session would otherwise set 8)."""
    with _quiet():
        from nnInteractive.inference.inference_session import nnInteractiveInferenceSession

        return nnInteractiveInferenceSession(
            device=torch.device(device),
            use_torch_compile=False,
            verbose=False,
            torch_n_threads=torch.get_num_threads(),
            do_autozoom=True,
            enable_undo=False,
        )


class NnInteractiveAdapter:
    """A :class:`~sambench.models.volume_base.VolumeModel` over one nnInteractive session."""

    name = "nninteractive"
    model_kind = MODEL_KIND_3D
    max_shape: tuple[int, int, int] | None = None  # the session slides its patch: any size

    def __init__(self, session: Any, folder: Path, device: str) -> None:
        self.session = session
        self.folder = folder
        self.device = device
        self.image: VolumeImage | None = None
        self._target: torch.Tensor | None = None
        self._sha256: str | None = None
        s = session.supported_interactions
        kinds = {_KIND_OF[k] for k, ok in s.items() if ok and k in _KIND_OF}
        if session.supports_initial_label:
            kinds.add("initial_mask")
        self.supports = frozenset(kinds)
        thick = session.preferred_scribble_thickness or [1, 1, 1]
        self.scribble_thicknesses = tuple(
            int(max(1, round(max(float(v) for j, v in enumerate(thick) if j != axis))))
            for axis in range(3)
        )
        # the scribble width in voxels of a scribble normal to axis 0, 1, 2: the larger of the
        # weights' preferred_scribble_thickness along the plane's two in-plane axes
        self.scribble_thickness = self.scribble_thicknesses[0]  # an axial slice's

    @property
    def checkpoint_sha256(self) -> str:
        """SHA-256 of the folder's ``fold_*/checkpoint_final.pth`` (computed once): what the
        annotator's logs and DICOM-SEG algorithm identification record."""
        if self._sha256 is None:
            from sambench.models.checkpoints import sha256_file

            self._sha256 = sha256_file(checkpoint_file(self.folder))
        return self._sha256

    @property
    def license(self) -> str:
        return str(self.session.license)

    def info(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "model_kind": self.model_kind,
            "package": f"nninteractive {package_version()}",
            "checkpoint": str(self.folder),
            "license": self.license,
            "supports": sorted(self.supports),
            "patch_size": [int(v) for v in self.session.configuration_manager.patch_size],
        }

    def open(self, image: VolumeImage) -> None:
        """``set_image(intensities[None])`` and a fresh (Z, Y, X) uint8 target buffer."""
        arr = np.asarray(image.intensities, dtype=np.float32)
        if arr.ndim != 3:
            raise ValueError(f"intensities: expected (Z, Y, X), got shape {arr.shape}")
        with _quiet():
            self.session.set_image(arr[None])
            self._target = torch.zeros(arr.shape, dtype=torch.uint8)
            self.session.set_target_buffer(self._target)
        self.image = image

    def reset(self, seed: int | None = None) -> None:
        """``reset_interactions()``; ``seed`` (re)seeds numpy's global state, which the session
        draws from when planning refinement patches."""
        self._need_open()
        if seed is not None:
            np.random.seed(seed % 2**32)  # noqa: NPY002 (the session's own RNG)
        with _quiet():
            self.session.reset_interactions()

    def _need_open(self) -> torch.Tensor:
        if self._target is None or self.image is None:
            raise RuntimeError("nninteractive: open(image) first")
        return self._target

    def mask(self) -> np.ndarray:
        """The current (Z, Y, X) bool mask (a copy of the target buffer)."""
        return self._need_open().numpy() > 0

    def apply(self, interaction: Interaction) -> np.ndarray:
        target = self._need_open()
        assert self.image is not None
        shape = self.image.shape
        check_interaction(interaction, shape)
        kind = interaction.kind
        if kind not in self.supports:
            raise OptionError(
                "--model",
                f"nninteractive: these weights ({self.folder}) do not accept a {kind} "
                f"interaction (they accept {', '.join(sorted(self.supports))})",
            )
        s = self.session
        with _quiet():
            if isinstance(interaction, PointInteraction):
                i = interaction
                zyx = (int(i.z), int(i.y), int(i.x))  # Python ints, as the session expects
                s.add_point_interaction(zyx, include_interaction=bool(i.positive))
            elif isinstance(interaction, BoxInteraction):
                s.add_bbox_interaction(interaction.half_open(),
                                       include_interaction=bool(interaction.positive))  # fmt: skip
            elif isinstance(interaction, ScribbleInteraction):
                width = self.scribble_thicknesses[interaction.axis]
                img = scribble_mask(shape, interaction, width)
                s.add_scribble_interaction(img, include_interaction=bool(interaction.positive))
            elif isinstance(interaction, LassoInteraction):
                img = lasso_mask(shape, interaction)
                s.add_lasso_interaction(img, include_interaction=bool(interaction.positive))
            elif isinstance(interaction, InitialMaskInteraction):
                seg = np.asarray(interaction.mask, dtype=bool).astype(np.uint8)
                s.add_initial_seg_interaction(seg, run_prediction=interaction.refine)
        return target.numpy() > 0


def load_session(folder: Path, device: str) -> Any:
    """A session initialized from ``folder`` (checked first), weights loaded weights-only."""
    ckpt = checkpoint_file(folder)
    session = new_session(device)
    try:
        with weights_only_loads(), _quiet():
            session.initialize_from_trained_model_folder(str(folder))
    except Exception as e:
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            with open(ckpt, "rb") as f:
                bad = torch.serialization.get_unsafe_globals_in_checkpoint(f)
            raise CheckpointError(
                f"{ckpt}: holds objects torch's weights-only loader refuses "
                f"({', '.join(bad[:5]) or 'see --debug'}); expected tensors and plain values "
                "(the released checkpoints load)"
            ) from e
        message = " ".join(str(e).split())[:300]
        raise DataError(
            folder,
            f"nnInteractive cannot load it ({type(e).__name__}: {message}); expected {LAYOUT}",
        ) from e
    return session


def build_nninteractive_adapter(
    checkpoint: str | Path | None, device: str = "cpu"
) -> NnInteractiveAdapter:
    """``--model nninteractive --checkpoint FOLDER``: the adapter over the user's model folder
    (nothing is downloaded). OptionError when no folder is given, DataError naming the folder
    and the expected layout when it is not one, OptionError when ``nninteractive`` is not
    installed (the ``native3d`` extra)."""
    if checkpoint is None:
        raise OptionError(
            "--checkpoint",
            f"model 'nninteractive' needs {LAYOUT} (nothing is downloaded; see docs/models-3d.md)",
        )
    try:
        with _quiet():  # nnU-Net prints its unset-paths notice on import
            import nnInteractive.inference.inference_session  # noqa: F401
    except ImportError as e:
        raise OptionError(
            "--model", f"nninteractive needs the package: pip install 'sambench[native3d]' ({e})"
        ) from None
    folder = Path(checkpoint)
    return NnInteractiveAdapter(load_session(folder, str(device)), folder, str(device))
