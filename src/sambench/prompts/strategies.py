"""Deterministic prompt strategies S2-S6 derived from a ground-truth mask (SPEC section 3).

Conventions: masks are HxW bool arrays (integer arrays holding only 0/1 are accepted; 1 = object);
points are Nx2 (X, Y) pixel coordinates of the original image; boxes are XYXY with inclusive pixel
coordinates. All functions are vectorized: the foreground list is ``np.flatnonzero(mask)``, which is
row-major order (y first, then x), with ``y = idx // W`` and ``x = idx % W``.

Strategies (S1, everything mode, lives elsewhere):

- S2: one positive point (the centroid if it lies inside the mask, else the first foreground pixel).
- S3: five positive points.
- S4: five positive then five negative points, labels ``[1]*5 + [0]*5``.
- S5: the tight bounding box.
- S6: the S5 box and the S2 point.

Prompt rules:

- ``"paper"`` (default): the rules as the paper describes them and SPEC section 3 states them.
- ``"authors-code"``: reproduces the authors' released ``utils/get_prompts.py``
  (yuhoo0302/Segment-Anything-Model-for-Medical-Images), which differs from the paper rules in two
  places: (1) the centroid always replaces the first foreground point, even when it lies outside the
  object (so S2, S3, S4 and S6 can carry a positive point on background); (2) the foreground list is
  sampled as ``list[::step]``, which yields more than n points whenever the pixel count is not a
  multiple of n; S4 then takes the first 2n coordinates of (all foreground samples, all background
  samples) with labels ``[1]*n + [0]*n``, so the sixth foreground sample is labelled negative and the
  last background sample(s) are dropped. S3 takes the first n foreground samples, and the box (S5, S6)
  is the same tight box in both modes.

Shortfalls (decision; the released code crashes with a zero step in these cases): a strategy is never
built with fewer points than it is defined with. An empty mask, fewer than n foreground pixels, or
fewer than n non-object pixels in the background region raises :class:`PromptError` with a
machine-readable ``reason``; :func:`make_all_prompts` maps such a strategy to its error so the engine
records a skip instead of failing the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sambench.prompts.names import STRATEGIES
from sambench.prompts.types import Prompts

PROMPT_RULES = ("paper", "authors-code")
PROMPT_ERROR_REASONS = (
    "empty_mask",
    "too_few_foreground_pixels",
    "no_background_pixels",
    "too_few_background_pixels",
)

#: Number of points per strategy: S3 and S4 use five positive points, S4 five negative ones.
N_POINTS = 5


class PromptError(ValueError):
    """A strategy cannot be built for this object.

    ``reason`` is a short machine-readable string, one of :data:`PROMPT_ERROR_REASONS`.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _check_choice(field: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{field}: unknown value {value!r}; expected one of {', '.join(allowed)}")


def _as_mask(mask: np.ndarray) -> np.ndarray:
    """Validate an HxW mask and return it as bool (1/True = object)."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask: expected an HxW 2D array, got shape {m.shape}")
    if m.dtype == np.bool_:
        return m
    if not (np.issubdtype(m.dtype, np.integer) or np.issubdtype(m.dtype, np.floating)):
        raise ValueError(f"mask: expected a bool or 0/1 numeric array, got dtype {m.dtype}")
    if not ((m == 0) | (m == 1)).all():
        raise ValueError("mask: expected only the values 0 and 1 (or a bool array)")
    return m == 1


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n: expected a positive integer number of points, got {n!r}")


def _flat_to_xy(idx: np.ndarray, width: int) -> np.ndarray:
    """Row-major flat indices -> Nx2 int64 (X, Y)."""
    y, x = np.divmod(idx.astype(np.int64, copy=False), width)
    return np.stack([x, y], axis=1)


def _step(count: int, n: int, what: str, too_few: str) -> int:
    """The sampling step ``count // n``; a shortfall raises :class:`PromptError`."""
    if count < n:
        raise PromptError(too_few, f"{what}: {count} pixel(s), fewer than the {n} points required")
    return count // n


@dataclass
class _Object:
    """Pieces shared by all strategies of one object (computed once)."""

    mask: np.ndarray  # HxW bool
    fg: np.ndarray  # flat row-major indices of the object pixels, int64
    centroid: tuple[int, int]  # (x, y), truncated means
    centroid_inside: bool
    box: np.ndarray  # [x_min, y_min, x_max, y_max] int64, inclusive
    _bg: np.ndarray | None = None

    @classmethod
    def from_mask(cls, mask: np.ndarray) -> _Object:
        m = _as_mask(mask)
        fg = np.flatnonzero(m)
        if fg.size == 0:
            raise PromptError("empty_mask", "mask: the object has no foreground pixel")
        width = m.shape[1]
        ys, xs = np.divmod(fg, width)
        # Integer floor division == int(mean) exactly for non-negative sums (no float rounding).
        cx = int(xs.sum()) // fg.size
        cy = int(ys.sum()) // fg.size
        box = np.array([xs.min(), ys[0], xs.max(), ys[-1]], dtype=np.int64)
        return cls(m, fg, (cx, cy), bool(m[cy, cx]), box)

    def foreground(self, n: int, rules: str) -> np.ndarray:
        """Nx2 int64 (X, Y) foreground samples; under ``authors-code`` all of ``list[::step]``."""
        step = _step(self.fg.size, n, "foreground", "too_few_foreground_pixels")
        idx = self.fg[::step] if rules == "authors-code" else self.fg[: n * step : step]
        pts = _flat_to_xy(idx, self.mask.shape[1])
        if rules == "authors-code" or self.centroid_inside:
            pts[0] = self.centroid
        return pts

    def background_pixels(self) -> np.ndarray:
        """Row-major (X, Y) non-object pixels of the doubled, clipped bounding box, Mx2 int64."""
        if self._bg is None:
            height, width = self.mask.shape
            x0, y0, x1, y1 = (int(v) for v in self.box)
            c0, nc = _region(x0, x1 - x0, width)
            r0, nr = _region(y0, y1 - y0, height)
            sub = self.mask[r0 : r0 + nr, c0 : c0 + nc]
            if sub.size == 0:
                idx = np.empty(0, dtype=np.int64)
            else:
                idx = np.flatnonzero(~sub)
            yy, xx = np.divmod(idx, max(nc, 1))
            self._bg = np.stack([xx + c0, yy + r0], axis=1).astype(np.int64)
        return self._bg

    def background(self, n: int, rules: str) -> np.ndarray:
        """Nx2 int64 (X, Y) background samples; under ``authors-code`` all of ``list[::step]``."""
        bg = self.background_pixels()
        if len(bg) == 0:
            raise PromptError(
                "no_background_pixels",
                "background: no non-object pixel in the doubled bounding box "
                f"(box XYXY {self.box.tolist()}, image HxW {self.mask.shape})",
            )
        step = _step(len(bg), n, "background", "too_few_background_pixels")
        return bg[::step] if rules == "authors-code" else bg[: n * step : step]


def _region(lo: int, extent: int, size: int) -> tuple[int, int]:
    """Start and length of one axis of the background region (SPEC section 3).

    ``a = max(lo - extent/2, 0)``, ``b = min(lo + 1.5 extent, size)``; the region starts at
    ``int(a)`` and is ``int(b - a)`` long. Computed in half-pixel integers, so it is exact.
    """
    a2 = max(2 * lo - extent, 0)
    b2 = min(2 * lo + 3 * extent, 2 * size)
    return a2 // 2, (b2 - a2) // 2


def foreground_points(mask: np.ndarray, n: int, *, rules: str = "paper") -> np.ndarray:
    """Sample n foreground points of ``mask`` (HxW bool) as an Nx2 int64 array, (X, Y).

    ``step = len(list) // n`` over the row-major foreground list; the points are ``list[0],
    list[step], ..., list[(n-1)*step]``, the first replaced by the centroid when it lies inside the
    mask. Under ``rules="authors-code"`` the result is all of ``list[::step]`` (n or more points) with
    the centroid always first. Raises :class:`PromptError` for an empty mask or fewer than n pixels.
    """
    _check_choice("rules", rules, PROMPT_RULES)
    _check_n(n)
    return _Object.from_mask(mask).foreground(int(n), rules)


def background_points(mask: np.ndarray, n: int) -> np.ndarray:
    """Sample n background points around ``mask`` (HxW bool) as an Nx2 int64 array, (X, Y).

    The region is the bounding box doubled around its centre and clipped to the image (exact
    arithmetic in SPEC section 3); its non-object pixels in row-major order are sampled with the
    step rule ``list[0], list[step], ..., list[(n-1)*step]``, ``step = len // n``. Raises
    :class:`PromptError` (``no_background_pixels`` / ``too_few_background_pixels``) on a shortfall.
    """
    _check_n(n)
    return _Object.from_mask(mask).background(int(n), "paper")


def centroid(mask: np.ndarray) -> tuple[int, int]:
    """The (x, y) centroid of ``mask`` (HxW bool): means of the pixel coordinates, truncated.

    May lie outside the object (a ring). Raises :class:`PromptError` for an empty mask.
    """
    return _Object.from_mask(mask).centroid


def bounding_box(mask: np.ndarray) -> np.ndarray:
    """Tight bounding box of ``mask`` (HxW bool): int64 ``[x_min, y_min, x_max, y_max]``, inclusive."""
    return _Object.from_mask(mask).box.copy()


def _points(coords: np.ndarray, labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    return coords.astype(np.float64), np.asarray(labels, dtype=np.int64)


def _build(obj: _Object, strategy: str, rules: str) -> Prompts:
    n = N_POINTS
    if strategy in ("S2", "S6"):
        if rules == "authors-code" or obj.centroid_inside:
            first = np.array([obj.centroid], dtype=np.int64)
        else:
            first = _flat_to_xy(obj.fg[:1], obj.mask.shape[1])
        pts, labs = _points(first, [1])
        box = obj.box.astype(np.float64) if strategy == "S6" else None
        return Prompts(points=pts, labels=labs, box=box)
    if strategy == "S3":
        pts, labs = _points(obj.foreground(n, rules)[:n], [1] * n)
        return Prompts(points=pts, labels=labs)
    if strategy == "S4":
        fg = obj.foreground(n, rules)
        bg = obj.background(n, rules)
        # paper: exactly n + n; authors-code: first 2n of (all fg samples, all bg samples)
        coords = np.concatenate([fg, bg])[: 2 * n]
        pts, labs = _points(coords, [1] * n + [0] * n)
        return Prompts(points=pts, labels=labs)
    # S5
    return Prompts(box=obj.box.astype(np.float64))


def make_all_prompts(
    mask: np.ndarray, strategies: Sequence[str], *, rules: str = "paper"
) -> dict[str, Prompts | PromptError]:
    """Build the prompts of several strategies for one object, sharing the pixel list, centroid, box.

    ``mask`` is HxW bool. Returns ``{strategy: Prompts}`` with float64 Nx2 (X, Y) points, int64
    labels (1 positive, 0 negative) and float64 XYXY inclusive boxes; a strategy that cannot be built
    maps to its :class:`PromptError` (read ``.reason``) instead of raising. Unknown strategies or
    rules, and malformed masks, raise ``ValueError``.
    """
    _check_choice("rules", rules, PROMPT_RULES)
    for s in strategies:
        _check_choice("strategy", s, STRATEGIES)
    try:
        obj = _Object.from_mask(mask)
    except PromptError as e:
        return {s: e for s in strategies}
    out: dict[str, Prompts | PromptError] = {}
    for s in strategies:
        try:
            out[s] = _build(obj, s, rules)
        except PromptError as e:
            out[s] = e
    return out


def make_prompts(mask: np.ndarray, strategy: str, *, rules: str = "paper") -> Prompts:
    """Build the prompts of one strategy (``"S2"``..``"S6"``) for ``mask`` (HxW bool).

    See :func:`make_all_prompts` for the output conventions; raises :class:`PromptError` when the
    strategy cannot be built and ``ValueError`` listing the allowed values for an unknown strategy
    or rules.
    """
    result = make_all_prompts(mask, [strategy], rules=rules)[strategy]
    if isinstance(result, PromptError):
        raise result
    return result
