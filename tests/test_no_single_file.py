"""``sambench evaluate --no-single-file``: a GrabCut run on the prepared seed sample ends with its
parts, manifest and prompts only (no results.parquet), its lazy rows equal a ``--single-file``
run's (timings excluded), an interrupted run resumes without duplicate rows, and
``sambench report`` builds the out-of-core report of such a run by itself."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from sambench.cli import main
from sambench.data.prepare import prepare_dataset
from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate, evaluate_dataset
from sambench.engine.executor import ExecutorOptions
from sambench.errors import OptionError
from sambench.store.results_dataset import read_manifest, scan_results
from sambench.store.run_files import RESULTS_NAME, TABLE_NAMES, load_all

from shared_data import SEED

TIMING = ["embed_seconds", "decode_seconds", "embedding_cached"]
KEYS = ["dataset", "image_id", "label_value", "strategy", "selection"]
N_IMAGES = len(list((SEED / "22_Heart" / "images").glob("*.png")))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nosingle") / "prepared"
    prepare_dataset(SEED / "22_Heart", out, modality="MRI", progress=False)
    return out


@pytest.fixture(scope="module")
def single(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Every row of a ``--single-file`` run (today's default), from its per-protocol files."""
    out = tmp_path_factory.mktemp("single") / "run"
    assert main(["evaluate", str(prepared), "-o", str(out), "-m", "grabcut", "-s", "S2,S5",
                 "--no-progress"]) == 0  # fmt: skip
    assert (out / RESULTS_NAME).is_file()
    return comparable(load_all(out))


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    keys = [k for k in KEYS if k in df.columns]
    df = df.drop(columns=[c for c in TIMING if c in df.columns])
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


def lazy_rows(run: Path) -> pd.DataFrame:
    with scan_results(run) as ds:
        return comparable(ds.to_pandas())


def test_cli_no_single_file_writes_parts_only_and_same_rows(
    prepared: Path, single: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["evaluate", str(prepared), "-o", str(out), "-m", "grabcut", "-s", "S2,S5"]
    assert main([*args, "--no-progress", "--no-single-file"]) == 0
    printed = capsys.readouterr().out
    assert f"{len(single)} rows" in printed and "DICE (%)" in printed
    assert not any((out / n).exists() for n in TABLE_NAMES)
    assert (out / "prompts.jsonl").is_file() and (out / "tables" / "dice_by_target.csv").is_file()
    manifest = read_manifest(out / "parts")
    listed = [i for e in manifest.values() for i in e.images]
    assert sorted(listed) == sorted(single["image_id"].unique()) and len(listed) == N_IMAGES
    assert sum(e.rows for e in manifest.values()) == len(single)
    got = lazy_rows(out)
    pd.testing.assert_frame_equal(got[single.columns], single, check_dtype=False)
    # the same folder finished again with --single-file (an execution option: resume allowed)
    assert main([*args, "--no-progress"]) == 0
    pd.testing.assert_frame_equal(comparable(load_all(out)), single, check_dtype=False)


def test_interrupted_no_single_file_run_resumes_without_duplicates(
    prepared: Path, single: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = tmp_path / "faults"
    faults.mkdir()
    monkeypatch.setenv("SAMBENCH_TEST_FAULTS", str(faults))
    (faults / "raise_at").write_text("3")
    cfg = RunConfig(
        prepared=str(prepared), model="ray_fault_adapter:build", strategies=("S2", "S5"),
        progress=False,
    )  # fmt: skip
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="injected failure"):
        evaluate_dataset(cfg, out, flush_every=1)
    assert len(read_manifest(out / "parts")) == 2 and not (out / RESULTS_NAME).exists()
    (faults / "raise_at").unlink()
    with evaluate_dataset(cfg, out) as ds:
        assert ds.count() == len(single)
    got = lazy_rows(out)
    assert not got.duplicated(KEYS).any()
    pd.testing.assert_frame_equal(got[single.columns], single, check_dtype=False)
    prompts = [json.loads(x) for x in (out / "prompts.jsonl").read_text().splitlines()]
    assert len({json.dumps(p, sort_keys=True) for p in prompts}) == len(prompts)


def test_report_of_a_run_without_results_parquet_goes_out_of_core(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    cfg = RunConfig(prepared=str(prepared), model="grabcut", strategies=("S5",), progress=False)
    evaluate_dataset(cfg, run).close()
    assert main(["report", str(run), "-o", str(tmp_path / "rep")]) == 0
    captured = capsys.readouterr()
    assert "--no-single-file" in captured.err and "out-of-core" in captured.err
    assert (tmp_path / "rep" / "report.html").is_file()


def test_evaluate_refuses_no_single_file() -> None:
    cfg = RunConfig(prepared="unused", model="grabcut", strategies=("S5",))
    with pytest.raises(OptionError, match="evaluate_dataset"):
        evaluate(cfg, "unused", options=ExecutorOptions(single_file=False))
