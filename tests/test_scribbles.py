"""Scribble and lasso simulation (sambench.prompts.scribbles) on shapes with known answers: the
lasso encloses a disk without cutting it and stays in the image; the scribble lies inside; the
same seed gives the same prompt; an empty object is refused. Rasterized by the native models'
own rule (sambench.models.volume_raster), independent of the simulation."""

from __future__ import annotations

import numpy as np
import pytest

from sambench.models.volume_base import LassoInteraction, ScribbleInteraction
from sambench.models.volume_raster import lasso_mask, scribble_mask
from sambench.prompts.scribbles import (
    PromptError,
    key_slice,
    simulate_lasso,
    simulate_scribble,
)


def _disk_volume(cy: int = 20, cx: int = 24, r: int = 10, shape=(5, 40, 50), z: int = 2):
    m = np.zeros(shape, bool)
    yy, xx = np.indices(shape[1:])
    m[z] = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    m[z - 1] = (yy - cy) ** 2 + (xx - cx) ** 2 <= (r - 3) ** 2  # a smaller slice: not the key
    return m


def _lasso_pixels(m: np.ndarray, seed: int) -> tuple[np.ndarray, object]:
    lasso = simulate_lasso(m, np.random.default_rng(seed))
    filled = lasso_mask(m.shape, LassoInteraction(lasso.z, lasso.points_yx)).astype(bool)
    return filled, lasso


@pytest.mark.parametrize("seed", range(6))
def test_lasso_encloses_the_disk_without_cutting_it(seed: int) -> None:
    m = _disk_volume()
    filled, lasso = _lasso_pixels(m, seed)
    assert lasso.z == 2 and lasso.closed and len(lasso.points_yx) >= 3
    assert not (m[2] & ~filled[2]).any()  # every object pixel inside: the lasso does not cut it
    # loose but not the whole image: the contour lies <= margin + 1/2 (margin <= 5 px) from the
    # disk and the simplification moves it <= margin / 2 more: within 5 * 1.5 + 1 px of it
    yy, xx = np.indices(m.shape[1:])
    assert not (filled[2] & ((yy - 20) ** 2 + (xx - 24) ** 2 > (10 + 8.5) ** 2)).any()
    assert filled[2].sum() > m[2].sum()  # strictly around it
    pts = np.asarray(lasso.points_yx)
    assert (pts >= 0).all() and (pts[:, 0] <= 39).all() and (pts[:, 1] <= 49).all()


def test_lasso_of_an_object_at_the_border_stays_in_the_image_and_encloses_it() -> None:
    m = _disk_volume(cy=2, cx=3, r=8)
    for seed in range(4):
        filled, lasso = _lasso_pixels(m, seed)
        pts = np.asarray(lasso.points_yx)
        assert (pts >= 0).all() and (pts[:, 0] <= 39).all() and (pts[:, 1] <= 49).all()
        assert not (m[2] & ~filled[2]).any()


def test_lasso_around_two_pieces_is_one_polygon_holding_both() -> None:
    m = np.zeros((1, 40, 60), bool)
    m[0, 10:20, 5:15] = True
    m[0, 22:32, 40:52] = True
    filled, _ = _lasso_pixels(m, 0)
    assert not (m[0] & ~filled[0]).any()


@pytest.mark.parametrize("seed", range(6))
def test_scribble_lies_inside_the_object(seed: int) -> None:
    m = _disk_volume()
    s = simulate_scribble(m, np.random.default_rng(seed))
    assert s.z == 2 and not s.closed and len(s.points_yx) >= 2
    line = scribble_mask(m.shape, ScribbleInteraction(s.z, s.points_yx), thickness=1).astype(bool)
    assert line[2].sum() >= 5 and not (line & ~m).any()


def test_scribble_inside_a_concave_object() -> None:
    """An L shape: a straight chord between its arms would leave it; the polyline does not."""
    m = np.zeros((1, 50, 50), bool)
    m[0, 5:45, 5:14] = True
    m[0, 36:45, 5:45] = True
    for seed in range(8):
        s = simulate_scribble(m, np.random.default_rng(seed), length=(1.0, 1.0))
        line = scribble_mask(m.shape, ScribbleInteraction(s.z, s.points_yx)).astype(bool)
        assert not (line & ~m).any()


def test_a_thin_object_gives_a_one_point_scribble_inside() -> None:
    m = np.zeros((1, 10, 10), bool)
    m[0, 4, 4] = True
    s = simulate_scribble(m, np.random.default_rng(0))
    assert s.points_yx == ((4.0, 4.0),)


def test_same_seed_same_prompt_other_seed_other_prompt() -> None:
    m = _disk_volume()
    for fn in (simulate_lasso, simulate_scribble):
        a = fn(m, np.random.default_rng(7))
        b = fn(m, np.random.default_rng(7))
        assert a == b
        others = {fn(m, np.random.default_rng(s)).points_yx for s in range(10)}
        assert len(others) >= 2  # the generator does change the prompt


def test_key_slice_is_the_largest_area_slice_lowest_on_ties() -> None:
    m = _disk_volume()
    assert key_slice(m) == 2
    m[4] = m[2]
    assert key_slice(m) == 2


def test_empty_object_is_refused() -> None:
    m = np.zeros((3, 10, 10), bool)
    for fn in (simulate_lasso, simulate_scribble):
        with pytest.raises(PromptError, match="empty object"):
            fn(m, np.random.default_rng(0))
    m[0, 2:5, 2:5] = True
    with pytest.raises(PromptError, match="slice 1"):
        simulate_lasso(m, np.random.default_rng(0), z=1)


def test_bad_parameters_name_them() -> None:
    m = _disk_volume()
    with pytest.raises(ValueError, match="margin"):
        simulate_lasso(m, np.random.default_rng(0), margin=(0, 2))
    with pytest.raises(ValueError, match="mask"):
        simulate_scribble(m[0], np.random.default_rng(0))
