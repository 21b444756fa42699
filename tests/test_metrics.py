"""Metrics against independent references (medpy, MONAI) and shapes with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from medpy.metric import binary as mb
from monai.metrics import (
    compute_average_surface_distance,
    compute_dice,
    compute_hausdorff_distance,
    compute_iou,
    compute_surface_dice,
)
from scipy.ndimage import gaussian_filter

from sambench.metrics import (
    METRIC_NAMES,
    MM_METRIC_NAMES,
    EmptyMaskError,
    MaskError,
    MetricConfig,
    assd,
    confusion_counts,
    dice,
    dice_batch,
    dice_from_counts,
    hausdorff,
    hausdorff95,
    jaccard,
    jaccard_from_counts,
    nsd,
    segmentation_metrics,
    surface_distances,
)
from sambench.metrics.distance import union_crop

# MONAI's own internal call to a deprecated argument; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:.*always_return_as_numpy:FutureWarning")

SEEDS = range(20)
SHAPE = (48, 64)


def blob_pair(seed: int, shape: tuple[int, int] = SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """(pred, gt): thresholded smoothed noise; pred is a perturbed copy of gt's field."""
    rng = np.random.default_rng(seed)
    base = gaussian_filter(rng.standard_normal(shape), sigma=4.0)
    noise = gaussian_filter(rng.standard_normal(shape), sigma=2.0)
    base /= base.std()
    noise /= noise.std()
    gt = base > np.quantile(base, 0.6)
    field = base + 0.5 * noise
    pred = field > np.quantile(field, 0.62)
    assert gt.any() and pred.any()
    return pred, gt


def small_pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A small blob pair placed in the middle of a 96x96 image (crop is much smaller)."""
    pred, gt = blob_pair(seed, (20, 24))
    big_p = np.zeros((96, 96), bool)
    big_g = np.zeros((96, 96), bool)
    big_p[40:60, 30:54] = pred
    big_g[40:60, 30:54] = gt
    return big_p, big_g


def touches_border(m: np.ndarray) -> bool:
    return bool(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())


def onehot(m: np.ndarray) -> torch.Tensor:
    """1x1xHxW float tensor (MONAI's B x C x H x W, one foreground channel)."""
    return torch.from_numpy(m.astype(np.float32))[None, None]


def square(shape: tuple[int, int], r0: int, c0: int, size: int) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[r0 : r0 + size, c0 : c0 + size] = True
    return m


def disc(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_random_blobs_cover_border_and_middle() -> None:
    """The seeded pairs include masks touching the image border (and ones that do not)."""
    flags = [touches_border(blob_pair(s)[1]) or touches_border(blob_pair(s)[0]) for s in SEEDS]
    assert any(flags)
    assert not any(touches_border(m) for s in SEEDS for m in small_pair(s))


# ---------------------------------------------------------------- overlap vs medpy and MONAI


@pytest.mark.parametrize("seed", SEEDS)
def test_overlap_matches_medpy_and_monai(seed: int) -> None:
    pred, gt = blob_pair(seed)
    assert dice(pred, gt) == pytest.approx(100 * mb.dc(pred, gt), abs=1e-10)
    assert jaccard(pred, gt) == pytest.approx(100 * mb.jc(pred, gt), abs=1e-10)
    assert dice(pred, gt) == pytest.approx(
        100 * float(compute_dice(onehot(pred), onehot(gt))[0, 0]), rel=1e-5
    )
    assert jaccard(pred, gt) == pytest.approx(
        100 * float(compute_iou(onehot(pred), onehot(gt))[0, 0]), rel=1e-5
    )


def test_confusion_counts_and_from_counts_by_hand() -> None:
    pred = np.zeros((4, 5), bool)
    gt = np.zeros((4, 5), bool)
    pred[0, :3] = True  # 3 pixels
    gt[0, 1:5] = True  # 4 pixels, overlap 2
    gt[3, 0] = True  # 5 gt pixels in all
    assert confusion_counts(pred, gt) == (2, 1, 3)
    assert dice(pred, gt) == pytest.approx(100 * 4 / 8)
    assert jaccard(pred, gt) == pytest.approx(100 * 2 / 6)
    assert dice_from_counts(0, 0, 0) == 100.0
    assert jaccard_from_counts(0, 0, 0) == 100.0
    assert dice_from_counts(0, 5, 0) == 0.0
    # MONAI (ignore_empty=False) has the same both-empty convention (medpy 0.5.2 returns NaN)
    empty = np.zeros((4, 5), bool)
    monai_empty = compute_dice(onehot(empty), onehot(empty), ignore_empty=False)
    assert dice(empty, empty) == pytest.approx(100 * float(monai_empty[0, 0]))
    with pytest.raises(ValueError, match="fp"):
        dice_from_counts(1, -1, 0)


def test_integer_masks_accepted_and_bad_masks_refused() -> None:
    gt = np.zeros((6, 6), np.uint8)
    gt[1:4, 1:4] = 1
    assert dice(gt, gt) == 100.0
    with pytest.raises(MaskError, match=r"pred.*dtype bool"):
        dice(gt.astype(np.float32), gt)
    with pytest.raises(MaskError, match=r"gt.*only 0 and 1"):
        dice(gt, gt * 255)
    with pytest.raises(MaskError, match=r"pred.*shape"):
        dice(np.zeros((6, 7), bool), gt)
    with pytest.raises(MaskError, match="HxW"):
        dice(np.zeros((1, 6, 6), bool), gt)


def test_dice_batch_equals_per_candidate() -> None:
    for seed in range(5):
        pred, gt = blob_pair(seed)
        rng = np.random.default_rng(100 + seed)
        cands = np.stack([pred, gt, np.zeros_like(gt), ~gt, rng.random(gt.shape) > 0.5])
        got = dice_batch(cands, gt)
        assert got.shape == (5,)
        np.testing.assert_allclose(got, [dice(c, gt) for c in cands], rtol=0, atol=1e-12)
    empty = np.zeros((3, 4), bool)
    np.testing.assert_array_equal(dice_batch(np.stack([empty, ~empty]), empty), [100.0, 0.0])
    with pytest.raises(MaskError, match="preds"):
        dice_batch(np.zeros((2, 3, 5), bool), empty)


# ---------------------------------------------------------------- distances vs medpy and MONAI


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.7, 1.3)])
@pytest.mark.parametrize("seed", SEEDS)
def test_distances_match_medpy(seed: int, spacing: tuple[float, float]) -> None:
    pred, gt = blob_pair(seed)
    assert hausdorff(pred, gt, spacing) == pytest.approx(mb.hd(pred, gt, spacing), rel=1e-12)
    assert hausdorff95(pred, gt, spacing) == pytest.approx(mb.hd95(pred, gt, spacing), rel=1e-12)
    assert assd(pred, gt, spacing) == pytest.approx(mb.assd(pred, gt, spacing), rel=1e-12)


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.7, 1.3)])
@pytest.mark.parametrize("seed", SEEDS)
def test_distances_match_monai(seed: int, spacing: tuple[float, float]) -> None:
    pred, gt = blob_pair(seed)
    yp, yt = onehot(pred), onehot(gt)
    kw = {"include_background": True, "spacing": list(spacing)}
    monai_hd = float(compute_hausdorff_distance(yp, yt, **kw)[0, 0])
    assert hausdorff(pred, gt, spacing) == pytest.approx(monai_hd, rel=1e-5)
    # MONAI's symmetric ASD is the mean over all boundary pixels, as medpy >= 0.5 and ours
    monai_asd = float(compute_average_surface_distance(yp, yt, symmetric=True, **kw)[0, 0])
    assert assd(pred, gt, spacing) == pytest.approx(monai_asd, rel=1e-5)
    # MONAI's HD95 = max of the two directed 95th percentiles: reproduce it from our distances
    d_pg, d_gp = surface_distances(pred, gt, spacing)
    monai_hd95 = float(compute_hausdorff_distance(yp, yt, percentile=95, **kw)[0, 0])
    mine = max(np.percentile(d_pg, 95), np.percentile(d_gp, 95))
    assert mine == pytest.approx(monai_hd95, rel=1e-5)
    assert hausdorff95(pred, gt, spacing) <= monai_hd95 + 1e-5
    # directed distances: MONAI directed HD (pred -> gt) is the max of our first array
    monai_dir = float(compute_hausdorff_distance(yp, yt, directed=True, **kw)[0, 0])
    assert d_pg.max() == pytest.approx(monai_dir, rel=1e-5)
    for tol in (0.0, 1.0, 2.0, 3.5):
        monai_nsd = float(compute_surface_dice(yp, yt, [tol], **kw)[0, 0])
        assert nsd(pred, gt, tol, spacing) == pytest.approx(100 * monai_nsd, rel=1e-5)


# ---------------------------------------------------------------- shapes with known answers


@pytest.mark.parametrize("k", [1, 3, 5])
def test_offset_squares(k: int) -> None:
    a = square((40, 50), 10, 10, 20)
    b = square((40, 50), 10, 10 + k, 20)
    assert hausdorff(a, b) == float(k)
    assert hausdorff(b, a) == float(k)
    # with column spacing s, the horizontal offset is k * s
    assert hausdorff(a, b, spacing=(2.0, 0.5)) == pytest.approx(0.5 * k)
    assert dice(a, b) == pytest.approx(100 * 2 * 20 * (20 - k) / 800)


def test_identical_disc() -> None:
    d = disc((41, 41), 20, 20, 12)
    m = segmentation_metrics(d, d)
    assert all(math.isnan(m.pop(k)) for k in MM_METRIC_NAMES)  # no spacing: no mm values
    assert m == {
        "dice": 100.0,
        "jaccard": 100.0,
        "hd": 0.0,
        "hd95": 0.0,
        "assd": 0.0,
        "nsd": 100.0,
        "hce": 0.0,
        "hce_fp": 0.0,
        "hce_fn": 0.0,
        "empty_prediction": False,
    }


def test_single_pixel_shift() -> None:
    d = disc((41, 41), 20, 20, 10)
    shifted = np.roll(d, 1, axis=1)
    assert hausdorff(shifted, d) == 1.0
    assert 0.0 < assd(shifted, d) < 1.0
    assert nsd(shifted, d, tolerance=1.0) == 100.0
    assert nsd(shifted, d, tolerance=0.0) < 100.0


def test_square_ring_vs_filled_square() -> None:
    """Frame rows/cols 10..49 with a 20x20 hole (20..39): hand-counted 4-connected boundaries."""
    filled = square((60, 60), 10, 10, 40)
    ring = filled.copy()
    ring[20:40, 20:40] = False
    d_pg, d_gp = surface_distances(filled, ring)
    outer, inner = 4 * 39, 4 * 20  # cross erosion: the hole's diagonal corners are not boundary
    assert d_pg.size == outer and not d_pg.any()
    assert d_gp.size == outer + inner
    assert np.count_nonzero(d_gp == 9.0) == inner and np.count_nonzero(d_gp) == inner
    n = 2 * outer + inner
    m = segmentation_metrics(filled, ring, MetricConfig(nsd_tolerance=2.0))
    assert m["hd"] == 9.0
    assert m["hd95"] == 9.0
    assert m["assd"] == pytest.approx(9.0 * inner / n)
    assert m["nsd"] == pytest.approx(100.0 * 2 * outer / n)
    assert segmentation_metrics(filled, ring, MetricConfig(nsd_tolerance=9.0))["nsd"] == 100.0
    assert m["dice"] == pytest.approx(100 * 2 * 1200 / 2800)
    assert m["jaccard"] == pytest.approx(100 * 1200 / 1600)


# ---------------------------------------------------------------- cropping equivalence


def test_union_crop_pads_by_one_and_clips() -> None:
    pred = np.zeros((10, 12), bool)
    gt = np.zeros((10, 12), bool)
    pred[3:5, 4:6] = True
    gt[4:7, 5:9] = True
    assert union_crop(pred, gt) == (slice(2, 8), slice(3, 10))
    gt[9, 11] = True  # bottom-right corner: clipped at the border
    pred[0, 0] = True
    assert union_crop(pred, gt) == (slice(0, 10), slice(0, 12))


@pytest.mark.parametrize("seed", SEEDS)
def test_crop_gives_identical_distances(seed: int) -> None:
    for pred, gt in (blob_pair(seed), small_pair(seed)):
        for spacing in ((1.0, 1.0), (0.7, 1.3)):
            cropped = surface_distances(pred, gt, spacing)
            full = surface_distances(pred, gt, spacing, crop=False)
            for c, f in zip(cropped, full, strict=True):
                np.testing.assert_array_equal(c, f)


def test_crop_at_each_image_border() -> None:
    """Objects flush with each border and corner: cropped == uncropped (and == medpy)."""
    h, w = 30, 40
    for r0, c0 in ((0, 10), (20, 10), (10, 0), (10, 30), (0, 0), (20, 30)):
        gt = square((h, w), r0, c0, 10)
        pred = np.roll(gt, (1 if r0 == 0 else -1, 2 if c0 == 0 else -2), axis=(0, 1))
        pred[0, :] |= gt[0, :]
        for c, f in zip(
            surface_distances(pred, gt), surface_distances(pred, gt, crop=False), strict=True
        ):
            np.testing.assert_array_equal(c, f)
        assert hausdorff(pred, gt) == pytest.approx(mb.hd(pred, gt))
        assert assd(pred, gt) == pytest.approx(mb.assd(pred, gt))


# ---------------------------------------------------------------- segmentation_metrics


def test_segmentation_metrics_agrees_with_pure_functions() -> None:
    pred, gt = blob_pair(3)
    m = segmentation_metrics(pred, gt, MetricConfig(nsd_tolerance=1.5), spacing=(0.7, 1.3))
    assert set(m) == {*METRIC_NAMES, "empty_prediction"}
    sp = (0.7, 1.3)
    assert m["dice"] == dice(pred, gt)
    assert m["jaccard"] == jaccard(pred, gt)
    assert m["hd"] == hausdorff(pred, gt, sp)
    assert m["hd95"] == hausdorff95(pred, gt, sp)
    assert m["assd"] == assd(pred, gt, sp)
    assert m["nsd"] == nsd(pred, gt, 1.5, sp)
    assert m["empty_prediction"] is False


def test_empty_prediction_worst() -> None:
    gt = square((30, 40), 5, 5, 10)
    empty = np.zeros_like(gt)
    m = segmentation_metrics(empty, gt)
    assert m["dice"] == 0.0 and m["jaccard"] == 0.0 and m["nsd"] == 0.0
    assert m["hd"] == m["hd95"] == m["assd"] == 50.0  # sqrt(30^2 + 40^2)
    assert m["empty_prediction"] is True
    # worse than any achievable distance: the farthest pixel pair of the image
    corner = np.zeros_like(gt)
    corner[-1, -1] = True
    top = np.zeros_like(gt)
    top[0, 0] = True
    assert hausdorff(corner, top) < m["hd"]
    m2 = segmentation_metrics(empty, gt, spacing=(2.0, 0.5))
    assert m2["hd"] == pytest.approx(math.hypot(60, 20))


def test_empty_prediction_nan() -> None:
    gt = square((30, 40), 5, 5, 10)
    m = segmentation_metrics(np.zeros_like(gt), gt, MetricConfig(empty="nan"))
    assert all(math.isnan(float(m[k])) for k in ("hd", "hd95", "assd"))
    assert m["dice"] == 0.0 and m["nsd"] == 0.0 and m["empty_prediction"] is True


def test_empty_inputs_raise() -> None:
    gt = square((30, 40), 5, 5, 10)
    empty = np.zeros_like(gt)
    with pytest.raises(EmptyMaskError, match="gt"):
        segmentation_metrics(gt, empty)
    with pytest.raises(ValueError, match=r"pred.*empty"):
        hausdorff(empty, gt)
    with pytest.raises(ValueError, match=r"gt.*empty"):
        nsd(gt, empty)


def test_bad_config_and_arguments() -> None:
    with pytest.raises(ValueError, match=r"empty.*\['worst', 'nan'\]"):
        MetricConfig(empty="zero")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nsd_tolerance"):
        MetricConfig(nsd_tolerance=-1.0)
    with pytest.raises(ValueError, match="nsd_tolerance"):
        MetricConfig(nsd_tolerance=math.inf)
    gt = square((30, 40), 5, 5, 10)
    with pytest.raises(ValueError, match="spacing"):
        hausdorff(gt, gt, spacing=(1.0, 0.0))
    with pytest.raises(ValueError, match="spacing"):
        segmentation_metrics(gt, gt, spacing=(1.0,))
    with pytest.raises(ValueError, match="tolerance"):
        nsd(gt, gt, tolerance=-0.5)
