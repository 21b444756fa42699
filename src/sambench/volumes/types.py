"""The records and the protocol interface of volumetric evaluation (see the package docstring).

Array convention ("slice-major", written SxHxW or "ZYX"): axis 0 is the slice axis prepare cut the
volume along (``slice_axis``, ITK 0/1/2 = x/y/z; an axial volume is exactly ZYX), axis 1 the rows
and axis 2 the columns of the prepared 2D slices, so ``volume.image[k]`` is the prepared PNG of
slice ``k``. ``spacing`` is (slice, row, column) in mm in that order; ``bbox`` is
(z_min, y_min, x_min, z_max, y_max, x_max), inclusive, in the same axes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from typing import Protocol as _Protocol

import numpy as np

from sambench.data.zarr_volumes import SliceArray
from sambench.errors import OptionError
from sambench.models.base import PromptableModel

if TYPE_CHECKING:
    from sambench.volumes.sparse import SparseMask


@dataclass(frozen=True)
class Volume3D:
    """One prepared volume: image, label map and geometry.

    - ``image``: SxHxW uint8, the standardized slices (identical to the prepared PNGs): a numpy
      array (NIfTI, read whole) or a lazy :class:`~sambench.data.zarr_volumes.SliceArray` (zarr,
      decoded slice by slice); both index as ``image[k]`` -> HxW numpy and have ``.shape``.
    - ``label``: SxHxW uint8 label map (0 background, 1..255 the prepared pixel values), the same
      kind of array as ``image``.
    - ``spacing``: (slice, row, column) voxel size, mm, all finite and > 0.
    - ``slice_axis``: the canonical RAS axis (0/1/2 = R-L/A-P/S-I: sagittal, coronal, axial)
      that axis 0 is; prepare reoriented the source to RAS first (:mod:`sambench.data.orientation`).
    - ``origin``: (x, y, z) mm of voxel (0, 0, 0), ITK order; ``direction``: 3x3 ITK direction
      cosines (columns = the file's x, y, z axes). Together with ``slice_axis`` they put a mask back
      into the source geometry (:func:`sambench.volumes.io.write_mask_nifti`).
    - ``path``: the prepared image NIfTI (or the file it was read from); ``source_image``: the
      user's original file.
    """

    volume_id: str
    dataset: str
    case: str
    image: np.ndarray | SliceArray
    label: np.ndarray | SliceArray
    spacing: tuple[float, float, float]
    slice_axis: int = 2
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    path: str = ""
    source_image: str = ""
    modality: str = ""

    @property
    def shape(self) -> tuple[int, int, int]:
        s, h, w = self.image.shape[:3]
        return int(s), int(h), int(w)

    def mask(self, obj: Object3D) -> np.ndarray:
        """SxHxW bool ground truth of ``obj`` (``label == obj.label_value``), full size (a lazy
        label is read whole: streaming code uses :meth:`slice_mask` or a crop instead)."""
        return np.asarray(self.label) == obj.label_value

    def slice_mask(self, obj: Object3D, k: int) -> np.ndarray:
        """HxW bool ground truth of ``obj`` on slice ``k`` (one slice read)."""
        return np.asarray(self.label[k]) == obj.label_value

    @property
    def plane(self) -> str:
        """The plane of the slices: ``sagittal``, ``coronal`` or ``axial`` (``slice_axis``)."""
        from sambench.data.orientation import PLANES

        return PLANES[self.slice_axis]

    def object_slices(self, obj: Object3D) -> list[int]:
        """The slice indices holding ``obj``, ascending (the label slices of its bounding box
        are read one at a time)."""
        return [k for k in range(obj.bbox[0], obj.bbox[3] + 1) if self.slice_mask(obj, k).any()]

    def to_file_zyx(self, arr: np.ndarray) -> np.ndarray:
        """An SxHxW array in the source file's (z, y, x) voxel order (``GetArrayFromImage``):
        slice-major -> canonical RAS (z, y, x) -> the file's order (``direction`` says how)."""
        from sambench.data.orientation import orientation_of

        canonical = np.moveaxis(arr, 0, 2 - self.slice_axis)
        return orientation_of(self.direction).from_canonical_zyx(canonical)


@dataclass(frozen=True)
class Object3D:
    """One object (one label value) of one volume, as in ``volumes3d.parquet``.

    ``bbox``: (z_min, y_min, x_min, z_max, y_max, x_max) inclusive voxel indices (slice, row,
    column). ``key_slice``: the slice with the largest area of the object (the lowest index on
    ties); ``key_area`` its pixel count; ``n_slices``: slices holding the object.
    """

    volume_id: str
    label_value: int
    object_name: str
    voxel_count: int
    bbox: tuple[int, int, int, int, int, int]
    key_slice: int
    key_area: int = 0
    n_slices: int = 0

    @property
    def one_slice(self) -> bool:
        """The object lies on a single slice (evaluated, and flagged in the results)."""
        return self.bbox[0] == self.bbox[3]


@dataclass(frozen=True)
class ProtocolConfig:
    """Options every protocol receives (a protocol ignores those it has no use for).

    - ``prompt``: ``"box"`` or ``"point"`` (the first prompt on the key slice: the GT box, or the
      paper's S2 centre point).
    - ``shift_range``: (lo, hi) px prompt shift of :func:`sambench.prompts.shift.shift_prompts`
      applied to the first prompt, or None.
    - ``multimask``: the adapter's ``multimask_output`` (None = the model's default); of several
      candidates the one with the highest predicted IoU is kept (no ground truth in 3D loops).
    - ``use_mask_prompt``: pass the neighbour's low-res logits as ``mask_logits`` when propagating
      (models that take a mask prompt).
    - ``steps``: number of correction steps (clicks) for multi-step protocols.
    - ``options``: protocol-specific extras (e.g. ``{"initial_box": True}``), JSON-serializable.
    """

    prompt: str = "box"
    shift_range: tuple[float, float] | None = None
    multimask: bool | None = None
    use_mask_prompt: bool = True
    steps: int = 5
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class StepResult:
    """The prediction of one protocol step (step 0 = the first prompt; clicks count from 1).

    ``mask``: SxHxW bool over the whole volume, a dense array or a
    :class:`~sambench.volumes.sparse.SparseMask` (the predicted slices only); ``seconds``: wall time of the step (encoder and
    decoder; cached slice embeddings cost nothing again); ``n_slices_predicted``: slices the model
    decoded in this step; ``extras``: further JSON-serializable columns for the results row (e.g.
    ``{"click_zyx": "[3, 40, 51]", "click_label": 1}``).
    """

    step: int
    mask: np.ndarray | SparseMask
    seconds: float
    n_slices_predicted: int
    extras: dict[str, Any] = field(default_factory=dict)


class ProtocolFn(_Protocol):
    """``protocol(model, volume, obj, config, rng) -> [StepResult, ...]`` (steps in order)."""

    def __call__(
        self,
        model: PromptableModel,
        volume: Volume3D,
        obj: Object3D,
        config: ProtocolConfig,
        rng: np.random.Generator,
    ) -> list[StepResult]: ...


Protocol = ProtocolFn  # the name used in the issue and the docs
Rng = np.random.Generator  # the short names of a protocol's signature
Steps = list[StepResult]

SlicesFn = Callable[[Volume3D, Object3D, ProtocolConfig], Iterable[int]]
"""``slices(volume, obj, config)``: the slice indices a protocol surely encodes for ``obj``."""


@dataclass(frozen=True)
class ProtocolSpec:
    """A registered protocol: its function, a one-line description, whether it needs a
    particular kind of model (``requires``: a predicate on the model, with the reason shown when it
    fails, e.g. SAM 2's video predictor), and the slices it surely encodes (``slices``, or None:
    the runner encodes the union over a volume's objects up front, in encoder batches; any other
    slice is encoded on first use)."""

    name: str
    fn: ProtocolFn
    description: str
    requires: Callable[[PromptableModel], str | None] | None = None
    slices: SlicesFn | None = None


_REGISTRY: dict[str, ProtocolSpec] = {}


def register_protocol(
    name: str,
    description: str,
    *,
    requires: Callable[[PromptableModel], str | None] | None = None,
    slices: SlicesFn | None = None,
) -> Callable[[ProtocolFn], ProtocolFn]:
    """Decorator adding a protocol to the registry under ``name`` (re-registering replaces it).

    ``requires(model)`` returns None when the model can run the protocol, else the reason.
    ``slices(volume, obj, config)``: the slices it surely encodes (see :class:`ProtocolSpec`)."""

    def deco(fn: ProtocolFn) -> ProtocolFn:
        _REGISTRY[name] = ProtocolSpec(name, fn, description, requires, slices)
        return fn

    return deco


def protocol_names() -> list[str]:
    """The registered protocol names, sorted (the built-in ones once their modules are imported,
    see :func:`sambench.volumes.registry.load_protocols`)."""
    return sorted(_REGISTRY)


def get_protocol(name: str) -> ProtocolSpec:
    """The protocol registered as ``name``; :class:`OptionError` (``--protocol``) listing the
    known names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise OptionError(
            "--protocol", f"unknown protocol {name!r}; expected one of {protocol_names()}"
        ) from None


PROTOCOLS_PACKAGE = "sambench.volumes.protocols"


def load_protocols() -> list[str]:
    """Import every module of :mod:`sambench.volumes.protocols` (each registers its protocols
    with :func:`register_protocol`) and return the registered names. A new protocol is a new
    module in that package: nothing else to edit."""
    import importlib
    import pkgutil

    pkg = importlib.import_module(PROTOCOLS_PACKAGE)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{PROTOCOLS_PACKAGE}.{info.name}")
    return protocol_names()
