"""Prompt shift sampler (SPEC section 6)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sambench.prompts.shift import SHIFT_RANGES, shift_prompts, shift_seed
from sambench.prompts.types import Prompts

BIG = (1000, 2000)  # (H, W): large enough that nothing below gets clipped


def centre_points(n: int) -> Prompts:
    pts = np.tile([[1000.0, 500.0]], (n, 1))
    labels = np.arange(n, dtype=np.int64) % 2
    return Prompts(points=pts, labels=labels)


@pytest.mark.parametrize("shift_range", SHIFT_RANGES)
def test_point_offsets_lie_in_range_with_both_signs(shift_range: tuple[int, int]) -> None:
    lo, hi = shift_range
    p = centre_points(2000)
    out = shift_prompts(p, shift_range, BIG, np.random.default_rng(7))
    assert out.points is not None and p.points is not None
    d = out.points - p.points
    mag = np.abs(d)
    assert (mag >= lo).all() and (mag < hi).all()
    for axis in (0, 1):
        assert (d[:, axis] > 0).any() and (d[:, axis] < 0).any()
        assert 0.4 < (d[:, axis] > 0).mean() < 0.6
        # magnitudes are uniform on [lo, hi): Kolmogorov-Smirnov against scipy's uniform
        assert stats.kstest(mag[:, axis], "uniform", args=(lo, hi - lo)).pvalue > 1e-3
    # the two axes are drawn independently (not the same offset for x and y)
    assert not np.allclose(d[:, 0], d[:, 1])
    assert abs(np.corrcoef(d[:, 0], d[:, 1])[0, 1]) < 0.1


def test_labels_and_mask_logits_unchanged_and_input_untouched() -> None:
    logits = np.zeros((1, 4, 4), np.float32)
    p = Prompts(
        points=np.array([[3.0, 3.0], [7.0, 1.0]]), labels=np.array([1, 0]), mask_logits=logits
    )
    assert p.points is not None
    before = p.points.copy()
    out = shift_prompts(p, (20, 30), (10, 10), np.random.default_rng(0))
    assert out.labels is not None and out.labels.tolist() == [1, 0]
    assert out.mask_logits is logits
    assert p.points is not None and np.array_equal(p.points, before)
    assert out.box is None


def test_clipping_to_image() -> None:
    h, w = 12, 20
    pts = np.array([[0.0, 0.0], [w - 1.0, h - 1.0]] * 200)
    p = Prompts(
        points=pts, labels=np.ones(len(pts), np.int64), box=np.array([0.0, 0.0, 19.0, 11.0])
    )
    out = shift_prompts(p, (20, 30), (h, w), np.random.default_rng(3))
    assert out.points is not None and out.box is not None
    x, y = out.points[:, 0], out.points[:, 1]
    assert x.min() == 0 and x.max() == w - 1 and y.min() == 0 and y.max() == h - 1
    # a 20-30 px shift from a corner either leaves the image (clipped to the border) or lands inside
    assert set(np.unique(x)) <= {0.0, w - 1.0}
    assert set(np.unique(y)) <= {0.0, h - 1.0}
    b = out.box
    assert 0 <= b[0] <= b[2] <= w - 1 and 0 <= b[1] <= b[3] <= h - 1


def test_box_edges_shift_independently() -> None:
    box = np.array([800.0, 300.0, 1200.0, 700.0])
    p = Prompts(box=box)
    lo, hi = 10, 20
    rng = shift_seed(0, 0, (lo, hi))
    widths, heights, diffs = [], [], []
    for _ in range(300):
        out = shift_prompts(p, (lo, hi), BIG, rng)
        assert out.box is not None
        d = out.box - box
        assert ((np.abs(d) >= lo) & (np.abs(d) < hi)).all()
        diffs.append(d)
        widths.append(out.box[2] - out.box[0])
        heights.append(out.box[3] - out.box[1])
    dd = np.array(diffs)
    # four different offsets: the box grows, shrinks and moves
    assert (np.array(widths) > 400).any() and (np.array(widths) < 400).any()
    assert (np.array(heights) > 400).any() and (np.array(heights) < 400).any()
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.allclose(dd[:, i], dd[:, j])
            assert abs(np.corrcoef(dd[:, i], dd[:, j])[0, 1]) < 0.25


def test_crossing_box_edges_are_swapped() -> None:
    # a zero-size box: x_min and x_max get independent offsets, so they cross about half the time;
    # the documented draw order (magnitudes(4), signs(4)) lets us recompute the raw edges.
    p = Prompts(box=np.array([500.0, 500.0, 500.0, 500.0]))
    crossed = 0
    for seed in range(60):
        out = shift_prompts(p, (10, 20), BIG, np.random.default_rng(seed))
        ref = np.random.default_rng(seed)
        mag = ref.uniform(10, 20, size=4)
        sign = np.where(ref.random(size=4) < 0.5, -1.0, 1.0)
        raw = 500.0 + sign * mag
        assert out.box is not None
        assert out.box.tolist() == [
            min(raw[0], raw[2]),
            min(raw[1], raw[3]),
            max(raw[0], raw[2]),
            max(raw[1], raw[3]),
        ]
        crossed += raw[0] > raw[2]
    assert 0 < crossed < 60


def test_seeded_determinism() -> None:
    p = Prompts(
        points=np.array([[50.0, 60.0], [70.0, 80.0]]),
        labels=np.array([1, 0]),
        box=np.array([40.0, 50.0, 90.0, 95.0]),
    )

    def run(seed: int, repeat: int, rng_range: tuple[float, float]) -> np.ndarray:
        out = shift_prompts(p, rng_range, (200, 200), shift_seed(seed, repeat, rng_range))
        assert out.points is not None and out.box is not None
        return np.concatenate([out.points.ravel(), out.box])

    a = run(42, 0, (10, 20))
    assert np.array_equal(a, run(42, 0, (10, 20)))
    assert not np.allclose(a, run(42, 1, (10, 20)))
    assert not np.allclose(a, run(43, 0, (10, 20)))
    assert not np.allclose(a, run(42, 0, (20, 30)))
    assert np.array_equal(run(42, 2, (0, 10)), run(42, 2, (0.0, 10.0)))


def test_bad_arguments() -> None:
    p = centre_points(2)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="shift_range"):
        shift_prompts(p, (10, 5), BIG, rng)
    with pytest.raises(ValueError, match="shift_range"):
        shift_prompts(p, (-1, 5), BIG, rng)
    with pytest.raises(ValueError, match="shift_range"):
        shift_seed(0, 0, (0, float("nan")))
    with pytest.raises(ValueError, match="image_size"):
        shift_prompts(p, (0, 10), (0, 10), rng)
    with pytest.raises(ValueError, match="rng"):
        shift_prompts(p, (0, 10), BIG, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="repeat"):
        shift_seed(0, -1, (0, 10))
    with pytest.raises(ValueError, match="base_seed"):
        shift_seed(1.5, 0, (0, 10))  # type: ignore[arg-type]
