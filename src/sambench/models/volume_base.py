"""The protocol every native 3D interactive model implements, and its interaction records.

A 2D model (:class:`~sambench.models.base.PromptableModel`) is encoded once per slice and
prompted per slice; a native 3D model (nnInteractive, VISTA3D, SAM-Med3D) holds one volume and
a growing set of interactions, and returns the whole 3D mask after each. The loop is::

    model.open(image)          # once per volume: source intensities and geometry
    model.reset()              # once per object: forget every interaction
    mask = model.apply(PointInteraction(z=12, y=40, x=51, positive=True))
    mask = model.apply(ScribbleInteraction(z=14, points_yx=((30, 40), (35, 52))))
    mask = model.apply(ClassInteraction(label=3))  # VISTA3D only: its class 3 (spleen)

Axis order and units, everywhere in this module: arrays are **(Z, Y, X)** voxels in the volume's
slice-major order (:mod:`sambench.volumes.types`: axis 0 the slice axis, 1 the rows, 2 the
columns of the prepared slices; for an axial volume exactly the canonical RAS (S-I, A-P, R-L)
order of :mod:`sambench.data.orientation`); coordinates are integer voxel indices (not mm);
boxes are inclusive on both ends. ``spacing`` is (z, y, x) mm.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

MODEL_KIND_2D = "2d"
MODEL_KIND_3D = "3d"

INTERACTION_KINDS = ("point", "box2d", "box3d", "scribble", "lasso", "initial_mask", "class")
"""The names a model lists in :attr:`VolumeModel.supports`."""


@dataclass(frozen=True)
class VolumeImage:
    """One volume as a native model receives it.

    - ``intensities``: (Z, Y, X) float32, the SOURCE intensities (raw HU for CT, scanner units
      for MRI), not the prepared uint8 slices; the same voxel order and grid as the prepared
      :class:`~sambench.volumes.types.Volume3D` (so ground truth and prompts index it directly).
    - ``spacing``: (z, y, x) voxel size in mm, each > 0.
    - ``slice_axis``: the canonical RAS axis (0/1/2 = R-L/A-P/S-I) that axis 0 is (2: axial,
      the array is in canonical RAS (z, y, x) order).
    - ``volume_id``, ``source``: the volume's id and the file the intensities were read from.
    """

    intensities: np.ndarray
    spacing: tuple[float, float, float]
    slice_axis: int = 2
    volume_id: str = ""
    source: str = ""

    @property
    def shape(self) -> tuple[int, int, int]:
        z, y, x = self.intensities.shape
        return int(z), int(y), int(x)


@dataclass(frozen=True)
class PointInteraction:
    """A click at voxel (``z``, ``y``, ``x``); ``positive`` True adds the voxel's object, False
    removes it."""

    z: int
    y: int
    x: int
    positive: bool = True

    kind = "point"


@dataclass(frozen=True)
class BoxInteraction:
    """A box, inclusive voxel bounds (``z_min`` .. ``z_max``, ``y_min`` .. ``y_max``, ``x_min`` ..
    ``x_max``). ``z_min == z_max`` is a 2D box on slice ``z_min``; a box one voxel thick along
    y or x is a 2D box on that coronal/sagittal plane (:attr:`is_2d`, as nnInteractive's session
    reads a box of size 1 in any axis); otherwise a 3D box."""

    z_min: int
    y_min: int
    x_min: int
    z_max: int
    y_max: int
    x_max: int
    positive: bool = True

    @property
    def is_2d(self) -> bool:
        return (self.z_min == self.z_max or self.y_min == self.y_max
                or self.x_min == self.x_max)  # fmt: skip

    @property
    def kind(self) -> str:
        return "box2d" if self.is_2d else "box3d"

    def half_open(self) -> list[list[int]]:
        """[[z0, z1), [y0, y1), [x0, x1)]: the bounds as half-open intervals of Python ints
        (nnInteractive's; numpy integers would make its rounded box centre a numpy float)."""
        b = [int(v) for v in (self.z_min, self.z_max, self.y_min, self.y_max, self.x_min,
                              self.x_max)]  # fmt: skip
        return [[b[0], b[1] + 1], [b[2], b[3] + 1], [b[4], b[5] + 1]]


PLANE_AXES = {0: ("y", "x"), 1: ("z", "x"), 2: ("z", "y")}
"""The in-plane axes of a scribble's or lasso's plane, by ``axis`` (the axis it is normal to)."""


@dataclass(frozen=True)
class ScribbleInteraction:
    """A scribble: an open polyline on slice ``z`` through ``points_yx`` ((y, x) voxel
    coordinates, in drawing order, at least one point), drawn ``thickness`` voxels wide in the
    slice plane (None: the model's preferred width); see
    :func:`sambench.models.volume_raster.scribble_mask`.

    ``axis`` (default 0) is the volume axis the drawing's plane is normal to: 0 the slice
    z = ``z`` (an axial slice of a canonical volume), points (y, x); 1 the plane y = ``z`` (a
    coronal slice), points (z, x); 2 the plane x = ``z`` (a sagittal slice), points (z, y):
    ``z`` is the plane's index along ``axis`` and ``points_yx`` the two other axes in (z, y, x)
    order (:data:`PLANE_AXES`; :meth:`points_zyx` gives the full voxel coordinates)."""

    z: int
    points_yx: tuple[tuple[float, float], ...]
    positive: bool = True
    thickness: int | None = None
    axis: int = 0

    kind = "scribble"

    def points_zyx(self) -> np.ndarray:
        """Nx3 float64 (z, y, x) voxel coordinates of the points."""
        return plane_points_zyx(self.points_yx, self.z, self.axis)


@dataclass(frozen=True)
class LassoInteraction:
    """A lasso: the closed polygon ``polygon_yx`` ((y, x) voxel coordinates, at least three
    vertices; the last joins the first) on slice ``z``, filled; see
    :func:`sambench.models.volume_raster.lasso_mask`. ``axis``: the plane, as for
    :class:`ScribbleInteraction` (0: slice z, vertices (y, x); 1: plane y = ``z``, vertices
    (z, x); 2: plane x = ``z``, vertices (z, y))."""

    z: int
    polygon_yx: tuple[tuple[float, float], ...]
    positive: bool = True
    axis: int = 0

    kind = "lasso"

    def points_zyx(self) -> np.ndarray:
        """Nx3 float64 (z, y, x) voxel coordinates of the vertices."""
        return plane_points_zyx(self.polygon_yx, self.z, self.axis)


def plane_points_zyx(points: tuple[tuple[float, float], ...], index: int, axis: int) -> np.ndarray:
    """Nx3 (z, y, x) of in-plane ``points`` on the plane ``index`` along ``axis`` (see
    :class:`ScribbleInteraction`)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return np.insert(pts, axis, float(index), axis=1)


@dataclass(frozen=True, eq=False)
class InitialMaskInteraction:
    """A starting segmentation: ``mask`` (Z, Y, X) bool over the whole volume (e.g. a previous
    model's prediction). ``refine`` True lets the model predict from it at once; False only
    sets it as the current mask."""

    mask: np.ndarray = field(repr=False)
    refine: bool = False

    kind = "initial_mask"


@dataclass(frozen=True)
class ClassInteraction:
    """A class prompt: segment the model's own class ``label`` (an integer >= 1 in the model's
    label dictionary, e.g. VISTA3D's 3 = spleen; not the dataset's label value). It names no
    voxel: the model finds the class in the whole volume, and later clicks refine that object.
    Only a model listing ``"class"`` in :attr:`VolumeModel.supports` takes it (VISTA3D; see
    :mod:`sambench.models.vista3d` for its labels and how the class and the clicks combine)."""

    label: int

    kind = "class"


Interaction = (
    PointInteraction
    | BoxInteraction
    | ScribbleInteraction
    | LassoInteraction
    | InitialMaskInteraction
    | ClassInteraction
)


@runtime_checkable
class VolumeModel(Protocol):
    """What the 3D protocols need from a native 3D model.

    - ``name``: the registry name; ``model_kind``: ``"3d"`` (results carry it).
    - ``supports``: the :data:`INTERACTION_KINDS` the loaded weights accept.
    - ``max_shape``: the largest (Z, Y, X) volume the model can take whole, or None (any size:
      nnInteractive slides its patch over the volume).
    - ``info()``: JSON-serializable facts written to the run config (licence of the weights,
      the checkpoint, the package version).
    """

    name: str
    model_kind: str
    supports: frozenset[str]
    max_shape: tuple[int, int, int] | None

    def open(self, image: VolumeImage) -> None:
        """Hold ``image`` (and forget the previous volume and every interaction)."""
        ...

    def apply(self, interaction: Interaction) -> np.ndarray:
        """Add one interaction, predict, and return the current (Z, Y, X) bool mask (a copy)."""
        ...

    def reset(self) -> None:
        """Forget every interaction on the open volume (the mask becomes empty)."""
        ...

    def info(self) -> dict[str, Any]: ...


def is_volume_model(model: object) -> bool:
    """True for a native 3D model (``model_kind == "3d"`` and an ``apply`` method)."""
    return getattr(model, "model_kind", MODEL_KIND_2D) == MODEL_KIND_3D and hasattr(model, "apply")


def model_kind(model: object) -> str:
    """``"3d"`` for a native 3D model, ``"2d"`` for every other (the results column)."""
    return MODEL_KIND_3D if is_volume_model(model) else MODEL_KIND_2D


def check_interaction(interaction: Interaction, shape: tuple[int, int, int]) -> None:
    """ValueError naming the field when ``interaction`` does not lie in a (Z, Y, X) ``shape``
    volume (or is malformed: an inverted box, a lasso of fewer than 3 vertices)."""
    z_n, y_n, x_n = shape
    if isinstance(interaction, PointInteraction):
        for name, v, n in (("z", interaction.z, z_n), ("y", interaction.y, y_n),
                           ("x", interaction.x, x_n)):  # fmt: skip
            if not 0 <= v < n:
                raise ValueError(f"point.{name}={v} outside [0, {n})")
    elif isinstance(interaction, BoxInteraction):
        b = interaction
        for name, lo, hi, n in (("z", b.z_min, b.z_max, z_n), ("y", b.y_min, b.y_max, y_n),
                                ("x", b.x_min, b.x_max, x_n)):  # fmt: skip
            if not 0 <= lo <= hi < n:
                raise ValueError(f"box.{name}: expected 0 <= {name}_min <= {name}_max < {n}, "
                                 f"got {lo}..{hi}")  # fmt: skip
    elif isinstance(interaction, ScribbleInteraction | LassoInteraction):
        pts: tuple[tuple[float, float], ...] = (
            interaction.points_yx
            if isinstance(interaction, ScribbleInteraction)
            else interaction.polygon_yx
        )
        need = 3 if isinstance(interaction, LassoInteraction) else 1
        if len(pts) < need:
            raise ValueError(
                f"{interaction.kind}: expected >= {need} (y, x) points, got {len(pts)}"
            )
        if interaction.axis not in PLANE_AXES:
            raise ValueError(f"{interaction.kind}.axis={interaction.axis}: expected 0, 1 or 2")
        n_axis = shape[interaction.axis]
        if not 0 <= interaction.z < n_axis:
            name = f"{interaction.kind}.z"
            if interaction.axis:
                name += f" (the plane's index along axis {interaction.axis})"
            raise ValueError(f"{name}={interaction.z} outside [0, {n_axis})")
    elif isinstance(interaction, InitialMaskInteraction):
        if tuple(interaction.mask.shape) != tuple(shape):
            raise ValueError(f"initial_mask: expected shape {shape}, got {interaction.mask.shape}")
    elif isinstance(interaction, ClassInteraction):
        lab = interaction.label
        if isinstance(lab, bool) or not isinstance(lab, int | np.integer) or lab < 1:
            raise ValueError(f"class.label: expected an integer >= 1, got {lab!r}")
    else:
        raise TypeError(f"not an interaction: {type(interaction).__name__}")


@contextlib.contextmanager
def stdout_to_debug_log(logger: logging.Logger, source: str) -> Iterator[None]:
    """What an authors' package prints to stdout (nnInteractive's progress, medim's "creating
    model") goes to ``logger``'s debug log as one ``"<source>: ..."`` record instead."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield
    if buf.getvalue():
        logger.debug("%s: %s", source, buf.getvalue().strip())
