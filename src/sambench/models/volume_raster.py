"""Scribbles and lassos as voxel masks: what a native model's session receives.

Pure functions of the interaction records of :mod:`sambench.models.volume_base`; arrays are
(Z, Y, X), coordinates (y, x) voxels on one slice ``z``. The rule (stated, tested):

- scribble: the pixels of the polyline's segments (Bresenham, :func:`skimage.draw.line`,
  between the rounded vertices), then every pixel of the slice within ``thickness / 2`` pixels
  (Euclidean) of one of them when ``thickness > 1``: a brush of that diameter;
- lasso: the filled polygon (:func:`skimage.draw.polygon`, pixel centres inside) plus its
  outline (:func:`skimage.draw.polygon_perimeter`), so a thin lasso still marks its boundary.
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
    """(Z, Y, X) uint8: 1 on the scribble's pixels of slice ``scribble.z`` (``thickness`` is
    used when the scribble gives none), 0 elsewhere; pixels outside the slice are clipped."""
    out = np.zeros(shape, np.uint8)
    plane = np.zeros(shape[1:], bool)
    pts = _rounded(scribble.points_yx)
    if len(pts) == 1:
        pts = np.concatenate([pts, pts])
    for (y0, x0), (y1, x1) in itertools.pairwise(pts):
        rr, cc = draw.line(int(y0), int(x0), int(y1), int(x1))
        keep = (rr >= 0) & (rr < shape[1]) & (cc >= 0) & (cc < shape[2])
        plane[rr[keep], cc[keep]] = True
    width = scribble.thickness if scribble.thickness is not None else thickness
    if width > 1 and plane.any():
        plane = ndimage.distance_transform_edt(~plane) <= width / 2
    out[scribble.z] = plane
    return out


def lasso_mask(shape: tuple[int, int, int], lasso: LassoInteraction) -> np.ndarray:
    """(Z, Y, X) uint8: 1 inside and on the lasso's closed polygon on slice ``lasso.z``."""
    out = np.zeros(shape, np.uint8)
    pts = np.asarray(lasso.polygon_yx, dtype=np.float64).reshape(-1, 2)
    rr, cc = draw.polygon(pts[:, 0], pts[:, 1], shape=shape[1:])
    out[lasso.z, rr, cc] = 1
    rr, cc = draw.polygon_perimeter(np.rint(pts[:, 0]), np.rint(pts[:, 1]), shape=shape[1:])
    out[lasso.z, rr, cc] = 1
    return out
