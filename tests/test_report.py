"""The HTML report, its figures, overlays and the comparison with the paper's numbers."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer
from medpy.metric.binary import dc

from sambench.analysis.summary import paper_table
from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate
from sambench.engine.image_work import read_png
from sambench.report import figures as F
from sambench.report import html as H
from sambench.report import overlays as O
from sambench.report import sections as S
from sambench.report.build import SECTION_FAILED, ReportContext, build_report, load_results
from sambench.report.reference import paper_comparison
from sambench.report.reference import paper_table as published

from fakes import FakeModel, make_prepared

STRATEGIES = ("S2", "S3", "S4", "S5", "S6")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A fake-model run with single-round, shift and interactive rows, and its report."""
    root = tmp_path_factory.mktemp("report")
    prepared = make_prepared(root / "prep", n_images=3)
    cfg = RunConfig(
        prepared=str(prepared),
        model="fake",
        progress=False,
        strategies=(*STRATEGIES, "interactive"),
        shift=True,
        shift_repeats=2,
        max_clicks=3,
    )
    results = evaluate(cfg, root / "run", model=FakeModel())
    html_path = build_report(root / "run", model=FakeModel())
    return {
        "root": root,
        "prepared": prepared,
        "results": results,
        "html_path": html_path,
        "html": html_path.read_text(),
    }


# ---------------------------------------------------------------- the whole report


def test_report_has_every_section_and_no_failure(run: dict[str, object]) -> None:
    html = str(run["html"])
    assert Path(str(run["html_path"])).name == "report.html"
    for title in S.SECTION_TITLES:
        assert f"<h2>{H.esc(title)}</h2>" in html, title
    assert SECTION_FAILED not in html
    # self-contained: no external scripts, stylesheets or images
    assert "<link" not in html and "<script" not in html
    assert not re.search(r'src="(?!data:image/png;base64,)', html)


def test_report_embeds_every_figure_as_png(run: dict[str, object]) -> None:
    html = str(run["html"])
    out = Path(str(run["html_path"])).parent
    pngs = sorted(p.stem for p in (out / "figures").glob("*.png"))
    expected = {
        "fig6_mean_ci",
        "fig7_dice_box_by_target",
        "fig10_dice_box_by_modality",
        "fig13_attribute_scatter",
        "fig14_fourier_by_dice_level",
        "fig16_click_curves",
        "hce_by_strategy",
        "shift_drop_bars",
        "fig9_overlay_Box-CT",
        "fig9_overlay_Disc-CT",
    }
    assert expected == set(pngs)
    embedded = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    assert len(embedded) == len(pngs)
    files = {(out / "figures" / f"{p}.png").read_bytes() for p in pngs}
    assert {base64.b64decode(e) for e in embedded} == files
    assert all(f.startswith(PNG_MAGIC) for f in files)


def test_report_tables_written_and_equal_to_analysis(run: dict[str, object]) -> None:
    out = Path(str(run["html_path"])).parent / "tables"
    results = run["results"]
    assert isinstance(results, pd.DataFrame)
    for name in (
        "dice_by_target",
        "hd_by_target",
        "mean_ci_dice",
        "table8_shift_drop",
        "noc_by_model",
        "click_curve",
        "timing_seconds",
        "attribute_correlations",
    ):
        assert (out / f"{name}.csv").is_file(), name
        assert (out / f"{name}.md").is_file(), name
    # the per-model NoC table is shown; the per-target one is folded detail
    html = Path(str(run["html_path"])).read_text()
    inter = html.split('<section id="interactive"', 1)[1].split("</section>", 1)[0]
    assert "<summary>NoC / NoF per model and target-modality" in inter
    assert inter.index("noc_by_model.csv") < inter.index("<details")
    got = pd.read_csv(out / "dice_by_target.csv")
    want = paper_table(S.main_rows(results), "dice")
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    # main rows drop shifted and interactive rows
    main = S.main_rows(results)
    assert set(main["strategy"]) == set(STRATEGIES)
    assert (
        len(main)
        == (results["shift_range"].fillna("none") == "none").sum()
        - (results["strategy"] == "interactive").sum()
    )


def test_report_notes_absent_sections(run: dict[str, object]) -> None:
    html = str(run["html"])
    assert "No everything-mode (S1) rows in this run." in html
    assert "no target-modality of this run matches the paper" in html
    assert "One model only: no test between models." in html
    assert "No slices of volumes" not in html  # fake slices have slice_index >= 0


# ---------------------------------------------------------------- paper comparison


def _synthetic_run(run: dict[str, object], tmp_path: Path, prepared: str) -> Path:
    """A run folder whose Box objects are renamed "aorta"/"ct" (a paper target) and Disc ones to a
    name that needs escaping."""
    results = run["results"]
    assert isinstance(results, pd.DataFrame)
    df = results[(results["strategy"] != "interactive")].copy()
    df = df[df["shift_range"].fillna("none") == "none"]
    df["object_name"] = df["object_name"].map({"Box": "aorta", "Disc": "<Disc&>"})
    df["modality"] = "ct"
    run_dir = tmp_path / "synthetic"
    run_dir.mkdir()
    df.to_parquet(run_dir / "results.parquet", index=False)
    cfg = RunConfig.load(Path(str(run["root"])) / "run")
    d = cfg.to_json_dict()
    d["prepared"] = prepared
    (run_dir / "config.json").write_text(json.dumps(d))
    return run_dir


def test_paper_comparison_matches_case_insensitively(
    run: dict[str, object], tmp_path: Path
) -> None:
    results = run["results"]
    assert isinstance(results, pd.DataFrame)
    df = results[results["strategy"] != "interactive"].copy()
    df = df[df["shift_range"].fillna("none") == "none"]
    df["object_name"] = df["object_name"].map({"Box": "aorta", "Disc": "Unmatched"})
    df["modality"] = "ct"
    comp = paper_comparison(df, "dice")
    assert set(comp["target_modality"]) == {"aorta-ct"}
    paper = published("table2_dice").set_index(["target", "modality"])
    s2 = comp[comp["strategy"] == "S2"].iloc[0]
    assert paper.loc[("Aorta", "CT"), "vit_b_S2"] == pytest.approx(68.71)
    assert s2["paper_vit_b"] == pytest.approx(68.71)
    assert s2["paper_vit_h"] == pytest.approx(70.59)
    ours = df[
        (df["object_name"] == "aorta") & (df["strategy"] == "S2") & (df["selection"] == "oracle")
    ]
    assert s2["mean"] == pytest.approx(ours["dice"].mean())
    assert s2["diff_vit_b"] == pytest.approx(ours["dice"].mean() - 68.71)
    hd = paper_comparison(df, "hd")
    assert hd.loc[hd["strategy"] == "S5", "paper_vit_b"].iloc[0] == pytest.approx(7.50)
    df["object_name"] = "Box"
    assert paper_comparison(df, "dice").empty
    with pytest.raises(ValueError, match="dice"):
        paper_comparison(df, "nsd")


def test_synthetic_report_shows_paper_numbers_and_escapes(
    run: dict[str, object], tmp_path: Path
) -> None:
    run_dir = _synthetic_run(run, tmp_path, str(tmp_path / "missing-prepared"))
    html = build_report(run_dir, overlays=False).read_text()
    # Aorta-CT, ViT-B, S2 from paper Table 2 (68.71): DICE shown with one decimal on the page,
    # the long-form CSV keeps the paper's two
    assert '<td class="paper">68.7</td>' in html or ">68.7<" in html
    long = (run_dir / "report" / "tables" / "paper_side_by_side_dice.csv").read_text()
    assert "68.71" in long
    assert "<Disc&>" not in html and "&lt;Disc&amp;&gt;-ct" in html
    assert "missing-prepared not found: attributes skipped." in html
    assert "Overlays were not requested." in html
    assert SECTION_FAILED not in html
    assert (run_dir / "report" / "tables" / "paper_comparison_dice.csv").is_file()


def test_paper_tables_load() -> None:
    t2 = published("table2_dice")
    assert list(t2.columns[:3]) == ["target", "modality", "vit_b_S1"]
    assert published("table8_shift")["S2"].iloc[0] == pytest.approx(2.67)
    with pytest.raises(ValueError, match="table2_dice"):
        published("table99")


def test_load_results_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"results\.parquet"):
        load_results(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_report(tmp_path / "nope")


# ---------------------------------------------------------------- overlays


def test_overlay_cases_are_best_and_worst(run: dict[str, object]) -> None:
    results = run["results"]
    assert isinstance(results, pd.DataFrame)
    cases = O.select_cases(results)
    assert len(cases) == 2 * 2 * len(STRATEGIES)  # 2 targets x 5 strategies x best/worst
    main = S.main_rows(results)
    ok = main[(main["status"] == "ok") & (main["selection"] == "oracle")]
    for c in cases:
        g = ok[(ok["object_name"] == c.row["object_name"]) & (ok["strategy"] == c.row["strategy"])]
        want = g["dice"].max() if c.kind == "best" else g["dice"].min()
        assert c.row["dice"] == pytest.approx(want)
    # the image budget keeps whole targets, at least one
    few = O.select_cases(results, max_images=1)
    assert {c.row["object_name"] for c in few} == {"Box"}


def test_overlay_masks_reproduce_the_stored_dice(run: dict[str, object]) -> None:
    results = run["results"]
    prepared = Path(str(run["prepared"]))
    assert isinstance(results, pd.DataFrame)
    cases = O.select_cases(results)[:6]
    masks = O.predict_masks(cases, FakeModel(), prepared)
    for c, m in zip(cases, masks, strict=True):
        label = read_png(prepared / str(c.row["label_path"]))
        gt = label == int(c.row["label_value"])
        assert m.shape == gt.shape and m.dtype == bool
        assert 100 * dc(m, gt) == pytest.approx(float(c.row["dice"]), abs=1e-6)


def test_overlay_draws_prompts() -> None:
    image = np.zeros((20, 30), np.uint8)
    gt = np.zeros((20, 30), bool)
    gt[5:10, 5:12] = True
    pred = np.roll(gt, 2, axis=1)
    prompts = O.prompts_from_json(
        '{"points":[[6,6],[20,15],[21,16]],"labels":[1,0,0],"box":[5,5,11,9]}'
    )
    fig = F.Figure()
    ax = fig.add_subplot()
    O.draw_case(ax, image, gt, pred, prompts, "t")
    from matplotlib.collections import PathCollection
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Rectangle

    stars = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(stars) == 2  # one positive, one negative series
    pos, neg = stars
    np.testing.assert_array_equal(np.asarray(pos.get_offsets()), [[6, 6]])
    np.testing.assert_array_equal(np.asarray(neg.get_offsets()), [[20, 15], [21, 16]])
    assert tuple(pos.get_facecolors()[0]) == to_rgba("lime")
    assert tuple(neg.get_facecolors()[0]) == to_rgba("blue")
    assert len(ax.patches) == 1  # the box
    rect = ax.patches[0]
    assert isinstance(rect, Rectangle)
    assert rect.get_xy() == (4.5, 4.5)  # pixel edges of the inclusive XYXY box
    assert rect.get_width() == 7 and rect.get_height() == 5  # inclusive XYXY


def test_overlay_section_notes_unbuildable_model(run: dict[str, object], tmp_path: Path) -> None:
    results = run["results"]
    assert isinstance(results, pd.DataFrame)
    cfg = RunConfig(prepared=str(run["prepared"]), model="sam_vit_b")  # no checkpoint given
    ctx = ReportContext(
        run_dir=tmp_path,
        out=tmp_path,
        results=results,
        config=cfg,
        prepared=Path(str(run["prepared"])),
        rng=np.random.default_rng(0),
    )
    sec = H.Section("overlays", "x")
    S.overlays(ctx, sec)
    text = "".join(sec.parts)
    assert "could not be built" in text and "overlays skipped" in text
    assert "data:image/png" not in text


# ---------------------------------------------------------------- figures on known inputs


def test_dice_level_binning() -> None:
    got = F.dice_level(np.array([0.0, 0.5, 10.0, 10.01, 20.0, 95.0, 100.0, np.nan]))
    np.testing.assert_array_equal(got[:-1], [1, 1, 1, 2, 2, 10, 10])
    assert np.isnan(got[-1])
    with pytest.raises(ValueError, match="dice"):
        F.dice_level(np.array([101.0]))
    with pytest.raises(ValueError, match="dice"):
        F.dice_level(-1.0)


def _ci(models: list[str], strategies: list[str]) -> pd.DataFrame:
    rows = []
    for i, m in enumerate(models):
        for j, s in enumerate(strategies):
            mean = 10.0 * (i + 1) + j
            rows.append(
                {
                    "model": m,
                    "strategy": s,
                    "n": 5,
                    "mean": mean,
                    "ci_lo": mean - 1,
                    "ci_hi": mean + 2,
                }
            )
    return pd.DataFrame(rows)


def test_mean_ci_figure_bars_and_errors() -> None:
    ci = _ci(["a", "b"], ["S5", "S2", "S3"])
    fig = F.mean_ci_figure(ci, ci)
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == 2 and all(len(b) == 3 for b in bars)
    # strategies in S2, S3, S5 order; model a's heights are 10, 11, 12 for S2, S3, S5 (rows j=1, 2, 0)
    assert [r.get_height() for r in bars[0]] == [11.0, 12.0, 10.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["S2", "S3", "S5"]
    # asymmetric error bars from ci_lo to ci_hi (mean - 1, mean + 2)
    assert bars[0].errorbar is not None
    segs = bars[0].errorbar.lines[2][0].get_segments()
    spans = [(float(seg[0][1]), float(seg[1][1])) for seg in segs]
    assert spans == [(10.0, 13.0), (11.0, 14.0), (9.0, 12.0)]
    assert F.figure_png(fig).startswith(PNG_MAGIC)


def test_box_by_group_counts_boxes() -> None:
    rows = []
    for m in ("a", "b"):
        for g in ("X-CT", "Y-MR"):
            for s in ("S2", "S5"):
                for v in (10.0, 50.0, 90.0):
                    rows.append({"model": m, "target_modality": g, "strategy": s, "dice": v})
    df = pd.DataFrame(rows)
    df = df[~((df["model"] == "b") & (df["strategy"] == "S5") & (df["target_modality"] == "Y-MR"))]
    fig = F.box_by_group(df, "target_modality")
    assert len(fig.axes) == 2
    n_boxes = [sum(1 for p in ax.patches) for ax in fig.axes]
    assert n_boxes == [4, 3]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["X-CT", "Y-MR"]


def test_fourier_by_dice_level_positions() -> None:
    df = pd.DataFrame(
        {
            "model": "a",
            "dice": [0.0, 10.0, 10.01, 95.0, 99.0],
            "fourier_order": [5.0, 6.0, 7.0, 1.0, 2.0],
        }
    )
    fig = F.fourier_by_dice_level(df)
    ax = fig.axes[0]
    medians = ax.lines  # boxplot draws whiskers, caps, median, fliers per box
    xs = sorted(
        {round(float(np.mean(ln.get_xdata())), 3) for ln in medians if len(ln.get_xdata()) == 2}
    )
    assert xs == [1.0, 2.0, 10.0]  # DICE 0 and 10 in level 1, 10.01 in level 2, 95 and 99 in 10


def test_click_grid_shift_figures() -> None:
    curve = pd.DataFrame(
        {
            "model": ["m1"] * 3 + ["rw"] * 3,
            "click_index": [1, 2, 3] * 2,
            "dice": [50, 60, 70, 40, 45, 50],
            "jaccard": [30, 40, 50, 20, 25, 30],
        }
    )
    fig = F.click_curves(curve)
    assert len(fig.axes) == 2
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_ydata(), [50, 60, 70])

    grid = pd.DataFrame(
        {
            "model": "m",
            "target_modality": ["A-CT"] * 3 + ["B-MR"] * 3,
            "grid": [8, 16, 32] * 2,
            "mean": [10, 20, 30, 5, 6, 7],
        }
    )
    gfig = F.grid_curve(grid)
    assert len(gfig.axes[0].lines) == 2

    long = pd.DataFrame(
        {
            "model": "m",
            "strategy": ["S2", "S2", "S5", "S5"] * 2,
            "shift_range": ["0-10", "10-20"] * 4,
            "shift_repeat": [1] * 4 + [2] * 4,
            "drop": [1.0, 3.0, 2.0, 4.0, 3.0, 5.0, 2.0, 6.0],
        }
    )
    sfig = F.shift_bars(long)
    bars = [c for c in sfig.axes[0].containers if isinstance(c, BarContainer)]
    assert len(bars) == 2  # one per shift range
    # range 0-10: S2 mean of (1, 3) = 2, S5 mean of (2, 2) = 2; range 10-20: S2 4, S5 5
    assert [r.get_height() for r in bars[0]] == [2.0, 2.0]
    assert [r.get_height() for r in bars[1]] == [4.0, 5.0]


def test_table_html_escapes_and_formats() -> None:
    df = pd.DataFrame({"name<": ["<script>x</script>", "a&b"], "v": [1.23456, float("nan")]})
    out = H.table_html(df, ".3g")
    assert "<script>" not in out and "&lt;script&gt;" in out and "a&amp;b" in out
    assert "name&lt;" in out and ">1.23<" in out
    assert H.image_html(b"\x89PNG", 'a "cap"').count("&quot;cap&quot;") == 2


def test_report_folder_can_be_moved(run: dict[str, object], tmp_path: Path) -> None:
    """The page has no file references: a copy elsewhere still holds every image."""
    src = Path(str(run["html_path"]))
    dst = tmp_path / "copy.html"
    shutil.copy(src, dst)
    assert dst.read_text().count("data:image/png;base64,") == len(
        list((src.parent / "figures").glob("*.png"))
    )


# ---------------------------------------------------------------- several runs, CLI


def test_report_compare_with_a_baseline_run(run: dict[str, object], tmp_path: Path) -> None:
    """A GrabCut run on the same slices joins every table; paired model tests appear; overlays
    are drawn for the main run's model only; a model reported twice is refused."""
    root = Path(str(run["root"]))
    base_dir = root / "run-grabcut"
    if not (base_dir / "results.parquet").exists():
        cfg = RunConfig(
            prepared=str(run["prepared"]), model="grabcut", strategies=("S5",), progress=False
        )
        evaluate(cfg, base_dir)
    html_path = build_report(
        root / "run", tmp_path / "rep", model=FakeModel(), compare_with=(base_dir,)
    )
    html = html_path.read_text()
    assert SECTION_FAILED not in html
    tables = tmp_path / "rep" / "tables"
    dice = pd.read_csv(tables / "dice_by_target.csv")
    assert {"fake S5", "grabcut S5", "fake S2"} <= set(dice.columns)
    wil = pd.read_csv(tables / "wilcoxon_models_dice.csv")
    assert list(wil["strategy"]) == ["S5"]  # strategies of one model only are not tested
    assert "run by one model only): not tested" in html
    s5 = wil.iloc[0]
    n_objects = pd.read_parquet(base_dir / "results.parquet")[["image_id", "label_value"]]
    # n counts cases (3 toy volumes), n_objects the matched objects; 3 cases: no test
    assert s5["n_objects"] == len(n_objects.drop_duplicates()) and s5["n"] == 3
    assert np.isnan(s5["p_value"]) and s5["test_note"] == "n = 3 cases: too few"
    assert "n = 3 cases: too few" in html and "paired on case means" in html
    assert {s5["a"], s5["b"]} == {"fake", "grabcut"}
    assert "re-decoded with fake" in html  # the overlays' model is the main run's
    with pytest.raises(ValueError, match="already reported"):
        build_report(root / "run", tmp_path / "rep2", compare_with=(root / "run",))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_report(root / "run", tmp_path / "rep3", compare_with=(tmp_path / "nope",))


def test_cli_evaluate_then_report(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sambench.cli import app

    prepared = make_prepared(tmp_path / "prep", n_images=2)
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["evaluate", str(prepared), "--out", str(tmp_path / "gc"), "--model", "grabcut",
         "--strategies", "S3,S5", "--no-progress"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "16 rows" in res.output and "| Box-CT" in res.output
    res = runner.invoke(app, ["report", str(tmp_path / "gc"), "--no-overlays"])
    assert res.exit_code == 0, res.output
    html = tmp_path / "gc" / "report" / "report.html"
    assert str(html) in res.output and SECTION_FAILED not in html.read_text()
    bad = runner.invoke(app, ["evaluate", str(prepared), "--out", str(tmp_path / "x"),
                              "--strategies", "S9", "--model", "grabcut"])  # fmt: skip
    assert bad.exit_code != 0 and "S9" in str(bad.exception)


# ---------------------------------------------------------------- input checks (issue 28)


def _copy_run(run: dict[str, object], dst: Path) -> Path:
    """The module's run folder (no report) copied to ``dst``, to be damaged."""
    shutil.copytree(Path(str(run["root"])) / "run", dst, ignore=shutil.ignore_patterns("report"))
    return dst


def test_report_refuses_an_unfinished_run(
    run: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Parts of a killed run (config.json, no results files, no prompts.jsonl) are not final:
    refused like an unfinished evaluate-3d run, naming the folder; nothing is written."""
    from sambench.cli import main
    from sambench.errors import DataError
    from sambench.store.run_files import PROMPTS_NAME, TABLE_NAMES

    bad = _copy_run(run, tmp_path / "run")
    for name in (*TABLE_NAMES, PROMPTS_NAME):
        (bad / name).unlink(missing_ok=True)
    with pytest.raises(DataError, match=r"run has not finished.*again to resume it") as e:
        build_report(bad, model=FakeModel())
    assert Path(e.value.path) == bad and not (bad / "report").exists()
    assert main(["report", str(bad), "--no-overlays"]) == 2
    err = capsys.readouterr().err
    assert "has not finished" in err and "--no-single-file" not in err
    assert not (bad / "report").exists()


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("repeat", r"results\.parquet: \d+ row\(s\) repeat the key of an earlier row"),
        ("no_dice", r"results\.parquet: not a sambench results table: lacks the columns dice"),
        ("no_strategy", r"lacks the columns strategy"),
        ("text_dice", r"results\.parquet: column 'dice' holds .* expected numbers"),
        ("number_model", r"results\.parquet: column 'model' holds .* expected text"),
    ],
)
def test_report_refuses_damaged_results(
    run: dict[str, object], tmp_path: Path, damage: str, match: str
) -> None:
    """Repeated rows (n doubled, CIs narrowed), a missing column, text in a metric column: a
    DataError naming the file, before the report folder is made."""
    from sambench.errors import DataError

    bad = _copy_run(run, tmp_path / "run")
    df = pd.read_parquet(bad / "results.parquet")
    if damage == "repeat":
        df = pd.concat([df, df.iloc[:3]], ignore_index=True)
    elif damage == "no_dice":
        df = df.drop(columns=["dice"])
    elif damage == "no_strategy":
        df = df.drop(columns=["strategy"])
    elif damage == "text_dice":
        df["dice"] = df["dice"].astype(str)
    else:
        df["model"] = 7
    df.to_parquet(bad / "results.parquet")
    with pytest.raises(DataError, match=match):
        build_report(bad, model=FakeModel())
    assert not (bad / "report").exists()


def test_report_refuses_a_3d_run_to_compare_with(run: dict[str, object], tmp_path: Path) -> None:
    from sambench.errors import DataError

    three_d = tmp_path / "run3d"
    three_d.mkdir()
    (three_d / "config-3d.json").write_text("{}")
    pd.DataFrame({"model": ["m"], "dsc": [50.0]}).to_parquet(three_d / "results3d.parquet")
    with pytest.raises(DataError, match=r"run3d: an `evaluate-3d` run folder: --compare-with"):
        build_report(Path(str(run["root"])) / "run", tmp_path / "rep", compare_with=(three_d,))
    assert not (tmp_path / "rep").exists()


def test_report_ci_unit_case_by_default_object_on_request(
    run: dict[str, object], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from sambench.cli import app

    root = Path(str(run["root"]))
    by_case = pd.read_csv(Path(str(run["html_path"])).parent / "tables" / "mean_ci_dice.csv")
    # 3 toy volumes: by case no CI, each row says why; the caption names the unit
    assert (by_case["n_cases"] == 3).all() and by_case["ci_lo"].isna().all()
    assert (by_case["ci_note"] == "n = 3 cases: too few").all()
    html = str(run["html"])
    assert "Mean DICE (%), 95 % CI by case (cluster bootstrap" in html
    assert "n = 3 cases: too few" in html
    # by object (for comparison): the former object-level bootstrap, CIs wherever >= 5 objects
    page = build_report(root / "run", tmp_path / "obj", overlays=False, ci_unit="object")
    by_obj = pd.read_csv(tmp_path / "obj" / "tables" / "mean_ci_dice.csv")
    assert "Mean DICE (%), 95 % CI by object (objects treated as independent" in page.read_text()
    shown = by_obj["n"] >= 5
    assert shown.any() and by_obj.loc[shown, "ci_lo"].notna().all()
    assert (by_obj.loc[shown, "ci_lo"] <= by_obj.loc[shown, "mean"]).all()
    pd.testing.assert_series_equal(by_obj["mean"], by_case["mean"])
    res = CliRunner().invoke(app, ["report", str(root / "run"), "--ci-unit", "slice"])
    assert res.exit_code != 0 and "--ci-unit" in res.output + str(res.exception)
