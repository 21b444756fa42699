"""The volume model records and their rasterization: shapes with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from sambench.models.volume_base import (
    BoxInteraction,
    InitialMaskInteraction,
    LassoInteraction,
    PointInteraction,
    ScribbleInteraction,
    check_interaction,
    is_volume_model,
    model_kind,
)
from sambench.models.volume_raster import lasso_mask, scribble_mask

SHAPE = (4, 12, 14)


def test_scribble_one_pixel_wide_is_the_polyline() -> None:
    m = scribble_mask(SHAPE, ScribbleInteraction(2, ((3, 2), (3, 8), (9, 8))))
    expect = np.zeros(SHAPE, np.uint8)
    expect[2, 3, 2:9] = 1  # (3, 2) -> (3, 8): row 3
    expect[2, 3:10, 8] = 1  # (3, 8) -> (9, 8): column 8
    np.testing.assert_array_equal(m, expect)


def test_scribble_thickness_is_a_brush_of_that_diameter() -> None:
    m = scribble_mask(SHAPE, ScribbleInteraction(1, ((6, 3), (6, 10))), thickness=3)
    plane = m[1].astype(bool)
    assert not m[[0, 2, 3]].any()
    rows = np.nonzero(plane.any(axis=1))[0]
    assert list(rows) == [5, 6, 7]  # within 1.5 px of row 6
    assert plane[6, 2:12].all() and not plane[6, 1] and not plane[6, 12]  # 1 px past the ends
    # the record's own thickness wins over the model's preferred one
    m1 = scribble_mask(SHAPE, ScribbleInteraction(1, ((6, 3), (6, 10)), thickness=1), thickness=5)
    assert int(m1.sum()) == 8


def test_lasso_is_the_filled_closed_polygon() -> None:
    m = lasso_mask(SHAPE, LassoInteraction(3, ((2, 2), (2, 9), (8, 9), (8, 2))))
    expect = np.zeros(SHAPE, np.uint8)
    expect[3, 2:9, 2:10] = 1
    np.testing.assert_array_equal(m, expect)
    tri = lasso_mask(SHAPE, LassoInteraction(0, ((0, 0), (0, 10), (10, 0))))[0]
    assert tri[1, 1] and tri[0, 10] and tri[10, 0] and not tri[9, 9]  # the hypotenuse bounds it


def test_scribble_and_lasso_on_coronal_and_sagittal_planes() -> None:
    # axis 1: the plane y = 5, points (z, x); axis 2: the plane x = 4, points (z, y)
    m = scribble_mask(SHAPE, ScribbleInteraction(5, ((1, 2), (1, 9), (3, 9)), axis=1))
    expect = np.zeros(SHAPE, np.uint8)
    expect[1, 5, 2:10] = 1  # (z=1, x=2) -> (z=1, x=9)
    expect[1:4, 5, 9] = 1  # (z=1, x=9) -> (z=3, x=9)
    np.testing.assert_array_equal(m, expect)
    lasso = LassoInteraction(4, ((0, 2), (0, 7), (2, 7), (2, 2)), positive=False, axis=2)
    expect = np.zeros(SHAPE, np.uint8)
    expect[0:3, 2:8, 4] = 1
    np.testing.assert_array_equal(lasso_mask(SHAPE, lasso), expect)
    # the same in-plane rule in every plane: an axial record moved to another plane moves
    # its pixels with it
    ax = ScribbleInteraction(2, ((1, 1), (3, 3)), thickness=3)
    cor = ScribbleInteraction(2, ((1, 1), (3, 3)), thickness=3, axis=1)
    cube = (6, 6, 6)
    np.testing.assert_array_equal(
        scribble_mask(cube, cor), scribble_mask(cube, ax).transpose(1, 0, 2)
    )
    np.testing.assert_array_equal(lasso.points_zyx(), [[0, 2, 4], [0, 7, 4], [2, 7, 4], [2, 2, 4]])


@pytest.mark.parametrize(
    ("interaction", "match"),
    [
        (PointInteraction(4, 0, 0), "point.z=4"),
        (BoxInteraction(0, 5, 0, 1, 3, 2), "box.y"),
        (LassoInteraction(0, ((1, 1), (2, 2))), "lasso: expected >= 3"),
        (ScribbleInteraction(9, ((1, 1),)), "scribble.z=9"),
        (
            ScribbleInteraction(12, ((1, 1),), axis=1),
            r"scribble.z \(the plane's index along "
            r"axis 1\)=12 outside \[0, 12\)",
        ),
        (LassoInteraction(0, ((1, 1), (2, 2), (1, 3)), axis=3), "lasso.axis=3"),
        (InitialMaskInteraction(np.zeros((1, 2, 3), bool)), "initial_mask: expected shape"),
    ],
)
def test_bad_interactions_name_the_field(interaction: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_interaction(interaction, SHAPE)  # type: ignore[arg-type]


def test_box_kinds_and_half_open_bounds() -> None:
    b2 = BoxInteraction(np.int64(2), 1, 3, np.int64(2), 5, 7)  # type: ignore[arg-type]
    assert b2.is_2d and b2.kind == "box2d"
    assert b2.half_open() == [[2, 3], [1, 6], [3, 8]]
    assert all(type(v) is int for pair in b2.half_open() for v in pair)
    assert BoxInteraction(0, 0, 0, 3, 1, 1).kind == "box3d"


def test_model_kind_of_2d_and_3d_models() -> None:
    from fakes import FakeModel

    class Native:
        model_kind = "3d"

        def apply(self, interaction: object) -> None: ...

    assert model_kind(FakeModel()) == "2d" and not is_volume_model(FakeModel())
    assert model_kind(Native()) == "3d" and is_volume_model(Native())


def test_a_native_model_in_2d_evaluate_points_to_evaluate_3d() -> None:
    from sambench.errors import OptionError
    from sambench.models.registry import build_any

    with pytest.raises(OptionError, match="evaluate-3d --model nninteractive"):
        build_any("nninteractive", "/nowhere")
