"""The report's 3D section from evaluate-3d results (the runner on the shared synthetic volume)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
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


def test_report_of_an_evaluate_3d_run_has_the_3d_section(tmp_path: Path) -> None:
    """`sambench report RUN` on an evaluate-3d run folder (results3d.parquet only)."""
    from typer.testing import CliRunner

    from sambench.cli import app
    from sambench.report.volumes import CONFIG_3D_NAME, RESULTS3D_NAME
    from sambench.volumes import evaluate as ev

    assert (CONFIG_3D_NAME, RESULTS3D_NAME) == (ev.CONFIG_NAME, ev.RESULTS3D_NAME)
    prep, _ = prepare_synthetic(tmp_path)
    run = tmp_path / "run"
    cfg = Run3DConfig(prepared=str(prep), protocols=("slicewise-gt", "propagate", "interactive-3d"))
    df = evaluate_3d(cfg, run, model=ThresholdModel())
    assert not (run / "results.parquet").exists()
    res = CliRunner().invoke(app, ["report", str(run), "--no-overlays"])
    assert res.exit_code == 0, res.output
    html = (run / "report" / "report.html").read_text()
    assert "<h2>Volumetric (3D) evaluation: DSC, NSD (mm), HD95 (mm)</h2>" in html
    assert "<h2>3D run configuration</h2>" in html
    for heading in ("Mean per protocol", "CVPR 2025 interactive 3D",
                    "slicewise-gt vs propagate (what the slice protocol hides)"):  # fmt: skip
        assert heading in html
    assert "could not be built" not in html
    assert "Table 2" not in html  # no 2D section on a 3D run
    assert html.count("data:image/png;base64,") == 2
    for png in ("dsc_per_click.png", "slicewise_vs_propagate.png"):
        with Image.open(run / "report" / "figures" / png) as im:
            assert im.size[0] > 300
    # the side-by-side table holds one row per (object, model) with both protocols' final DSC
    side = pd.read_csv(run / "report" / "tables" / "3d_slicewise_vs_propagate.csv")
    final = df[df["protocol"] == "slicewise-gt"]
    assert len(side) == final[["volume_id", "label_value"]].drop_duplicates().shape[0]
    np.testing.assert_allclose(
        np.sort(side["dsc_slicewise-gt"].to_numpy()), np.sort(final["dsc"].to_numpy()), atol=1e-9
    )
    # the CVPR table's DSC_Final is the last click's DSC
    inter = pd.read_csv(run / "report" / "tables" / "3d_interactive.csv")
    last = df[(df["protocol"] == "interactive-3d") & (df["step"] == df["step"].max())]
    assert inter["DSC_Final"].iloc[0] == pytest.approx(last["dsc"].mean() / 100, abs=1e-6)
    # one volume: no zero-width CI and no Wilcoxon p-value, the page says why instead
    assert df["case"].nunique() == 1
    per = pd.read_csv(run / "report" / "tables" / "3d_dsc_per_protocol.csv")
    assert per["ci_lo"].isna().all() and per["ci_hi"].isna().all()
    assert (per["ci_note"] == "n = 1 case: too few").all()
    tests = pd.read_csv(run / "report" / "tables" / "3d_tests_protocols.csv")
    assert tests["p_value"].isna().all() and (tests["test_note"] == "n = 1 case: too few").all()
    assert html.count("n = 1 case: too few") >= len(per) + len(tests)
    assert "95 % CI by case (cluster bootstrap over cases within dataset" in html
    assert "paired on case means" in html
    # the 3D run's claims lead the section: each protocol's final DSC, "no CI" said with why
    assert "<h3>Summary</h3>" in html
    for proto in ("slicewise-gt", "propagate", "interactive-3d"):
        assert f", 3D {proto}: DSC " in html
    assert "(no CI: n = 1 case: too few)" in html


def test_report_without_any_results_is_still_an_error(tmp_path: Path) -> None:
    from sambench.report.build import build_report

    (tmp_path / "run").mkdir()
    with pytest.raises(FileNotFoundError, match=r"results\.parquet"):
        build_report(tmp_path / "run")


def test_report_of_an_unfinished_evaluate_3d_run_says_so(tmp_path: Path) -> None:
    from sambench.errors import DataError
    from sambench.report.build import build_report

    run = tmp_path / "run"
    (run / "parts").mkdir(parents=True)
    (run / "config-3d.json").write_text("{}")
    with pytest.raises(DataError, match=r"results3d\.parquet.*has not finished"):
        build_report(run)


def test_compare_3d_runs_joins_models_on_the_same_volumes(tmp_path: Path) -> None:
    """report --compare-with for evaluate-3d runs (issue 29: 2D-lifted vs native 3D models)."""
    import json

    from sambench.errors import DataError, OptionError
    from sambench.report.build import _join_runs_3d

    def run(name: str, model: str, prepared: str = "/p") -> Path:
        d = tmp_path / name
        d.mkdir()
        (d / "config-3d.json").write_text(json.dumps({"prepared": prepared}))
        pd.DataFrame({"model": [model], "dsc": [50.0]}).to_parquet(d / "results3d.parquet")
        return d

    a, b = run("a", "nninteractive"), run("b", "litemedsam")
    joined = _join_runs_3d(a, pd.read_parquet(a / "results3d.parquet"), [b])
    assert sorted(joined["model"]) == ["litemedsam", "nninteractive"]
    with pytest.raises(OptionError, match="one model per run"):
        _join_runs_3d(a, pd.read_parquet(a / "results3d.parquet"), [run("c", "nninteractive")])
    with pytest.raises(OptionError, match="same volumes"):
        _join_runs_3d(a, pd.read_parquet(a / "results3d.parquet"), [run("d", "x", "/q")])
    (tmp_path / "e").mkdir()
    with pytest.raises(DataError, match="evaluate-3d"):
        _join_runs_3d(a, pd.read_parquet(a / "results3d.parquet"), [tmp_path / "e"])
