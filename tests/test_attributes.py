"""Object attributes (SPEC section 5) on hand-made masks with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyefd
import pytest
from PIL import Image

from sambench.analysis.attributes import (
    aspect_ratio,
    attributes_table,
    background_region,
    fourier_order,
    gray_image,
    intensity_difference,
    largest_component,
    modality_codes,
    object_attributes,
    outer_contour,
    with_attributes,
)


def disc(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def star(k: int, r0: float = 30, amp: float = 20, size: int = 128) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    c = size / 2
    return np.hypot(yy - c, xx - c) <= r0 + amp * np.cos(k * np.arctan2(yy - c, xx - c))


# ------------------------------------------------------------------ size, aspect ratio


def test_aspect_ratio_of_rectangle_and_square():
    m = np.zeros((64, 64), bool)
    m[5:15, 10:50] = True  # 10 rows x 40 columns
    assert aspect_ratio(m) == pytest.approx(0.25)
    assert aspect_ratio(m.T) == pytest.approx(0.25)
    sq = np.zeros((20, 20), bool)
    sq[2:9, 3:10] = True
    assert aspect_ratio(sq) == 1.0
    px = np.zeros((5, 5), bool)
    px[2, 2] = True
    assert aspect_ratio(px) == 1.0  # sides are max - min + 1


def test_size_counts_all_components():
    m = np.zeros((30, 30), bool)
    m[0:5, 0:5] = True
    m[20:23, 20:30] = True
    assert object_attributes(np.zeros((30, 30), np.uint8), m)["size"] == 25 + 30


def test_bad_masks_raise():
    with pytest.raises(ValueError, match="empty"):
        aspect_ratio(np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="HxW"):
        aspect_ratio(np.ones((2, 4, 4), bool))
    with pytest.raises(ValueError, match="differs"):
        object_attributes(np.zeros((5, 6), np.uint8), np.ones((6, 5), bool))


# ------------------------------------------------------------------ intensity difference


def test_intensity_difference_known_value():
    img = np.full((60, 60), 50, np.uint8)
    m = np.zeros((60, 60), bool)
    m[20:40, 20:40] = True
    img[m] = 200
    assert intensity_difference(img, m) == pytest.approx(150.0)


def test_background_region_expansion_and_clipping():
    m = np.zeros((100, 100), bool)
    m[40:60, 30:70] = True  # 20 rows x 40 columns: margins 2 rows, 4 columns
    bg = background_region(m)
    ys, xs = np.nonzero(bg | m)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (26, 73, 38, 61)
    assert bg.sum() == 48 * 24 - 20 * 40
    assert not (bg & m).any()
    # At the corner the region is clipped to the image.
    c = np.zeros((50, 50), bool)
    c[0:10, 0:20] = True  # margins 1 row, 2 columns
    region = background_region(c) | c
    ys, xs = np.nonzero(region)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (0, 21, 0, 10)


def test_intensity_only_uses_the_expanded_box():
    # Pixels outside the 10 % margin must not count: make them extreme.
    img = np.full((100, 100), 255, np.uint8)
    m = np.zeros((100, 100), bool)
    m[40:60, 40:60] = True  # margin 2 px each side
    img[38:62, 38:62] = 50
    img[m] = 100
    assert intensity_difference(img, m) == pytest.approx(50.0)


def test_rgb_gray_is_channel_mean():
    img = np.zeros((40, 40, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 30, 60, 90  # background gray 60
    m = np.zeros((40, 40), bool)
    m[10:30, 10:30] = True
    img[m] = (200, 100, 0)  # object gray 100
    assert gray_image(img)[0, 0] == pytest.approx(60.0)
    assert intensity_difference(img, m) == pytest.approx(40.0)


def test_no_background_gives_nan():
    img = np.zeros((10, 10), np.uint8)
    assert np.isnan(intensity_difference(img, np.ones((10, 10), bool)))


# ------------------------------------------------------------------ Fourier order


def test_contour_is_the_outer_boundary_of_the_largest_component():
    m = np.zeros((40, 40), bool)
    m[5:25, 5:25] = True
    m[12:18, 12:18] = False  # a hole: not part of the outer contour
    m[30:33, 30:33] = True  # a smaller component
    assert largest_component(m).sum() == 400 - 36
    c = outer_contour(m)
    assert c[:, 0].min() == 5 and c[:, 0].max() == 24
    assert c[:, 1].min() == 5 and c[:, 1].max() == 24
    assert len(c) == 4 * 19  # every boundary pixel of a 20x20 square once


def test_efd_coefficients_do_not_depend_on_the_highest_order():
    # fourier_order computes the descriptors once at the cap and slices them.
    c = outer_contour(star(5))
    a = pyefd.elliptic_fourier_descriptors(c, order=7)
    b = pyefd.elliptic_fourier_descriptors(c, order=40)[:7]
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("r", [15, 30, 50])
def test_disc_stops_at_order_one_with_low_fo(r):
    fo, d, a, capped = fourier_order(disc((128, 128), 64, 64, r))
    assert a == 1 and not capped
    assert d > 0.97
    assert fo == pytest.approx(1 + 200 * (1 - d))
    assert 1 < fo < 3.5


def test_larger_discs_are_reconstructed_better():
    fos = [fourier_order(disc((128, 128), 64, 64, r))[0] for r in (15, 30, 50)]
    assert fos[0] > fos[1] > fos[2]


def test_star_is_much_more_complex_than_a_disc():
    fo_disc = fourier_order(disc((128, 128), 64, 64, 30))[0]
    for k in (5, 8):
        fo_star, d, _a, _ = fourier_order(star(k))
        assert fo_star > 10 * fo_disc
        assert d < 0.9


def test_elongated_ellipse_plateaus_at_order_two():
    # Arc-length EFDs of an elongated ellipse need odd harmonics (3, 5, ...); the even ones vanish
    # for a centrally symmetric shape, so the gain rule stops at a = 2 with Dice(2) == Dice(1).
    yy, xx = np.mgrid[:100, :140]
    m = ((xx - 70) / 50.0) ** 2 + ((yy - 50) / 20.0) ** 2 <= 1
    fo, d, a, capped = fourier_order(m)
    _fo1, d1, a1, capped1 = fourier_order(m, max_order=1)
    assert (a, capped, a1, capped1) == (2, False, 1, True)
    assert d == pytest.approx(d1, abs=1e-3) and d < 0.97
    assert fo == pytest.approx(2 + 200 * (1 - d))


def test_stopping_rule_gain_and_cap():
    # A square's 2nd harmonic is zero (4-fold symmetry): the gain rule stops at a = 2 with
    # Dice(2) == Dice(1) (SPEC: stop at the first a with Dice(a) - Dice(a-1) < 0.001).
    sq = np.zeros((128, 128), bool)
    sq[30:90, 30:90] = True
    fo, d, a, capped = fourier_order(sq)
    assert a == 2 and not capped
    assert d < 0.97
    assert fo == pytest.approx(2 + 200 * (1 - d))
    # With a cap of 1 the star stops at the cap and is flagged.
    _fo1, d1, a1, capped1 = fourier_order(star(5), max_order=1)
    assert a1 == 1 and capped1 and d1 < 0.97


def test_tiny_objects_do_not_crash():
    m = np.zeros((10, 10), bool)
    m[4, 4] = True
    fo, d, a, _ = fourier_order(m)
    assert a == 1 and 0 <= d <= 1 and np.isfinite(fo)
    line = np.zeros((10, 10), bool)
    line[5, 1:9] = True
    assert np.isfinite(fourier_order(line)[0])


# ------------------------------------------------------------------ modality, table


def test_modality_codes_sorted_and_dense():
    assert modality_codes(["MR", "CT", "US", "CT"]) == {"CT": 0, "MR": 1, "US": 2}


def _write(tmp: Path, rel: str, arr: np.ndarray) -> None:
    (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(tmp / rel)


def test_attributes_table_reads_pngs_and_joins(tmp_path):
    img = np.full((64, 64), 50, np.uint8)
    lab = np.zeros((64, 64), np.uint8)
    lab[10:20, 10:50] = 1
    lab[disc((64, 64), 45, 30, 10)] = 2
    img[lab == 1] = 200
    img[lab == 2] = 120
    _write(tmp_path, "d/images/a.png", img)
    _write(tmp_path, "d/labels/a.png", lab)
    base = {"dataset": "d", "image_id": "a", "image_path": "d/images/a.png"}
    base["label_path"] = "d/labels/a.png"
    results = pd.DataFrame(
        [
            {**base, "label_value": 1, "modality": "MR", "strategy": s, "dice": 1.0}
            for s in ("S2", "S5")
        ]
        + [{**base, "label_value": 2, "modality": "CT", "strategy": "S2", "dice": 0.5}]
    )
    t = attributes_table(results, tmp_path, progress=False)
    assert len(t) == 2
    r1 = t[t["label_value"] == 1].iloc[0]
    assert r1["size"] == 400 and r1["aspect_ratio"] == pytest.approx(0.25)
    assert r1["intensity_diff"] == pytest.approx(150.0)
    assert r1["modality_code"] == 1  # CT=0, MR=1
    expected = object_attributes(img, lab == 2)
    r2 = t[t["label_value"] == 2].iloc[0]
    assert r2["fourier_order"] == pytest.approx(expected["fourier_order"])
    joined = with_attributes(results, t)
    assert len(joined) == 3 and joined["size"].notna().all()


def test_attributes_table_missing_column_and_absent_value(tmp_path):
    with pytest.raises(ValueError, match="missing columns"):
        attributes_table(pd.DataFrame({"dataset": ["d"]}), tmp_path)
    _write(tmp_path, "i.png", np.zeros((8, 8), np.uint8))
    _write(tmp_path, "l.png", np.zeros((8, 8), np.uint8))
    row = dict(dataset="d", image_id="a", image_path="i.png", label_path="l.png")
    df = pd.DataFrame([{**row, "label_value": 3, "modality": "CT"}])
    with pytest.raises(ValueError, match="absent"):
        attributes_table(df, tmp_path, progress=False)


def test_windowed_dice_equals_whole_image_fill():
    # fourier_order fills the reconstruction only in the window holding it and the mask; the
    # result must equal filling on the whole image (clipped at the border).
    from sambench.analysis.attributes import _dice, _dice_filled, _fill, bbox_sides

    yy, xx = np.mgrid[:120, :120]
    masks = [star(7, 30, 15, 120), (yy - 10) ** 2 + (xx - 10) ** 2 <= 30**2]
    for m in masks:
        c = outer_contour(m)
        coeffs = pyefd.elliptic_fourier_descriptors(c, order=12)
        locus = pyefd.calculate_dc_coefficients(c)
        for a in (1, 2, 5, 12):
            rec = pyefd.reconstruct_contour(coeffs[:a], locus=locus, num_points=500)
            whole = _dice(_fill(rec, m.shape), m)
            assert _dice_filled(rec, m, bbox_sides(m)[:4]) == pytest.approx(whole, abs=1e-12)
