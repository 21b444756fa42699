"""``sambench cosmos``: a folder with three release replicas and one broken layout prepares the
three, names the broken one with the reason, and writes the coverage report (CSV + HTML) with
counts that match the prepared manifests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

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
