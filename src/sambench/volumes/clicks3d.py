"""The CVPR 2025 interactive 3D challenge's click rule, initial box and metrics, as pure functions.

Reference: ``CVPR25_iter_eval.py``, ``get_boxes.py`` and ``SurfaceDice.py`` of
https://github.com/JunMa11/CVPR-MedSegFMCompetition (commit 748e862d, June 2025), the evaluation
of "Foundation Models for Interactive 3D Biomedical Image Segmentation". Restated for one object
(a binary ground truth; the challenge runs every class of a case in parallel, one click per class
per step):

1. Error mask ``pred != gt``. Its 26-connected components (``cc3d`` in the script, SciPy's
   ``label`` with a 3x3x3 structure here: the same components, numbered in raster order of their
   first voxel); the largest one (ties: the lowest number, i.e. the component met first in C
   order, as ``np.argmax`` over the sizes).
2. Its Euclidean distance transform in voxel units (no spacing), computed on the component's
   bounding box padded with zeros by ``max(int(0.25 * size), 1)`` voxels per axis, so the volume
   border counts as background; a padded box over 60 million voxels is max-pooled 2x (skimage's
   ``block_reduce``), transformed, and repeated back 2x, as in the script. Voxels outside the
   component get 0; if all are 0, every component voxel is a candidate.
3. The click lands on one of the voxels holding the maximum, chosen by
   ``np.random.seed(42); np.random.choice(n)`` over them in C order (the script reseeds the global
   state with 42 before every click; here a local ``np.random.RandomState(42)`` gives the same
   draw without touching global state). It is a foreground click if the ground truth there is
   the object (under-segmentation), a background click otherwise (over-segmentation).
4. Initial box (``get_boxes.py``): z range of the object, the key slice ``z_mid`` = the middle of
   the sorted distinct occupied slices (``z[len(z) // 2]``, not the slice of largest area), and
   that slice's 2D box enlarged by ``shift`` in 0..5 drawn uniformly (``randint(0, 6)``), scaled
   by ``int(shift * W / 256)`` in x and ``int(shift * H / 256)`` in y, clipped to the image.
5. Metrics per step: DSC (NaN when both masks are empty), NSD at 2 mm computed only when
   DSC > 0.2 (0 otherwise), the DeepMind surfel-area NSD of ``SurfaceDice.py`` (MONAI's
   ``compute_surface_dice(use_subvoxels=True)``). Over the 6 steps (box + 5 clicks, or 5 clicks
   alone): ``DSC_AUC = cumulative_trapezoid(dsc[-5:], arange(5))[-1]`` (the box step is left
   out since the box is optional; unit spacing, so the range is 0..4), the same for NSD, and
   ``DSC_Final`` / ``NSD_Final`` = the last step.

Conventions: volumes are DxHxW arrays indexed (z, y, x); masks are bool (0/1 integers accepted);
``spacing`` is (z, y, x) in mm; click coordinates are array indices (z, y, x), as the script's
``np.argwhere`` (its docstring calls them [x, y, z], but they are indices of the ``gts`` array).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import integrate
from scipy.ndimage import distance_transform_edt, label

N_CLICKS = 5
NSD_TOLERANCE_MM = 2.0
NSD_MIN_DSC = 0.2
EDT_MAX_VOXELS = 60_000_000
CLICK_SEED = 42
_STRUCT26 = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class Click3D:
    """One simulated click: ``zyx`` array index (z, y, x); ``positive`` = foreground click."""

    zyx: tuple[int, int, int]
    positive: bool


@dataclass(frozen=True)
class Box3D:
    """The challenge's initial prompt: key slice ``z_mid`` and its 2D box XYXY (inclusive pixel
    indices, x = column, y = row), and the object's inclusive z range."""

    z_min: int
    z_max: int
    z_mid: int
    x_min: int
    y_min: int
    x_max: int
    y_max: int

    @property
    def box_xyxy(self) -> tuple[int, int, int, int]:
        """The key slice's box (x_min, y_min, x_max, y_max)."""
        return (self.x_min, self.y_min, self.x_max, self.y_max)


def _as_volume(mask: np.ndarray, field: str) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 3:
        raise ValueError(f"{field}: expected a DxHxW 3D mask, got shape {m.shape}")
    return m.astype(bool, copy=False)


def largest_error_component(error: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of a DxHxW bool ``error`` mask (ties: first in C order).

    Returns a DxHxW bool mask; all False when ``error`` is empty.
    """
    err = _as_volume(error, "error")
    labels, n = label(err, structure=_STRUCT26)
    if n == 0:
        return np.zeros_like(err)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return np.asarray(labels == int(np.argmax(sizes)))


def _block_max2(a: np.ndarray) -> np.ndarray:
    from skimage.measure import block_reduce

    return np.asarray(block_reduce(a, block_size=(2, 2, 2), func=np.max))


def component_edt(component: np.ndarray, max_voxels: int = EDT_MAX_VOXELS) -> np.ndarray:
    """The script's ``compute_edt``: EDT (voxel units, float64, DxHxW) of a non-empty component.

    Computed on the bounding box padded by ``max(int(0.25 * size), 1)`` zeros per axis (so the
    volume border counts as background) and written back into a zero volume; a padded box over
    ``max_voxels`` voxels is max-pooled 2x, transformed and repeated back 2x.
    """
    comp = _as_volume(component, "component")
    coords = np.argwhere(comp)
    if coords.size == 0:
        raise ValueError("component: empty mask (no voxel to click)")
    lo = coords.min(axis=0)
    hi = coords.max(axis=0) + 1
    shape = hi - lo
    pad = np.maximum((shape * 0.25).astype(int), 1)
    crop = np.zeros(shape + 2 * pad, dtype=np.uint8)
    inner = tuple(slice(int(p), int(p + s)) for p, s in zip(pad, shape, strict=True))
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    crop[inner] = comp[box]
    large = crop.size > max_voxels
    if large:
        crop = _block_max2(crop)
    edt = np.asarray(distance_transform_edt(crop), dtype=np.float64)
    if large:
        edt = edt.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2)
    out = np.zeros(comp.shape, dtype=np.float64)
    out[box] = edt[inner]
    return out


def pick_max(values: np.ndarray, seed: int = CLICK_SEED) -> tuple[int, int, int]:
    """The script's ``sample_coord``: one of the voxels at ``values.max()`` (C order), drawn by a
    fresh ``np.random.RandomState(seed).choice(n)``; returns (z, y, x)."""
    v = np.asarray(values)
    at_max = np.argwhere(v == v.max())
    chosen = at_max[np.random.RandomState(seed).choice(len(at_max))]
    return (int(chosen[0]), int(chosen[1]), int(chosen[2]))


def next_click(gt: np.ndarray, pred: np.ndarray) -> Click3D | None:
    """The next corrective click for DxHxW masks ``gt`` and ``pred``; None if they agree."""
    g = _as_volume(gt, "gt")
    p = _as_volume(pred, "pred")
    if g.shape != p.shape:
        raise ValueError(f"pred: shape {p.shape} differs from gt shape {g.shape}")
    comp = largest_error_component(g != p)
    if not comp.any():
        return None
    edt = component_edt(comp)
    edt *= comp
    zyx = pick_max(edt if edt.sum() != 0 else comp)
    return Click3D(zyx=zyx, positive=bool(g[zyx]))


def box_shift(rng: np.random.Generator) -> int:
    """The box perturbation: an integer uniform in 0..5 (the script's ``randint(0, 6)``)."""
    return int(rng.integers(0, 6))


def initial_box(
    gt: np.ndarray,
    shift: int = 0,
    *,
    origin: tuple[int, int, int] = (0, 0, 0),
    image_hw: tuple[int, int] | None = None,
) -> Box3D:
    """The challenge's initial 3D box of a non-empty DxHxW ``gt`` (``mask3D_to_bbox``), the key
    slice's 2D box enlarged by ``shift`` pixels per 256 (see the module docstring).

    ``gt`` may be a crop holding the whole object: ``origin`` (z, y, x) is the crop's first
    voxel in the volume and ``image_hw`` the volume's (H, W) (the shift scales with it, the box
    is clipped to it); the box is returned in volume indices, equal to the full volume's."""
    g = _as_volume(gt, "gt")
    z, _, _ = np.nonzero(g)
    if z.size == 0:
        raise ValueError("gt: empty mask (no object to box)")
    zs = np.unique(z)
    z_mid = int(zs[len(zs) // 2])
    ys, xs = np.nonzero(g[z_mid])
    h, w = g.shape[1:] if image_hw is None else image_hw
    oz, oy, ox = (int(v) for v in origin)
    sx = int(shift * w / 256)
    sy = int(shift * h / 256)
    return Box3D(
        z_min=int(z.min()) + oz,
        z_max=int(z.max()) + oz,
        z_mid=z_mid + oz,
        x_min=max(0, int(xs.min()) + ox - sx),
        y_min=max(0, int(ys.min()) + oy - sy),
        x_max=min(w - 1, int(xs.max()) + ox + sx),
        y_max=min(h - 1, int(ys.max()) + oy + sy),
    )


def challenge_dsc(gt: np.ndarray, pred: np.ndarray) -> float:
    """DSC of DxHxW masks as ``SurfaceDice.compute_dice_coefficient`` (NaN when both empty)."""
    g = _as_volume(gt, "gt")
    p = _as_volume(pred, "pred")
    total = int(g.sum()) + int(p.sum())
    if total == 0:
        return float("nan")
    return 2.0 * int((g & p).sum()) / total


def challenge_nsd(
    gt: np.ndarray,
    pred: np.ndarray,
    spacing: Sequence[float],
    tolerance_mm: float = NSD_TOLERANCE_MM,
) -> float:
    """NSD (0..1) at ``tolerance_mm`` with surfel areas (DeepMind's ``SurfaceDice.py``), via
    MONAI's ``compute_surface_dice(use_subvoxels=True)``; ``spacing`` (z, y, x) mm."""
    import torch
    from monai.metrics import compute_surface_dice

    g = _as_volume(gt, "gt")
    p = _as_volume(pred, "pred")
    if not g.any() and not p.any():
        return float("nan")
    sp = tuple(float(s) for s in spacing)
    if len(sp) != 3 or not all(s > 0 for s in sp):
        raise ValueError(f"spacing: expected three positive (z, y, x) mm values, got {spacing!r}")
    # crop to the union's bounding box with a margin of 1 (values unchanged, much faster)
    idx = np.argwhere(g | p)
    lo = np.maximum(idx.min(axis=0) - 1, 0)
    hi = np.minimum(idx.max(axis=0) + 2, g.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    gt_t = torch.from_numpy(np.ascontiguousarray(g[box]))[None, None]
    pr_t = torch.from_numpy(np.ascontiguousarray(p[box]))[None, None]
    value = compute_surface_dice(
        pr_t.float(),
        gt_t.float(),
        class_thresholds=[float(tolerance_mm)],
        include_background=True,
        spacing=sp,
        use_subvoxels=True,
    )
    return float(value.reshape(-1)[0])


def step_scores(
    gt: np.ndarray,
    pred: np.ndarray,
    spacing: Sequence[float],
    tolerance_mm: float = NSD_TOLERANCE_MM,
) -> tuple[float, float]:
    """One step's (DSC, NSD) as the challenge scores it: NSD only when DSC > 0.2, else 0."""
    dsc = challenge_dsc(gt, pred)
    nsd = challenge_nsd(gt, pred, spacing, tolerance_mm) if dsc > NSD_MIN_DSC else 0.0
    return dsc, nsd


def interactive_summary(
    dscs: Sequence[float], nsds: Sequence[float], n_clicks: int = N_CLICKS
) -> dict[str, float]:
    """DSC_AUC, NSD_AUC (trapezoid over the last ``n_clicks`` steps, unit spacing), DSC_Final and
    NSD_Final (the last step) from the per-step values (box step first when there is one)."""
    if len(dscs) != len(nsds) or len(dscs) < n_clicks:
        raise ValueError(
            f"steps: expected >= {n_clicks} DSC and NSD values of equal length, "
            f"got {len(dscs)} and {len(nsds)}"
        )
    x = np.arange(n_clicks)
    d = np.asarray(dscs[-n_clicks:], dtype=np.float64)
    n = np.asarray(nsds[-n_clicks:], dtype=np.float64)
    return {
        "DSC_AUC": float(integrate.cumulative_trapezoid(d, x)[-1]),
        "NSD_AUC": float(integrate.cumulative_trapezoid(n, x)[-1]),
        "DSC_Final": float(dscs[-1]),
        "NSD_Final": float(nsds[-1]),
    }
