"""A prepared image's region of interest restricts scoring (prediction and ground truth alike)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from sambench.data.prepare import prepare_dataset
from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate

from fakes import FakeModel


def _dataset(tmp_path: Path, roi: bool) -> Path:
    src = tmp_path / ("with-roi" if roi else "no-roi") / "FOV"
    for folder in ("images", "labels", *(("mask",) if roi else ())):
        (src / folder).mkdir(parents=True)
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (32, 40), dtype=np.uint8)).save(src / "images" / "a.png")
    lab = np.zeros((32, 40), np.uint8)
    lab[4:20, 6:16] = 255  # object: rows 4..19, columns 6..15
    Image.fromarray(lab).save(src / "labels" / "a.png")
    if roi:
        fov = np.zeros((32, 40), np.uint8)
        fov[:, 12:] = 255  # the region of interest cuts the object at column 12
        Image.fromarray(fov).save(src / "mask" / "a_mask.png")
    out = src.parent / "prepared"
    prepare_dataset(src, out, modality="Fundus", progress=False)
    return out


def _s5(tmp_path: Path, prepared: Path, name: str) -> pd.DataFrame:
    cfg = RunConfig(prepared=str(prepared), model="fake", progress=False, strategies=("S5",))  # type: ignore[arg-type]
    evaluate(cfg, tmp_path / name, model=FakeModel())
    return pd.concat(
        [pd.read_parquet(tmp_path / name / f) for f in ("results.parquet", "results_score.parquet")]
    ).set_index("selection")


def test_roi_restricts_the_scored_region(tmp_path: Path) -> None:
    full = _s5(tmp_path, _dataset(tmp_path, roi=False), "run-full")
    cut = _s5(tmp_path, _dataset(tmp_path, roi=True), "run-roi")
    # FakeModel's score candidate is the S5 box (the object itself) shifted right by 3 px:
    # columns 9..18 against the object's 6..15, 16 rows each.
    # whole image: overlap 7 columns of 10 + 10 -> DICE 70 %
    assert np.isclose(full.loc["score", "dice"], 100 * 2 * 7 / 20)
    # inside the ROI (columns >= 12): prediction 12..18 (7), object 12..15 (4), overlap 4
    assert np.isclose(cut.loc["score", "dice"], 100 * 2 * 4 / (7 + 4))
    assert cut.loc["score", "fp"] == 3 * 16 and cut.loc["score", "fn"] == 0
    # the oracle candidate equals the object inside and outside the ROI
    assert full.loc["oracle", "dice"] == cut.loc["oracle", "dice"] == 100.0
