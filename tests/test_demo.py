"""``sambench demo`` end to end: real LiteMedSAM weights, real MNI152 data, the full report."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from sambench.demo.run import DemoConfig, demo_configs, interactive_summary, run_demo
from sambench.report.build import SECTION_FAILED
from sambench.report.html import esc
from sambench.report.sections import SECTION_TITLES
from sambench.store.run_files import load_all


def test_demo_configs_cover_every_protocol(tmp_path: Path) -> None:
    cfgs = demo_configs(tmp_path / "p", tmp_path, DemoConfig())
    assert list(cfgs) == ["litemedsam", "grabcut", "random_walker"]
    model = cfgs["litemedsam"]
    assert all(c.model == name for name, c in cfgs.items())
    assert set(model.strategies) == {"S1", "S2", "S3", "S4", "S5", "S6", "interactive"}
    assert all("interactive" in c.strategies and c.max_clicks == 10 for c in cfgs.values())
    assert model.shift and {c.max_images for c in cfgs.values()} == {None}
    assert {c.images for c in cfgs.values()} == {None}  # before prepare: options checked only
    ids = ("MNI152_mni152_90", "6_Pancreas_10_43_0")
    assert {c.images for c in demo_configs(tmp_path, tmp_path, DemoConfig(), ids).values()} == {ids}
    assert model.cache_dir == str(tmp_path / "embeddings") and model.grid == (4,)


@pytest.mark.parametrize("kw", [{"seed_images": 0}, {"max_images": 0}])
def test_demo_refuses_bad_sizes_before_writing(tmp_path: Path, kw: dict[str, int]) -> None:
    from sambench.errors import OptionError

    option = "--" + next(iter(kw)).replace("_", "-")
    with pytest.raises(OptionError, match=f"{option}: expected an integer >= 1, got 0"):
        run_demo(tmp_path / "demo", DemoConfig(progress=False, **kw))  # type: ignore[arg-type]
    assert not (tmp_path / "demo").exists()


def test_interactive_summary_known_values() -> None:
    """Two models, one object each, 5 clicks: IoU reaches 85 at click 2 for 'a', never for 'b'."""
    rows = []
    for model, ious in (("a", [50, 90, 95, 95, 95]), ("b", [10, 20, 30, 40, 50])):
        for k, iou in enumerate(ious, start=1):
            rows.append(
                dict(model=model, strategy="interactive", status="ok", selection="score",
                     dataset="d", case="c", image_id="i", label_value=1, object_name="o", modality="MRI",
                     click_index=k, jaccard=float(iou), dice=float(2 * iou / (100 + iou) * 100))
            )  # fmt: skip
    table = interactive_summary(pd.DataFrame(rows)).set_index("model")
    assert table.loc["a", "NoC@85"] == 2 and table.loc["a", "NoF@85"] == 0
    assert table.loc["b", "NoC@85"] == 5 and table.loc["b", "NoF@85"] == 1
    assert list(table.columns) == ["n_objects", "NoC@85", "NoF@85", "DICE@1", "DICE@5"]
    assert table.loc["b", "DICE@5"] == pytest.approx(200 * 50 / 150)


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sambench.cli import app

    res = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--max-images", "2",
                                   "--seed-images", "6", "--no-progress"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "on 8 slices (3 22_Heart, 3 6_Pancreas, 1 MNI152, 1 MNI152Brain)" in res.output
    assert "litemedsam S5" in res.output and "grabcut S5" in res.output
    assert "random_walker" in res.output and "NoC@85" in res.output
    run = tmp_path / "run-litemedsam"
    results = load_all(run)
    assert set(results["strategy"]) == {"S1", "S2", "S3", "S4", "S5", "S6", "interactive"}
    single = pd.read_parquet(run / "results.parquet")  # S2-S6 only, one selection
    assert set(single["strategy"]) == {"S2", "S3", "S4", "S5", "S6"}
    assert set(single["selection"]) == {"oracle"} and "shift_range" not in single.columns
    assert results.groupby("dataset")["image_id"].nunique().to_dict() == {
        "22_Heart": 3, "6_Pancreas": 3, "MNI152": 1, "MNI152Brain": 1
    }  # fmt: skip
    ok = results[(results["status"] == "ok") & (results["strategy"] == "S5")]
    assert ok["dice"].between(0, 100).all() and ok["dice"].max() > 20  # LiteMedSAM finds tissue
    html = (run / "report" / "report.html").read_text()
    assert SECTION_FAILED not in html
    assert all(f"<h2>{esc(t)}</h2>" in html for t in SECTION_TITLES)
    # the seed patients give the pooled summary a CI by case (heart and pancreas: 3 cases each,
    # resampled within dataset; each MNI152 dataset is one case), a target of 3 cases none
    assert re.search(r"\(95 % CI by case \d+\.\d to \d+\.\d\), \d+ objects in 8 cases", html)
    assert "n = 3 cases: too few" in html
    assert (run / "report" / "tables" / "wilcoxon_models_dice.csv").is_file()
    noc = pd.read_csv(run / "report" / "tables" / "noc_by_model.csv")
    assert set(noc["model"]) == {"litemedsam", "grabcut", "random_walker"}
    # a second demo on the same folder resumes: no row is duplicated
    again = run_demo(tmp_path, DemoConfig(max_images=2, seed_images=6, progress=False))
    assert len(again.model_results) == len(results)
    assert not again.model_results.duplicated(
        ["image_id", "label_value", "strategy", "selection", "shift_range", "shift_repeat",
         "click_index", "grid"]
    ).any()  # fmt: skip
