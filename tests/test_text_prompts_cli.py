"""Text and exemplar prompts end to end through the command line, on the shipped seed samples:
``sambench prepare`` -> ``sambench evaluate --model sam3 --strategies T,T-neg,E,S5`` (a tiny
random-weight SAM 3 folder) -> ``sambench report``; and the one-line errors of bad inputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sam3_tiny import save_tiny_sam3
from sambench.cli import main

from fakes import make_prepared
from shared_data import TEST_DATA

SEED = TEST_DATA / "seed-samples"


def _run(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, list[str]]:
    rc = main(args)
    _, err = capsys.readouterr()
    # the error line; transformers' own log lines (load reports) are not ours
    return rc, [ln for ln in err.splitlines() if ln.startswith("sambench ")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sam3(tmp_path_factory.mktemp("sam3") / "tiny_dir")


@pytest.mark.slow
def test_evaluate_and_report_end_to_end(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prepared = tmp_path / "prepared"
    for name, modality in (("22_Heart", "MRI"), ("6_Pancreas", "CT")):
        assert main(["prepare", str(SEED / name), "-o", str(prepared), "--modality", modality]) == 0
    run = tmp_path / "run"
    args = ["evaluate", str(prepared), "--model", "sam3", "--checkpoint", str(tiny)]
    args += ["--strategies", "T,T-neg,E,S5", "--out", str(run), "--no-progress"]
    assert main(args) == 0
    concept = pd.read_parquet(run / "concept.parquet")
    single = pd.read_parquet(run / "results.parquet")
    manifest = pd.concat(pd.read_parquet(p) for p in prepared.glob("*/manifest.parquet"))
    n_obj = len(manifest)
    assert set(single["strategy"]) == {"S5"} and len(single) == n_obj
    by = concept.groupby("strategy").size().to_dict()
    assert by["T"] == n_obj and by["E"] == n_obj
    # T-neg: the pancreas slices hold no Pancreas (label 150), the heart slices every target
    neg = concept[concept["strategy"] == "T-neg"]
    assert set(neg["object_name"]) == {"Pancreas"} and set(neg["label_value"]) == {150}
    assert len(neg) == 3 and not neg["present"].any() and neg["dice"].isna().all()
    t = concept[concept["strategy"] == "T"]
    assert t["dice"].between(0, 100).all() and (t["phrase"] == "left ventricle").any()
    assert t.loc[t["object_name"] == "PancreaticMass", "inst_f1"].notna().all()
    assert t.loc[t["object_name"] == "LeftVentricle", "inst_f1"].isna().all()
    prompts = (run / "prompts.jsonl").read_text()
    assert '"text":"pancreas"' in prompts and '"exemplar_boxes":[[' in prompts
    out = tmp_path / "report"
    assert main(["report", str(run), "--out", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert 'id="text"' in html and "Text and exemplar prompts" in html
    assert "FP rate T-neg %" in html and "cgF1-like" in html
    # every mean and rate with its CI by case; the seed samples have 3-4 cases a target: too few
    assert "<th>DICE T (95 % CI)</th>" in html and "<th>FP rate T-neg % (95 % CI)</th>" in html
    assert "95 % CI by case (cluster bootstrap" in html
    assert "(no CI: n = 4 cases: too few)</td>" in html
    assert "(no CI: n = 3 cases: too few)</td>" in html
    summary = html[html.index('id="summary"') : html.index('id="paper"')]
    assert "Worst hallucination" in summary or "No hallucination" in summary


def test_folder_without_tokenizer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = save_tiny_sam3(tmp_path / "notok", tokenizer=False)
    prepared = make_prepared(tmp_path / "prepared", n_images=1)
    out = tmp_path / "run"
    args = ["evaluate", str(prepared), "--model", "sam3", "--checkpoint", str(bad)]
    rc, err = _run(capsys, [*args, "--strategies", "T", "--out", str(out)])
    assert rc == 2 and not out.exists()
    assert "--checkpoint" in err[0] and "lacks a tokenizer" in err[0] and str(bad) in err[0]


def test_target_without_phrase(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prepared = make_prepared(tmp_path / "prepared", n_images=1)  # targets Box and Disc
    out = tmp_path / "run"
    args = ["evaluate", str(prepared), "--model", "sam3", "--checkpoint", str(tiny)]
    rc, err = _run(capsys, [*args, "--strategies", "T", "--out", str(out)])
    assert rc == 2 and not out.exists()
    assert "--phrases" in err[0] and "no phrase for target 'Box'" in err[0]
    phrases = tmp_path / "p.csv"
    phrases.write_text("target,phrase,instances\nBox,box,no\nDisc,disc,no\n")
    rc, err = _run(
        capsys, [*args, "--strategies", "T", "--out", str(out), "--phrases", str(phrases)]
    )
    assert rc == 0, err
    assert set(pd.read_parquet(out / "concept.parquet")["phrase"]) == {"box", "disc"}


def test_empty_phrase_table_and_a_model_without_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prepared = make_prepared(tmp_path / "prepared", n_images=1)
    empty = tmp_path / "empty.csv"
    empty.write_text("target,phrase,instances\n")
    out = tmp_path / "run"
    rc, err = _run(
        capsys,
        ["evaluate", str(prepared), "--strategies", "T", "--phrases", str(empty), "-o", str(out)],
    )
    assert rc == 2 and not out.exists()
    assert str(empty) in err[0] and "phrase table has no rows" in err[0]
    ok = tmp_path / "ok.csv"
    ok.write_text("target,phrase\nBox,box\nDisc,disc\n")
    args = ["evaluate", str(prepared), "--strategies", "T", "--phrases", str(ok), "-o", str(out)]
    rc, err = _run(capsys, [*args, "--model", "grabcut"])
    assert rc == 2 and not out.exists()
    assert "--strategies" in err[0] and "need a model that takes text" in err[0]


def test_prompt_file_replays_text_and_exemplars(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run's prompts.jsonl replays to the same rows; an edited phrase is asked as written;
    a bad exemplar box is a one-line error naming the file and line."""
    prepared = make_prepared(tmp_path / "prepared", n_images=2)
    phrases = tmp_path / "p.csv"
    phrases.write_text("target,phrase,instances\nBox,box,yes\nDisc,disc,no\n")
    base = ["evaluate", str(prepared), "--model", "sam3", "--checkpoint", str(tiny)]
    base += ["--strategies", "T,E", "--phrases", str(phrases), "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    first = pd.read_parquet(tmp_path / "a" / "concept.parquet")
    recorded = tmp_path / "a" / "prompts.jsonl"
    assert main([*base, "--out", str(tmp_path / "b"), "--prompts", str(recorded)]) == 0
    again = pd.read_parquet(tmp_path / "b" / "concept.parquet")
    cols = ["image_id", "label_value", "strategy", "phrase", "n_instances", "dice", "inst_f1"]
    pd.testing.assert_frame_equal(first[cols], again[cols])
    edited = tmp_path / "edited.jsonl"
    edited.write_text(recorded.read_text().replace('"text":"box"', '"text":"square"'))
    assert main([*base, "--out", str(tmp_path / "c"), "--prompts", str(edited)]) == 0
    third = pd.read_parquet(tmp_path / "c" / "concept.parquet")
    t = third[third["strategy"] == "T"]
    assert set(t["phrase"]) == {"square", "disc"}
    lines = recorded.read_text().splitlines()
    n = next(i for i, ln in enumerate(lines, 1) if '"strategy":"E"' in ln)
    lines[n - 1] = lines[n - 1].replace('"exemplar_boxes":[[', '"exemplar_boxes":[[500,500,')
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    rc, err = _run(capsys, [*base, "--out", str(tmp_path / "d"), "--prompts", str(bad)])
    assert rc == 2 and not (tmp_path / "d").exists()
    assert str(bad) in err[0] and f"line {n}" in err[0] and "exemplar_boxes" in err[0]
