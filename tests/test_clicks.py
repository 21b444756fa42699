"""The click simulator (RITM's ``_get_next_click`` rule) on hand-made masks with known answers,
checked against scipy's exact EDT and a brute-force restatement of the rule."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from sambench.prompts.clicks import error_distance, first_click, next_click
from sambench.prompts.strategies import make_prompts


def square(shape: tuple[int, int], y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y0 : y1 + 1, x0 : x1 + 1] = True
    return m


def brute_force_click(
    pred: np.ndarray, gt: np.ndarray, clicked: list[tuple[int, int]]
) -> tuple[int, int, bool] | None:
    """The rule restated pixel by pixel: distance to the nearest non-region pixel of the image
    surrounded by a one-pixel non-region frame; strict '>' for positive; first max in row-major."""
    h, w = gt.shape

    def dist_map(region: np.ndarray) -> np.ndarray:
        padded = np.pad(region, 1)
        outside = np.argwhere(~padded)  # (row, col) in padded coordinates
        d = np.zeros((h, w))
        for y, x in np.argwhere(region):
            d[y, x] = np.sqrt(((outside - (y + 1, x + 1)) ** 2).sum(axis=1)).min()
        for x, y in clicked:
            d[y, x] = 0
        return d

    fn, fp = dist_map(gt & ~pred), dist_map(~gt & pred)
    if fn.max() == 0 and fp.max() == 0:
        return None
    pos = fn.max() > fp.max()
    d = fn if pos else fp
    ys, xs = np.where(d == d.max())
    return int(xs[0]), int(ys[0]), bool(pos)


def test_false_negative_region_gives_positive_click_at_its_centre() -> None:
    gt = square((15, 15), 2, 10, 3, 11)  # 9x9 square, centre (x=7, y=6)
    pred = np.zeros_like(gt)
    pred[2, 3] = True  # a tiny false-positive-free overlap does not matter
    assert next_click(pred, gt) == (7, 6, True)


def test_false_positive_region_gives_negative_click_at_its_centre() -> None:
    gt = square((20, 20), 2, 4, 2, 4)
    pred = gt | square((20, 20), 8, 16, 9, 17)  # 9x9 spurious block, centre (x=13, y=12)
    assert next_click(pred, gt) == (13, 12, False)


def test_tie_gives_negative_click() -> None:
    gt = square((20, 20), 2, 6, 2, 6)  # missed 5x5 block
    pred = square((20, 20), 12, 16, 12, 16)  # spurious 5x5 block: the same max distance 3
    assert error_distance(gt).max() == error_distance(pred).max() == 3
    assert next_click(pred, gt) == (14, 14, False)


def test_never_clicks_the_same_pixel_twice() -> None:
    gt = square((7, 7), 2, 4, 2, 4)  # 3x3: centre distance 2, the others 1
    pred = np.zeros_like(gt)
    assert next_click(pred, gt) == (3, 3, True)
    # with the centre clicked, the first distance-1 pixel in row-major order
    assert next_click(pred, gt, np.array([[3, 3]])) == (2, 2, True)
    assert next_click(pred, gt, np.array([[3.0, 3.0], [2.0, 2.0]])) == (3, 2, True)
    # every error pixel clicked: nothing left to click
    every = np.argwhere(gt)[:, ::-1]
    assert next_click(pred, gt, every) is None


def test_padding_makes_border_pixels_distance_one() -> None:
    gt = square((6, 20), 0, 2, 0, 19)  # a 3-row band along the top edge, full width
    d = error_distance(gt)
    np.testing.assert_allclose(d[0], 1.0)
    np.testing.assert_allclose(d[2], 1.0)
    assert d[1, 0] == d[1, 19] == 1.0
    assert d[1, 1] == 2.0
    assert next_click(np.zeros_like(gt), gt) == (1, 1, True)
    # a full-image region: without the frame it would have no boundary at all
    full = np.ones((5, 5), bool)
    assert error_distance(full)[2, 2] == 3.0
    assert error_distance(full)[0, 0] == 1.0


def test_perfect_prediction_gives_none() -> None:
    gt = square((10, 10), 1, 5, 2, 7)
    assert next_click(gt.copy(), gt) is None


def test_distance_matches_scipy_exact_edt() -> None:
    rng = np.random.default_rng(1)
    for _ in range(5):
        region = rng.random((23, 31)) < 0.7
        expected = distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
        np.testing.assert_allclose(error_distance(region), expected, atol=1e-4)


def test_matches_brute_force_rule_on_random_masks() -> None:
    rng = np.random.default_rng(2)
    for _ in range(20):
        gt = rng.random((12, 14)) < 0.5
        pred = rng.random((12, 14)) < 0.5
        clicked: list[tuple[int, int]] = [
            (int(rng.integers(14)), int(rng.integers(12))) for _ in range(3)
        ]
        expected = brute_force_click(pred, gt, clicked)
        got = next_click(pred, gt, np.array(clicked, dtype=np.float64))
        assert got == expected


def test_bad_input_is_named() -> None:
    gt = square((8, 8), 1, 3, 1, 3)
    with pytest.raises(ValueError, match="pred: shape"):
        next_click(np.zeros((8, 9), bool), gt)
    with pytest.raises(ValueError, match="gt: expected a bool or 0/1"):
        next_click(np.zeros((8, 8), bool), gt.astype(np.uint8) * 2)
    with pytest.raises(ValueError, match="outside"):
        next_click(np.zeros((8, 8), bool), gt, np.array([[8, 0]]))
    with pytest.raises(ValueError, match="Nx2"):
        next_click(np.zeros((8, 8), bool), gt, np.array([1, 2, 3]))


def test_first_click_is_the_s2_point() -> None:
    gt = square((20, 20), 3, 9, 4, 14)
    p = make_prompts(gt, "S2")
    assert p.points is not None
    x, y = p.points[0]
    assert first_click(gt) == (int(x), int(y), True) == (9, 6, True)
    ring = square((21, 21), 2, 18, 2, 18) & ~square((21, 21), 5, 15, 5, 15)
    # centroid (10, 10) lies in the hole: paper rules fall back to the first pixel, the
    # authors' code keeps the centroid
    assert first_click(ring) == (2, 2, True)
    assert first_click(ring, rules="authors-code") == (10, 10, True)
