"""evaluate-3d with the real LiteMedSAM on the real MNI152 brain (nilearn), made anisotropic (every
third axial slice: 1 x 1 x 3 mm), through the CLI; its mm metrics recomputed by MONAI from the
saved NIfTI masks. Five slices, so at most ten encoder passes."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from monai.metrics import compute_hausdorff_distance, compute_surface_dice

from sambench.cli import main
from sambench.data.prepare import prepare_dataset
from sambench.demo.source import BRAIN_NAME, write_demo_source


def _anisotropic_brain(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    write_demo_source(src, crop=(slice(None), slice(None), slice(84, 99)))
    folder = src / BRAIN_NAME
    for sub in ("images", "labels"):
        path = folder / sub / "mni152.nii.gz"
        img = nib.load(path)
        affine = img.affine.copy()
        affine[:3, 2] *= 3  # every third slice: 3 mm apart
        arr = np.ascontiguousarray(np.asanyarray(img.dataobj)[:, :, ::3])
        nib.save(nib.Nifti1Image(arr, affine), path)
    out = tmp_path / "prepared"
    prepare_dataset(folder, out, config=folder / "dataset.yaml", progress=False)
    return out


@pytest.mark.slow
def test_litemedsam_on_mni152_slicewise_and_propagate(tmp_path: Path) -> None:
    prepared = _anisotropic_brain(tmp_path)
    run = tmp_path / "run"
    args = ["evaluate-3d", str(prepared), "--out", str(run), "--protocol",
            "slicewise-gt,propagate", "--save-masks", "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    df = pd.read_parquet(run / "results3d.parquet")
    assert len(df) == 2 and (df["status"] == "ok").all()
    r = df.set_index("protocol")
    assert r.loc["slicewise-gt", "spacing_z"] == pytest.approx(3.0)
    assert r.loc["slicewise-gt", "n_slices_predicted"] == 5
    # measured: slicewise-gt 51.3, propagate 47.0 (deterministic on CPU)
    assert r.loc["slicewise-gt", "dice"] > 45 and r.loc["propagate", "dice"] > 35
    assert 1 <= r.loc["propagate", "n_slices_predicted"] <= 7
    lab = np.asanyarray(
        nib.load(prepared / BRAIN_NAME / "volumes/labels/MNI152Brain_mni152.nii.gz").dataobj
    )
    gt = lab == int(r.loc["propagate", "label_value"])
    for proto, row in r.iterrows():
        img = nib.load(run / row["mask_path"])
        assert img.header.get_zooms()[:3] == pytest.approx((1.0, 1.0, 3.0)), proto
        pred = np.asanyarray(img.dataobj).astype(bool)  # (x, y, z), spacing (1, 1, 3)
        t = lambda m: torch.from_numpy(m[None, None].astype(np.float32))  # noqa: E731
        sp = (1.0, 1.0, 3.0)
        hd = float(compute_hausdorff_distance(t(pred), t(gt), spacing=sp)[0, 0])
        nsd = 100 * float(compute_surface_dice(t(pred), t(gt), [2.0], spacing=sp)[0, 0])
        assert row["hd"] == pytest.approx(hd) and row["nsd"] == pytest.approx(nsd), proto
    # resumed: nothing to do, same rows
    assert main(args) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(run / "results3d.parquet"), df)
