"""``sambench cosmos``: a folder with three release replicas and one broken layout prepares the
three, names the broken one with the reason, and writes the coverage report (CSV + HTML) with
counts that match the prepared manifests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from recipe_replicas import build
from sambench.data.cosmos import PAPER_TOTALS, find_releases, prepare_cosmos, totals
from sambench.data.recipe import builtin_recipes
from sambench.report.coverage import write_coverage


def _root(tmp_path: Path) -> Path:
    recipes = builtin_recipes()
    root = tmp_path / "downloads"
    for name in ("WORD", "Kvasir-SEG", "DRIVE", "KiTS19"):
        build(recipes[name], root)
    (root / "kits19" / "data").rename(root / "kits19" / "cases")  # a renamed folder
    return root


def test_cosmos_prepares_three_names_the_broken_one_and_reports(tmp_path: Path):
    root = _root(tmp_path)
    out = tmp_path / "cosmos"
    df = prepare_cosmos(root, out, progress=False)
    status = df.set_index("dataset")["status"]
    assert sorted(status[status == "prepared"].index) == ["DRIVE", "Kvasir-SEG", "WORD"]
    assert list(status[status == "broken"].index) == ["KiTS19"]
    reason = df.set_index("dataset").loc["KiTS19", "reason"]
    assert (
        "recipe KiTS19 v1" in reason and "expected images at 'data/case_*/imaging.nii.gz'" in reason
    )
    assert "found cases/" in reason
    assert (status == "missing").sum() == len(builtin_recipes()) - 4
    # counts equal the manifests'
    for name in ("DRIVE", "Kvasir-SEG", "WORD"):
        m = pd.read_parquet(out / name / "manifest.parquet")
        row = df.set_index("dataset").loc[name]
        assert row["images"] == m["image_id"].nunique() and row["masks"] == len(m)
    word = df.set_index("dataset").loc["WORD"]
    # 12 kept WORD structures, left/right kidney and femoral heads are one target each: 10 targets
    assert word["targets"] == 10 and word["target_modality_pairs"] == 10
    assert word["excluded_criterion_2"] == 4 * 6  # 4 bowel structures x 3 slices x 2 cases
    tot = totals(df)
    assert tot["datasets"] == 3 and tot["targets"] == 12  # + Polyp, Retinal Vessel
    assert tot["excluded_criterion_2"] == 24 and tot["excluded_criterion_1"] == 0
    csv, page = write_coverage(df, out, str(root))
    back = pd.read_csv(csv)
    assert list(back["dataset"]) == list(df["dataset"])
    text = page.read_text()
    assert "1,050,311" in text and "6,033,198" in text and "KiTS19" in text
    assert "found cases/" in text
    assert PAPER_TOTALS["targets"] == 84
    # resumable: a second run redoes nothing and gives the same rows
    again = prepare_cosmos(root, out, progress=False)
    pd.testing.assert_frame_equal(again.drop(columns=["reason"]), df.drop(columns=["reason"]))


def test_find_releases_by_folder_name(tmp_path: Path):
    recipes = builtin_recipes()
    build(recipes["AMOS-CT"], tmp_path)
    found = [(r.name, p.name) for r, p in find_releases(tmp_path)]
    assert found == [("AMOS-CT", "amos22"), ("AMOS-MRI", "amos22")]


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(
    not CHROMIUM.is_file() or importlib.util.find_spec("playwright") is None,
    reason="needs Debian's chromium and playwright (the test extra)",
)
def test_coverage_page_in_chromium(tmp_path: Path):
    """The page as a reader sees it: the totals beside the paper, the broken release's reason on
    its own row, the missing recipes in their own table, no horizontal overflow."""
    from playwright.sync_api import sync_playwright

    root = _root(tmp_path)
    out = tmp_path / "cosmos"
    df = prepare_cosmos(root, out, progress=False)
    _, page_path = write_coverage(df, out, str(root))
    args = ["--headless", "--no-sandbox", "--disable-gpu"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=args)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(page_path.as_uri())
        tables = page.locator("table")
        assert tables.count() == 4
        totals_text = tables.nth(0).inner_text()
        assert (
            "1,050,311" in totals_text and "6,033,198" in totals_text and "< 0.1 %" in totals_text
        )
        found = tables.nth(2).inner_text()
        assert "WORD" in found and "prepared" in found and "broken" in found
        assert "expected images at 'data/case_*/imaging.nii.gz'" in found
        missing_rows = tables.nth(3).locator("tr").count() - 1
        assert missing_rows == len(builtin_recipes()) - 4
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1280
        browser.close()


def test_cli_cosmos_and_datasets(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from sambench.cli import main

    root = _root(tmp_path)
    assert main(["cosmos", str(root), "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "broken: KiTS19" in out and "prepared 3 dataset(s)" in out
    assert (tmp_path / "c" / "coverage.html").is_file()
    assert main(["datasets", "--csv", str(tmp_path / "r.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "r.csv")) == len(builtin_recipes())
    # a layout mismatch through prepare --recipe: one line, no traceback, nothing written
    rc = main(["prepare", str(root / "kits19"), "--recipe", "KiTS19", "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert rc != 0 and "recipe KiTS19 v1" in err and "Traceback" not in err
    assert not (tmp_path / "p").exists()
    rc = main(["prepare", str(root / "kits19"), "--recipe", "X", "--config", "y.yaml", "-o", "p"])
    assert rc != 0 and "--recipe: give --recipe or --config, not both" in capsys.readouterr().err
