"""Output safety: run folders refuse foreign non-empty folders, files follow the umask, config.json
stores absolute paths (a report builds from any directory), and results flush by time too."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from sambench.engine.config import ConfigMismatchError, RunConfig
from sambench.engine.evaluate import evaluate
from sambench.engine.results import ResultsStore
from sambench.errors import DataError
from sambench.store import atomic
from sambench.store.runfolder import ensure_run_folder

from fakes import FakeModel, make_prepared


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    return make_prepared(tmp_path / "prepared", n_images=2)


def run(prepared: Path | str, out: Path | str, **kw: object) -> pd.DataFrame:
    cfg = RunConfig(prepared=str(prepared), model="fake", progress=False, strategies=("S5",), **kw)  # type: ignore[arg-type]
    return evaluate(cfg, out, model=FakeModel(), flush_every=1)


# -- foreign folders are refused ------------------------------------------------------------------


def test_evaluate_refuses_a_foreign_nonempty_folder_and_touches_nothing(
    prepared: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "my_analysis"
    (mine / "tables").mkdir(parents=True)
    (mine / "results.parquet").write_bytes(b"the user's own table")
    (mine / "tables" / "dice.csv").write_text("a,b\n1,2\n")
    (mine / "notes.txt").write_text("notes")
    before = {p: p.read_bytes() for p in mine.rglob("*") if p.is_file()}
    with pytest.raises(DataError) as e:
        run(prepared, mine)
    msg = str(e.value)
    assert str(mine) in msg and "no config.json" in msg
    assert "results.parquet" in msg and "tables/" in msg and "notes.txt" in msg
    assert {p: p.read_bytes() for p in mine.rglob("*") if p.is_file()} == before
    assert not (mine / "config.json").exists() and not (mine / "parts").exists()


def test_new_empty_and_own_run_folders_are_accepted(prepared: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    a = run(prepared, empty)
    b = run(prepared, empty)  # our own run folder: resumes, nothing redone
    pd.testing.assert_frame_equal(a, b)
    run(prepared, tmp_path / "new" / "nested")
    # a sambench run of another kind is still "not ours" for evaluate
    ft = tmp_path / "ft"
    ft.mkdir()
    (ft / "finetune.json").write_text("{}")
    with pytest.raises(DataError, match=r"no config\.json"):
        ensure_run_folder(ft, "evaluate")
    assert ensure_run_folder(ft, "finetune") == ft
    with pytest.raises(DataError, match="is a file"):
        ensure_run_folder(ft / "finetune.json", "evaluate")


def test_finetune_refuses_a_foreign_folder(prepared: Path, tmp_path: Path) -> None:
    from sambench.finetune.config import FinetuneConfig
    from sambench.finetune.train import finetune

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "decoder.safetensors").write_bytes(b"not ours")
    with pytest.raises(DataError, match=r"no finetune\.json"):
        finetune(FinetuneConfig(prepared=str(prepared), progress=False), mine)
    assert (mine / "decoder.safetensors").read_bytes() == b"not ours"
    assert not (mine / "finetune.json").exists()


# -- permissions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    atomic.reset_umask_cache()
    try:
        p = atomic.write_text_atomic(tmp_path / "a.txt", "x")
        q = atomic.write_json_atomic(tmp_path / "sub" / "b.json", {"a": 1})
        r = atomic.write_parquet_atomic(tmp_path / "c.parquet", pd.DataFrame({"a": [1]}))
        for f in (p, q, r):
            assert stat.S_IMODE(f.stat().st_mode) == mode, f
    finally:
        os.umask(old)
        atomic.reset_umask_cache()


def test_run_folder_files_are_group_and_world_readable_under_022(
    prepared: Path, tmp_path: Path
) -> None:
    old = os.umask(0o022)
    atomic.reset_umask_cache()
    try:
        run(prepared, tmp_path / "run")
    finally:
        os.umask(old)
        atomic.reset_umask_cache()
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert files and {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o644}


# -- absolute paths in config.json --------------------------------------------------------------


def test_config_stores_absolute_paths_and_report_works_from_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sambench.report.build import build_report

    work = tmp_path / "work"
    make_prepared(work / "data" / "prep", n_images=2)
    monkeypatch.chdir(work)
    run("data/prep", "runs/r1", cache_dir="cache")
    saved = json.loads((work / "runs" / "r1" / "config.json").read_text())
    assert saved["prepared"] == str(work / "data" / "prep")
    assert saved["cache_dir"] == str(work / "cache")
    # resuming with the same relative paths from the same directory is the same configuration
    run("data/prep", "runs/r1", cache_dir="cache")
    other = make_prepared(tmp_path / "other", n_images=2)
    with pytest.raises(ConfigMismatchError, match="prepared"):
        run(other, "runs/r1", cache_dir="cache")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    html = build_report(work / "runs" / "r1", overlays=False).read_text()
    assert "not found: attributes skipped" not in html


# -- flush cadence ---------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def rows(image_id: str) -> list[dict[str, object]]:
    return [{"image_id": image_id, "dice": 1.0}]


def test_results_flush_by_elapsed_time(tmp_path: Path) -> None:
    clock = FakeClock()
    store = ResultsStore(tmp_path, flush_every=16, flush_seconds=60, clock=clock)
    for i in range(3):  # 3 images within a minute: nothing on disk yet
        clock.t += 10
        store.add_image(rows(f"i{i}"))
    assert store.done_image_ids() == set()
    clock.t += 31  # 61 s since the store started: the next image flushes all four
    store.add_image(rows("i3"))
    assert store.done_image_ids() == {"i0", "i1", "i2", "i3"}
    clock.t += 59  # the timer restarts at each flush
    store.add_image(rows("i4"))
    assert "i4" not in store.done_image_ids()
    clock.t += 1
    store.add_image(rows("i5"))
    assert store.done_image_ids() == {f"i{i}" for i in range(6)}
    assert len(list((tmp_path / "parts").glob("part-*.parquet"))) == 2


def test_results_still_flush_by_count(tmp_path: Path) -> None:
    clock = FakeClock()
    store = ResultsStore(tmp_path, flush_every=2, flush_seconds=60, clock=clock)
    store.add_image(rows("a"))
    assert store.done_image_ids() == set()
    store.add_image(rows("b"))
    assert store.done_image_ids() == {"a", "b"}


def test_finetune_config_saves_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sambench.finetune.config import FinetuneConfig, check_compatible

    monkeypatch.chdir(tmp_path)
    rel = FinetuneConfig(prepared="prep", checkpoint="~/ckpt.pth")
    rel.save(tmp_path / "ft")
    saved = FinetuneConfig.load(tmp_path / "ft")
    assert saved.prepared == str(tmp_path / "prep")
    assert saved.checkpoint == str(Path("~/ckpt.pth").expanduser())
    check_compatible(saved, rel, tmp_path / "ft")  # same folder, relative or absolute


def test_report_out_refuses_a_foreign_folder_and_rebuilds_its_own(tmp_path: Path) -> None:
    from sambench.report.build import build_report

    prepared = make_prepared(tmp_path / "prepared", n_images=1)
    cfg = RunConfig(prepared=str(prepared), model="fake", progress=False, strategies=("S5",))  # type: ignore[arg-type]
    evaluate(cfg, tmp_path / "run", model=FakeModel())
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "draft.txt").write_text("my notes")
    with pytest.raises(DataError, match="not a sambench report run folder"):
        build_report(tmp_path / "run", out=mine, overlays=False)
    assert sorted(p.name for p in mine.iterdir()) == ["draft.txt"]
    assert (mine / "draft.txt").read_text() == "my notes"
    out = tmp_path / "run" / "report"
    (out).mkdir()
    (out / ".sambench-report").write_text("")  # an interrupted earlier build: rebuilt
    (out / "half.png").write_bytes(b"")
    build_report(tmp_path / "run", overlays=False)
    assert (out / "report.html").is_file()


@pytest.mark.parametrize(
    "args",
    [
        ["{missing}"],
        ["{prepared}", "--model", "nosuch"],
        ["{prepared}", "--model", "sam_vit_b", "--checkpoint", "{bad_ckpt}"],
    ],
    ids=["missing-prepared", "unknown-model", "bad-checkpoint"],
)
def test_a_refused_evaluate_leaves_no_run_folder(tmp_path: Path, args: list[str]) -> None:
    from sambench.cli import main

    from fakes import make_prepared

    prepared = make_prepared(tmp_path / "prepared")
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"not a checkpoint")
    values = {"missing": tmp_path / "nope", "prepared": prepared, "bad_ckpt": bad}
    out = tmp_path / "runs" / "new"
    argv = ["evaluate", *(a.format(**values) for a in args), "--out", str(out), "--no-progress"]
    assert main(argv) == 2
    assert not out.exists()
    # a folder the user made beforehand stays (empty), only what the run made is removed
    out.mkdir(parents=True)
    assert main(argv) == 2
    assert out.is_dir() and not any(out.iterdir())
