"""``sambench demo`` end to end: real LiteMedSAM weights, real MNI152 data, the full report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sambench.demo import DemoConfig, demo_configs, run_demo
from sambench.report.build import SECTION_FAILED
from sambench.report.html import esc
from sambench.report.sections import SECTION_TITLES


def test_demo_configs_cover_every_protocol(tmp_path: Path) -> None:
    model, base = demo_configs(tmp_path / "p", tmp_path, DemoConfig())
    assert model.model == "litemedsam" and base.model == "grabcut"
    assert set(model.strategies) == {"S1", "S2", "S3", "S4", "S5", "S6", "interactive"}
    assert model.shift and model.max_images == base.max_images == 16
    assert model.cache_dir == str(tmp_path / "embeddings") and model.grid == (4,)


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sambench.cli import app

    res = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--max-images", "2",
                                   "--no-progress"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "litemedsam S5" in res.output and "grabcut S5" in res.output
    run = tmp_path / "run-litemedsam"
    results = pd.read_parquet(run / "results.parquet")
    assert set(results["strategy"]) == {"S1", "S2", "S3", "S4", "S5", "S6", "interactive"}
    assert results["image_id"].nunique() == 2
    ok = results[(results["status"] == "ok") & (results["strategy"] == "S5")]
    assert ok["dice"].between(0, 100).all() and ok["dice"].max() > 20  # LiteMedSAM finds tissue
    html = (run / "report" / "report.html").read_text()
    assert SECTION_FAILED not in html
    assert all(f"<h2>{esc(t)}</h2>" in html for t in SECTION_TITLES)
    assert (run / "report" / "tables" / "wilcoxon_models_dice.csv").is_file()
    # a second demo on the same folder resumes: no row is duplicated
    again = run_demo(tmp_path, DemoConfig(max_images=2, progress=False))
    assert len(again.model_results) == len(results)
    assert not again.model_results.duplicated(
        ["image_id", "label_value", "strategy", "selection", "shift_range", "shift_repeat",
         "click_index", "grid"]
    ).any()  # fmt: skip
