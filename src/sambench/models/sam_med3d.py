"""SAM-Med3D (Wang et al., 2023/2025) through its authors' package ``medim``: ``--model sam_med3d``.

The network is built by ``medim.create_model("SAM-Med3D", pretrained=False, ...)`` (PyPI
``medim`` 0.1.2: ``ImageEncoderViT3D``, ``PromptEncoder3D``, ``MaskDecoder3D``); sambench loads
the user's weights into it itself (below). Each interaction runs the authors' inference recipe,
``utils/infer_utils.py::sam_model_infer`` of github.com/uni-medical/SAM-Med3D (commit f3de1fa,
called by ``medim_val_single.py``), call for call:

1. **Crop.** The volume goes to the authors' orientation (torchio ``ToCanonical``: RAS, axes
   (x, y, z); sambench's (Z, Y, X) slice-major array is permuted, :func:`model_axes`), is
   resampled to 1.5 mm isotropic (linear) and a 128^3 crop is cut around the object, zero-padded
   where it leaves the volume (torchio ``CropOrPad``). Interactively there is no ground truth to
   centre the crop on, so the crop is centred on the **first interaction** of the object, as the
   authors' CVPR 2025 challenge script does (``medim_infer.py`` at commit b390c72 centres it on a
   cube around the click); it stays fixed for the object's later clicks (the previous mask is
   in crop coordinates). An object larger than the crop (192 mm at 1.5 mm) is cut at its faces;
   a later click outside the crop cannot be given to the model and leaves the mask unchanged
   (counted in :attr:`SamMed3DAdapter.clicks_outside_crop`).
2. **Normalisation.** z-score over the crop's voxels > 0 (torchio ``ZNormalization(
   masking_method=lambda x: x > 0)``: unbiased std), applied to the whole crop.
3. **Model calls.** ``image_encoder(crop)`` once per object; for each click the accumulated
   points (crop voxel coordinates, model axis order) and labels (1 positive, 0 negative) go to
   ``prompt_encoder(points=[coords, labels], boxes=None, masks=prev_low_res)`` with the previous
   low-res logits as the mask prompt (zeros before the first click), then ``mask_decoder(
   image_embeddings, image_pe=prompt_encoder.get_dense_pe(), ...)``; the 32^3 logits are
   upsampled trilinearly (``align_corners=False``) to 128^3 and thresholded at sigmoid > 0.5.
4. **Paste back.** The crop's mask is mapped to the source grid by nearest neighbour; outside
   the crop the mask is background.

Boxes: SAM-Med3D has no box prompt (``PromptEncoder3D._embed_boxes`` reads point embeddings the
model does not have). A 2D or 3D box is given as a positive click at its centre, the authors'
rule in their CVPR 2025 script (``read_data_from_npz``: "center of bbox"). Scribbles, lassos and
initial masks are refused.

Loading. ``--checkpoint`` is a local ``.pth`` file (the released ``sam_med3d_turbo.pth``, or a
training checkpoint of the authors' ``train.py``): a dict whose ``model_state_dict`` is the
state dict (medim's own key), or a bare state dict. medim's loader would call ``torch.load(...,
weights_only=False)`` and load with ``strict=False`` (a wrong file would leave random weights
silently), and would download a ``https://huggingface.co`` path: sambench never lets it
(``pretrained=False``). It reads the file with ``torch.load(weights_only=True)`` (numpy scalars
and ``argparse.Namespace``, the training checkpoint's ``args``, allow-listed; nothing else),
infers the architecture's size from the tensors' shapes (:func:`config_from_state`: the released
ViT-B, or any size medim's builder makes) and loads strictly (every tensor of the model present
with its shape; tensors the model lacks are ignored, as medim does, and logged). A bad file gives one line naming it.

Licence: the code (SAM-Med3D and medim) is Apache-2.0. The authors state no separate licence for
the weights (the repository's README releases "this project" under Apache-2.0); sambench records
that in the run config (:data:`LICENSE`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from sambench.errors import OptionError
from sambench.models.checkpoints import CheckpointError, describe_contents, load_into, sha256_file
from sambench.models.volume_base import (
    MODEL_KIND_3D,
    BoxInteraction,
    Interaction,
    PointInteraction,
    VolumeImage,
    check_interaction,
    stdout_to_debug_log,
)

log = logging.getLogger(__name__)

TARGET_SPACING_MM = 1.5
"""The authors' isotropic spacing (``validate_paired_img_gt(target_spacing=(1.5, 1.5, 1.5))``)."""
STATE_KEY = "model_state_dict"
"""Where the state dict sits in the authors' checkpoints (medim's ``state_dict_key``)."""
LICENSE = (
    "code Apache-2.0 (uni-medical/SAM-Med3D, medim); weights: no separate licence stated by the "
    "authors (the repository is released under Apache-2.0)"
)
EXPECTED = (
    "a SAM-Med3D .pth file (e.g. sam_med3d_turbo.pth: a dict with 'model_state_dict', or a bare "
    "state dict of medim's SAM-Med3D)"
)


def package_version() -> str:
    try:
        return version("medim")
    except PackageNotFoundError:
        return "unknown"


def _quiet() -> contextlib.AbstractContextManager[None]:
    """medim prints ("creating model SAM-Med3D"); keep it in the debug log."""
    return stdout_to_debug_log(log, "medim")


# --- loading -------------------------------------------------------------------------------


def _safe_globals() -> list[Any]:
    from sambench.models.nninteractive import _numpy_safe_globals

    return [*_numpy_safe_globals(), argparse.Namespace]


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of a SAM-Med3D checkpoint, read with ``weights_only=True`` on the CPU.
    CheckpointError naming ``--checkpoint`` and the file otherwise (missing, not a torch file,
    objects the weights-only loader refuses, no state dict)."""
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "not found"
        raise CheckpointError(f"--checkpoint {path}: {what}; expected {EXPECTED}")
    kind = describe_contents(path)
    if not kind.startswith(("a torch checkpoint", "a Python pickle")):
        raise CheckpointError(f"--checkpoint {path}: {kind}; expected {EXPECTED}")
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        with open(path, "rb") as f:
            try:
                bad = torch.serialization.get_unsafe_globals_in_checkpoint(f)
            except Exception:  # only to name the objects
                bad = []
        raise CheckpointError(
            f"--checkpoint {path}: holds objects torch's weights-only loader refuses "
            f"({', '.join(bad[:5]) or 'see --debug'}); expected tensors and plain values"
        ) from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        msg = " ".join(str(e).split())[:200]
        raise CheckpointError(
            f"--checkpoint {path}: not a readable torch checkpoint (truncated?): {msg}"
        ) from e
    state = obj.get(STATE_KEY, obj) if isinstance(obj, Mapping) else obj
    if not isinstance(state, Mapping) or not any(
        isinstance(k, str) and k.startswith("image_encoder.") for k in state
    ):
        raise CheckpointError(
            f"--checkpoint {path}: no SAM-Med3D state dict in it (no '{STATE_KEY}' nor "
            f"image_encoder.* tensors); expected {EXPECTED}"
        )
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def config_from_state(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The keyword arguments of medim's SAM-Med3D builder that make the architecture of
    ``state`` (the released weights: medim's defaults, ViT-B 768 x 12, 12 heads, global
    attention in blocks 2, 5, 8, 11, 384-d prompts, 128^3 input, 16^3 patches). KeyError when a
    tensor it needs is missing."""
    proj = state["image_encoder.patch_embed.proj.weight"]
    embed, patch = int(proj.shape[0]), int(proj.shape[2])
    grid = int(state["image_encoder.pos_embed"].shape[1])
    depth = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("image_encoder.blocks."))
    rel = [state[f"image_encoder.blocks.{i}.attn.rel_pos_d"] for i in range(depth)]
    return {
        "encoder_embed_dim": embed,
        "encoder_depth": depth,
        "encoder_num_heads": embed // int(rel[0].shape[1]),
        "encoder_global_attn_indexes": [i for i, r in enumerate(rel) if r.shape[0] == 2 * grid - 1],
        "prompt_embed_dim": int(state["image_encoder.neck.0.weight"].shape[0]),
        "image_size": grid * patch,
        "vit_patch_size": patch,
    }


def build_network(config: Mapping[str, Any] | None = None) -> torch.nn.Module:
    """medim's SAM-Med3D with random weights (``config``: builder keywords; None: the released
    size). Never ``pretrained=True``: medim would load without weights_only, or download."""
    import medim

    with _quiet():
        return medim.create_model("SAM-Med3D", pretrained=False, **dict(config or {}))


# --- geometry (pure functions) ---------------------------------------------------------------


def model_axes(slice_axis: int) -> tuple[int, int, int]:
    """The permutation of a slice-major (Z, Y, X) array (:func:`sambench.volumes.io.slice_major`
    with ``slice_axis``) that gives the authors' torchio RAS order (x: R-L, y: A-P, z: S-I):
    ``arr.transpose(model_axes(s))``; (2, 1, 0) for an axial volume."""
    canonical_zyx = np.moveaxis(np.empty((1, 2, 3)), 0, 2 - slice_axis).shape  # sizes = axes+1
    return tuple(int(canonical_zyx[::-1][i]) - 1 for i in range(3))  # type: ignore[return-value]


@dataclass(frozen=True)
class Crop:
    """A ``size``^3 crop of the 1.5 mm grid: ``start`` its first voxel in that grid (may be
    negative: padding), ``factor`` the source voxels per 1.5 mm voxel (1.5 / spacing), all per
    axis in the model's order. Voxel k of the 1.5 mm grid sits at source voxel coordinate
    ``k * factor`` (the grid starts at source voxel 0's centre)."""

    start: tuple[int, int, int]
    factor: tuple[float, float, float]
    size: int
    source_shape: tuple[int, int, int]

    def grid_shape(self) -> tuple[int, int, int]:
        """The 1.5 mm grid's shape: every point within the source's voxel centres."""
        return tuple(  # type: ignore[return-value]
            int(np.floor((n - 1) / f + 1e-9)) + 1
            for n, f in zip(self.source_shape, self.factor, strict=True)
        )


def crop_around(
    point: tuple[int, int, int], shape: tuple[int, int, int], spacing: tuple[float, float, float],
    size: int = 128,
) -> Crop:  # fmt: skip
    """The crop of ``size``^3 at 1.5 mm centred on ``point`` (a source voxel; all per axis in
    the model's order): voxel ``size // 2`` of the crop is the 1.5 mm voxel nearest the point."""
    factor = tuple(TARGET_SPACING_MM / float(s) for s in spacing)
    centre = [int(np.floor(p / f + 0.5)) for p, f in zip(point, factor, strict=True)]
    start = tuple(c - size // 2 for c in centre)
    return Crop(start, factor, size, shape)  # type: ignore[arg-type]


def crop_image(arr: np.ndarray, crop: Crop) -> np.ndarray:
    """The crop (size^3 float32) of ``arr`` (source grid, model order): linear interpolation at
    the 1.5 mm grid points inside the volume, 0 outside (torchio ``CropOrPad``'s padding)."""
    grid = crop.grid_shape()
    out = np.zeros((crop.size,) * 3, np.float32)
    lo = [max(0, s) for s in crop.start]
    hi = [min(g, s + crop.size) for g, s in zip(grid, crop.start, strict=True)]
    if any(h <= low for low, h in zip(lo, hi, strict=True)):
        return out
    if all(abs(f - 1.0) < 1e-9 for f in crop.factor):  # already at 1.5 mm: a plain slice
        vals = arr[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]].astype(np.float32)
    else:
        axes = [np.arange(a, b) * f for a, b, f in zip(lo, hi, crop.factor, strict=True)]
        coords = np.meshgrid(*axes, indexing="ij")
        vals = ndimage.map_coordinates(arr.astype(np.float32), coords, order=1, mode="nearest")
    out[tuple(slice(a - s, b - s) for a, b, s in zip(lo, hi, crop.start, strict=True))] = vals
    return out


def zscore_positive(crop: np.ndarray) -> np.ndarray:
    """torchio ``ZNormalization(masking_method=lambda x: x > 0)``: (crop - mean) / std over the
    voxels > 0 (std unbiased, as ``torch.std``); unchanged when fewer than two or std 0."""
    vals = crop[crop > 0].astype(np.float64)
    if vals.size < 2 or vals.std(ddof=1) == 0:
        return crop.astype(np.float32)
    return ((crop - vals.mean()) / vals.std(ddof=1)).astype(np.float32)


def paste_back(mask: np.ndarray, crop: Crop) -> np.ndarray:
    """The crop's ``mask`` (size^3 bool) on the source grid (model order), nearest neighbour:
    source voxel v takes crop voxel round(v / factor) - start; background outside the crop."""
    idx = []
    for n, f, s in zip(crop.source_shape, crop.factor, crop.start, strict=True):
        k = np.floor(np.arange(n) / f + 0.5).astype(np.int64) - s
        idx.append(k)
    out = np.zeros(crop.source_shape, bool)
    inside = [(k >= 0) & (k < crop.size) for k in idx]
    sel = [np.nonzero(m)[0] for m in inside]
    if any(len(s) == 0 for s in sel):
        return out
    sub = mask[np.ix_(idx[0][sel[0]], idx[1][sel[1]], idx[2][sel[2]])]
    out[np.ix_(*sel)] = sub
    return out


def to_crop_voxel(point: tuple[int, int, int], crop: Crop) -> tuple[int, int, int] | None:
    """The crop voxel of a source voxel (model order), None when it lies outside the crop."""
    k = tuple(int(np.floor(p / f + 0.5)) - s for p, f, s in
              zip(point, crop.factor, crop.start, strict=True))  # fmt: skip
    return k if all(0 <= v < crop.size for v in k) else None  # type: ignore[return-value]


# --- the adapter -----------------------------------------------------------------------------


class SamMed3DAdapter:
    """A :class:`~sambench.models.volume_base.VolumeModel` over medim's SAM-Med3D."""

    name = "sam_med3d"
    model_kind = MODEL_KIND_3D
    supports = frozenset({"point", "box2d", "box3d"})
    max_shape: tuple[int, int, int] | None = None  # any size: the crop is cut around the click

    def __init__(self, net: Any, checkpoint: Path, device: str, sha256: str) -> None:
        self.net: Any = net.to(device).eval()  # medim's SAM_Med3D
        self.checkpoint = checkpoint
        self.device = device
        self.sha256 = sha256
        self.size = int(net.image_encoder.img_size)
        self.image: VolumeImage | None = None
        self._arr: np.ndarray | None = None  # source intensities in model order
        self._perm: tuple[int, int, int] = (2, 1, 0)
        self.clicks_outside_crop = 0
        self._forget()

    def _forget(self) -> None:
        self.crop: Crop | None = None
        self._embedding: torch.Tensor | None = None
        self._coords = torch.zeros(1, 0, 3, device=self.device)
        self._labels = torch.zeros(1, 0, device=self.device)
        self._low_res: torch.Tensor | None = None
        self._mask: np.ndarray | None = None

    def info(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "model_kind": self.model_kind,
            "package": f"medim {package_version()}",
            "checkpoint": str(self.checkpoint),
            "checkpoint_sha256": self.sha256,
            "license": LICENSE,
            "supports": sorted(self.supports),
            "crop": [self.size] * 3,
            "spacing_mm": TARGET_SPACING_MM,
            "boxes": "given as a positive click at the box centre (the authors' CVPR 2025 rule)",
        }

    def open(self, image: VolumeImage) -> None:
        arr = np.asarray(image.intensities, dtype=np.float32)
        if arr.ndim != 3:
            raise ValueError(f"intensities: expected (Z, Y, X), got shape {arr.shape}")
        self._perm = model_axes(image.slice_axis)
        self._arr = np.ascontiguousarray(arr.transpose(self._perm))
        self.image = image
        self._forget()

    def reset(self, seed: int | None = None) -> None:
        """Forget the object's crop, clicks and previous mask (``seed`` unused: SAM-Med3D's
        inference is deterministic)."""
        self._need_open()
        self._forget()

    def _need_open(self) -> VolumeImage:
        if self.image is None or self._arr is None:
            raise RuntimeError("sam_med3d: open(image) first")
        return self.image

    def mask(self) -> np.ndarray:
        img = self._need_open()
        return np.zeros(img.shape, bool) if self._mask is None else self._mask.copy()

    def _to_model(self, zyx: tuple[int, int, int]) -> tuple[int, int, int]:
        return tuple(int(zyx[a]) for a in self._perm)  # type: ignore[return-value]

    def apply(self, interaction: Interaction) -> np.ndarray:
        img = self._need_open()
        check_interaction(interaction, img.shape)
        if interaction.kind not in self.supports:
            raise OptionError(
                "--model",
                f"sam_med3d takes points (and boxes, as their centre click); not a "
                f"{interaction.kind} interaction",
            )
        if isinstance(interaction, BoxInteraction):
            b = interaction
            interaction = PointInteraction((b.z_min + b.z_max) // 2, (b.y_min + b.y_max) // 2,
                                           (b.x_min + b.x_max) // 2, True)  # fmt: skip
        assert isinstance(interaction, PointInteraction)
        point = self._to_model((interaction.z, interaction.y, interaction.x))
        with torch.no_grad():
            if self.crop is None:
                self._start(point)
            assert self.crop is not None
            k = to_crop_voxel(point, self.crop)
            if k is None:
                self.clicks_outside_crop += 1
                log.info("sam_med3d: click %s outside the object's crop; mask unchanged", point)
                return self.mask()
            self._predict(k, interaction.positive)
        return self.mask()

    def _start(self, point: tuple[int, int, int]) -> None:
        assert self._arr is not None and self.image is not None
        spacing = tuple(float(self.image.spacing[a]) for a in self._perm)
        self.crop = crop_around(point, self._arr.shape, spacing, self.size)  # type: ignore[arg-type]
        x = zscore_positive(crop_image(self._arr, self.crop))
        t = torch.from_numpy(x)[None, None].to(self.device)
        self._embedding = self.net.image_encoder(t)
        q = self.size // 4
        self._low_res = torch.zeros(1, 1, q, q, q, device=self.device)

    def _predict(self, k: tuple[int, int, int], positive: bool) -> None:
        net, crop = self.net, self.crop
        assert crop is not None and self._embedding is not None
        new = torch.tensor([[list(k)]], dtype=torch.float32, device=self.device)
        lab = torch.tensor([[1.0 if positive else 0.0]], device=self.device)
        self._coords = torch.cat([self._coords, new], dim=1)
        self._labels = torch.cat([self._labels, lab], dim=1)
        sparse, dense = net.prompt_encoder(
            points=[self._coords, self._labels], boxes=None, masks=self._low_res
        )
        low_res, _ = net.mask_decoder(
            image_embeddings=self._embedding,
            image_pe=net.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
        )
        self._low_res = low_res.detach()
        hr = F.interpolate(low_res, size=(self.size,) * 3, mode="trilinear", align_corners=False)
        crop_mask = (torch.sigmoid(hr) > 0.5)[0, 0].cpu().numpy()
        inv = tuple(int(i) for i in np.argsort(self._perm))
        self._mask = np.ascontiguousarray(paste_back(crop_mask, crop).transpose(inv))


def build_sam_med3d_adapter(checkpoint: str | Path | None, device: str = "cpu") -> SamMed3DAdapter:
    """``--model sam_med3d --checkpoint FILE``: medim's SAM-Med3D with the user's weights
    (nothing is downloaded). OptionError when no file is given or medim is not installed;
    CheckpointError (one line naming the file) for a bad file."""
    if checkpoint is None:
        raise OptionError(
            "--checkpoint",
            f"model 'sam_med3d' needs {EXPECTED} (nothing is downloaded; see docs/models-3d.md)",
        )
    try:
        import medim  # noqa: F401
    except ImportError as e:
        raise OptionError(
            "--model", f"sam_med3d needs the package: pip install 'sambench[native3d]' ({e})"
        ) from None
    path = Path(checkpoint)
    state = read_state(path)
    try:
        config = config_from_state(state)
        net = build_network(config)
    except (KeyError, IndexError, ValueError, TypeError, RuntimeError) as e:
        raise CheckpointError(
            f"--checkpoint {path}: not a SAM-Med3D architecture medim can build "
            f"({type(e).__name__}: {e}); expected {EXPECTED}"
        ) from e
    extra = [k for k in state if k not in net.state_dict()]
    if extra:  # medim loads with strict=False; extra tensors are dropped, never missing ones
        log.info("sam_med3d: %s: %d tensors not in the model ignored (e.g. %s)", path,
                 len(extra), extra[:3])  # fmt: skip
    load_into(net, {k: v for k, v in state.items() if k not in extra}, path=path,
              model_name="sam_med3d")  # fmt: skip
    return SamMed3DAdapter(net, path, str(device), sha256_file(path))
