"""Instance F1 at IoU 0.5 and matched DICE against the CVPR 2025 text track's own code
(:mod:`cvpr25_text_eval_reference`, a transcription of ``CVPR25_text_eval.py``) and known answers."""

from __future__ import annotations

import cc3d
import numpy as np
import pytest

from cvpr25_text_eval_reference import reference_instance_scores
from sambench.metrics.instances import gt_instances, instance_metrics, iou_matrix


def _labels_to_masks(labels: np.ndarray) -> np.ndarray:
    ids = [v for v in np.unique(labels) if v != 0]
    return np.stack([labels == v for v in ids]) if ids else np.zeros((0, *labels.shape), bool)


def test_known_answer() -> None:
    """Two ground-truth squares; predictions: one exact, one a third over the other (IoU < 0.5),
    one in the background. TP 1, FP 2, FN 1: P = 1/3, R = 1/2, F1 = 0.4; matched DICE 100 %."""
    gt = np.zeros((40, 40), bool)
    gt[2:12, 2:12] = True
    gt[20:30, 20:30] = True
    pred = np.zeros((3, 40, 40), bool)
    pred[0, 2:12, 2:12] = True
    pred[1, 20:30, 27:37] = True  # 30 of 100 pixels: IoU 30 / 170
    pred[2, 35:39, 0:4] = True
    m = instance_metrics(gt, pred)
    assert (m["inst_tp"], m["inst_fp"], m["inst_fn"]) == (1, 2, 1)
    assert m["inst_precision"] == pytest.approx(100 / 3)
    assert m["inst_recall"] == pytest.approx(50.0)
    assert m["inst_f1"] == pytest.approx(40.0)
    assert m["inst_dice_tp"] == pytest.approx(100.0)
    # no prediction at all: the script's convention (TP = FP = FN = 0, F1 0, matched DICE 0)
    none = instance_metrics(gt, np.zeros((0, 40, 40), bool))
    assert (none["inst_n_gt"], none["inst_tp"], none["inst_f1"], none["inst_dice_tp"]) == (
        2,
        0,
        0.0,
        0.0,
    )


def test_components_are_four_connected() -> None:
    """Diagonal neighbours are two instances (cc3d 6-connectivity on a slice = 4-connectivity)."""
    m = np.zeros((5, 5), bool)
    m[1, 1] = m[2, 2] = True
    m[4, 0:3] = True
    assert len(gt_instances(m)) == 3
    _labels, n = cc3d.connected_components(m[None].astype(np.uint8), connectivity=6, return_N=True)
    assert n == 3


def test_iou_matrix_against_direct_counts() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.random((3, 9, 11)) > 0.5, rng.random((4, 9, 11)) > 0.6
    iou = iou_matrix(a, b)
    for i in range(3):
        for j in range(4):
            inter, union = (a[i] & b[j]).sum(), (a[i] | b[j]).sum()
            assert iou[i, j] == pytest.approx(inter / union)


@pytest.mark.parametrize("seed", range(12))
def test_equals_the_challenge_script(seed: int) -> None:
    """Random blobs: ground truth and a prediction as non-overlapping instances; the script gets
    label maps (its prediction labelled with cc3d as it does for binary output)."""
    rng = np.random.default_rng(seed)
    h, w = 48, 56

    def blobs(n: int, shift: int = 0) -> np.ndarray:
        lab = np.zeros((h, w), np.int32)
        for k in range(1, n + 1):
            y, x = rng.integers(2, h - 10), rng.integers(2, w - 10)
            hh, ww = rng.integers(3, 9, size=2)
            lab[y : y + hh, x + shift : x + shift + ww] = k
        return lab

    gt_lab = blobs(int(rng.integers(1, 6)))
    gt_mask = gt_lab > 0
    # the ground truth's instances as the package sees them: 4-connected components
    gt_cc = cc3d.connected_components(gt_mask[None].astype(np.uint8), connectivity=6)[0]
    # a prediction: a perturbed copy of some components plus extras
    pred = np.zeros((h, w), bool)
    for k in np.unique(gt_cc)[1:]:
        if rng.random() < 0.75:
            pred |= np.roll(gt_cc == k, int(rng.integers(-3, 4)), axis=int(rng.integers(0, 2)))
    pred |= blobs(int(rng.integers(0, 3))) > 0
    seg_lab = cc3d.connected_components(pred[None].astype(np.uint8), connectivity=6)[0]
    tp, fp, fn, f1, dsc_tp = reference_instance_scores(gt_cc, seg_lab)
    m = instance_metrics(gt_mask, _labels_to_masks(seg_lab))
    assert (m["inst_tp"], m["inst_fp"], m["inst_fn"]) == (tp, fp, fn)
    assert m["inst_f1"] == pytest.approx(100 * f1)
    assert m["inst_dice_tp"] == pytest.approx(100 * dsc_tp)
