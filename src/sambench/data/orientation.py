"""One canonical orientation for every volume, and the choice of the slicing plane (SPEC 2.1).

Every volume that ``prepare`` reads (NIfTI, MetaImage, NRRD, DICOM: all through
:class:`sambench.data.readers._Volume`) is brought to **RAS** voxel order before it is sliced:
canonical axis 0 (x) runs from the patient's left to Right, axis 1 (y) from posterior to Anterior,
axis 2 (z) from inferior to Superior. It is nibabel's ``as_closest_canonical`` (the same permutation
and flips), computed from the ITK direction matrix of the header, so a DICOM series and a NIfTI
file of one patient give the same slices. An oblique volume takes the closest canonical axes (no
resampling). Only voxel order changes: the prepared 3D form and every mask written back stay on
the source file's grid and voxel order (:meth:`Orientation.from_canonical_zyx` inverts it).

Why RAS and not LPS: NIfTI files are mostly RAS-like (the demo's MNI152 is RAS), so their slices
are unchanged by the reorientation; one choice is what matters.

Planes, in canonical axes: 0 (R-L) = sagittal, 1 (A-P) = coronal, 2 (S-I) = axial. The plane is
the one with the coarsest spacing across it (the finest in-plane resolution) when the spacings
differ; when they tie (isotropic volumes) it is the anatomical default (axial, for every
modality); a dataset's ``plane:`` overrides both (:func:`choose_plane`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CANONICAL = "RAS"
PLANES = ("sagittal", "coronal", "axial")  # the plane cut across canonical axis 0, 1, 2
PLANE_AXIS = {p: i for i, p in enumerate(PLANES)}
AXIS_NAMES = ("R-L", "A-P", "S-I")
DEFAULT_PLANE = "axial"
"""The anatomical default for isotropic volumes, for every modality (CT, MRI, PET, US...)."""
_POS, _NEG = "RAS", "LPI"
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])  # ITK's physical frame is LPS


@dataclass(frozen=True)
class Orientation:
    """How a file's voxel axes map to the canonical RAS axes.

    ``axes[i]``: the canonical axis (0/1/2 = R/A/S) of file axis i (ITK x, y, z);
    ``flips[i]``: True when file axis i runs the other way (towards L, P or I).
    """

    axes: tuple[int, int, int]
    flips: tuple[bool, bool, bool]

    @property
    def codes(self) -> str:
        """The file's axis codes as nibabel's ``aff2axcodes`` writes them, e.g. ``"PSR"``."""
        return "".join((_NEG if f else _POS)[a] for a, f in zip(self.axes, self.flips, strict=True))

    @property
    def is_canonical(self) -> bool:
        return self.axes == (0, 1, 2) and not any(self.flips)

    def canonical_xyz(self, values: tuple[float, ...] | tuple[int, ...]) -> tuple:
        """Per-axis file values (size, spacing; x, y, z) in canonical axis order."""
        out: list = [None, None, None]
        for i, a in enumerate(self.axes):
            out[a] = values[i]
        return tuple(out)

    def file_xyz(self, values: tuple) -> tuple:
        """Per-axis canonical values back in the file's x, y, z order."""
        return tuple(values[a] for a in self.axes)

    def to_canonical_zyx(self, arr: np.ndarray) -> np.ndarray:
        """A file (z, y, x[, ...]) array (``GetArrayFromImage`` order) in canonical (S, A, R)
        order, i.e. canonical (z, y, x); a view (no copy)."""
        for i, f in enumerate(self.flips):
            if f:
                arr = np.flip(arr, axis=2 - i)
        # canonical zyx axis (2 - a) comes from file zyx axis (2 - i) where axes[i] == a
        src = [2 - self.axes.index(2 - k) for k in range(3)]
        return arr.transpose(*src, *range(3, arr.ndim))

    def from_canonical_zyx(self, arr: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_canonical_zyx`: a canonical (z, y, x[, ...]) array in the
        file's (z, y, x[, ...]) voxel order (a view)."""
        src = [2 - self.axes[2 - k] for k in range(3)]
        arr = arr.transpose(*src, *range(3, arr.ndim))
        for i, f in enumerate(self.flips):
            if f:
                arr = np.flip(arr, axis=2 - i)
        return arr


def orientation_of(direction: np.ndarray) -> Orientation:
    """The :class:`Orientation` of an ITK 3x3 direction matrix (columns = the file's x, y, z axes
    in LPS), with nibabel's closest-axis rule (``io_orientation``) for oblique volumes."""
    from nibabel.orientations import io_orientation

    ras = _LPS_TO_RAS @ np.asarray(direction, dtype=float).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = ras
    ornt = io_orientation(affine)
    if np.isnan(ornt).any():  # a degenerate matrix: keep the file's order
        return Orientation((0, 1, 2), (False, False, False))
    axes = tuple(int(v) for v in ornt[:, 0])
    flips = tuple(bool(v < 0) for v in ornt[:, 1])
    return Orientation((axes[0], axes[1], axes[2]), (flips[0], flips[1], flips[2]))


@dataclass(frozen=True)
class PlaneChoice:
    """The slicing plane of one volume: canonical ``axis`` (0/1/2), its ``plane`` name and
    ``why`` (``rule`` one of ``coarsest``, ``default``, ``dataset``, ``one-slice``)."""

    axis: int
    rule: str
    detail: str = ""

    @property
    def plane(self) -> str:
        return PLANES[self.axis]

    def describe(self, modality: str = "") -> str:
        """e.g. ``axial (isotropic 1 mm: default for MRI)``."""
        if self.rule == "default":
            why = f"{self.detail}: default for {modality}" if modality else self.detail
        else:
            why = self.detail
        return f"{self.plane} ({why})"


def _mm(v: float) -> str:
    return f"{v:.3g} mm"


def choose_plane(
    spacing_ras: tuple[float, float, float],
    size_ras: tuple[int, int, int],
    override: int | None = None,
    rtol: float = 1e-3,
) -> PlaneChoice:
    """The slicing plane (SPEC 2.1) of a canonical volume with ``spacing_ras``/``size_ras``.

    ``override`` (a dataset's ``plane``) wins; a volume with exactly one slice along one axis is
    cut across it; otherwise the axis with the largest spacing, and when several axes share the
    largest spacing within ``rtol`` (isotropic or two coarse axes) the anatomical default
    (:data:`DEFAULT_PLANE`) if it is among them, else the last of them.
    """
    if override is not None:
        return PlaneChoice(override, "dataset", "set by the dataset's plane")
    singleton = [i for i, n in enumerate(size_ras) if n == 1]
    if len(singleton) == 1:
        return PlaneChoice(singleton[0], "one-slice", "a single slice")
    sp = [float(v) for v in spacing_ras]
    if not all(math.isfinite(s) and s > 0 for s in sp):
        raise ValueError(f"spacing: expected 3 positive finite spacings, got {spacing_ras}")
    largest = max(sp)
    ties = [i for i, s in enumerate(sp) if s >= largest * (1 - rtol)]
    if len(ties) == 1:
        a = ties[0]
        fine = [_mm(sp[i]) for i in range(3) if i != a]
        return PlaneChoice(a, "coarsest", f"coarsest spacing {_mm(sp[a])} along "
                           f"{AXIS_NAMES[a]}, in-plane {' x '.join(fine)}")  # fmt: skip
    default = PLANE_AXIS[DEFAULT_PLANE]
    if len(ties) == 3:
        return PlaneChoice(default, "default", f"isotropic {_mm(largest)}")
    if default in ties:
        return PlaneChoice(default, "default", f"{_mm(largest)} along "
                           f"{' and '.join(AXIS_NAMES[i] for i in ties)}")  # fmt: skip
    a = ties[-1]
    return PlaneChoice(a, "coarsest", f"coarsest spacing {_mm(largest)} along "
                       f"{' and '.join(AXIS_NAMES[i] for i in ties)}: the later axis")  # fmt: skip
