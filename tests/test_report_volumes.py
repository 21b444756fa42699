"""The report's 3D section from evaluate-3d results (the runner on the shared synthetic volume)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sambench.report.volumes import write_volume_section
from sambench.volumes.evaluate import Run3DConfig, evaluate_3d
from sambench.volumes.types import ProtocolConfig
from threshold_model import ThresholdModel
from volume_data import prepare_synthetic


def test_section_from_a_real_run(tmp_path: Path) -> None:
    prep, _ = prepare_synthetic(tmp_path)
    cfg = Run3DConfig(prepared=str(prep), protocols=("slicewise-gt", "propagate", "interactive-3d"))
    df = evaluate_3d(cfg, tmp_path / "run", model=ThresholdModel())
    inter = df[df["protocol"] == "interactive-3d"]
    assert sorted(set(inter["step"])) == [0, 1, 2, 3, 4, 5]
    assert inter["challenge_dsc_01"].notna().all()
    # the runner's DSC (%) and the challenge's DSC (0..1) are the same number
    np.testing.assert_allclose(inter["dice"] / 100, inter["challenge_dsc_01"], atol=1e-9)
    v2 = pd.DataFrame(
        {"dataset": df["dataset"].iloc[0], "case": df["case"].iloc[0], "label_value": [1],
         "object_name": ["Liver"], "model": [df["model"].iloc[0]], "strategy": ["S5"],
         "selection": ["score"], "n_slices": [5], "volume_dice": [88.0]}
    )  # fmt: skip
    md = write_volume_section(df, tmp_path / "rep", rng=np.random.default_rng(0),
                              volume_dice_2d=v2, n_boot=200)  # fmt: skip
    text = md.read_text()
    for heading in ("Mean per protocol", "Paired tests between protocols", "CVPR 2025",
                    "slicewise-gt vs propagate", "2D volume DICE vs the true 3D DICE"):  # fmt: skip
        assert heading in text
    for png in ("dice_per_volume.png", "dice_nsd_per_step.png", "slicewise_vs_propagate.png"):
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
    assert "<h2>Volumetric (3D) evaluation: DICE and NSD (%), HD95 (mm)</h2>" in html
    assert "<h2>3D run configuration</h2>" in html
    for heading in ("Mean per protocol", "CVPR 2025 interactive 3D",
                    "slicewise-gt vs propagate (what the slice protocol hides)"):  # fmt: skip
        assert heading in html
    assert "could not be built" not in html
    assert "Table 2" not in html  # no 2D section on a 3D run
    assert html.count("data:image/png;base64,") == 3
    for png in ("dice_per_volume.png", "dice_nsd_per_step.png", "slicewise_vs_propagate.png"):
        with Image.open(run / "report" / "figures" / png) as im:
            assert im.size[0] > 300
    # the side-by-side table holds one row per (object, model) with both protocols' final DSC
    side = pd.read_csv(run / "report" / "tables" / "3d_slicewise_vs_propagate.csv")
    final = df[df["protocol"] == "slicewise-gt"]
    assert len(side) == final[["volume_id", "label_value"]].drop_duplicates().shape[0]
    np.testing.assert_allclose(
        np.sort(side["dice_slicewise-gt"].to_numpy()), np.sort(final["dice"].to_numpy()), atol=1e-9
    )
    # the CVPR table's DSC_Final is the last click's DSC
    inter = pd.read_csv(run / "report" / "tables" / "3d_interactive.csv")
    last = df[(df["protocol"] == "interactive-3d") & (df["step"] == df["step"].max())]
    assert inter["DSC_Final"].iloc[0] == pytest.approx(last["dice"].mean() / 100, abs=1e-6)
    # one volume: no zero-width CI and no Wilcoxon p-value, the page says why instead
    assert df["case"].nunique() == 1
    per = pd.read_csv(run / "report" / "tables" / "3d_dice_per_protocol.csv")
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
        assert f", 3D {proto}: DICE " in html
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


def _tiny_3d(n_cases: int) -> pd.DataFrame:
    """One model, slicewise-gt and interactive-3d (box + 2 clicks) on ``n_cases`` volumes."""
    rng = np.random.default_rng(1)
    rows = []
    for v in range(n_cases):
        base = dict(dataset="D", case=f"c{v}", volume_id=f"D_c{v}", label_value=1,
                    object_name="Liver", model="m1", status="ok", empty_prediction=False)  # fmt: skip
        rows.append({**base, "protocol": "slicewise-gt", "step": 0, "dice": 80 + v, "nsd": 90.0})
        for k, d in enumerate(np.sort(rng.uniform(40, 90, 3))):
            rows.append({**base, "protocol": "interactive-3d", "step": k, "dice": d,
                         "nsd": d + 5})  # fmt: skip
    return pd.DataFrame(rows)


def test_per_step_curves_from_a_tiny_3d_table() -> None:
    from matplotlib.collections import PolyCollection

    from sambench.analysis import volumes as av
    from sambench.report.volumes import click_step_figure

    for n, bands in ((6, 1), (3, 0)):
        df = _tiny_3d(n)
        curves = {
            label: av.click_curve(df, metric, rng=np.random.default_rng(0), n_boot=200)
            for label, metric in (("3D DICE (%)", "dice"), ("NSD (%)", "nsd"))
        }
        fig = click_step_figure(curves)
        assert len(fig.axes) == 2
        assert fig.axes[0].get_shared_y_axes().joined(fig.axes[0], fig.axes[1])
        for ax, metric in zip(fig.axes, ("dice", "nsd"), strict=True):
            assert ax.get_ylim() == (0.0, 100.0)
            (line,) = ax.lines
            want = df[df["protocol"] == "interactive-3d"].groupby("step")[metric].mean()
            np.testing.assert_allclose(line.get_ydata(), want.to_numpy())
            n_bands = sum(isinstance(c, PolyCollection) for c in ax.collections)
            assert n_bands == bands
            notes = [t.get_text() for t in ax.texts]
            assert notes == ([] if bands else [f"no band: m1: n = {n} cases: too few"])
            # the note sits above the axes, where it cannot hide a curve near 0
            assert all(t.get_position()[1] > 1.0 for t in ax.texts)


def test_per_volume_points_tell_not_run_skipped_and_no_mask_apart() -> None:
    from matplotlib.collections import PathCollection

    from sambench.report.volumes import per_volume_figure, per_volume_points

    df = _tiny_3d(5)
    two = pd.concat([df, df[df["protocol"] == "slicewise-gt"].assign(model="m2")])
    # m2 gets propagate rows that were all skipped (no prompt); m1 has no propagate rows at all
    skip = df[df["protocol"] == "slicewise-gt"].assign(model="m2", protocol="propagate",
                                                       status="skipped", dice=np.nan)  # fmt: skip
    # volume c0's slicewise-gt prediction of m2 was empty: DICE 0 by convention
    two = pd.concat([two, skip], ignore_index=True)
    hit = (two["model"] == "m2") & (two["protocol"] == "slicewise-gt") & (two["case"] == "c0")
    two.loc[hit, ["dice", "empty_prediction"]] = [0.0, True]
    pts = per_volume_points(two)
    m1sw = pts[(pts["model"] == "m1") & (pts["protocol"] == "slicewise-gt")]
    assert list(m1sw["value"]) == [80.0, 81.0, 82.0, 83.0, 84.0] and (m1sw["objects"] == 1).all()
    m2p = pts[(pts["model"] == "m2") & (pts["protocol"] == "propagate")]
    assert (m2p["objects"] == 0).all() and (m2p["skipped"] == 1).all()
    m1i = pts[(pts["model"] == "m1") & (pts["protocol"] == "interactive-3d")]
    assert len(m1i) == 5  # the final step of each volume
    final = df[(df["protocol"] == "interactive-3d") & (df["step"] == 2)]["dice"].to_numpy()
    np.testing.assert_allclose(m1i["value"], final)
    fig = per_volume_figure(pts)
    (ax,) = fig.axes
    texts = sorted(t.get_text() for t in ax.texts)
    # m1 propagate: no rows = not run; m2 propagate: rows, none ok = skipped;
    # m2 interactive-3d: not run
    assert texts == ["not run", "not run", "skipped"]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "slicewise-gt", "propagate", "interactive-3d"]  # fmt: skip
    hollow = [c for c in ax.collections if isinstance(c, PathCollection)
              and len(c.get_offsets()) and len(c.get_facecolor()) == 0]  # fmt: skip
    assert len(hollow) == 1 and hollow[0].get_offsets()[0][1] == 0.0
    labels = ax.get_legend_handles_labels()[1]
    assert "no mask (empty prediction: 0 by convention)" in labels
    assert ax.get_ylim() == (-5.0, 105.0)


def test_report_of_an_old_3d_run_folder_loads_the_old_column_names(tmp_path: Path) -> None:
    """A results3d.parquet written before the renaming (dsc, challenge_dsc) still reports."""
    from sambench.metrics.columns3d import LEGACY_NAMES
    from sambench.report.build import build_report
    from sambench.volumes.evaluate import load_results_3d, summary_3d

    prep, _ = prepare_synthetic(tmp_path)
    run = tmp_path / "run"
    cfg = Run3DConfig(prepared=str(prep), protocols=("slicewise-gt", "interactive-3d"))
    df = evaluate_3d(cfg, run, model=ThresholdModel())
    old = df.rename(columns={v: k for k, v in LEGACY_NAMES.items()})
    assert "dsc" in old.columns and "challenge_dsc" in old.columns
    old.to_parquet(run / "results3d.parquet")
    pd.testing.assert_frame_equal(load_results_3d(run)[df.columns], df)
    assert summary_3d(old)["dice"].notna().all()
    html = build_report(run, tmp_path / "rep", overlays=False).read_text()
    assert "could not be built" not in html and "CVPR 2025 interactive 3D" in html
    per = pd.read_csv(tmp_path / "rep" / "tables" / "3d_dice_per_protocol.csv")
    want = df[df["protocol"] == "slicewise-gt"]["dice"].mean()
    assert per.set_index("protocol").loc["slicewise-gt", "mean"] == pytest.approx(want)


def test_a_run_resumed_over_parts_of_the_old_version_writes_the_new_names(tmp_path: Path) -> None:
    """evaluate-3d resuming a folder whose parts hold the former names (dsc, challenge_dsc):
    results3d.parquet gets dice / challenge_dsc_01, no old column, no duplicated row."""
    from sambench.metrics.columns3d import LEGACY_NAMES

    prep, _ = prepare_synthetic(tmp_path)
    run = tmp_path / "run"
    cfg = Run3DConfig(prepared=str(prep), protocols=("slicewise-gt", "interactive-3d"))
    df = evaluate_3d(cfg, run, model=ThresholdModel())
    parts = sorted((run / "parts").glob("*.parquet"))
    assert parts
    for p in parts:  # as the former version wrote them
        pd.read_parquet(p).rename(columns={v: k for k, v in LEGACY_NAMES.items()}).to_parquet(p)
    (run / "results3d.parquet").unlink()
    again = evaluate_3d(cfg, run, model=ThresholdModel())
    assert not set(LEGACY_NAMES) & set(again.columns)
    assert len(again) == len(df)
    pd.testing.assert_frame_equal(again[df.columns], df)
    on_disk = pd.read_parquet(run / "results3d.parquet")
    assert "dice" in on_disk.columns and "dsc" not in on_disk.columns


def test_compare_3d_runs_joins_models_on_the_same_volumes(tmp_path: Path) -> None:
    """report --compare-with for evaluate-3d runs (issue 29: 2D-lifted vs native 3D models)."""
    import json

    from sambench.errors import DataError, OptionError
    from sambench.report.build import _join_runs_3d

    def run(name: str, model: str, prepared: str = "/p") -> Path:
        d = tmp_path / name
        d.mkdir()
        (d / "config-3d.json").write_text(json.dumps({"prepared": prepared}))
        pd.DataFrame({"model": [model], "dice": [50.0]}).to_parquet(d / "results3d.parquet")
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


def test_compared_native_runs_each_show_their_licence(tmp_path: Path) -> None:
    """report RUN --compare-with OTHER: the licence line of every native 3D run's weights (from
    each run's config-3d.json), not only the first run's; a 2D run adds none."""
    from sambench.report.build import build_report
    from test_effort_3d import BallModel

    class Licensed(BallModel):
        def __init__(self, name: str, license: str) -> None:
            self.name, self.license = name, license

        def info(self) -> dict[str, str]:
            return {"model": self.name, "package": "pkg 1.0", "license": self.license}

    prep, _ = prepare_synthetic(tmp_path)
    runs = {}
    for name, model in (("two_d", ThresholdModel()), ("a", Licensed("ball_a", "Licence A")),
                        ("b", Licensed("ball_b", "Licence B"))):  # fmt: skip
        cfg = Run3DConfig(prepared=str(prep), model=model.name, protocols=("interactive-3d",),
                          protocol=ProtocolConfig(steps=1))  # fmt: skip
        evaluate_3d(cfg, tmp_path / name, model=model)
        runs[name] = tmp_path / name
    html = build_report(runs["two_d"], compare_with=[runs["a"], runs["b"]], overlays=False)
    html = html.read_text()
    assert "Native 3D model ball_a (pkg 1.0)" in html and "licence Licence A" in html
    assert "Native 3D model ball_b (pkg 1.0)" in html and "licence Licence B" in html
    assert "Native 3D model threshold" not in html


def test_step_seconds_and_effort_seconds_per_interaction() -> None:
    """The per-step seconds tables (interactive-3d: each step's own seconds; effort: cumulative
    seconds per budget) and the effort table's seconds per interaction, against hand sums."""
    from sambench.analysis import volumes as av
    from sambench.report.volumes import volume_parts

    rows = []
    for v, (model, kind, enc) in enumerate([("m2d", "2d", 7), ("m2d", "2d", 5), ("n3d", "3d", 0),
                                            ("n3d", "3d", 0)]):  # fmt: skip
        base = dict(dataset="D", case=f"c{v % 2}", volume_id=f"D_c{v % 2}", label_value=1,
                    object_name="Liver", model=model, model_kind=kind, status="ok",
                    empty_prediction=False, dice=50.0, nsd=60.0, challenge_dsc_01=0.5,
                    challenge_nsd_01=0.6)  # fmt: skip
        secs = [10.0 + v, 1.0, 2.0]  # box (with the encodings), two clicks
        for k, sec in enumerate(secs):
            rows.append({**base, "protocol": "interactive-3d", "step": k, "seconds": sec,
                         "cumulative_seconds": sum(secs[: k + 1]),
                         "encoder_passes": enc if k == 0 else 0})  # fmt: skip
        for b, cum in ((1, 4.0 + v), (3, 9.0 + v)):  # effort: rows at budgets 1 and 3 only
            rows.append({**base, "protocol": "effort", "step": b, "interactions": b,
                         "seconds": 1.0, "cumulative_seconds": cum, "encoder_passes": 0})  # fmt: skip
    df = pd.DataFrame(rows)
    t = av.step_seconds_table(df).set_index("model")
    assert list(t.columns) == ["model_kind", "objects", "encoder_passes", "step 0", "step 1",
                               "step 2"]  # fmt: skip
    assert t.loc["m2d", "step 0"] == 10.5 and t.loc["n3d", "step 0"] == 12.5
    assert t.loc["m2d", "encoder_passes"] == 6.0 and t.loc["n3d", "encoder_passes"] == 0.0
    assert t.loc["m2d", "objects"] == 2 and t.loc["m2d", "model_kind"] == "2d"
    e = av.step_seconds_table(df, "effort", cumulative=True).set_index("model")
    assert e.loc["m2d", "step 1"] == 4.5 and e.loc["n3d", "step 3"] == 11.5
    parts = {p.name: p for p in volume_parts(df, rng=np.random.default_rng(0), n_boot=50)}
    effort = parts["3d_effort"].df.set_index("model")  # type: ignore[union-attr]
    # the model time of all 3 interactions / 3: (9 + 10) / 2 / 3 for m2d, (11 + 12) / 2 / 3
    assert effort.loc["m2d", "seconds_per_interaction"] == pytest.approx(9.5 / 3)
    assert effort.loc["n3d", "seconds_per_interaction"] == pytest.approx(11.5 / 3)
    assert "3d_seconds_per_step" in parts and "3d_seconds_per_budget" in parts
