"""Human Correction Effort (HCE): the estimated number of mouse operations needed to correct a
predicted mask into the ground truth (Qin et al., "Highly Accurate Dichotomous Image
Segmentation", ECCV 2022, the DIS benchmark).

HCE = FP points + FP regions + FN points + FN regions, where

- the false positives (``pred & ~gt``) and false negatives (``gt & ~pred``) are first *relaxed*:
  error pixels within ``relax`` pixels (``relax`` erosions of the union by a 3x3 cross) of the
  union's border are dropped, unless they reconnect to the deep error by ``relax`` constrained
  dilations; the ground truth's skeleton pixels that the prediction misses are kept as FN in any
  case (thin structures must be drawn even when they are thin);
- *points*: the boundary of each relaxed error region is cut into the stretches that touch the
  rest of the object (FP: next to TP or relaxed FN; FN: next to the background), each stretch is
  simplified by Ramer-Douglas-Peucker with tolerance ``epsilon`` (``cv2.approxPolyDP``, open
  curves), and its vertices are counted (one click per polygon vertex);
- *regions*: an error region none of whose boundary pixels needed such a stretch is independent
  and counts one operation (one click to select and delete or fill it).

This is the algorithm of the DIS reference code ``IS-Net/hce_metric_main.py``
(xuebinqin/DIS, ``relax_HCE`` with its defaults ``relax=5, epsilon=2.0`` and the ground-truth
skeleton from ``skimage.morphology.skeletonize``), which the maintained ``pysodmetrics``
(``HumanCorrectionEffortMeasure``) also follows; ``tests/test_hce.py`` checks equal counts against
a transcription of the reference. The one place it differs from the reference is a relaxed error
region that covers *every* pixel of the image (only possible when a mask is the whole image): the
reference then indexes its per-region flags by the number of distinct labels and counts 0
regions; here (as in ``pysodmetrics``) it counts 1.

Conventions: ``pred``, ``gt`` are HxW bool masks (or integer 0/1) of the same shape; either may be
empty. Both empty, or identical masks: HCE = 0. An empty prediction gets the effort of drawing the
ground truth from scratch (finite; no special convention needed). All counts are ints.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage.measure import label
from skimage.morphology import skeletonize

from sambench.metrics.overlap import check_pair

HCE_NAMES = ("hce", "hce_fp", "hce_fn")
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)  # skimage disk(1)


@dataclass(frozen=True)
class HCEResult:
    """The four counts of HCE; ``hce_fp``, ``hce_fn`` and ``hce`` are their sums."""

    fp_points: int
    fp_regions: int
    fn_points: int
    fn_regions: int

    @property
    def hce_fp(self) -> int:
        return self.fp_points + self.fp_regions

    @property
    def hce_fn(self) -> int:
        return self.fn_points + self.fn_regions

    @property
    def hce(self) -> int:
        return self.hce_fp + self.hce_fn

    def as_dict(self) -> dict[str, float]:
        """``{"hce", "hce_fp", "hce_fn"}`` as floats (the results-table columns)."""
        return {"hce": float(self.hce), "hce_fp": float(self.hce_fp), "hce_fn": float(self.hce_fn)}


def _dilate(mask: np.ndarray) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), _CROSS).astype(bool)


def _relaxed(err: np.ndarray, core: np.ndarray, allowed: np.ndarray, relax: int) -> np.ndarray:
    """Error pixels kept after relaxation: ``err & core`` grown back ``relax`` times by one
    pixel (3x3 cross) inside ``allowed``, then restricted to ``err``."""
    grown = err & core
    for _ in range(relax):
        grown = _dilate(grown) & allowed
    return err & grown


def _stretches(contour: np.ndarray, keep: np.ndarray) -> list[np.ndarray]:
    """Maximal runs of kept points of one contour (Nx2 (X, Y)), with the reference's closing
    rule: when there are several runs and the first run's first point is 8-adjacent to the last
    run's last point, the first run, reversed, is appended to the last one."""
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(idx) > 1) + 1
    runs = [contour[r] for r in np.split(idx, cuts)]
    if len(runs) > 1 and int(np.abs(runs[0][0] - runs[-1][-1]).max()) == 1:
        runs[-1] = np.concatenate([runs[-1], runs[0][::-1]])
        del runs[0]
    return runs


def _effort(region: np.ndarray, touch: np.ndarray, epsilon: float) -> tuple[int, int]:
    """(polygon points, independent regions) of the error mask ``region``; ``touch``: where a
    boundary pixel must be redrawn (already dilated). Contour pixels are visited in OpenCV's
    order (``RETR_TREE``, ``CHAIN_APPROX_NONE``); each pixel counts at its first visit only."""
    contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_TREE, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return 0, 0
    labels = label(region)
    touched = np.zeros(int(labels.max()) + 1, bool)
    pts = [c.reshape(-1, 2) for c in contours]  # (X, Y) per contour
    allp = np.concatenate(pts)
    lin = allp[:, 1].astype(np.int64) * region.shape[1] + allp[:, 0]
    first = np.zeros(len(lin), bool)
    first[np.unique(lin, return_index=True)[1]] = True
    keep_all = first & touch[allp[:, 1], allp[:, 0]]
    touched[labels[allp[keep_all, 1], allp[keep_all, 0]]] = True
    points = 0
    start = 0
    for c in pts:
        keep = keep_all[start : start + len(c)]
        start += len(c)
        for run in _stretches(c, keep):
            points += len(cv2.approxPolyDP(run.reshape(-1, 1, 2).astype(np.int32), epsilon, False))
    regions = int(np.count_nonzero(~touched[1:]))
    return points, regions


def human_correction_effort(
    pred: np.ndarray, gt: np.ndarray, relax: int = 5, epsilon: float = 2.0
) -> HCEResult:
    """HCE of HxW bool ``pred`` against HxW bool ``gt`` (see the module docstring).

    ``relax``: the relaxation radius in pixels (int >= 0); ``epsilon``: the RDP tolerance in
    pixels (> 0). The defaults are the DIS reference's.
    """
    if isinstance(relax, bool) or not isinstance(relax, (int, np.integer)) or relax < 0:
        raise ValueError(f"relax: expected an integer >= 0 (pixels), got {relax!r}")
    if not np.isfinite(epsilon) or epsilon <= 0:
        raise ValueError(f"epsilon: expected a finite number > 0 (pixels), got {epsilon!r}")
    p, g = check_pair(pred, gt)
    tp, fp, fn = p & g, p & ~g, g & ~p
    if not (fp.any() or fn.any()):
        return HCEResult(0, 0, 0, 0)
    # cv2.erode treats pixels outside the image as foreground, as the reference does
    core = cv2.erode((p | g).astype(np.uint8), _CROSS, iterations=int(relax)).astype(bool)
    fp_r = _relaxed(fp, core, ~g, int(relax))
    fn_r = _relaxed(fn, core, ~p, int(relax))
    fn_r |= skeletonize(g) & ~tp
    fp_points, fp_regions = _effort(fp_r, _dilate(tp | fn_r), epsilon)
    fn_points, fn_regions = _effort(fn_r, _dilate(~(tp | fp_r | fn_r)), epsilon)
    return HCEResult(fp_points, fp_regions, fn_points, fn_regions)


__all__ = ["HCE_NAMES", "HCEResult", "human_correction_effort"]
