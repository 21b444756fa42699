"""The training-data overlap ledger: validation, a user file extending the package's, and a
report over a run on a dataset the ledger lists for the evaluated model showing the flag."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sambench.data.ledger import flag_seen, load_ledger, parse_ledger
from sambench.data.recipe import builtin_recipes
from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate
from sambench.errors import DataError
from sambench.report.build import build_report

from fakes import FakeModel, make_prepared


def test_package_ledger_cites_a_source_for_every_entry_and_names_recipes():
    ledger = load_ledger()
    recipes = set(builtin_recipes())
    assert {"sam_vit_b", "sam2_hiera_t"} <= set(ledger)
    # the classical baselines learn nothing: known, not unknown, and never flagged
    assert ledger["grabcut"].datasets == ledger["random_walker"].datasets == frozenset()
    for e in ledger.values():
        assert e.source.strip()
        assert e.datasets <= recipes, (e.model, sorted(e.datasets - recipes))
        # a name the source lists but no recipe matches is kept as listed, never a recipe name
        assert not set(e.unmatched) & recipes, (e.model, sorted(set(e.unmatched) & recipes))
    # entries transcribed from the authors' own lists cite a link to that list
    for m in ("biomedparse", "sam_med3d", "sam_med3d_turbo", "sam_med2d", "medsam2"):
        assert "https://github.com/" in ledger[m].source, m
    # an entry built from a partial statement says so where the report shows it
    for m in ("sam_med2d", "medsam2"):
        assert ledger[m].note.startswith("PARTIAL"), m
    # SA-Med3D-140K's table: 58 public rows + one '24 Private datasets' row, all transcribed
    # (AMOS22 and CHAOS each match two recipes, every other matched row one)
    turbo = ledger["sam_med3d_turbo"]
    assert len(turbo.unmatched) + len(turbo.datasets) - 2 == 58 + 1


def test_shipped_entries_flag_listed_datasets_only():
    """Rows of models with a shipped entry are flagged exactly on the datasets their sources list
    (BiomedParseData's table; SAM-Med3D's training paths), not on others or other models."""
    ledger = load_ledger()
    df = pd.DataFrame(
        {
            "model": ["biomedparse", "biomedparse", "sam_med3d", "sam_med3d", "sam_med3d_turbo"],
            "dataset": ["ISIC2018", "Kvasir-SEG", "WORD", "MnMs", "VerSe20"],
            "case": ["a", "b", "c", "d", "e"],
        }
    )
    # MnMs: only in the file's all_datasets list, in no training folder; VerSe20: the ECCV table
    assert flag_seen(df, ledger).tolist() == [True, False, True, False, True]
    assert not flag_seen(df.assign(model="sam_med3d"), ledger).iloc[4]
    assert "BTCV" in ledger["biomedparse"].unmatched


def test_ledger_validation_and_case_lists(tmp_path: Path):
    with pytest.raises(DataError, match="needs its source"):
        parse_ledger({"format": 1, "models": {"m": {"datasets": ["WORD"]}}}, "x.yaml")
    with pytest.raises(DataError, match=r"models\.m\.unmatched: expected a list"):
        parse_ledger({"format": 1, "models": {"m": {"source": "s", "unmatched": "BTCV"}}}, "x.yaml")
    ledger = parse_ledger(
        {
            "format": 1,
            "models": {"m": {"datasets": ["A", "B"], "source": "s", "cases": {"B": ["c1"]}}},
        },
        "x.yaml",
    )
    df = pd.DataFrame(
        {
            "model": ["m", "m", "m", "m", "other"],
            "dataset": ["A", "B", "B", "C", "A"],
            "case": ["c9", "c1", "c2", "c1", "c1"],
        }
    )
    assert flag_seen(df, ledger).tolist() == [True, True, False, False, False]


def test_report_flags_results_on_training_data(tmp_path: Path):
    prepared = make_prepared(tmp_path / "prep", n_images=3)
    datasets = sorted(
        pd.read_parquet(next(prepared.glob("*/manifest.parquet")))["dataset"].unique()
    )
    cfg = RunConfig(prepared=str(prepared), model="fake", progress=False, strategies=("S5",))
    results = evaluate(cfg, tmp_path / "run", model=FakeModel())
    user = tmp_path / "ledger.yaml"
    user.write_text(
        "format: 1\nmodels:\n  fake:\n    datasets: [" + ", ".join(datasets) + "]\n"
        "    source: made in the test\n"
    )
    page = build_report(tmp_path / "run", tmp_path / "rep", overlays=False, ledger=user).read_text()
    n = len(results)
    assert "Training-data overlap" in page
    assert f"{n:,} of {n:,} results are FLAGGED" in page
    # the summary leads the page and says it too; the overlap section follows it
    summary = page.split('id="summary"', 1)[1].split("</section>", 1)[0]
    assert f"Training-data overlap: {n:,} of {n:,} results are on data the model" in summary
    assert page.index('id="summary"') < page.index('id="training-overlap"')
    csv = pd.read_csv(tmp_path / "rep" / "training_overlap.csv")
    assert csv["flagged"].sum() == n
    # without the entry: the model has no ledger entry, nothing flagged, and the report says so
    page2 = build_report(tmp_path / "run", tmp_path / "rep2", overlays=False).read_text()
    assert "FLAGGED" not in page2 and "No ledger entry for fake" in page2
    # nothing flagged: the section is folded (the summary holds the claim); flagged: open
    assert '<section id="training-overlap"' in page2
    head2 = page2.split('<section id="training-overlap"', 1)[1][:400]
    head1 = page.split('<section id="training-overlap"', 1)[1][:400]
    assert "<details" in head2 and "<details" not in head1
    # the summary says unknown, not "none flagged", for a model without an entry
    assert "unknown for fake (no ledger entry)" in page2.split("</section>", 1)[0]


def test_out_of_core_report_flags_the_same_results(tmp_path: Path):
    """The DuckDB (out-of-core) report gives the same overlap counts as the in-memory one."""
    from sambench.report.lazy_report import build_report_lazy

    prepared = make_prepared(tmp_path / "prep", n_images=3)
    datasets = sorted(
        pd.read_parquet(next(prepared.glob("*/manifest.parquet")))["dataset"].unique()
    )
    cfg = RunConfig(prepared=str(prepared), model="fake", progress=False, strategies=("S5", "S2"))
    results = evaluate(cfg, tmp_path / "run", model=FakeModel())
    user = tmp_path / "ledger.yaml"
    user.write_text(
        "format: 1\nmodels:\n  fake:\n    datasets: [" + datasets[0] + "]\n    source: test\n"
    )
    page = build_report_lazy(tmp_path / "run", tmp_path / "lazy", ledger=user).read_text()
    build_report(tmp_path / "run", tmp_path / "mem", overlays=False, ledger=user)
    lazy_csv = pd.read_csv(tmp_path / "lazy" / "training_overlap.csv")
    mem_csv = pd.read_csv(tmp_path / "mem" / "training_overlap.csv")
    pd.testing.assert_frame_equal(lazy_csv, mem_csv)
    n = int((results["dataset"] == datasets[0]).sum())
    assert lazy_csv["flagged"].sum() == n > 0
    assert f"{n:,} of {len(results):,} results are FLAGGED" in page


def test_litemedsam_run_on_a_ledger_dataset_is_flagged(tmp_path: Path):
    """sambench's default model: a run named ``litemedsam`` on a dataset its ledger entry lists is
    FLAGGED in the report; without an entry (none ships: the CVPR 2024 challenge's training list
    was not reachable, docs/datasets.md) the report says its overlap is unknown."""
    prepared = make_prepared(tmp_path / "prep", n_images=3)
    datasets = sorted(
        pd.read_parquet(next(prepared.glob("*/manifest.parquet")))["dataset"].unique()
    )
    model = FakeModel()
    model.name = "litemedsam"
    cfg = RunConfig(prepared=str(prepared), model="litemedsam", progress=False, strategies=("S5",))
    results = evaluate(cfg, tmp_path / "run", model=model)
    assert set(results["model"]) == {"litemedsam"}
    assert "litemedsam" not in load_ledger()
    page = build_report(tmp_path / "run", tmp_path / "rep0", overlays=False).read_text()
    assert "No ledger entry for litemedsam" in page and "FLAGGED" not in page
    user = tmp_path / "ledger.yaml"
    user.write_text(
        "format: 1\nmodels:\n  litemedsam:\n    datasets: [" + datasets[0] + "]\n"
        "    unmatched: [Some Private Set]\n    source: entry made in the test\n"
    )
    page = build_report(tmp_path / "run", tmp_path / "rep", overlays=False, ledger=user).read_text()
    n = int((results["dataset"] == datasets[0]).sum())
    assert n > 0
    assert f"{n:,} of {len(results):,} results are FLAGGED" in page
    assert "Some Private Set" in page  # the unmatched names are shown with the entry
    csv = pd.read_csv(tmp_path / "rep" / "training_overlap.csv")
    assert csv["flagged"].sum() == n
