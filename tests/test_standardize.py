"""SPEC section 2 rules on arrays, checked against scikit-image / scipy and hand-made answers."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.exposure import rescale_intensity
from skimage.measure import label as sk_label
from skimage.measure import regionprops

from sambench.data.describe import Filters
from sambench.data.standardize import (
    LabelMapping,
    LabelValueError,
    auto_mapping,
    case_with_frame,
    component_count,
    dispersion,
    image_id,
    normalize_minmax,
    object_drop_reason,
    object_stats,
    remap_labels,
    split_instances,
    spread_values,
    standard_image,
    standardize_label,
)


def _disc(shape: tuple[int, int], cy: int, cx: int, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


# --------------------------------------------------------------------------- normalization


@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.uint16, np.int32])
def test_normalize_matches_skimage_rescale(dtype: type) -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(-1024, 3000, size=(37, 41)).astype(dtype)
    ref = rescale_intensity(img.astype(np.float64), out_range=(0.0, 255.0))
    out = normalize_minmax(img)
    assert out.dtype == np.uint8 and out.shape == img.shape
    np.testing.assert_array_equal(out, np.rint(ref).astype(np.uint8))
    assert out.min() == 0 and out.max() == 255


def test_normalize_known_values_and_constant() -> None:
    img = np.array([[-100, 0], [100, 50]], np.int16)  # range 200
    np.testing.assert_array_equal(normalize_minmax(img), [[0, 128], [255, 191]])  # 127.5 -> 128
    for value in (0, 7, -3.5):
        const = np.full((5, 6), value)
        out = normalize_minmax(const)
        assert out.dtype == np.uint8 and not out.any()


def test_normalize_rgb_uses_joint_range() -> None:
    img = np.zeros((2, 2, 3), np.uint16)
    img[..., 0] = 1000
    img[0, 0, 2] = 2000
    out = normalize_minmax(img)
    assert out[0, 0, 2] == 255 and out[1, 1, 1] == 0 and out[1, 1, 0] == 128


def test_standard_image_keeps_8bit_2d_and_normalizes_the_rest() -> None:
    gray = np.array([[10, 20], [30, 40]], np.uint8)
    rgb = np.stack([gray, gray + 1, gray + 2], axis=-1)
    np.testing.assert_array_equal(standard_image(gray, from_2d_file=True), gray)
    np.testing.assert_array_equal(standard_image(rgb, from_2d_file=True), rgb)
    # a volume slice is always normalized, even when stored as uint8
    np.testing.assert_array_equal(standard_image(gray, from_2d_file=False), [[0, 85], [170, 255]])
    deep = np.array([[0, 65535]], np.uint16)
    np.testing.assert_array_equal(standard_image(deep, from_2d_file=True), [[0, 255]])


# --------------------------------------------------------------------------- label remapping


def test_spread_values_like_the_paper() -> None:
    assert spread_values(3) == [85, 170, 255]
    assert spread_values(1) == [255]
    assert spread_values(255) == list(range(1, 256))
    with pytest.raises(ValueError, match=r"1\.\.255"):
        spread_values(256)


def test_mapping_orders_by_source_value_and_keeps_positions_distinct() -> None:
    m = LabelMapping.from_classes({"KidneyR": 2, "KidneyL": 1, "Tumor": 1000})
    assert m.pixel == {1: 85, 2: 170, 1000: 255}
    assert m.info_json() == {
        "info": {"1": "KidneyL", "2": "KidneyR", "3": "Tumor"},
        "color": {"1": 85, "2": 170, "3": 255},
    }
    label = np.array([[0, 1, 2], [1000, 2, 0]], np.int32)
    np.testing.assert_array_equal(remap_labels(label, m), [[0, 85, 170], [255, 170, 0]])
    kept = LabelMapping.from_classes({"A": 150, "B": 255}, keep_values=True)
    assert kept.pixel == {150: 150, 255: 255}


def test_unknown_label_value_is_listed() -> None:
    m = LabelMapping.from_classes({"A": 1, "B": 2})
    with pytest.raises(LabelValueError, match=r"label value\(s\) 3, 7 .*allowed: 1, 2") as e:
        remap_labels(np.array([[0, 1, 3, 7]]), m)
    assert e.value.values == [3, 7]


def test_auto_mapping_keeps_values_and_rejects_out_of_range() -> None:
    m = auto_mapping(np.array([0, 3, 9]))
    assert m.pixel == {3: 3, 9: 9} and m.name == {3: "label_3", 9: "label_9"}
    with pytest.raises(LabelValueError, match="300"):
        auto_mapping(np.array([0, 300]))


def test_split_instances_300_into_two_maps() -> None:
    label = np.zeros((20, 30), np.int32)
    values = np.arange(1, 301) * 3  # sparse, non-contiguous source ids
    label.ravel()[: values.size * 2] = np.repeat(values, 2)
    maps = split_instances(label)
    assert len(maps) == 2 and all(m.dtype == np.uint8 for m in maps)
    assert len(np.unique(maps[0])) - 1 == 255 and len(np.unique(maps[1])) - 1 == 45
    for k, v in enumerate(values):  # every instance lands in exactly one map, intact
        m, new = divmod(k, 255)
        np.testing.assert_array_equal(maps[m] == new + 1, label == v)
        assert not maps[1 - m][label == v].any()
    assert len(split_instances(label[:1, :2])) == 1


# --------------------------------------------------------------------------- objects and filters


def test_object_stats_match_regionprops() -> None:
    rng = np.random.default_rng(3)
    lab = np.zeros((40, 50), np.uint8)
    lab[_disc(lab.shape, 10, 12, 6)] = 85
    lab[20:35, 30:47] = 170
    lab[rng.random(lab.shape) < 0.02] = 255  # a scattered object
    stats = {o.value: o for o in object_stats(lab)}
    props = {p.label: p for p in regionprops(lab)}
    assert set(stats) == set(props) == {85, 170, 255}
    for v, p in props.items():
        y0, x0, y1, x1 = p.bbox  # skimage: half-open (min_row, min_col, max_row, max_col)
        assert stats[v].area == p.area
        assert stats[v].bbox == (x0, y0, x1 - 1, y1 - 1)


def test_component_count_matches_skimage_8_connectivity() -> None:
    rng = np.random.default_rng(4)
    mask = rng.random((60, 60)) < 0.3
    lab = sk_label(mask, connectivity=2)
    sizes = np.bincount(lab.ravel())[1:]
    assert component_count(mask) == lab.max()
    assert component_count(mask, min_size=5) == int((sizes >= 5).sum())
    diag = np.eye(4, dtype=bool)  # diagonal pixels touch under 8-connectivity
    assert component_count(diag) == 1


def test_dispersion_known_shapes() -> None:
    disc = _disc((201, 201), 100, 100, 40)
    assert dispersion(disc) == pytest.approx(1.0, abs=0.01)
    two = np.zeros((200, 200), bool)
    two[:8, :8] = two[-8:, -8:] = True  # two small pieces in opposite corners
    assert dispersion(two) > 10
    assert np.isnan(dispersion(np.zeros((3, 3), bool)))


def test_slice_and_object_50px_rules() -> None:
    lab = np.zeros((30, 30), np.int32)
    lab.ravel()[:50] = 1
    drop, pairs = standardize_label(lab, LabelMapping.from_classes({"A": 1, "B": 2}), Filters())
    assert drop == "slice<=50px" and pairs == []
    lab.ravel()[50:100] = 2  # 100 px foreground, two objects of exactly 50 px
    lab.ravel()[:1] = 0
    lab.ravel()[100:102] = 2  # A: 49 px, B: 52 px
    drop, pairs = standardize_label(lab, LabelMapping.from_classes({"A": 1, "B": 2}), Filters())
    assert drop is None and len(pairs) == 1
    assert [(o.value, o.area) for o in pairs[0].kept] == [(255, 52)]
    assert pairs[0].dropped == ["object<=50px"]
    assert set(np.unique(pairs[0].label)) == {0, 128, 255}


def test_filters_each_reported() -> None:
    piece = np.zeros((100, 100), bool)
    piece[10:20, 10:20] = piece[80:90, 80:90] = True  # 200 px, two components, dispersed
    assert object_drop_reason(piece, 200, Filters()) is None
    assert object_drop_reason(piece, 200, Filters(min_object_size=201)) == "filter:min_object_size"
    assert object_drop_reason(piece, 200, Filters(max_components=1)) == "filter:max_components"
    assert object_drop_reason(piece, 200, Filters(max_components=1, component_min_size=101)) is None
    assert object_drop_reason(piece, 200, Filters(max_dispersion=3.0)) == "filter:max_dispersion"
    assert object_drop_reason(piece[:30, :30], 100, Filters(max_dispersion=3.0)) is None
    assert object_drop_reason(piece, 50, Filters()) == "object<=50px"


def test_instance_label_standardized_into_parts() -> None:
    label = np.zeros((80, 80), np.int32)
    label.ravel()[: 300 * 12] = np.repeat(
        np.arange(1, 301), 12
    )  # 300 instances of 12 px (rows < 45)
    label[60:, 60:] = 301  # one large instance (400 px), lands in part 2
    drop, pairs = standardize_label(label, None, Filters())
    assert drop is None and [p.part for p in pairs] == [1, 2]
    assert [len(p.kept) for p in pairs] == [0, 1]  # 12 px instances are not objects
    assert len(pairs[0].dropped) == 255 and len(pairs[1].dropped) == 45
    assert pairs[1].kept[0].value == 46  # the 301st instance is the 46th of part 2
    assert pairs[1].kept[0].area == 400 and pairs[1].kept[0].bbox == (60, 60, 79, 79)


def test_naming() -> None:
    assert image_id("22_Heart", "2", "10") == "22_Heart_2_10"
    assert image_id("Cells", "img-1", "0", part=2) == "Cells_img-1_0-p2"
    assert case_with_frame("pat-3", 4) == "pat-3-t4" and case_with_frame("pat-3", None) == "pat-3"
