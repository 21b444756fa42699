"""The three slice views of a canonical (z, y, x) RAS volume, as numpy views (no copies).

:func:`view_array` returns a (k, row, col) view of a canonical array for ``axial`` (slice z),
``coronal`` (slice y) or ``sagittal`` (slice x), in the radiological display convention of
3D Slicer and most PACS: axial and coronal show the patient's right on the screen's left,
axial anterior at the top, coronal and sagittal superior at the top, sagittal anterior on the
left. Because it is a view, ``view_array(labels, v)[k] = mask`` writes into ``labels``.
Slice index k counts from the inferior (axial), posterior (coronal) or left (sagittal) end.
"""

from __future__ import annotations

import numpy as np

VIEWS = ("axial", "coronal", "sagittal")


def check_view(view: str) -> str:
    if view not in VIEWS:
        raise ValueError(f"view: expected one of {', '.join(VIEWS)}, got {view!r}")
    return view


def view_array(arr: np.ndarray, view: str) -> np.ndarray:
    """(k, row, col) view of canonical (z, y, x) ``arr`` for ``view`` (see the module docstring)."""
    check_view(view)
    if view == "axial":  # rows: A at top (y flipped), cols: R on the left (x flipped)
        return arr[:, ::-1, ::-1]
    if view == "coronal":  # slice y; rows: S at top (z flipped), cols: R on the left
        return arr.transpose(1, 0, 2)[:, ::-1, ::-1]
    # sagittal: slice x; rows: S at top, cols: A on the left (y flipped)
    return arr.transpose(2, 0, 1)[:, ::-1, ::-1]


def view_spacing(spacing_xyz: tuple[float, float, float], view: str) -> tuple[float, float]:
    """(row, col) pixel size in mm of ``view`` from canonical (x, y, z) spacing."""
    sx, sy, sz = spacing_xyz
    return {"axial": (sy, sx), "coronal": (sz, sx), "sagittal": (sz, sy)}[check_view(view)]


def view_depth_spacing(spacing_xyz: tuple[float, float, float], view: str) -> float:
    """Spacing in mm across the slices of ``view``."""
    sx, sy, sz = spacing_xyz
    return {"axial": sz, "coronal": sy, "sagittal": sx}[check_view(view)]


def canonical_index(
    shape_zyx: tuple[int, int, int], view: str, k: int, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Flat indices into a C-ordered canonical (z, y, x) array of ``shape_zyx`` of the pixels
    (``rows``, ``cols``) of slice ``k`` of ``view`` (the inverse of :func:`view_array`)."""
    nz, ny, nx = shape_zyx
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    if check_view(view) == "axial":
        z, y, x = np.full_like(rows, k), ny - 1 - rows, nx - 1 - cols
    elif view == "coronal":
        z, y, x = nz - 1 - rows, np.full_like(rows, k), nx - 1 - cols
    else:
        z, y, x = nz - 1 - rows, ny - 1 - cols, np.full_like(rows, k)
    return (z * ny + y) * nx + x


def canonical_zyx(
    shape_zyx: tuple[int, int, int], view: str, k: int, row: int, col: int
) -> tuple[int, int, int]:
    """The canonical (z, y, x) voxel of pixel (``row``, ``col``) of slice ``k`` of ``view``."""
    flat = canonical_index(shape_zyx, view, k, np.array([row]), np.array([col]))
    z, y, x = np.unravel_index(int(flat[0]), shape_zyx)
    return int(z), int(y), int(x)
