"""3D metrics in mm against MONAI (with ``spacing``) and medpy, on anisotropic shapes with known
answers: shifted boxes, a sphere and an anisotropic ellipsoid."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from medpy.metric import binary as mb
from monai.metrics import (
    compute_average_surface_distance,
    compute_hausdorff_distance,
    compute_surface_dice,
)

from sambench.metrics.distance import EmptyMaskError
from sambench.metrics.volume import surface_distances_nd, volume_metrics


def _t(m: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(m[None, None].astype(np.float32))


def _monai(pred: np.ndarray, gt: np.ndarray, sp: tuple[float, ...], tol: float) -> dict[str, float]:
    return {
        "hd": float(compute_hausdorff_distance(_t(pred), _t(gt), spacing=sp)[0, 0]),
        "assd": float(
            compute_average_surface_distance(_t(pred), _t(gt), symmetric=True, spacing=sp)[0, 0]
        ),
        "nsd": 100 * float(compute_surface_dice(_t(pred), _t(gt), [tol], spacing=sp)[0, 0]),
    }


def _ellipsoid(shape: tuple[int, int, int], sp: tuple[float, ...], radii_mm: tuple[float, ...]):
    """Voxels whose centre lies inside the ellipsoid of ``radii_mm`` centred in the volume."""
    grids = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    centre = [(n - 1) / 2 for n in shape]
    r = sum(
        ((g - c) * s / rad) ** 2 for g, c, s, rad in zip(grids, centre, sp, radii_mm, strict=True)
    )
    return r <= 1.0


@pytest.mark.parametrize("shift, spacing", [(1, (3.0, 0.8, 0.8)), (2, (5.0, 1.0, 0.5))])
def test_shifted_boxes_known_answer_and_monai(shift: int, spacing: tuple[float, ...]) -> None:
    gt = np.zeros((12, 40, 40), bool)
    gt[2:7, 5:35, 5:35] = True  # in-plane half-width 15 voxels >> the shift in mm
    pred = np.roll(gt, shift, axis=0)
    m = volume_metrics(pred, gt, spacing, nsd_tolerance_mm=2.0)
    assert m["hd"] == pytest.approx(shift * spacing[0])  # the z faces move by shift slices
    ref = _monai(pred, gt, spacing, 2.0)
    assert m["hd"] == pytest.approx(ref["hd"])
    assert m["assd"] == pytest.approx(ref["assd"])
    assert m["nsd"] == pytest.approx(ref["nsd"])
    assert m["hd95"] == pytest.approx(mb.hd95(pred, gt, voxelspacing=spacing))
    overlap = (5 - shift) / 5
    assert m["dsc"] == pytest.approx(100 * overlap)
    assert m["volume_error"] == 0.0


def test_sphere_grown_by_known_radius() -> None:
    sp = (2.0, 1.0, 1.0)
    gt = _ellipsoid((24, 48, 48), sp, (16.0, 16.0, 16.0))  # a sphere of 16 mm in physical space
    pred = _ellipsoid((24, 48, 48), sp, (19.0, 19.0, 19.0))  # 3 mm larger
    m = volume_metrics(pred, gt, sp, nsd_tolerance_mm=5.0)
    # Discretized surfaces lie within a voxel of the true ones: HD within 3 mm +/- 2 mm.
    assert abs(m["hd"] - 3.0) <= 2.0 and abs(m["assd"] - 3.0) <= 1.0
    assert m["nsd"] == pytest.approx(100.0)  # every boundary voxel within 5 mm
    ref = _monai(pred, gt, sp, 5.0)
    assert m["hd"] == pytest.approx(ref["hd"]) and m["assd"] == pytest.approx(ref["assd"])
    expected_error = 100 * ((19 / 16) ** 3 - 1)
    assert m["volume_error"] == pytest.approx(expected_error, rel=0.08)
    assert m["volume_diff_ml"] == pytest.approx((m["pred_voxels"] - m["gt_voxels"]) * 2e-3)


def test_anisotropic_ellipsoid_matches_monai_and_medpy() -> None:
    sp = (3.5, 0.7, 1.1)
    gt = _ellipsoid((16, 64, 40), sp, (20.0, 18.0, 14.0))
    rng = np.random.default_rng(3)
    pred = np.roll(gt, (1, 3, -2), axis=(0, 1, 2)) & (rng.random(gt.shape) > 0.02)
    for tol in (1.0, 2.0, 4.0):
        m = volume_metrics(pred, gt, sp, nsd_tolerance_mm=tol)
        ref = _monai(pred, gt, sp, tol)
        assert m["hd"] == pytest.approx(ref["hd"])
        assert m["assd"] == pytest.approx(ref["assd"])
        assert m["nsd"] == pytest.approx(ref["nsd"])
    assert m["hd95"] == pytest.approx(mb.hd95(pred, gt, voxelspacing=sp))
    assert m["dsc"] == pytest.approx(100 * mb.dc(pred, gt))
    # Distances scale with spacing: the same masks in voxels differ from mm.
    d_vox = np.concatenate(surface_distances_nd(pred, gt, (1.0, 1.0, 1.0)))
    assert not math.isclose(float(d_vox.max()), m["hd"])


def test_empty_prediction_and_empty_gt() -> None:
    gt = np.zeros((4, 10, 10), bool)
    gt[1:3, 2:5, 2:5] = True
    m = volume_metrics(np.zeros_like(gt), gt, (2.0, 1.0, 1.0))
    assert m["empty_prediction"] and m["dsc"] == 0.0 and m["nsd"] == 0.0
    assert m["hd"] == pytest.approx(math.sqrt(8**2 + 10**2 + 10**2))
    assert math.isnan(volume_metrics(np.zeros_like(gt), gt, (2, 1, 1), empty="nan")["hd95"])
    with pytest.raises(EmptyMaskError, match="gt"):
        volume_metrics(gt, np.zeros_like(gt), (1, 1, 1))
    with pytest.raises(ValueError, match="spacing"):
        volume_metrics(gt, gt, (1.0, 0.0, 1.0))
