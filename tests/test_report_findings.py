"""The report's leading summary, the side-by-side paper tables, name aliases, blank-cell reasons,
CSV links, distance medians, figure dpi and the colour-blind-safe palette."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from PIL import Image

from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate
from sambench.errors import DataError
from sambench.report import figures as F
from sambench.report import findings as FI
from sambench.report import html as H
from sambench.report import sections as S
from sambench.report.aliases import AliasTable, norm
from sambench.report.build import SECTION_FAILED, build_report
from sambench.report.reference import paper_table as published

from fakes import FakeModel, make_prepared

OKABE_ITO = {
    "#e69f00",
    "#56b4e9",
    "#009e73",
    "#f0e442",
    "#0072b2",
    "#d55e00",
    "#cc79a7",
    "#000000",
}


def _rows(
    model: str,
    strategy: str,
    dice: list[float],
    *,
    target: str = "Aorta",
    modality: str = "CT",
    status: str = "ok",
    hd: list[float] | None = None,
    empty: list[bool] | None = None,
    **extra: object,
) -> list[dict[str, object]]:
    """Synthetic result rows (both selections) for objects 0..len(dice)-1."""
    out = []
    for i, d in enumerate(dice):
        for sel in ("oracle", "score"):
            out.append(
                {
                    "dataset": "ds",
                    "image_id": f"img{i}",
                    "label_value": 1,
                    "object_name": target,
                    "modality": modality,
                    "model": model,
                    "strategy": strategy,
                    "selection": sel,
                    "status": status,
                    "skip_reason": "" if status == "ok" else "prompt: too small",
                    "dice": d if status == "ok" else np.nan,
                    "hd": (hd[i] if hd else 10.0) if status == "ok" else np.nan,
                    "hd95": (hd[i] if hd else 10.0) if status == "ok" else np.nan,
                    "empty_prediction": bool(empty[i]) if empty else False,
                    **extra,
                }
            )
    return out


# ---------------------------------------------------------------- aliases


def test_default_aliases_match_the_papers_names() -> None:
    a = AliasTable.default()
    assert a.resolve("WholeBrain", "MRI").label == "Brain-T1W MRI"  # type: ignore[union-attr]
    # normalisation alone: case, spaces, punctuation
    assert a.resolve("LeftVentricularMyocardium", "ct").label == "Left Ventricular Myocardium-CT"  # type: ignore[union-attr]
    assert a.resolve("gall_bladder", "MRI").label == "Gall Bladder-MRI"  # type: ignore[union-attr]
    # a modality alias is only used where the exact modality has no paper row
    assert a.resolve("Prostate", "MRI").label == "Prostate-MRI"  # type: ignore[union-attr]
    assert a.resolve("LeftVentricle", "MRI").label == "Left Ventricle-Cine-MRI"  # type: ignore[union-attr]
    assert a.resolve("RightVentricle", "MRI").label == "Right Ventricle-CMR"  # type: ignore[union-attr]
    assert a.resolve("Myocardium", "CT").label == "Left Ventricular Myocardium-CT"  # type: ignore[union-attr]
    assert a.resolve("LeftVentricularMyocardium", "MRI") is None
    assert a.paper_modalities("LeftVentricularMyocardium") == ["CT"]
    assert a.resolve("GreyMatter", "MRI") is None and a.paper_modalities("GreyMatter") == []
    # every default alias points at a real paper name
    t2 = published("table2_dice")
    names = {norm(x) for x in (*t2["target"], *t2["modality"])}
    for v in (*a.targets.values(), *a.modalities.values()):
        assert all(norm(x) in names for x in v)


def test_user_alias_files_csv_and_yaml(tmp_path: Path) -> None:
    csv = tmp_path / "aliases.csv"
    csv.write_text(
        "ours,paper\nBox,Aorta\nMRI,T2W MRI\nDisc-CT,Left Ventricle-Cine-MRI\nGreyMatter,Brain\n"
    )
    a = AliasTable.with_file(csv)
    assert a.resolve("Box", "CT").label == "Aorta-CT"  # type: ignore[union-attr]
    # the user's modality row is tried before the defaults' MRI -> T1W MRI
    assert a.resolve("Brain Tumor", "MRI").label == "Brain Tumor-T2W MRI"  # type: ignore[union-attr]
    assert AliasTable.default().resolve("Brain Tumor", "MRI").label == "Brain Tumor-T1W MRI"  # type: ignore[union-attr]
    # the defaults still apply after the user's rows
    assert a.resolve("WholeBrain", "MRI").label == "Brain-T1W MRI"  # type: ignore[union-attr]
    # a target-modality alias
    assert a.resolve("Disc", "CT").label == "Left Ventricle-Cine-MRI"  # type: ignore[union-attr]
    assert a.sources == [str(csv), "defaults"]
    yml = tmp_path / "aliases.yaml"
    yml.write_text("Box: Aorta\nBlob: [Liver]\n")
    b = AliasTable.with_file(yml)
    assert b.resolve("Box", "CT").label == "Aorta-CT"  # type: ignore[union-attr]
    assert b.resolve("Blob", "MRI").label == "Liver-MRI"  # type: ignore[union-attr]
    listed = tmp_path / "list.yml"
    listed.write_text("- {ours: Box, paper: Spleen}\n")
    assert AliasTable.with_file(listed).resolve("Box", "CT").label == "Spleen-CT"  # type: ignore[union-attr]


def test_bad_alias_files_name_the_file_and_row(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("ours,paper\nBox,Aorta\nBox,Nonsense Organ\n")
    with pytest.raises(DataError, match=r"bad\.csv: row 3: 'Nonsense Organ' is not a target"):
        AliasTable.with_file(bad)
    header = tmp_path / "header.csv"
    header.write_text("a,b\nBox,Aorta\n")
    with pytest.raises(DataError, match="ours,paper"):
        AliasTable.with_file(header)
    with pytest.raises(DataError, match="cannot be read"):
        AliasTable.with_file(tmp_path / "missing.csv")
    yml = tmp_path / "bad.yaml"
    yml.write_text("just a string\n")
    with pytest.raises(DataError, match=r"bad\.yaml: expected a mapping"):
        AliasTable.with_file(yml)


# ---------------------------------------------------------------- tables and blank cells


def _two_model_results() -> pd.DataFrame:
    rows = []
    rows += _rows("a", "S2", [10.0, 20.0, 30.0])
    rows += _rows("a", "S5", [80.0, 90.0, 100.0], hd=[1.0, 2.0, 300.0], empty=[0, 0, 1])  # type: ignore[list-item]
    rows += _rows("b", "S5", [50.0, 60.0, 70.0])
    rows += _rows("b", "S2", [0.0, 0.0, 0.0], status="skipped")
    rows += _rows("a", "S5", [40.0, 60.0], target="LeftVentricularMyocardium", modality="MRI")
    rows += _rows("a", "S5", [40.0, 60.0], target="Thing", modality="MRI")
    return pd.DataFrame(rows)


def test_side_by_side_puts_models_and_paper_adjacent_and_explains_blanks() -> None:
    df = _two_model_results()
    t = FI.side_by_side(df, "dice", AliasTable.default()).set_index("target-modality")
    assert list(t.columns) == [
        "paper row",
        "S2 a",
        "S2 b",
        "S2 paper ViT-B",
        "S2 paper ViT-H",
        "S5 a",
        "S5 b",
        "S5 paper ViT-B",
        "S5 paper ViT-H",
    ]
    aorta = t.loc["Aorta-CT"]
    assert aorta["paper row"] == "Aorta-CT"
    assert aorta["S2 a"] == "20.00" and aorta["S5 b"] == "60.00"
    assert aorta["S2 b"] == "n = 0 (3 skipped)"
    assert aorta["S5 paper ViT-B"] == "86.88" and aorta["S2 paper ViT-H"] == "70.59"
    myo = t.loc["LeftVentricularMyocardium-MRI"]
    assert myo["S5 b"] == "not run" and myo["S5 a"] == "50.00"
    assert myo["paper row"] == "paper: CT only" and myo["S5 paper ViT-B"] == "paper: CT only"
    assert t.loc["Thing-MRI", "S5 paper ViT-H"] == "no paper row"
    hd = FI.side_by_side(df, "hd", AliasTable.default()).set_index("target-modality")
    assert hd.loc["Aorta-CT", "S5 paper ViT-B"] == "7.50"


def test_table_html_blank_cells_say_why() -> None:
    df = pd.DataFrame({"x": ["a", "b"], "v": [1.5, float("nan")], "s": ["", "z"]})
    out = H.table_html(df, blank="n = 0")
    assert out.count('<td class="blank">n = 0</td>') == 2
    assert out.startswith('<div class="scroll">')
    wide = pd.DataFrame({"target_modality": ["Aorta-CT"], "a S2": ["20.00 (10.00)"], "b S2": [""]})
    got = S.explain_blanks(wide, _two_model_results(), "dice", "target_modality", "oracle")
    assert got.loc[0, "b S2"] == "n = 0 (3 skipped)"


def test_distance_summary_has_medians_and_empty_share() -> None:
    d = FI.distance_summary(_two_model_results()).set_index(["model", "strategy"])
    a5 = d.loc[("a", "S5")]
    # a S5: Aorta hd 1, 2, 300 (one empty) + 4 other objects with hd 10
    hd = np.array([1.0, 2.0, 300.0, 10.0, 10.0, 10.0, 10.0])
    assert a5["n"] == 7
    assert a5["hd mean"] == pytest.approx(hd.mean())
    assert a5["hd median"] == pytest.approx(np.median(hd))
    assert a5["empty"] == 1 and a5["empty %"] == pytest.approx(100 / 7)
    assert d.loc[("a", "S2"), "empty %"] == 0
    assert ("b", "S2") not in d.index  # all skipped: no ok row


def test_problems_name_failures() -> None:
    df = _two_model_results()
    s1 = pd.DataFrame(
        _rows("a", "S1", [0.0, 0.0], grid=32, n_generated=0, empty=[1, 1])  # type: ignore[arg-type]
    )
    probs = FI.problems(pd.concat([df, s1], ignore_index=True), AliasTable.default())
    text = "\n".join(probs)
    assert "a: no S1 mask passes the filters (2 of 2 images, grid 32)" in text
    assert "b S2: 3 of 3 objects skipped: prompt: too small (3)" in text
    assert "b: not run for S1" in text
    assert "LeftVentricularMyocardium-MRI (paper: CT only)" in text
    assert "Thing-MRI (no paper row)" in text
    assert "a: empty predictions" in text and "S1 2/2 (100 %)" in text


# ---------------------------------------------------------------- the built report


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("findings")
    prepared = make_prepared(root / "prep", n_images=2)
    cfg = RunConfig(prepared=str(prepared), model="fake", strategies=("S2", "S5"), progress=False)
    evaluate(cfg, root / "run", model=FakeModel())
    aliases = root / "aliases.csv"
    aliases.write_text("ours,paper\nBox,Aorta\n")
    return build_report(root / "run", model=FakeModel(), aliases=aliases)


def test_report_leads_with_the_summary_and_ends_with_folded_config(report: Path) -> None:
    html = report.read_text()
    assert SECTION_FAILED not in html
    anchors = re.findall(r'<section id="([^"]+)"', html)
    # the summary first, the training-data overlap flags right after it, then the paper tables
    assert anchors[:3] == ["summary", "training-overlap", "paper"] and anchors[-1] == "config"
    assert [a for a, _, _ in S.ALL_SECTIONS] == [a for a in anchors if a != "training-overlap"]
    config = html[html.index('<section id="config"') :]
    assert re.search(r"<details><summary>Run configuration \(config\.json\)</summary>", config)
    assert "<details open" not in config
    summary = html[html.index('<section id="summary"') : html.index('<section id="paper"')]
    # best strategy per model with CI, the paper's figure (Box aliased to Aorta-CT), objects
    assert "fake: best strategy S5, mean DICE" in summary and "95 % CI" in summary
    assert "4 objects in 2 images" in summary
    assert "ViT-B 86.9 %" in summary  # paper Table 2 Aorta-CT S5 = 86.88 (every Box object)
    assert "Disc-CT (no paper row)" in summary


def test_report_summary_numbers(report: Path) -> None:
    tables = report.parent / "tables"
    best = pd.read_csv(tables / "summary_best_strategy.csv")
    res = pd.read_parquet(report.parent.parent / "results.parquet")
    ok = res[(res["selection"] == "oracle") & (res["status"] == "ok")]
    means = ok.groupby("strategy")["dice"].mean()
    assert best.loc[0, "best strategy"] == means.idxmax()
    assert best.loc[0, "mean DICE"] == pytest.approx(means.max())
    # the paper figure for the pooled targets: only Box (= Aorta) matched, weight = its objects
    assert best.loc[0, "paper ViT-B"] == pytest.approx(86.88 if means.idxmax() == "S5" else 68.71)
    assert best.loc[0, "paper targets"] == "1 of 2 matched"
    box = ok[(ok["object_name"] == "Box") & (ok["strategy"] == means.idxmax())]
    assert best.loc[0, "ours, matched targets"] == pytest.approx(box["dice"].mean())


def test_report_csv_notes_are_links_to_written_files(report: Path) -> None:
    html = report.read_text()
    notes = re.findall(r'<p class="note">CSV: (.*?)</p>', html)
    assert len(notes) > 10
    for n in notes:
        m = re.fullmatch(r'<a href="(tables/[^"]+\.csv)">\1</a>', n)
        assert m, n
        assert (report.parent / m.group(1)).is_file()


def test_report_pngs_at_150_dpi(report: Path) -> None:
    pngs = list((report.parent / "figures").glob("*.png"))
    assert pngs
    for p in pngs:
        with Image.open(p) as im:
            dpi = im.info["dpi"]
        assert dpi[0] == pytest.approx(F.DPI, abs=0.1) and F.DPI >= 150, p.name


# ---------------------------------------------------------------- palette and legends


def test_palette_is_okabe_ito_and_series_distinct() -> None:
    assert {to_hex(c) for c in F.PALETTE} == OKABE_ITO
    styles = [tuple(sorted(F.series_style(i).items())) for i in range(48)]
    assert len(set(styles)) == 48
    # what a reader sees in a scatter (colour, marker) or a line plot (colour, line style)
    assert len({(s["color"], s["marker"]) for s in map(F.series_style, range(24))}) == 24
    assert len({(s["color"], s["linestyle"]) for s in map(F.series_style, range(24))}) == 24


def _legend_clear_of_axes(fig: F.Figure) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    assert legends
    for leg in legends:
        lb = leg.get_window_extent(renderer)
        for ax in fig.axes:
            assert not lb.overlaps(ax.get_window_extent(renderer)), "legend covers an axes"


def test_figures_use_distinct_colours_and_legends_outside() -> None:
    rng = np.random.default_rng(0)
    strategies = ["S1", "S2", "S3", "S4", "S5", "S6"]
    rows = [
        {"model": m, "strategy": s, "dice": float(d), "size": float(z), "fourier_order": 3.0}
        for m in ("a", "b")
        for s in strategies
        for d, z in zip(rng.uniform(0, 100, 4), rng.uniform(10, 900, 4), strict=True)
    ]
    df = pd.DataFrame(rows)
    fig = F.attribute_scatter(df, attributes=("size", "fourier_order"))
    cols = fig.axes[0].collections
    assert len(cols) == 12
    seen = {
        (
            to_hex(c.get_facecolor()[0], keep_alpha=False),
            tuple(np.round(c.get_paths()[0].vertices, 3).ravel()),  # the marker's shape
        )
        for c in cols
    }
    assert len(seen) == 12
    _legend_clear_of_axes(fig)
    box = df.assign(target_modality="X-CT")
    bfig = F.box_by_group(box, "target_modality")
    faces = [to_hex(p.get_facecolor(), keep_alpha=False) for p in bfig.axes[0].patches]
    assert len(set(faces)) == len(strategies) and set(faces) <= OKABE_ITO
    _legend_clear_of_axes(bfig)
    ci = pd.DataFrame(
        {
            "model": ["a", "b"],
            "strategy": "S5",
            "n": 3,
            "mean": [50.0, 60.0],
            "ci_lo": 40.0,
            "ci_hi": 70.0,
        }
    )
    _legend_clear_of_axes(F.mean_ci_figure(ci, ci))


def test_cli_report_aliases_option(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sambench.cli import app

    prepared = make_prepared(tmp_path / "prep", n_images=1)
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["evaluate", str(prepared), "--out", str(tmp_path / "gc"), "--model", "grabcut",
         "--strategies", "S5", "--no-progress"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    al = tmp_path / "al.yaml"
    al.write_text("Disc: Spleen\n")
    res = runner.invoke(
        app, ["report", str(tmp_path / "gc"), "--no-overlays", "--aliases", str(al)]
    )
    assert res.exit_code == 0, res.output
    side = pd.read_csv(tmp_path / "gc" / "report" / "tables" / "paper_side_by_side_dice.csv")
    assert dict(zip(side["target-modality"], side["paper row"], strict=True)) == {
        "Box-CT": "no paper row",
        "Disc-CT": "Spleen-CT",
    }


def test_long_tables_are_folded(tmp_path: Path) -> None:
    from sambench.report.context import FOLD_ROWS, ReportContext

    ctx = ReportContext(
        run_dir=tmp_path,
        out=tmp_path,
        results=pd.DataFrame(),
        config=None,
        prepared=None,
        rng=np.random.default_rng(0),
    )
    sec = H.Section("x", "x")
    ctx.table(sec, "short", pd.DataFrame({"a": range(FOLD_ROWS)}), "Short")
    ctx.table(sec, "long", pd.DataFrame({"a": range(FOLD_ROWS + 1)}), "Long")
    short, long = "".join(sec.parts).split('CSV: <a href="tables/short.csv">tables/short.csv</a>')
    assert "<details" not in short and "<h3>Short</h3>" in short
    assert f"<details><summary>Long ({FOLD_ROWS + 1} rows)</summary>" in long


def test_summary_model_list_names_models_with_clicks_only() -> None:
    """The random walker runs clicks only: the summary's model list names it with its protocol
    (it was dropped because the list came from the single-round rows)."""
    from sambench.report.findings import _model_list

    results = pd.DataFrame(
        {
            "model": ["litemedsam", "litemedsam", "random_walker", "grabcut"],
            "strategy": ["S5", "interactive", "interactive", "S2"],
        }
    )
    main = results[results["strategy"] != "interactive"]
    assert _model_list(results, main) == ("grabcut, litemedsam, random_walker (interactive only)")
