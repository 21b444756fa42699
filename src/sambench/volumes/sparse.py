"""Sparse 3D masks and boxes: an SxHxW prediction kept as its non-empty slices, and crop geometry.

- :class:`SparseMask`: an SxHxW bool prediction kept as ``{slice: HxW bool}`` for the slices
  that hold foreground (a propagating protocol touches a few slices of a long volume). It reads
  like an array where that is cheap (``m[k]``, ``m.shape``, ``m.sum()``, ``m.any()``) and
  ``np.asarray(m)`` builds the full array (``--save-masks``, tests).
- :func:`dense_bbox`, :func:`union_crop`: inclusive boxes (z0, y0, x0, z1, y1, x1) and the padded
  union crop that scoring reads (:mod:`sambench.volumes.masks`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

Box3 = tuple[int, int, int, int, int, int]  # (z0, y0, x0, z1, y1, x1) inclusive


class SparseMask:
    """An SxHxW bool mask stored as its non-empty slices (see the module docstring).

    ``m[k] = arr`` stores slice ``k`` (dropped when empty); ``m[k]`` returns it (zeros when
    absent). Other indexing and any numpy function go through ``np.asarray(m)`` (full size).
    """

    __slots__ = ("_slices", "shape")

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.shape = (int(shape[0]), int(shape[1]), int(shape[2]))
        self._slices: dict[int, np.ndarray] = {}

    dtype = np.dtype(bool)
    ndim = 3

    def _check(self, k: Any) -> int:
        if not isinstance(k, int | np.integer) or not 0 <= int(k) < self.shape[0]:
            raise IndexError(f"slice index {k!r}: expected an int in 0..{self.shape[0] - 1}")
        return int(k)

    def __setitem__(self, k: int, mask: np.ndarray) -> None:
        k = self._check(k)
        m = np.asarray(mask, dtype=bool)
        if m.shape != self.shape[1:]:
            raise ValueError(f"slice {k}: expected shape {self.shape[1:]}, got {m.shape}")
        if m.any():
            self._slices[k] = m.copy()
        else:
            self._slices.pop(k, None)

    def __getitem__(self, k: Any) -> np.ndarray:
        if isinstance(k, int | np.integer):
            m = self._slices.get(self._check(k))
            return np.zeros(self.shape[1:], bool) if m is None else m
        return np.asarray(self)[k]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.zeros(self.shape, bool if dtype is None else dtype)  # one full-size array
        for k, m in self._slices.items():
            out[k] = m
        return out

    def __len__(self) -> int:
        return self.shape[0]

    def slices(self) -> Iterator[tuple[int, np.ndarray]]:
        """(k, HxW mask) of the non-empty slices, in slice order."""
        for k in sorted(self._slices):
            yield k, self._slices[k]

    def copy(self) -> SparseMask:
        out = SparseMask(self.shape)
        out._slices = dict(self._slices)  # slices are never modified in place
        return out

    def sum(self) -> int:
        return int(sum(int(np.count_nonzero(m)) for m in self._slices.values()))

    def any(self) -> bool:
        return bool(self._slices)

    def bbox(self) -> Box3 | None:
        """Inclusive (z0, y0, x0, z1, y1, x1) of the foreground; None when empty."""
        if not self._slices:
            return None
        zs = sorted(self._slices)
        rows = np.any([m.any(axis=1) for m in self._slices.values()], axis=0)
        cols = np.any([m.any(axis=0) for m in self._slices.values()], axis=0)
        ys, xs = np.flatnonzero(rows), np.flatnonzero(cols)
        return (zs[0], int(ys[0]), int(xs[0]), zs[-1], int(ys[-1]), int(xs[-1]))

    def crop(self, box: tuple[slice, slice, slice]) -> np.ndarray:
        """The dense bool crop ``np.asarray(self)[box]`` without building the full array."""
        _, ysl, xsl = box
        (z0, z1, _), (y0, y1, _), (x0, x1, _) = (
            sl.indices(n) for sl, n in zip(box, self.shape, strict=True)
        )
        out = np.zeros((z1 - z0, max(y1 - y0, 0), max(x1 - x0, 0)), bool)
        for k, m in self._slices.items():
            if z0 <= k < z1:
                out[k - z0] = m[ysl, xsl]
        return out

    def __repr__(self) -> str:
        return f"SparseMask(shape={self.shape}, slices={sorted(self._slices)})"


def dense_bbox(mask: np.ndarray) -> Box3 | None:
    """Inclusive (z0, y0, x0, z1, y1, x1) of a dense SxHxW bool mask; None when empty."""
    idx = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    if idx[0].size == 0:
        return None
    return (int(idx[0][0]), int(idx[1][0]), int(idx[2][0]),
            int(idx[0][-1]), int(idx[1][-1]), int(idx[2][-1]))  # fmt: skip


def union_crop(a: Box3, b: Box3 | None, shape: tuple[int, int, int]) -> tuple[slice, slice, slice]:
    """Slices of the union of two inclusive boxes, padded by 1 voxel, clipped to ``shape``."""
    lo = [a[i] if b is None else min(a[i], b[i]) for i in range(3)]
    hi = [a[i + 3] if b is None else max(a[i + 3], b[i + 3]) for i in range(3)]
    return (
        slice(max(lo[0] - 1, 0), min(hi[0] + 2, shape[0])),
        slice(max(lo[1] - 1, 0), min(hi[1] + 2, shape[1])),
        slice(max(lo[2] - 1, 0), min(hi[2] + 2, shape[2])),
    )
