"""The report's 3D section from evaluate-3d results (the runner on the shared synthetic volume)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from sambench.report.volumes import write_volume_section
from sambench.volumes.evaluate import Run3DConfig, evaluate_3d
from threshold_model import ThresholdModel
from volume_data import prepare_synthetic


def test_section_from_a_real_run(tmp_path: Path) -> None:
    prep, _ = prepare_synthetic(tmp_path)
    cfg = Run3DConfig(prepared=str(prep), protocols=("slicewise-gt", "propagate", "interactive-3d"))
    df = evaluate_3d(cfg, tmp_path / "run", model=ThresholdModel())
    inter = df[df["protocol"] == "interactive-3d"]
    assert sorted(set(inter["step"])) == [0, 1, 2, 3, 4, 5]
    assert inter["challenge_dsc"].notna().all()
    # the runner's DSC (%) and the challenge's DSC (0..1) are the same number
    np.testing.assert_allclose(inter["dsc"] / 100, inter["challenge_dsc"], atol=1e-9)
    v2 = pd.DataFrame(
        {"dataset": df["dataset"].iloc[0], "case": df["case"].iloc[0], "label_value": [1],
         "object_name": ["Liver"], "model": [df["model"].iloc[0]], "strategy": ["S5"],
         "selection": ["score"], "n_slices": [5], "volume_dice": [88.0]}
    )  # fmt: skip
    md = write_volume_section(df, tmp_path / "rep", rng=np.random.default_rng(0),
                              volume_dice_2d=v2, n_boot=200)  # fmt: skip
    text = md.read_text()
    for heading in ("Mean per protocol", "Paired tests between protocols", "CVPR 2025",
                    "slicewise-gt vs propagate", "2D volume DICE vs the true 3D DSC"):  # fmt: skip
        assert heading in text
    for png in ("dsc_per_click.png", "slicewise_vs_propagate.png"):
        with Image.open(tmp_path / "rep" / png) as im:
            assert im.size[0] > 300
