"""Prompt randomness: shift points and box edges by random offsets (SPEC section 6, paper 4.10).

Each point coordinate (x and y separately) and each of the four box edges moves by an independent
offset whose magnitude is drawn uniformly from ``[lo, hi)`` pixels and whose sign is + or - with
equal probability. Offsets are continuous, so shifted coordinates are floats. Results are clipped to
the image (x in ``0..W-1``, y in ``0..H-1``). Labels never change, even when a positive point leaves
the object (a real mis-click). If a box's edges cross (``x_min > x_max`` or ``y_min > y_max``) they
are swapped, so the box stays a valid XYXY box. ``mask_logits`` pass through unchanged.

Draw order (part of the reproducibility contract): point magnitudes (Nx2), point signs (Nx2), then
box magnitudes (4), box signs (4), all from the one generator given.
"""

from __future__ import annotations

import math

import numpy as np

from sambench.prompts.types import Prompts

SHIFT_RANGES: tuple[tuple[int, int], ...] = ((0, 10), (10, 20), (20, 30))


def _check_range(shift_range: tuple[float, float]) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in shift_range)
    except (TypeError, ValueError) as e:
        raise ValueError(f"shift_range: expected (lo, hi) in pixels, got {shift_range!r}") from e
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi):
        raise ValueError(f"shift_range: expected finite 0 <= lo <= hi, got {shift_range!r}")
    return lo, hi


def _offsets(rng: np.random.Generator, shape: tuple[int, ...], lo: float, hi: float) -> np.ndarray:
    """Offsets with magnitude uniform in [lo, hi) and a random sign, float64 of ``shape``."""
    magnitude = rng.uniform(lo, hi, size=shape)
    sign = np.where(rng.random(size=shape) < 0.5, -1.0, 1.0)
    return sign * magnitude


def shift_prompts(
    prompts: Prompts,
    shift_range: tuple[float, float],
    image_size: tuple[int, int],
    rng: np.random.Generator,
) -> Prompts:
    """Return a copy of ``prompts`` with every point coordinate and box edge randomly shifted.

    ``shift_range``: (lo, hi) offset magnitude in pixels, 0 <= lo <= hi. ``image_size``: (H, W) of
    the image, as ``mask.shape`` gives it. Points stay Nx2 (X, Y) float64, boxes XYXY float64,
    labels and mask logits are unchanged. See the module docstring for the exact rules.
    """
    lo, hi = _check_range(shift_range)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    if len(image_size) != 2 or min(int(v) for v in image_size) < 1:
        raise ValueError(f"image_size: expected (H, W) with positive sides, got {image_size!r}")
    height, width = (int(v) for v in image_size)
    upper = np.array([width - 1, height - 1], dtype=np.float64)

    points = None
    if prompts.points is not None:
        pts = np.asarray(prompts.points, dtype=np.float64)
        points = np.clip(pts + _offsets(rng, pts.shape, lo, hi), 0.0, upper)
    box = None
    if prompts.box is not None:
        b = np.asarray(prompts.box, dtype=np.float64) + _offsets(rng, (4,), lo, hi)
        x0, x1 = sorted((b[0], b[2]))
        y0, y1 = sorted((b[1], b[3]))
        box = np.clip(np.array([x0, y0, x1, y1]), 0.0, np.tile(upper, 2))
    labels = None if prompts.labels is None else prompts.labels.copy()
    return Prompts(points=points, labels=labels, box=box, mask_logits=prompts.mask_logits)


def shift_seed(
    base_seed: int, repeat: int, shift_range: tuple[float, float]
) -> np.random.Generator:
    """A generator fixed by (base_seed, repeat, shift_range).

    Built from ``np.random.SeedSequence([base_seed, repeat, lo_milli, hi_milli])`` where the range
    ends are given in thousandths of a pixel (so non-integer ranges are allowed). ``base_seed`` and
    ``repeat`` must be non-negative integers.
    """
    for field, v in (("base_seed", base_seed), ("repeat", repeat)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
            raise ValueError(f"{field}: expected a non-negative integer, got {v!r}")
    lo, hi = _check_range(shift_range)
    entropy = [int(base_seed), int(repeat), round(lo * 1000), round(hi * 1000)]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def range_label(shift_range: tuple[float, float]) -> str:
    """``(0, 10)`` -> ``"0-10"`` (the ``shift_range`` column value of a shifted repeat)."""
    lo, hi = shift_range
    return f"{lo:g}-{hi:g}"
