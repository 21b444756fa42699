"""Instance metrics of a concept prompt: instance F1 at IoU 0.5 and the DICE of matched instances.

The rule of the CVPR 2025 challenge "Foundation Models for Text-guided 3D Biomedical Image
Segmentation" (``CVPR25_text_eval.py`` of github.com/JunMa11/CVPR-MedSegFMCompetition at commit
748e862d162e3e3ee8197bd4085b19bbbe0bb8a0, the branch ``instance_label == 1``, functions
``_intersection_over_union``, ``_true_positive``, ``eval_tp_fp_fn``), for instance-type targets:

- ground-truth instances: the connected components of the object's mask (the script's binary
  masks go through ``cc3d.connected_components(connectivity=6)``; on a 2D slice that is
  4-connectivity, used here through ``scipy.ndimage.label``);
- predicted instances: the model's own instances (SAM 3 returns one mask per instance). The
  script's label map cannot hold overlapping instances; these may overlap, so the IoU of every
  (ground truth, prediction) pair is computed from the two masks (identical to the script's when
  the instances do not overlap);
- matching: ``scipy.optimize.linear_sum_assignment`` on the cost ``-(IoU >= 0.5) - IoU / (2
  min(n_gt, n_pred))`` (as many matches at or above the threshold as possible, then the larger
  IoUs); a match counts when its IoU >= 0.5. TP = matches, FP = predictions - TP, FN = ground
  truth - TP;
- precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2PR / (P + R), each 0 when its
  denominator is 0; ``dice_tp`` = the mean DICE of the matched pairs, 0 without a match.
  Like the script, no prediction at all gives TP = FP = FN = 0 counted in ``n_pred``/``n_gt``
  but F1 = 0 and ``dice_tp`` = 0.

F1, precision, recall and ``dice_tp`` are in % (like DICE elsewhere in sambench).
"""

from __future__ import annotations

import numpy as np

IOU_THRESHOLD = 0.5
INSTANCE_COLUMNS = (
    "inst_n_gt",
    "inst_n_pred",
    "inst_tp",
    "inst_fp",
    "inst_fn",
    "inst_precision",
    "inst_recall",
    "inst_f1",
    "inst_dice_tp",
)
"""The columns :func:`instance_metrics` returns (counts, then % values)."""


def gt_instances(mask: np.ndarray) -> np.ndarray:
    """HxW bool -> NxHxW bool: its 4-connected components, in label order (row-major scan)."""
    m = np.asarray(mask, bool)
    if m.ndim != 2:
        raise ValueError(f"mask: expected HxW, got shape {m.shape}")
    from scipy import ndimage  # here, so that the column names import without scipy

    labels, n = ndimage.label(m, structure=ndimage.generate_binary_structure(2, 1))
    return labels[None] == np.arange(1, n + 1)[:, None, None]


def iou_matrix(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """GxHxW and PxHxW bool -> GxP float64 IoU (0 where both are empty)."""
    g = np.asarray(gt, bool).reshape(len(gt), -1).astype(np.float64)
    p = np.asarray(pred, bool).reshape(len(pred), -1).astype(np.float64)
    inter = g @ p.T
    union = g.sum(1)[:, None] + p.sum(1)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    return iou


def match_instances(iou: np.ndarray, threshold: float = IOU_THRESHOLD) -> list[tuple[int, int]]:
    """(gt index, pred index) of the matches with IoU >= ``threshold`` (the script's rule)."""
    if iou.size == 0:
        return []
    n_min = min(iou.shape)
    costs = -(iou >= threshold).astype(float) - iou / (2 * n_min)
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(costs)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= threshold]


def instance_metrics(
    gt_mask: np.ndarray, pred_instances: np.ndarray, threshold: float = IOU_THRESHOLD
) -> dict[str, float]:
    """Instance F1 and matched DICE of NxHxW bool ``pred_instances`` against the components of
    the HxW bool ``gt_mask`` (module docstring). Keys :data:`INSTANCE_COLUMNS`."""
    gt = gt_instances(gt_mask)
    pred = np.asarray(pred_instances, bool).reshape(-1, *np.asarray(gt_mask).shape)
    n_gt, n_pred = len(gt), len(pred)
    pairs = match_instances(iou_matrix(gt, pred), threshold) if n_pred and n_gt else []
    tp = len(pairs)
    fp, fn = (n_pred - tp, n_gt - tp) if n_pred else (0, 0)  # the script: no prediction -> 0s
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    dices = []
    for g, p in pairs:
        inter = np.count_nonzero(gt[g] & pred[p])
        dices.append(2.0 * inter / (np.count_nonzero(gt[g]) + np.count_nonzero(pred[p])))
    return {
        "inst_n_gt": float(n_gt),
        "inst_n_pred": float(n_pred),
        "inst_tp": float(tp),
        "inst_fp": float(fp),
        "inst_fn": float(fn),
        "inst_precision": 100.0 * precision,
        "inst_recall": 100.0 * recall,
        "inst_f1": 100.0 * f1,
        "inst_dice_tp": 100.0 * float(np.mean(dices)) if dices else 0.0,
    }
