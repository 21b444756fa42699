"""Human Correction Effort: equal counts to a transcription of the DIS reference
(tests/dis_hce_reference.py) on seeded and real masks, and shapes with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from dis_hce_reference import reference_hce
from sambench.metrics import HCE_NAMES, MaskError, human_correction_effort, segmentation_metrics

from shared_data import SEED


def _counts(pred: np.ndarray, gt: np.ndarray, **kw: float) -> tuple[int, int, int, int]:
    r = human_correction_effort(pred, gt, **kw)  # type: ignore[arg-type]
    return r.fp_points, r.fp_regions, r.fn_points, r.fn_regions


def _blobs(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return ndi.gaussian_filter(rng.random(shape), float(rng.uniform(2.0, 5.0))) > 0.5


def _two_squares() -> np.ndarray:
    g = np.zeros((64, 64), bool)
    g[8:24, 8:24] = True
    g[36:56, 30:50] = True
    return g


def test_seeded_random_masks_equal_the_reference() -> None:
    rng = np.random.default_rng(20221023)
    nonzero = 0
    for i in range(60):
        shape = (int(rng.integers(40, 100)), int(rng.integers(40, 100)))
        gt = _blobs(rng, shape)
        if i % 3 == 0:
            pred = _blobs(rng, shape)  # unrelated prediction
        elif i % 3 == 1:  # a near miss: grown or shrunk, with salt-and-pepper noise
            k = int(rng.integers(1, 4))
            pred = (
                ndi.binary_dilation(gt, iterations=k)
                if i % 2
                else ndi.binary_erosion(gt, iterations=k)
            )
            pred ^= rng.random(shape) < 0.01
        else:
            pred = np.roll(gt, tuple(rng.integers(-6, 7, 2)), axis=(0, 1))
        for relax, eps in ((5, 2.0), (int(rng.integers(0, 8)), float(rng.uniform(0.5, 4.0)))):
            ours = _counts(pred, gt, relax=relax, epsilon=eps)
            assert ours == reference_hce(pred, gt, relax=relax, epsilon=eps), (i, relax, eps)
            nonzero += sum(ours) > 0
    assert nonzero > 100  # the comparison is not between zeros


def _seed_labels() -> list[tuple[str, np.ndarray]]:
    files = sorted(SEED.glob("*/labels/*.png"))
    if not files:
        pytest.skip(f"no seed-sample label PNGs under {SEED}")
    out = []
    for f in files[::3]:
        lab = np.asarray(Image.open(f))
        for v in np.unique(lab)[1:]:
            out.append((f"{f.name}:{v}", lab == v))
    return out


def test_real_seed_masks_equal_the_reference() -> None:
    rng = np.random.default_rng(7)
    labels = _seed_labels()
    assert labels
    for name, gt in labels:
        variants = {
            "eroded": ndi.binary_erosion(gt, iterations=3),
            "dilated": ndi.binary_dilation(gt, iterations=7),
            "shifted": np.roll(gt, (4, -6), axis=(0, 1)),
            "noised": gt ^ (rng.random(gt.shape) < 0.003),
            "empty": np.zeros_like(gt),
        }
        for kind, pred in variants.items():
            ref = reference_hce(pred, gt)
            assert _counts(pred, gt) == ref, (name, kind)
            if kind in ("shifted", "empty"):
                assert sum(ref) > 0, (name, kind)


def test_identical_and_empty_masks_cost_nothing() -> None:
    gt = _two_squares()
    assert human_correction_effort(gt, gt).hce == 0
    z = np.zeros_like(gt)
    assert human_correction_effort(z, z).hce == 0


def test_missing_square_costs_its_relaxed_polygon() -> None:
    # The missing 20x20 square is FN. Relaxation (5 erosions of the union by a 3x3 cross, then 5
    # dilations back inside the FN) cuts its corners to 5-pixel diagonals: an octagon. Its whole
    # boundary touches the background, so it is one open stretch, simplified by RDP (epsilon 2)
    # to the 8 corners of the octagon + the last contour pixel, next to the first: 9 points and
    # no independent region.
    gt = _two_squares()
    pred = gt.copy()
    pred[36:56, 30:50] = False
    assert _counts(pred, gt) == (0, 0, 9, 0) == reference_hce(pred, gt)


def test_regions_away_from_the_object_cost_one_operation_each() -> None:
    gt = _two_squares()
    spurious = gt.copy()
    spurious[40:60, 2:22] = True  # a 20x20 false blob, touching no true positive
    assert _counts(spurious, gt) == (0, 1, 0, 0) == reference_hce(spurious, gt)
    holed = gt.copy()
    holed[12:20, 12:20] = False  # a hole inside the first square: fill it in one operation
    assert _counts(holed, gt) == (0, 0, 0, 1) == reference_hce(holed, gt)
    small = gt.copy()
    small[50:60, 2:12] = True  # a 10x10 blob is no wider than 2 * relax: relaxed away
    assert human_correction_effort(small, gt).hce == 0


def test_relax_forgives_thin_boundary_errors() -> None:
    gt = _two_squares()
    grown = ndi.binary_dilation(gt)  # a one-pixel rim of FP around both squares
    assert human_correction_effort(grown, gt).hce == 0
    strict = human_correction_effort(grown, gt, relax=0)
    assert strict.fp_points > 0 and strict.hce_fn == 0
    assert _counts(grown, gt, relax=0) == reference_hce(grown, gt, relax=0)


def test_whole_image_error_region_counts_once() -> None:
    # The one documented difference: an error region covering every pixel. The reference sizes
    # its region flags by the distinct labels (here only 1) and counts 0 regions; we count 1.
    full = np.ones((32, 32), bool)
    empty = np.zeros_like(full)
    assert _counts(full, empty) == (0, 1, 0, 0)
    assert reference_hce(full, empty) == (0, 0, 0, 0)


def test_segmentation_metrics_carries_hce_columns() -> None:
    gt = _two_squares()
    pred = gt.copy()
    pred[36:56, 30:50] = False
    pred[40:60, 2:22] = True
    r = human_correction_effort(pred, gt)
    m = segmentation_metrics(pred, gt)
    assert {k: m[k] for k in HCE_NAMES} == {
        "hce": float(r.hce),
        "hce_fp": float(r.hce_fp),
        "hce_fn": float(r.hce_fn),
    }
    assert (m["hce_fp"], m["hce_fn"], m["hce"]) == (1.0, 9.0, 10.0)
    # an empty prediction has a finite HCE: the effort of drawing the ground truth
    e = segmentation_metrics(np.zeros_like(gt), gt)
    assert e["empty_prediction"] is True and e["hce_fp"] == 0.0 and e["hce_fn"] > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"relax": -1}, "relax"), ({"relax": 1.5}, "relax"), ({"epsilon": 0.0}, "epsilon")],
)
def test_bad_parameters(kwargs: dict[str, float], match: str) -> None:
    gt = _two_squares()
    with pytest.raises(ValueError, match=match):
        human_correction_effort(gt, gt, **kwargs)  # type: ignore[arg-type]


def test_bad_masks() -> None:
    with pytest.raises(MaskError, match="pred"):
        human_correction_effort(np.zeros((4, 5), bool), np.zeros((4, 4), bool))
    with pytest.raises(MaskError, match="gt"):
        human_correction_effort(np.zeros((4, 4), bool), np.full((4, 4), 0.5))


def test_agrees_with_pysodmetrics_when_installed() -> None:
    psm = pytest.importorskip("py_sod_metrics")
    m = psm.HumanCorrectionEffortMeasure(relax=5, epsilon=2.0)
    rng = np.random.default_rng(3)
    for _ in range(20):
        gt, pred = _blobs(rng, (80, 80)), _blobs(rng, (80, 80))
        assert m.cal_hce(pred, gt) == human_correction_effort(pred, gt).hce
