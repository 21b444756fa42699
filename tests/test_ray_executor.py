"""``--executor ray`` on a local Ray cluster (2 CPUs): a worker killed mid-batch is restarted and
its batch retried, and the final table equals the serial run's row for row; a run folder is
resumed by the other executor; an address that does not answer and a folder in use are refused
before anything is written."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import ray

from sambench.data.prepare import prepare_dataset
from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate
from sambench.engine.executor import ExecutorOptions
from sambench.errors import OptionError
from sambench.store.runlock import RunLock, RunLockedError

from shared_data import SEED

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
TIMING = ["embed_seconds", "decode_seconds", "embedding_cached"]
KEYS = ["dataset", "image_id", "label_value", "strategy", "selection"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ray") / "prepared"
    prepare_dataset(SEED / "22_Heart", out, modality="MRI", progress=False)
    return out


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The fault folder of ``ray_fault_adapter`` and a local 2-CPU Ray cluster whose workers
    import this repository's sources and the tests' adapter."""
    d = tmp_path_factory.mktemp("faults")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAMBENCH_TEST_FAULTS", str(d))
        path = os.pathsep.join([str(SRC), str(HERE), os.environ.get("PYTHONPATH", "")])
        mp.setenv("PYTHONPATH", path)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            yield d
        finally:
            ray.shutdown()


def reset(faults: Path, **files: int) -> None:
    for p in faults.iterdir():
        p.unlink()
    for name, n in files.items():
        (faults / name).write_text(str(n))


def config(prepared: Path, model: str) -> RunConfig:
    return RunConfig(prepared=str(prepared), model=model, strategies=("S5",), progress=False)


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=TIMING).reset_index(drop=True)


@pytest.fixture(scope="module")
def serial(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("serial") / "run"
    evaluate(config(prepared, "grabcut"), out)
    return pd.read_parquet(out / "results.parquet")


RAY2 = ExecutorOptions(executor="ray", workers=2, batch_images=2)


@pytest.mark.slow
def test_killed_worker_is_retried_and_table_equals_serial(
    prepared: Path, faults: Path, serial: pd.DataFrame, tmp_path: Path
) -> None:
    n_images = len(list((prepared / "22_Heart" / "images").glob("*.png")))
    assert n_images >= 3
    reset(faults, die_at=3)  # the 3rd image encoded: the 2nd of a 2-image batch
    out = tmp_path / "run"
    res = evaluate(config(prepared, "ray_fault_adapter:build"), out, options=RAY2)
    assert (faults / "died").exists()  # a worker did die mid-batch
    # its batch was retried: every image once, no row duplicated or missing
    assert not res.duplicated(KEYS).any()
    assert res["image_id"].nunique() == n_images
    parts = sorted((out / "parts").glob("part-*.parquet"))
    assert len(parts) == -(-n_images // 2)  # one part per batch, none from the dead attempt
    assert all(p.stem.count("-") == 2 for p in parts)  # part-<n>-r<token>
    table = pd.read_parquet(out / "results.parquet")
    pd.testing.assert_frame_equal(comparable(table), comparable(serial))


@pytest.mark.slow
def test_ray_run_resumed_by_local_and_local_by_ray(
    prepared: Path, faults: Path, serial: pd.DataFrame, tmp_path: Path
) -> None:
    model = "ray_fault_adapter:build"
    # Ray run stopped by an error in its second batch, resumed by the local executor
    reset(faults, raise_at=3)
    out = tmp_path / "ray_then_local"
    opts = ExecutorOptions(executor="ray", workers=1, batch_images=2)
    with pytest.raises(RuntimeError, match="injected failure"):
        evaluate(config(prepared, model), out, options=opts)
    assert len(list((out / "parts").glob("part-*-r*.parquet"))) == 1
    reset(faults)
    evaluate(config(prepared, model), out)
    pd.testing.assert_frame_equal(
        comparable(pd.read_parquet(out / "results.parquet")), comparable(serial)
    )
    # local run stopped after two images (a part per image), resumed on Ray
    reset(faults, raise_at=3)
    out = tmp_path / "local_then_ray"
    with pytest.raises(RuntimeError, match="injected failure"):
        evaluate(config(prepared, model), out, flush_every=1)
    assert len(list((out / "parts").glob("part-*.parquet"))) == 2
    reset(faults)
    evaluate(config(prepared, model), out, options=RAY2)
    pd.testing.assert_frame_equal(
        comparable(pd.read_parquet(out / "results.parquet")), comparable(serial)
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_address_that_does_not_answer_is_refused_quickly(prepared: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    address = f"127.0.0.1:{closed_port()}"
    opts = ExecutorOptions(executor="ray", address=address, connect_timeout=2.0)
    t0 = time.monotonic()
    with pytest.raises(OptionError, match=f"--address: no Ray cluster answers at {address}"):
        evaluate(config(prepared, "grabcut"), out, options=opts)
    assert time.monotonic() - t0 < 10
    assert not out.exists()
    with pytest.raises(OptionError, match="--address: expected auto or HOST:PORT"):
        evaluate(config(prepared, "grabcut"), out, options=ExecutorOptions("ray", "nohost"))
    assert not out.exists()


def test_second_executor_on_a_folder_is_refused(
    prepared: Path, faults: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    with RunLock(out, "evaluate --executor ray"):
        with pytest.raises(RunLockedError) as e:
            evaluate(config(prepared, "grabcut"), out)  # a local run while Ray holds it
        msg = str(e.value)
        assert f"evaluate --executor ray pid {os.getpid()} on host {socket.gethostname()}" in msg
    with RunLock(out, "evaluate"):
        with pytest.raises(RunLockedError, match=f"evaluate pid {os.getpid()} on host"):
            evaluate(config(prepared, "grabcut"), out, options=RAY2)
    assert not (out / "config.json").exists() and not (out / "parts").exists()


def test_cli_bad_address_is_two_lines_and_writes_nothing(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sambench.cli import main

    out = tmp_path / "run"
    address = f"127.0.0.1:{closed_port()}"
    args = ["evaluate", str(prepared), "-o", str(out), "-m", "grabcut", "--no-progress"]
    assert main([*args, "--executor", "ray", "--address", address]) == 2
    err = capsys.readouterr().err
    assert f"--address: no Ray cluster answers at {address}" in err and not out.exists()
    assert main([*args, "--workers", "2"]) == 2
    assert "--workers: only applies with --executor ray" in capsys.readouterr().err


@pytest.mark.slow
def test_ray_no_single_file_writes_parts_only_with_serial_rows(
    prepared: Path, faults: Path, serial: pd.DataFrame, tmp_path: Path
) -> None:
    from sambench.engine.evaluate import evaluate_dataset
    from sambench.store.results_dataset import read_manifest, scan_results

    reset(faults)
    out = tmp_path / "run"
    evaluate_dataset(config(prepared, "grabcut"), out, options=RAY2).close()
    assert not (out / "results.parquet").exists() and (out / "prompts.jsonl").is_file()
    images = {i for e in read_manifest(out / "parts").values() for i in e.images}
    assert images == set(serial["image_id"])
    with scan_results(out) as ds:
        got = ds.sql("SELECT * FROM results WHERE selection = 'oracle'")
    got = got.sort_values(KEYS, kind="stable")[serial.columns]
    pd.testing.assert_frame_equal(comparable(got), comparable(serial), check_dtype=False)
