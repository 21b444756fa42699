"""evaluate-3d with the real LiteMedSAM on a real spinal-cord MRI volume (Spinal Cord Toolbox test
data, MIT; ``tests/data/sct-spinalcord/README.md``), through the CLI as a user runs it: prepare
with the dataset description, then slicewise-gt, propagate and interactive-3d; the mm metrics
recomputed by MONAI from the saved NIfTI masks over the source label."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from monai.metrics import DiceMetric, compute_hausdorff_distance, compute_surface_dice

from sambench.cli import main
from volume_data import prepare_cord

SOURCE = Path(__file__).parent / "data" / "sct-spinalcord"


def test_prepare_writes_the_cord_as_one_3d_object(tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    assert main(["prepare", str(SOURCE), "--out", str(out), "--config",
                 str(SOURCE / "dataset.yaml")]) == 0  # fmt: skip
    v = pd.read_parquet(out / "SCTSpinalCord" / "volumes3d.parquet")
    assert len(v) == 1
    row = v.iloc[0]
    lab = np.asanyarray(nib.load(SOURCE / "labels" / "t2.nii.gz").dataobj) > 0
    assert row["voxel_count"] == int(lab.sum())
    # Sliced axially (issue 27: the file is stored P, S, R and isotropic; reoriented to RAS the
    # tie goes to the anatomical default, axial; before, the file's last axis, R-L, was cut:
    # 13 sagittal slices). The object's slices are the file's y (S) indices holding the cord.
    ss = np.nonzero(lab.any(axis=(0, 2)))[0]
    assert row["n_slices"] == len(ss) == 55 and row["slice_axis"] == 2
    assert (row["plane"], row["orientation"]) == ("axial", "PSR")
    assert (row["depth"], row["height"], row["width"]) == (55, 60, 52)  # S, A-P rows, R-L columns
    assert (row["bbox_z_min"], row["bbox_z_max"]) == (ss.min(), ss.max())
    areas = lab.sum(axis=(0, 2))
    assert row["key_slice"] == int(np.argmax(areas))
    assert (row["spacing_x"], row["spacing_y"], row["spacing_z"]) == (1.0, 1.0, 1.0)


@pytest.mark.slow
def test_litemedsam_three_protocols_on_the_cord(tmp_path: Path) -> None:
    prepared = prepare_cord(tmp_path)
    run = tmp_path / "run"
    args = ["evaluate-3d", str(prepared), "--out", str(run), "--protocol",
            "slicewise-gt,propagate,interactive-3d", "--steps", "2", "--save-masks",
            "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    df = pd.read_parquet(run / "results3d.parquet")
    assert (df["status"] == "ok").all()
    assert sorted(df["protocol"].unique()) == ["interactive-3d", "propagate", "slicewise-gt"]
    assert len(df[df["protocol"] == "interactive-3d"]) == 3  # box + 2 clicks
    final = df.sort_values("step").groupby("protocol").tail(1).set_index("protocol")
    # measured (CPU, deterministic), docs/volumes.md: on the axial slices prepare now cuts
    # (issue 27: reoriented to RAS, isotropic -> axial) LiteMedSAM outlines the cord, a small disc
    # on each slice (DSC 86.2 %, NSD 99.9 %); one box propagated from the key slice keeps 60.6 %.
    # Before issue 27 the file's last axis (R-L) was cut: sagittal slices on which LiteMedSAM
    # outlined the CSF around the cord (slicewise-gt DSC 1.57 %, propagate 0.88 %, NSD 70.9 %).
    assert final.loc["slicewise-gt", "dice"] == pytest.approx(86.23, abs=1.0)
    assert final.loc["propagate", "dice"] == pytest.approx(60.61, abs=1.0)
    assert final.loc["slicewise-gt", "nsd"] == pytest.approx(99.9, abs=3.0)
    gt = np.asanyarray(nib.load(SOURCE / "labels" / "t2.nii.gz").dataobj) > 0
    t = lambda m: torch.from_numpy(m[None, None].astype(np.float32))  # noqa: E731
    for proto, row in final.iterrows():
        img = nib.load(run / row["mask_path"])  # the source geometry: the label's affine
        assert np.allclose(img.affine, nib.load(SOURCE / "labels" / "t2.nii.gz").affine), proto
        pred = np.asanyarray(img.dataobj).astype(bool)
        assert pred.shape == gt.shape, proto
        sp = (1.0, 1.0, 1.0)
        dsc = 100 * float(DiceMetric(include_background=True)(t(pred), t(gt))[0, 0])
        hd = float(compute_hausdorff_distance(t(pred), t(gt), spacing=sp)[0, 0])
        nsd = 100 * float(compute_surface_dice(t(pred), t(gt), [2.0], spacing=sp)[0, 0])
        # MONAI's DiceMetric sums in float32: 1e-4 DSC points is its precision at 60 % (1e-6
        # held only while the old sagittal cut gave DSCs near 1 %)
        assert row["dice"] == pytest.approx(dsc, abs=1e-4), proto
        assert row["hd"] == pytest.approx(hd) and row["nsd"] == pytest.approx(nsd), proto
