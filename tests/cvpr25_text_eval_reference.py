"""Test-only transcription of the CVPR 2025 text-guided 3D challenge's instance evaluation (the
independent reference; the package does not use it).

Source: https://github.com/JunMa11/CVPR-MedSegFMCompetition at commit
748e862d162e3e3ee8197bd4085b19bbbe0bb8a0: ``CVPR25_text_eval.py`` (``_label_overlap``,
``_intersection_over_union``, ``_true_positive``, ``eval_tp_fp_fn`` and the lines of the
``instance_label == 1`` branch that turn a binary prediction into instances with
``cc3d.connected_components`` and compute precision, recall, F1 and ``dsc_tp``). Copyright
Jun Ma et al., Apache License 2.0 (the repository's LICENSE).

Changes from the source: the docker driver, file I/O and printing are left out; the branch body is
wrapped in ``reference_instance_scores(gt_labels, seg_labels)``; ``compute_dice_coefficient``
(from the script's ``SurfaceDice.py``) is written out; NumPy 2 renames only. The computation
itself is unchanged, line for line: it works on label maps (0 = background, 1, 2, ... instances),
so overlapping predicted instances cannot be expressed.
"""

# ruff: noqa
# mypy: ignore-errors
import numpy as np
from scipy.optimize import linear_sum_assignment
from skimage import segmentation


def compute_dice_coefficient(mask_gt, mask_pred):
    volume_sum = mask_gt.sum() + mask_pred.sum()
    if volume_sum == 0:
        return np.nan
    volume_intersect = (mask_gt & mask_pred).sum()
    return 2 * volume_intersect / volume_sum


def _label_overlap(x, y):
    x = x.ravel()
    y = y.ravel()
    overlap = np.zeros((1 + x.max(), 1 + y.max()), dtype=np.uint)
    for i in range(len(x)):
        overlap[x[i], y[i]] += 1
    return overlap


def _intersection_over_union(masks_true, masks_pred):
    overlap = _label_overlap(masks_true, masks_pred)
    n_pixels_pred = np.sum(overlap, axis=0, keepdims=True)
    n_pixels_true = np.sum(overlap, axis=1, keepdims=True)
    iou = overlap / (n_pixels_pred + n_pixels_true - overlap)
    iou[np.isnan(iou)] = 0.0
    return iou


def _true_positive(iou, th):
    n_min = min(iou.shape[0], iou.shape[1])
    costs = -(iou >= th).astype(float) - iou / (2 * n_min)
    true_ind, pred_ind = linear_sum_assignment(costs)
    match_ok = iou[true_ind, pred_ind] >= th
    tp = match_ok.sum()
    matched_pairs = [(t, p) for t, p, ok in zip(true_ind, pred_ind, match_ok) if ok]
    return tp, matched_pairs


def eval_tp_fp_fn(masks_true, masks_pred, threshold=0.5):
    num_inst_gt = np.max(masks_true)
    num_inst_seg = np.max(masks_pred)
    if num_inst_seg > 0:
        iou = _intersection_over_union(masks_true, masks_pred)[1:, 1:]
        tp, matched_pairs = _true_positive(iou, threshold)
        fp = num_inst_seg - tp
        fn = num_inst_gt - tp
    else:
        tp = 0
        fp = 0
        fn = 0
        matched_pairs = None
    return tp, fp, fn, matched_pairs


def reference_instance_scores(gt_npz, seg_npz):
    """The script's instance branch on label maps: (tp, fp, fn, f1, dsc_tp)."""
    gt_npz = segmentation.relabel_sequential(gt_npz)[0]
    seg_npz = segmentation.relabel_sequential(seg_npz)[0]
    tp, fp, fn, matched_pairs = eval_tp_fp_fn(gt_npz, seg_npz)
    precision = tp / (tp + fp) if (tp + fp) > 0 else 0
    recall = tp / (tp + fn) if (tp + fn) > 0 else 0
    f1_score = 2 * precision * recall / (precision + recall) if (precision + recall) > 0 else 0
    if matched_pairs:
        dsc_list = []
        for gt_idx, pred_idx in matched_pairs:
            gt_mask = gt_npz == (gt_idx + 1)
            pred_mask = seg_npz == (pred_idx + 1)
            dsc_list.append(compute_dice_coefficient(gt_mask, pred_mask))
        dsc_tp = np.mean(dsc_list)
    else:
        dsc_tp = 0
    return tp, fp, fn, f1_score, dsc_tp
