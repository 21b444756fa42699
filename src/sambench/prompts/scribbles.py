"""Scribbles and lassos simulated from a ground-truth object (pure functions, seeded).

Conventions: the object is a (Z, Y, X) bool array (axis 0 the slice axis, as
:mod:`sambench.volumes.types`); every prompt lies on ONE slice, the object's key slice (the slice
of largest area, the lowest index on ties); coordinates are (y, x) pixel centres of that slice
(row, column; pixel units, not mm), floats holding integers. Randomness only through the
``np.random.Generator`` passed in: the same generator state gives the same prompt.

The rule (docs/models-3d.md, "Scribble and lasso starts"). nnInteractive (Isensee et
al. 2025, arXiv 2503.08373) trains on simulated scribbles and lassos drawn on one 2D slice of
the object; its training-time simulation code is not public (the MIC-DKFZ ``nnInteractive``
repository and PyPI package hold the inference session only), so sambench implements the rule
as the paper describes it (a lasso is a closed contour drawn loosely AROUND the object on a slice;
a scribble is a stroke drawn INSIDE the object, along its extent), with these stated choices:

- :func:`simulate_lasso`: the key slice's object (all its pieces) is dilated by a margin ``m``
  pixels drawn uniformly from ``margin`` (default 2..5; a disk of radius ``m``), and the lasso is
  the outer contour of the dilated region (:func:`skimage.measure.find_contours` at level 0.5),
  simplified by Douglas-Peucker (:func:`skimage.measure.approximate_polygon`, tolerance
  ``m / 2`` px, so the polygon stays >= about ``m / 2`` px outside the object: it never cuts
  it). When the dilated region has several pieces, the lasso is the convex hull of the dilated
  region (one closed polygon around all of them). Vertices are clipped to the image.
- :func:`simulate_scribble`: a centre-line stroke along the object's length: on the key
  slice's largest piece, the pixels are binned (1 px bins) by their coordinate along the piece's
  principal axis (PCA of its pixels); in each bin the deepest pixel (largest Euclidean distance
  to the background; the first in C order on ties) is the centre line, keeping the bins whose
  depth is >= half the piece's largest depth (the stroke stays off the thin ends). A contiguous
  run of a fraction ``f`` of that centre line is kept, ``f`` uniform in ``length`` (default
  0.5..1.0) at a uniform start, and ``n_vertices`` (default 8) vertices are taken evenly along
  the run; a vertex is kept only when the straight segment from the previous kept vertex lies
  inside the object (Bresenham, :func:`skimage.draw.line`), so the 1-pixel polyline lies inside
  the object (a C shape whose centre line jumps between arms loses those vertices). A centre
  line of one bin gives a one-point scribble at the deepest pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage import draw, measure, morphology

from sambench.prompts.strategies import PromptError

DEFAULT_LASSO_MARGIN = (2, 5)
DEFAULT_SCRIBBLE_LENGTH = (0.5, 1.0)
DEFAULT_SCRIBBLE_VERTICES = 8
DEFAULT_RIDGE_DEPTH = 0.5


@dataclass(frozen=True)
class SlicePolyline:
    """A simulated prompt on slice ``z``: ``points_yx`` ((y, x) pixel centres, in drawing order);
    ``closed`` True for a lasso (the last vertex joins the first), False for a scribble."""

    z: int
    points_yx: tuple[tuple[float, float], ...]
    closed: bool

    @property
    def kind(self) -> str:
        return "lasso" if self.closed else "scribble"

    def bbox_xyxy(self, hw: tuple[int, int]) -> np.ndarray:
        """The vertices' tight box, XYXY inclusive pixel indices (float), clipped to ``hw``."""
        p = np.asarray(self.points_yx, np.float64)
        y0, x0 = np.clip(np.floor(p.min(axis=0)), 0, None)
        y1 = min(float(np.ceil(p[:, 0].max())), hw[0] - 1)
        x1 = min(float(np.ceil(p[:, 1].max())), hw[1] - 1)
        return np.array([x0, y0, x1, y1], np.float64)


def key_slice(mask: np.ndarray) -> int:
    """The slice (axis 0) of a (Z, Y, X) mask with the largest object area (lowest on ties);
    PromptError for an empty mask."""
    m = _as_volume(mask)
    areas = m.reshape(m.shape[0], -1).sum(axis=1)
    if not areas.any():
        raise PromptError("empty_mask", "empty object: no scribble or lasso can be drawn")
    return int(np.argmax(areas))


def _as_volume(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 3:
        raise ValueError(f"mask: expected a (Z, Y, X) array, got shape {m.shape}")
    return m.astype(bool, copy=False)


def _range(rng: np.random.Generator, lo_hi: tuple[float, float], name: str) -> float:
    lo, hi = lo_hi
    if not 0 <= lo <= hi:
        raise ValueError(f"{name}: expected 0 <= lo <= hi, got {lo_hi}")
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


def simulate_lasso(
    mask: np.ndarray,
    rng: np.random.Generator,
    *,
    margin: tuple[int, int] = DEFAULT_LASSO_MARGIN,
    z: int | None = None,
) -> SlicePolyline:
    """A closed polygon around the object on slice ``z`` (default :func:`key_slice`) of the
    (Z, Y, X) bool ``mask``; see the module docstring. PromptError when the slice is empty."""
    m = _as_volume(mask)
    z = key_slice(m) if z is None else int(z)
    plane = m[z]
    if not plane.any():
        raise PromptError("empty_mask", f"empty object on slice {z}: no lasso can be drawn")
    lo, hi = int(margin[0]), int(margin[1])
    if not 1 <= lo <= hi:
        raise ValueError(f"margin: expected 1 <= lo <= hi pixels, got {margin}")
    r = int(rng.integers(lo, hi + 1))
    h, w = plane.shape
    # pad so the dilated region's contour closes even where the object touches the border
    padded = np.pad(plane, r + 1)
    grown = ndimage.binary_dilation(padded, structure=morphology.disk(r))
    n_pieces = int(ndimage.label(grown)[1])
    if n_pieces == 1:
        contours = measure.find_contours(grown.astype(np.float64), 0.5)
        outer = max(contours, key=len)
        poly = measure.approximate_polygon(outer, tolerance=r / 2.0)
        if np.allclose(poly[0], poly[-1]):
            poly = poly[:-1]
    else:
        ys, xs = np.nonzero(grown)
        pts = np.stack([ys, xs], axis=1).astype(np.float64)
        from scipy.spatial import ConvexHull

        poly = pts[ConvexHull(pts).vertices]
    poly = poly - (r + 1)
    poly[:, 0] = np.clip(poly[:, 0], 0, h - 1)
    poly[:, 1] = np.clip(poly[:, 1], 0, w - 1)
    pts_yx = tuple((float(y), float(x)) for y, x in np.round(poly, 2))
    if len(pts_yx) < 3:  # a degenerate contour (should not happen with r >= 1): the box
        y0, x0 = np.clip(np.argwhere(plane).min(axis=0) - r, 0, None)
        y1, x1 = np.minimum(np.argwhere(plane).max(axis=0) + r, (h - 1, w - 1))
        pts_yx = ((float(y0), float(x0)), (float(y0), float(x1)), (float(y1), float(x1)),
                  (float(y1), float(x0)))  # fmt: skip
    return SlicePolyline(z, pts_yx, closed=True)


def _segment_inside(plane: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    rr, cc = draw.line(int(a[0]), int(a[1]), int(b[0]), int(b[1]))
    return bool(plane[rr, cc].all())


def simulate_scribble(
    mask: np.ndarray,
    rng: np.random.Generator,
    *,
    length: tuple[float, float] = DEFAULT_SCRIBBLE_LENGTH,
    n_vertices: int = DEFAULT_SCRIBBLE_VERTICES,
    z: int | None = None,
) -> SlicePolyline:
    """An open polyline inside the object on slice ``z`` (default :func:`key_slice`) of the
    (Z, Y, X) bool ``mask``, along its centre line; see the module docstring. PromptError when
    the slice is empty."""
    m = _as_volume(mask)
    z = key_slice(m) if z is None else int(z)
    plane = m[z]
    if not plane.any():
        raise PromptError("empty_mask", f"empty object on slice {z}: no scribble can be drawn")
    if n_vertices < 1:
        raise ValueError(f"n_vertices: expected >= 1, got {n_vertices}")
    frac = _range(rng, length, "length")
    if not 0 < frac <= 1:
        raise ValueError(f"length: expected fractions in (0, 1], got {length}")
    lab, n = ndimage.label(plane)
    sizes = ndimage.sum_labels(plane, lab, index=np.arange(1, n + 1))
    piece = lab == int(np.argmax(sizes)) + 1
    dist = ndimage.distance_transform_edt(piece)
    coords = np.argwhere(piece)
    centre = coords.mean(axis=0)
    _, _, vt = np.linalg.svd(coords - centre, full_matrices=False)
    t = np.floor((coords - centre) @ vt[0]).astype(np.int64)  # 1-px bins along the main axis
    depth = dist[coords[:, 0], coords[:, 1]]
    deep = depth >= DEFAULT_RIDGE_DEPTH * depth.max()
    ridge = []
    for b in np.unique(t[deep]):  # ascending along the axis
        sel = np.nonzero(deep & (t == b))[0]
        ridge.append(coords[sel[np.argmax(depth[sel])]])  # deepest; first in C order on ties
    ordered = np.asarray(ridge)
    if len(ordered) < 2:
        y, x = ordered[0]
        return SlicePolyline(z, ((float(y), float(x)),), closed=False)
    k = max(1, round(frac * len(ordered)))
    start = int(rng.integers(0, len(ordered) - k + 1))
    run = ordered[start : start + k]
    idx = np.unique(np.round(np.linspace(0, len(run) - 1, min(n_vertices, len(run)))).astype(int))
    kept = [run[idx[0]]]
    for i in idx[1:]:
        if _segment_inside(piece, kept[-1], run[i]):
            kept.append(run[i])
    return SlicePolyline(z, tuple((float(y), float(x)) for y, x in kept), closed=False)


def simulate(kind: str, mask: np.ndarray, rng: np.random.Generator) -> SlicePolyline:
    """``kind`` "scribble" or "lasso" with the default parameters (ValueError otherwise)."""
    if kind == "scribble":
        return simulate_scribble(mask, rng)
    if kind == "lasso":
        return simulate_lasso(mask, rng)
    raise ValueError(f"kind: expected scribble or lasso, got {kind!r}")
