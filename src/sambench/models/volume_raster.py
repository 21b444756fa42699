"""Scribbles and lassos as voxel masks: what a native model's session receives.

Pure functions of the interaction records of :mod:`sambench.models.volume_base`; arrays are
(Z, Y, X), coordinates (y, x) voxels on one slice ``z``. The rule (stated, tested):

- scribble: the pixels of the polyline's segments (Bresenham, :func:`skimage.draw.line`,
  between the rounded vertices), then every pixel of the slice within ``thickness / 2`` pixels
  (Euclidean) of one of them when ``thickness > 1``: a brush of that diameter;
- lasso: the filled polygon (:func:`skimage.draw.polygon`, pixel centres inside) plus its
  outline (:func:`skimage.draw.polygon_perimeter`), so a thin lasso still marks its boundary.

The plane is the record's: ``axis`` 0 the slice z (points (y, x)), 1 the plane y (points
(z, x)), 2 the plane x (points (z, y)); the same rule applies in each plane.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage
from skimage import draw

from sambench.models.volume_base import LassoInteraction, ScribbleInteraction


def _rounded(points: tuple[tuple[float, float], ...]) -> np.ndarray:
    return np.rint(np.asarray(points, dtype=np.float64).reshape(-1, 2)).astype(np.int64)


def scribble_mask(
    shape: tuple[int, int, int], scribble: ScribbleInteraction, thickness: int = 1
) -> np.ndarray:
    """(Z, Y, X) uint8: 1 on the scribble's pixels of its plane (slice ``scribble.z`` along
    ``scribble.axis``; ``thickness`` is used when the scribble gives none), 0 elsewhere;
    pixels outside the plane are clipped."""
    out = np.zeros(shape, np.uint8)
    planes = np.moveaxis(out, scribble.axis, 0)  # a view: (index, row, col) of the plane
    plane = np.zeros(planes.shape[1:], bool)
    h, w = plane.shape
    pts = _rounded(scribble.points_yx)
    if len(pts) == 1:
        pts = np.concatenate([pts, pts])
    for (y0, x0), (y1, x1) in itertools.pairwise(pts):
        rr, cc = draw.line(int(y0), int(x0), int(y1), int(x1))
        keep = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        plane[rr[keep], cc[keep]] = True
    width = scribble.thickness if scribble.thickness is not None else thickness
    if width > 1 and plane.any():
        plane = ndimage.distance_transform_edt(~plane) <= width / 2
    planes[scribble.z] = plane
    return out


def lasso_mask(shape: tuple[int, int, int], lasso: LassoInteraction) -> np.ndarray:
    """(Z, Y, X) uint8: 1 inside and on the lasso's closed polygon on its plane (slice
    ``lasso.z`` along ``lasso.axis``)."""
    out = np.zeros(shape, np.uint8)
    planes = np.moveaxis(out, lasso.axis, 0)  # a view: (index, row, col) of the plane
    hw = planes.shape[1:]
    pts = np.asarray(lasso.polygon_yx, dtype=np.float64).reshape(-1, 2)
    rr, cc = draw.polygon(pts[:, 0], pts[:, 1], shape=hw)
    planes[lasso.z, rr, cc] = 1
    rr, cc = draw.polygon_perimeter(np.rint(pts[:, 0]), np.rint(pts[:, 1]), shape=hw)
    planes[lasso.z, rr, cc] = 1
    return out
