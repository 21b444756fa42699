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


@pytest.mark.parametrize(
    ("interaction", "match"),
    [
        (PointInteraction(4, 0, 0), "point.z=4"),
        (BoxInteraction(0, 5, 0, 1, 3, 2), "box.y"),
        (LassoInteraction(0, ((1, 1), (2, 2))), "lasso: expected >= 3"),
        (ScribbleInteraction(9, ((1, 1),)), "scribble.z=9"),
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
