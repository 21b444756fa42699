"""2D distances in mm (``*_mm`` columns) against MONAI with ``spacing`` on anisotropic pixels, and
``sambench evaluate`` filling them from the prepared in-plane spacing (NaN for PNG sources)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.metrics import (
    compute_average_surface_distance,
    compute_hausdorff_distance,
    compute_surface_dice,
)

from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate, spacing_mm
from sambench.errors import OptionError
from sambench.metrics import MetricConfig, segmentation_metrics
from volume_data import prepare_synthetic

from fakes import FakeModel, make_prepared


def _t(m: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(m[None, None].astype(np.float32))


@pytest.mark.parametrize("spacing", [(0.5, 2.0), (3.0, 0.7)])
def test_mm_columns_match_monai_with_spacing(spacing: tuple[float, float]) -> None:
    gt = np.zeros((40, 50), bool)
    gt[10:30, 12:40] = True
    pred = np.roll(gt, (2, -3), axis=(0, 1))  # a box shifted by 2 rows and 3 columns
    cfg = MetricConfig(spacing_mm=spacing, nsd_tolerance_mm=2.0)
    m = segmentation_metrics(pred, gt, cfg)
    # known answer: the farthest boundary pixel is a corner, moved 2 rows and 3 columns
    assert m["hd_mm"] == pytest.approx(math.hypot(2 * spacing[0], 3 * spacing[1]))
    assert m["hd_mm"] == pytest.approx(
        float(compute_hausdorff_distance(_t(pred), _t(gt), spacing=spacing))
    )
    asd = compute_average_surface_distance(_t(pred), _t(gt), symmetric=True, spacing=spacing)
    assert m["assd_mm"] == pytest.approx(float(asd))
    nsd = compute_surface_dice(_t(pred), _t(gt), [2.0], spacing=spacing)
    assert m["nsd_mm"] == pytest.approx(100 * float(nsd))
    # the pixel columns do not change
    assert m["hd"] == segmentation_metrics(pred, gt)["hd"] == pytest.approx(math.hypot(2, 3))
    empty = segmentation_metrics(np.zeros_like(gt), gt, cfg)
    assert empty["hd95_mm"] == pytest.approx(math.hypot(40 * spacing[0], 50 * spacing[1]))
    with pytest.raises(ValueError, match="nsd_tolerance_mm"):
        MetricConfig(nsd_tolerance_mm=-1.0)


def test_spacing_known_only_for_sources_that_carry_one() -> None:
    png = {"spacing_x": 1.0, "spacing_y": 1.0, "slice_axis": -1, "source_image": "a/b.PNG"}
    assert spacing_mm(png) is None
    nifti2d = {**png, "spacing_x": 0.4, "spacing_y": 0.6, "source_image": "a/b.nii.gz"}
    assert spacing_mm(nifti2d) == (0.6, 0.4)
    vol = {**png, "spacing_x": 0.8, "spacing_y": 0.7, "slice_axis": 2, "source_image": "c.nii"}
    assert spacing_mm(vol) == (0.7, 0.8)


def test_evaluate_fills_mm_columns_from_the_manifest(tmp_path: Path) -> None:
    prepared, _ = prepare_synthetic(tmp_path)
    cfg = RunConfig(prepared=str(prepared), model="fake", progress=False, strategies=("S2", "S6"))
    res = evaluate(cfg, tmp_path / "run", model=FakeModel())
    ok = res[res.status == "ok"]
    assert len(ok) and ok["hd_mm"].notna().all() and ok["nsd_mm"].notna().all()
    for _, r in ok.iterrows():  # spacing (row 0.7, col 0.8) mm: mm >= 0.7 * px, <= 0.8 * px
        assert 0.7 * r["hd"] * (1 - 1e-6) <= r["hd_mm"] <= 0.8 * r["hd"] * (1 + 1e-6)
    png = make_prepared(tmp_path / "png", n_images=1)
    res2 = evaluate(
        RunConfig(prepared=str(png), model="fake", progress=False, strategies=("S6",)),
        tmp_path / "run2",
        model=FakeModel(),
    )
    assert res2["hd_mm"].isna().all() and res2["hd"].notna().all()
    with pytest.raises(OptionError, match="--nsd-tolerance-mm"):
        evaluate(RunConfig(prepared=str(png), model="fake", nsd_tolerance_mm=-2), tmp_path / "r3")
