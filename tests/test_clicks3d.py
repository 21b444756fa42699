"""The CVPR 2025 interactive 3D click rule, box and metrics against a transcription of the
challenge's evaluation script (tests/cvpr25_iter_eval_reference.py) on seeded 3D masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import binary_dilation, binary_erosion

import cvpr25_iter_eval_reference as ref
from sambench.volumes import clicks3d


def _blob(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """A random ellipsoid, cut by the volume border sometimes."""
    zz, yy, xx = np.indices(shape)
    c = rng.uniform(0, 1, 3) * np.array(shape)
    r = rng.uniform(0.15, 0.45, 3) * np.array(shape)
    return ((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((xx - c[2]) / r[2]) ** 2 <= 1


def _pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A ground truth and a plausible imperfect prediction (shifted, eroded or dilated, with
    speckle), seeded."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(6, 20)), int(rng.integers(10, 30)), int(rng.integers(10, 30)))
    gt = _blob(rng, shape)
    kind = seed % 4
    if kind == 0:
        pred = np.roll(gt, int(rng.integers(1, 4)), axis=int(rng.integers(0, 3)))
    elif kind == 1:
        pred = binary_erosion(gt, iterations=int(rng.integers(1, 3)))
    elif kind == 2:
        pred = binary_dilation(gt, iterations=int(rng.integers(1, 3)))
    else:
        pred = _blob(rng, shape)
    flip = rng.random(shape) < 0.02
    return gt, np.asarray(pred ^ flip)


SEEDS = list(range(40))


@pytest.mark.parametrize("seed", SEEDS)
def test_click_equals_the_challenge_script(seed: int) -> None:
    gt, pred = _pair(seed)
    want_center, want_kind = ref.reference_click(gt.astype(np.uint8), pred.astype(np.uint8))
    got = clicks3d.next_click(gt, pred)
    if want_center is None:
        assert got is None
        return
    assert got is not None
    assert got.zyx == tuple(int(v) for v in want_center)
    assert got.positive == (want_kind == "fg")


def test_ties_between_equal_components_and_equal_maxima() -> None:
    # two equal error cubes: both the component tie and the EDT-max tie are decided as the script
    gt = np.zeros((9, 12, 12), dtype=bool)
    pred = gt.copy()
    gt[1:4, 1:4, 1:4] = True  # missed (fn), first in C order
    pred[5:8, 7:10, 7:10] = True  # painted (fp)
    got = clicks3d.next_click(gt, pred)
    c, kind = ref.reference_click(gt.astype(np.uint8), pred.astype(np.uint8))
    assert got is not None and got.zyx == tuple(int(v) for v in c)
    assert got.positive and kind == "fg"
    assert got.zyx == (2, 2, 2)  # the centre of the first cube (a known answer)
    # a flat slab: many voxels share the maximum, the seeded draw picks one of them
    gt2 = np.zeros((5, 16, 16), dtype=bool)
    gt2[2, 2:14, 2:14] = True
    got2 = clicks3d.next_click(gt2, np.zeros_like(gt2))
    c2, _ = ref.reference_click(gt2.astype(np.uint8), np.zeros_like(gt2, dtype=np.uint8))
    assert got2 is not None and got2.zyx == tuple(int(v) for v in c2)


def test_perfect_prediction_gives_no_click() -> None:
    gt, _ = _pair(3)
    assert clicks3d.next_click(gt, gt.copy()) is None


def test_click_fixes_the_error_it_targets() -> None:
    # over-segmentation only: a background click, inside the painted region
    gt = np.zeros((8, 10, 10), dtype=bool)
    gt[2:6, 2:6, 2:6] = True
    pred = gt.copy()
    pred[2:6, 2:6, 6:10] = True
    got = clicks3d.next_click(gt, pred)
    assert got is not None and not got.positive
    assert pred[got.zyx] and not gt[got.zyx]


@pytest.mark.parametrize("seed", SEEDS[:20])
def test_initial_box_equals_get_boxes(seed: int) -> None:
    gt, _ = _pair(seed)
    assert gt.any()
    np.random.seed(seed)  # noqa: NPY002 (the script draws the shift from the global state)
    want = ref.mask3D_to_bbox(gt, "case")
    shift = int(np.random.RandomState(seed).randint(0, 6, 1)[0])
    got = clicks3d.initial_box(gt, shift)
    assert (got.z_min, got.z_max, got.z_mid) == (want["z_min"], want["z_max"], want["z_mid"])
    assert got.box_xyxy == (
        want["z_mid_x_min"],
        want["z_mid_y_min"],
        want["z_mid_x_max"],
        want["z_mid_y_max"],
    )


def test_initial_box_shift_scales_with_the_image() -> None:
    gt = np.zeros((3, 512, 256), dtype=bool)
    gt[1, 100:200, 50:60] = True
    b = clicks3d.initial_box(gt, shift=5)  # int(5 * 256/256) = 5 in x, int(5 * 512/256) = 10 in y
    assert b.box_xyxy == (45, 90, 64, 209)
    assert (b.z_min, b.z_max, b.z_mid) == (1, 1, 1)
    rng = np.random.default_rng(0)
    assert {clicks3d.box_shift(rng) for _ in range(200)} == set(range(6))


@pytest.mark.parametrize("seed", SEEDS[:12])
def test_step_scores_equal_the_challenge(seed: int) -> None:
    gt, pred = _pair(seed)
    spacing = (2.5, 0.8, 1.1)
    want = ref.reference_step_metrics(gt.astype(np.uint8), pred.astype(np.uint8), spacing)
    got = clicks3d.step_scores(gt, pred, spacing)
    assert got[0] == pytest.approx(want[0], abs=1e-12)
    assert got[1] == pytest.approx(want[1], abs=1e-6)


def test_nsd_known_answers() -> None:
    gt = np.zeros((10, 10, 10), dtype=bool)
    gt[3:7, 3:7, 3:7] = True
    assert clicks3d.challenge_nsd(gt, gt, (1.0, 1.0, 1.0)) == pytest.approx(1.0)
    far = np.roll(gt, 4, axis=2)  # disjoint faces 4 mm apart -> DSC 0, NSD gated to 0
    assert clicks3d.step_scores(gt, far, (1, 1, 1)) == (0.0, 0.0)
    assert math.isnan(clicks3d.challenge_dsc(np.zeros_like(gt), np.zeros_like(gt)))


def test_summary_equals_the_challenge() -> None:
    rng = np.random.default_rng(7)
    for steps in (6, 5):
        d = list(rng.uniform(0, 1, steps))
        n = list(rng.uniform(0, 1, steps))
        want = ref.reference_aucs(d, n)
        got = clicks3d.interactive_summary(d, n)
        assert got["DSC_AUC"] == pytest.approx(want[0])
        assert got["NSD_AUC"] == pytest.approx(want[1])
        assert (got["DSC_Final"], got["NSD_Final"]) == (want[2], want[3])
    # a known answer: constant 1 over 5 click steps -> area 4 (unit spacing)
    assert clicks3d.interactive_summary([0.3] + [1.0] * 5, [0.0] * 6)["DSC_AUC"] == 4.0
    with pytest.raises(ValueError, match="steps"):
        clicks3d.interactive_summary([1.0] * 3, [1.0] * 3)


def test_large_component_downsampling_path() -> None:
    # the >60M-voxel branch, exercised with a small threshold: values stay a valid EDT at the
    # pooled resolution (non-zero exactly on the component's pooled support, max at the centre)
    comp = np.zeros((12, 12, 12), dtype=bool)
    comp[2:10, 2:10, 2:10] = True
    full = clicks3d.component_edt(comp)
    pooled = clicks3d.component_edt(comp, max_voxels=10)
    assert full.max() == 4.0
    assert pooled.shape == comp.shape and pooled.max() >= 2.0
    assert clicks3d.pick_max(pooled * comp) is not None


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="gt: expected a DxHxW"):
        clicks3d.next_click(np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="pred: shape"):
        clicks3d.next_click(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="gt: empty"):
        clicks3d.initial_box(np.zeros((2, 4, 4)))
