"""Prompt-shift task (SPEC section 6) through the engine with a fake adapter, and Table 8."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sambench.analysis.robustness import (
    is_unshifted,
    shift_drop_long,
    shift_drop_table,
)
from sambench.engine.config import RunConfig
from sambench.engine.context import ImageContext, ObjectTarget
from sambench.engine.evaluate import evaluate
from sambench.engine.shift_task import ShiftTask, shift_generator
from sambench.engine.single_round import SingleRoundTask
from sambench.metrics import MetricConfig
from sambench.prompts.shift import SHIFT_RANGES, range_label

from fakes import FakeModel, make_prepared
from shared_data import REFERENCE

STRATS = ("S2", "S4", "S5")


def run(tmp_path, name: str, repeats: int = 2, seed: int = 0, n_images: int = 2):
    root = tmp_path / "prep"
    if not root.exists():
        make_prepared(root, n_images=n_images)
    model = FakeModel()
    cfg = RunConfig(prepared=str(root), model="fake", strategies=STRATS, progress=False)
    tasks = [SingleRoundTask(STRATS), ShiftTask(STRATS, repeats=repeats, seed=seed)]
    df = evaluate(cfg, tmp_path / name, model=model, tasks=tasks)
    return df, model


@pytest.fixture(scope="module")
def shifted_run(tmp_path_factory):
    return run(tmp_path_factory.mktemp("shift"), "out")


def test_rows_encode_once_and_batch(shifted_run):
    df, model = shifted_run
    n_img, n_obj, n_sel, reps = 2, 2, 2, 2
    assert model.embed_calls == n_img
    # One predict per strategy (unshifted) + one per (strategy, range, repeat), per image.
    assert model.predict_calls == n_img * len(STRATS) * (1 + len(SHIFT_RANGES) * reps)
    assert len(df) == n_img * n_obj * len(STRATS) * n_sel * (1 + len(SHIFT_RANGES) * reps)
    shifted = df[~is_unshifted(df)]
    assert sorted(shifted["shift_range"].unique()) == ["0-10", "10-20", "20-30"]
    assert sorted(shifted["shift_repeat"].astype(int).unique()) == [1, 2]
    assert (shifted["status"] == "ok").all()
    counts = shifted.groupby(["shift_range", "shift_repeat", "strategy"]).size()
    assert (counts == n_img * n_obj * n_sel).all()


def _unordered_ok(new: float, old: tuple[float, float], lo: float, hi: float, top: float) -> bool:
    return any(lo - 0.011 <= abs(new - o) <= hi + 0.011 or new in (0.0, top) for o in old)


def test_shifts_lie_in_their_ranges(shifted_run):
    df, _ = shifted_run
    df = df[df["selection"] == "oracle"]
    base = df[is_unshifted(df)].set_index(["image_id", "label_value", "strategy"])["prompt"]
    W, H = 80, 64  # make_prepared's image size
    top = np.array([W - 1, H - 1], float)
    checked = 0
    for row in df[~is_unshifted(df)].itertuples():
        lo, hi = (float(v) for v in row.shift_range.split("-"))
        old = json.loads(base.loc[(row.image_id, row.label_value, row.strategy)])
        new = json.loads(row.prompt)
        if "points" in old:
            p0, p1 = np.array(old["points"]), np.array(new["points"])
            assert new["labels"] == old["labels"]  # labels never change
            d = np.abs(p1 - p0)
            clipped = (p1 == 0) | (p1 == top)
            assert ((d >= lo - 0.011) & (d <= hi + 0.011) | clipped).all()
            checked += d.size
        if "box" in old:
            b0, b1 = old["box"], new["box"]
            assert b1[0] <= b1[2] and b1[1] <= b1[3]
            for new_edge, pair, t in (
                (b1[0], (b0[0], b0[2]), W - 1),
                (b1[2], (b0[0], b0[2]), W - 1),
                (b1[1], (b0[1], b0[3]), H - 1),
                (b1[3], (b0[1], b0[3]), H - 1),
            ):
                assert _unordered_ok(new_edge, pair, lo, hi, t)
            checked += 4
    assert checked > 100


def test_larger_ranges_move_further(shifted_run):
    df, _ = shifted_run
    df = df[(df["selection"] == "oracle") & (df["strategy"] == "S2")]
    base = df[is_unshifted(df)].set_index(["image_id", "label_value"])["prompt"]
    mean_move = {}
    for rng_label, g in df[~is_unshifted(df)].groupby("shift_range"):
        moves = [
            np.abs(
                np.array(json.loads(r.prompt)["points"])
                - np.array(json.loads(base.loc[(r.image_id, r.label_value)])["points"])
            ).mean()
            for r in g.itertuples()
        ]
        mean_move[rng_label] = float(np.mean(moves))
    assert mean_move["0-10"] < mean_move["10-20"] < mean_move["20-30"]


def test_deterministic_across_runs_and_seed_matters(shifted_run, tmp_path):
    df, _ = shifted_run
    again, _ = run(tmp_path, "again")
    cols = ["image_id", "label_value", "strategy", "selection", "shift_range", "shift_repeat"]
    a = df.sort_values(cols).reset_index(drop=True)
    b = again.sort_values(cols).reset_index(drop=True)
    pd.testing.assert_series_equal(a["prompt"], b["prompt"])
    pd.testing.assert_series_equal(a["dice"], b["dice"])
    other, _ = run(tmp_path, "seed1", seed=1)
    o = other.sort_values(cols).reset_index(drop=True)
    sh = ~is_unshifted(a)
    assert (a.loc[sh, "prompt"] != o.loc[sh, "prompt"]).mean() > 0.9
    assert (a.loc[~sh, "prompt"] == o.loc[~sh, "prompt"]).all()
    # Repeats differ from each other.
    r = a[sh & (a["selection"] == "oracle")]
    p1 = r[r["shift_repeat"] == 1]["prompt"].to_numpy()
    p2 = r[r["shift_repeat"] == 2]["prompt"].to_numpy()
    assert (p1 != p2).all()


def test_independent_of_object_order_and_other_strategies():
    h, w = 40, 50
    m1 = np.zeros((h, w), bool)
    m1[5:15, 5:20] = True
    m2 = np.zeros((h, w), bool)
    m2[20:35, 25:45] = True
    model = FakeModel()
    image = np.zeros((h, w), np.uint8)
    objs = [
        ObjectTarget(row={"image_id": "im", "label_value": v, "dataset": "d"}, mask=m)
        for v, m in ((1, m1), (2, m2))
    ]

    def rows(objects, strategies):
        ctx = ImageContext(
            image=image,
            objects=objects,
            embedding=model.embed(image),
            model=model,
            metric_config=MetricConfig(),
            multimask=None,
            embed_seconds=0.0,
            embedding_cached=False,
        )
        out = pd.DataFrame(ShiftTask(strategies, repeats=1, seed=3)(ctx))
        out = out[out["strategy"] == "S5"]
        return out.set_index(["label_value", "shift_range", "selection"])["prompt"].sort_index()

    forward = rows(objs, ("S5",))
    backward = rows(objs[::-1], ("S2", "S5"))
    pd.testing.assert_series_equal(forward, backward)


def test_shift_generator_entropy():
    g = shift_generator(0, 1, (0, 10), "a", 1, "S2").random()
    assert g == shift_generator(0, 1, (0, 10), "a", 1, "S2").random()
    for args in [
        (1, 1, (0, 10), "a", 1, "S2"),
        (0, 2, (0, 10), "a", 1, "S2"),
        (0, 1, (10, 20), "a", 1, "S2"),
        (0, 1, (0, 10), "b", 1, "S2"),
        (0, 1, (0, 10), "a", 2, "S2"),
        (0, 1, (0, 10), "a", 1, "S3"),
    ]:
        assert shift_generator(*args).random() != g


def test_shift_task_validates():
    with pytest.raises(ValueError, match="S2, S3, S4, S5, S6"):
        ShiftTask(("S9",))
    with pytest.raises(ValueError, match="repeats"):
        ShiftTask(("S2",), repeats=0)
    with pytest.raises(ValueError, match="seed"):
        ShiftTask(("S2",), seed=-1)
    with pytest.raises(ValueError, match="ranges"):
        ShiftTask(("S2",), ranges=((10, 5),))
    with pytest.raises(ValueError, match="paper, authors-code"):
        ShiftTask(("S2",), prompt_rules="x")


# ------------------------------------------------------------------ Table 8


def hand_results() -> pd.DataFrame:
    """Two objects, strategies S2 and S5; known drops."""
    rows = []
    key = dict(dataset="d", model="m", selection="oracle", status="ok")
    base = {("a", 1, "S2"): 80.0, ("a", 2, "S2"): 60.0, ("a", 1, "S5"): 90.0, ("a", 2, "S5"): 70.0}
    for (img, lv, s), d in base.items():
        rows.append(dict(key, image_id=img, label_value=lv, strategy=s, dice=d))  # no shift columns
    # shifted DICE = base - drop(range, repeat, strategy) - 2 * (object 2)
    drop = {"S2": 1.0, "S5": 3.0}
    for rng_label, factor in (("0-10", 1), ("10-20", 4)):
        for rep in (1, 2):
            for (img, lv, s), d in base.items():
                dd = factor * drop[s] * rep + (2.0 if lv == 2 else 0.0)
                rows.append(
                    dict(
                        key,
                        image_id=img,
                        label_value=lv,
                        strategy=s,
                        dice=d - dd,
                        shift_range=rng_label,
                        shift_repeat=rep,
                    )
                )
    # A score-selection row and a skipped shifted row must not count.
    rows.append(
        dict(
            key,
            image_id="a",
            label_value=1,
            strategy="S2",
            dice=0.0,
            selection="score",
            shift_range="0-10",
            shift_repeat=1,
        )
    )
    rows.append(
        dict(
            key,
            image_id="b",
            label_value=1,
            strategy="S2",
            dice=np.nan,
            status="skipped",
            shift_range="0-10",
            shift_repeat=1,
        )
    )
    return pd.DataFrame(rows)


def test_shift_drop_table_known_answer():
    t = shift_drop_table(hand_results())
    assert list(t.columns) == ["model", "shift_px", "repeat", "S2", "S5"]
    assert list(zip(t["shift_px"], t["repeat"], strict=True)) == [
        ("0-10", "1"), ("0-10", "2"), ("0-10", "mean"),
        ("10-20", "1"), ("10-20", "2"), ("10-20", "mean"),
    ]  # fmt: skip
    # mean drop over the two objects = factor * drop * rep + 1
    expected_s2 = [2.0, 3.0, 2.5, 5.0, 9.0, 7.0]
    expected_s5 = [4.0, 7.0, 5.5, 13.0, 25.0, 19.0]
    np.testing.assert_allclose(t["S2"], expected_s2)
    np.testing.assert_allclose(t["S5"], expected_s5)
    long = shift_drop_long(hand_results())
    assert (long["n"] == 2).all()
    ref_cols = pd.read_csv(REFERENCE / "paper-table8-prompt-shift-dice-drop.csv").columns
    assert ref_cols[0] == "shift_px" and "shift_px" in t.columns


def test_shift_drop_table_from_engine_run(shifted_run):
    df, _ = shifted_run
    t = shift_drop_table(df)
    assert set(t["shift_px"]) == {range_label(r) for r in SHIFT_RANGES}
    assert list(t.columns[3:]) == list(STRATS)
    assert len(t) == len(SHIFT_RANGES) * 3  # repeats 1, 2 and the mean
    # The fake box model is exact unshifted: shifting a box can only lose DICE.
    assert (t["S5"] > 0).all()


def test_shift_drop_table_needs_shift_rows():
    df = hand_results().drop(columns=["shift_range", "shift_repeat"])
    with pytest.raises(ValueError, match="ShiftTask"):
        shift_drop_table(df)
