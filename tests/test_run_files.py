"""Run output split by protocol (results / results_score / shift / interactive / everything),
prompts.jsonl written and replayed (--prompts), interactive start from the S5 box."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sambench.engine.config import RunConfig
from sambench.engine.context import ImageContext
from sambench.engine.evaluate import evaluate
from sambench.engine.single_round import scored_rows
from sambench.engine.tasks import build_tasks
from sambench.errors import DataError
from sambench.prompts.types import Prompts
from sambench.store.run_files import load_all, load_run

from fakes import FakeModel, make_prepared

FILES = (
    "results.parquet",
    "results_score.parquet",
    "shift.parquet",
    "interactive.parquet",
    "everything.parquet",
)


@dataclass
class FakeS1Task:
    """S1 rows without a real generator: the object's own mask as the one generated mask."""

    name: str = "everything"

    def __call__(self, ctx: ImageContext) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        for obj in ctx.objects:
            ys, xs = np.nonzero(obj.mask)
            p = Prompts(points=np.array([[xs[0], ys[0]]], float), labels=np.ones(1, np.int64))
            rows += scored_rows(
                ctx, obj, "S1", obj.mask[None], np.array([0.9], np.float32), p, 0.0,
                grid=4, n_generated=1, stability_score=0.95, s1_image_seconds=0.0,
            )  # fmt: skip
        return rows


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    return make_prepared(tmp_path / "prepared")


def cfg(prepared: Path, **kw: object) -> RunConfig:
    base: dict[str, object] = dict(prepared=str(prepared), model="fake", progress=False)
    base.update(kw)
    return RunConfig(**base)  # type: ignore[arg-type]


ALL = dict(
    strategies=("S1", "S2", "S3", "S4", "S5", "S6", "interactive"),
    shift=True,
    shift_repeats=1,
    max_clicks=3,
)


def run_all(prepared: Path, out: Path, model: FakeModel | None = None) -> pd.DataFrame:
    c = cfg(prepared, **ALL)
    tasks = [FakeS1Task(), *(t for t in build_tasks(c, out) if t.name != "everything")]
    return evaluate(c, out, model=model or FakeModel(), tasks=tasks, flush_every=1)


def test_run_writes_one_table_per_protocol(prepared: Path, tmp_path: Path) -> None:
    every = run_all(prepared, tmp_path / "run")
    for name in (*FILES, "prompts.jsonl"):
        assert (tmp_path / "run" / name).is_file(), name
    res = pd.read_parquet(tmp_path / "run" / "results.parquet")
    assert set(res["strategy"]) == {"S2", "S3", "S4", "S5", "S6"}
    assert set(res["selection"]) == {"oracle"}
    assert "shift_range" not in res.columns and "click_index" not in res.columns
    assert "grid" not in res.columns
    # a plain groupby gives one mean per strategy over one row per object
    assert (res.groupby("strategy").size() == 4 * 2).all()
    score = pd.read_parquet(tmp_path / "run" / "results_score.parquet")
    assert set(score["selection"]) == {"score"} and len(score) == len(res)
    shift = pd.read_parquet(tmp_path / "run" / "shift.parquet")
    assert shift["shift_range"].notna().all() and "click_index" not in shift.columns
    inter = pd.read_parquet(tmp_path / "run" / "interactive.parquet")
    assert set(inter["strategy"]) == {"interactive"} and set(inter["click_index"]) == {1, 2, 3}
    s1 = pd.read_parquet(tmp_path / "run" / "everything.parquet")
    assert set(s1["strategy"]) == {"S1"} and "shift_range" not in s1.columns
    # nothing lost: the tables together hold every row of the run
    assert len(load_all(tmp_path / "run")) == len(every)
    tables = load_run(tmp_path / "run")
    assert set(tables) == {"single_round", "shift", "interactive", "everything"}
    assert set(tables["single_round"]["selection"]) == {"oracle", "score"}


def test_only_the_protocols_that_ran(prepared: Path, tmp_path: Path) -> None:
    evaluate(cfg(prepared, strategies=("S5",)), tmp_path / "r", model=FakeModel())
    present = {n for n in FILES if (tmp_path / "r" / n).exists()}
    assert present == {"results.parquet", "results_score.parquet"}


def test_resume_after_kill_gives_identical_files(
    prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_all(prepared, tmp_path / "full")
    model = FakeModel()
    original = model.embed
    calls = {"n": 0}

    def dying_embed(image: np.ndarray):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(image)

    monkeypatch.setattr(model, "embed", dying_embed)
    with pytest.raises(KeyboardInterrupt):
        run_all(prepared, tmp_path / "resumed", model)
    assert not any((tmp_path / "resumed" / n).exists() for n in FILES)
    run_all(prepared, tmp_path / "resumed")
    drop = ["embed_seconds", "decode_seconds", "embedding_cached"]
    for name in FILES:
        a = pd.read_parquet(tmp_path / "full" / name).drop(columns=drop)
        b = pd.read_parquet(tmp_path / "resumed" / name).drop(columns=drop)
        pd.testing.assert_frame_equal(a, b, obj=name)
    a_lines = (tmp_path / "full" / "prompts.jsonl").read_text()
    assert a_lines == (tmp_path / "resumed" / "prompts.jsonl").read_text()


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_prompts_file_content(prepared: Path, tmp_path: Path) -> None:
    run_all(prepared, tmp_path / "run")
    recs = _lines(tmp_path / "run" / "prompts.jsonl")
    single = [r for r in recs if r["strategy"] in ("S2", "S3", "S4", "S5", "S6")]
    plain = [r for r in single if "shift_repeat" not in r]
    assert len(plain) == 4 * 2 * 5  # one per object and strategy, not per selection
    assert len(single) - len(plain) == 4 * 2 * 5 * 3  # 3 shift ranges x 1 repeat
    s5 = next(r for r in plain if r["strategy"] == "S5")
    assert s5["points"] is None and len(s5["box"]) == 4  # type: ignore[arg-type]
    s4 = next(r for r in plain if r["strategy"] == "S4")
    pts = np.asarray(s4["points"])
    assert pts.shape[1] == 2 and len(s4["point_labels"]) == len(pts) > 1  # type: ignore[arg-type]
    assert {r["strategy"] for r in recs} >= {"S1", "interactive"}
    for key in ("dataset", "image_id", "label_value", "object_name", "status"):
        assert all(key in r for r in recs)


METRICS = ["dice", "jaccard", "hd", "hd95", "assd", "nsd", "candidate_index"]
KEY = ["image_id", "label_value", "strategy", "selection"]


def test_replay_gives_identical_results_and_an_edit_changes_one_object(
    prepared: Path, tmp_path: Path
) -> None:
    first = evaluate(cfg(prepared), tmp_path / "a", model=FakeModel())
    file = tmp_path / "a" / "prompts.jsonl"
    replayed = evaluate(cfg(prepared, prompts_file=str(file)), tmp_path / "b", model=FakeModel())
    a = first.sort_values(KEY).reset_index(drop=True)
    b = replayed.sort_values(KEY).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[[*KEY, *METRICS, "prompt"]], b[[*KEY, *METRICS, "prompt"]])

    recs = _lines(file)
    target = next(r for r in recs if r["strategy"] == "S5")
    x0, y0, x1, y1 = target["box"]  # type: ignore[misc]
    target["box"] = [x0, y0, x1 - 4, y1]  # narrower box
    edited = tmp_path / "edited.jsonl"
    edited.write_text("".join(json.dumps(r) + "\n" for r in recs))
    c = evaluate(cfg(prepared, prompts_file=str(edited)), tmp_path / "c", model=FakeModel())
    c = c.sort_values(KEY).reset_index(drop=True)
    changed = (a["dice"] != c["dice"]).to_numpy()
    hit = (
        (a["image_id"] == target["image_id"])
        & (a["label_value"] == target["label_value"])
        & (a["strategy"] == "S5")
    ).to_numpy()
    assert changed[hit].all() and not changed[~hit].any()


def test_replay_missing_key_names_file_and_key(prepared: Path, tmp_path: Path) -> None:
    evaluate(cfg(prepared, strategies=("S2",)), tmp_path / "a", model=FakeModel())
    file = tmp_path / "a" / "prompts.jsonl"
    with pytest.raises(DataError, match=r"prompts.jsonl: no prompt for .*strategy='S5'"):
        evaluate(cfg(prepared, prompts_file=str(file), strategies=("S2", "S5")), tmp_path / "b",
                 model=FakeModel())  # fmt: skip
    assert not (tmp_path / "b").exists()  # refused before the run folder is made
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"dataset": "toy"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl: line 1: missing keys"):
        evaluate(cfg(prepared, prompts_file=str(bad)), tmp_path / "c", model=FakeModel())


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("far_box", r"the box is outside the image \(80x64 px: x in 0..79, y in 0..63\)"),
        ("negative_point", r"a point is outside the image \(80x64 px"),
        ("inverted_box", r"'box' \[.*\] is inverted; expected \[x_min, y_min, x_max, y_max\]"),
        ("nan_box", r"'box' values must be finite numbers"),
        ("label_7", r"'point_labels' must be 1 \(positive\) or 0 \(negative\)"),
    ],
)
def test_replay_refuses_prompts_outside_the_image_naming_file_line_and_image(
    prepared: Path, tmp_path: Path, damage: str, match: str
) -> None:
    """Before, such prompts gave status=ok rows with DICE 0 (counted as model failures) or an
    error naming no file: now a DataError naming the file, the line and the image."""
    evaluate(cfg(prepared, strategies=("S2", "S5")), tmp_path / "a", model=FakeModel())
    recs = _lines(tmp_path / "a" / "prompts.jsonl")
    strategy = "S2" if damage in ("negative_point", "label_7") else "S5"
    n, target = next((n, r) for n, r in enumerate(recs, 1) if r["strategy"] == strategy)
    if damage == "far_box":
        target["box"] = [500, 500, 600, 600]
    elif damage == "negative_point":
        target["points"] = [[-3.0, 5.0]]
    elif damage == "inverted_box":
        x0, y0, x1, y1 = target["box"]  # type: ignore[misc]
        target["box"] = [x1, y0, x0, y1]
    elif damage == "nan_box":
        target["box"] = [float("nan"), 1, 2, 3]
    else:
        target["point_labels"] = [7] * len(target["point_labels"])  # type: ignore[arg-type]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in recs))
    where = rf"bad\.jsonl: line {n} \(image_id '{target['image_id']}', {strategy}\): "
    with pytest.raises(DataError, match=where + f"(?:{match})"):
        evaluate(cfg(prepared, prompts_file=str(bad), strategies=("S2", "S5")), tmp_path / "b",
                 model=FakeModel())  # fmt: skip
    assert not (tmp_path / "b").exists()  # refused before the run folder is made


def test_replay_of_a_file_that_is_not_utf8_names_the_line(prepared: Path, tmp_path: Path) -> None:
    from sambench.engine.prompt_file import ReplayPrompts

    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(b'{"dataset": "toy"}\n{"object_name": "C\xf4te"}\n')
    with pytest.raises(DataError, match=r"latin1\.jsonl: line 2: not UTF-8 text \(byte 0xf4\)"):
        ReplayPrompts(bad)
    bad.write_text('{"dataset": "toy", "image_id": "i", "label_value": "x", "strategy": "S5"}\n')
    with pytest.raises(DataError, match=r"line 1: 'label_value' must be an integer, got 'x'"):
        ReplayPrompts(bad)


def test_interactive_start_with_box(prepared: Path, tmp_path: Path) -> None:
    c = cfg(prepared, strategies=("S5", "interactive"), max_clicks=3, start_with="box")
    every = evaluate(c, tmp_path / "r", model=FakeModel())
    inter = every[every["strategy"] == "interactive"]
    assert set(inter["start_with"]) == {"box"}
    r1 = inter[inter["click_index"] == 1].set_index(["image_id", "label_value"])
    s5 = every[(every["strategy"] == "S5") & (every["selection"] == "score")]
    s5 = s5.set_index(["image_id", "label_value"])
    # round 1 is the S5 box with the run's multimask setting: the S5 score-selected mask
    pd.testing.assert_series_equal(r1["dice"].sort_index(), s5["dice"].sort_index())
    assert (r1["click_x"] == -1).all()
    later = inter[(inter["click_index"] == 2) & ~inter["carried_forward"]]
    assert len(later) > 0
    for p in later["prompt"]:
        d = json.loads(p)
        assert "box" in d and len(d["points"]) == 1  # the box is kept, one corrective click
    point = evaluate(
        cfg(prepared, strategies=("interactive",), max_clicks=1), tmp_path / "p", model=FakeModel()
    )
    assert set(point["start_with"]) == {"point"} and (point["click_x"] >= 0).all()


def test_cli_evaluate_has_prompts_and_start_with_options() -> None:
    from typer.testing import CliRunner

    from sambench.cli import app

    res = CliRunner().invoke(app, ["evaluate", "--help"], terminal_width=200)
    assert res.exit_code == 0
    assert "--prompts" in res.output and "--start-with" in res.output


class PromptedSingle(FakeModel):
    """A fake whose ``--multimask auto`` for prompted strategies is one candidate."""

    prompted_multimask = False


@pytest.mark.parametrize(("setting", "k"), [("auto", 1), ("on", 3), ("off", 1)])
def test_auto_multimask_follows_the_adapters_prompted_default(
    prepared: Path, tmp_path: Path, setting: str, k: int
) -> None:
    c = cfg(prepared, strategies=("S5",), multimask=setting, shift=True, shift_repeats=1)
    res = evaluate(c, tmp_path / setting, model=PromptedSingle())
    assert set(res["n_candidates"]) == {k}  # S5 and its shifted repeats
    plain = evaluate(cfg(prepared, strategies=("S5",)), tmp_path / "plain", model=FakeModel())
    assert set(plain["n_candidates"]) == {3}  # no prompted_multimask: the adapter's own default
