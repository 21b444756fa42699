"""HCE columns in every evaluated row (engine, fake adapter) and the per-strategy HCE summary."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sambench.analysis.effort import hce_summary, hce_table
from sambench.analysis.summary import write_tables
from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate
from sambench.metrics import human_correction_effort

from fakes import FakeModel, make_prepared


def test_every_evaluated_row_has_hce(tmp_path: Path) -> None:
    prepared = make_prepared(tmp_path / "prepared", n_images=2)
    cfg = RunConfig(prepared=str(prepared), model="fake", progress=False, strategies=("S2", "S5"))  # type: ignore[arg-type]
    evaluate(cfg, tmp_path / "run", model=FakeModel(), flush_every=1)
    res = pd.concat(
        [
            pd.read_parquet(tmp_path / "run" / n)
            for n in ("results.parquet", "results_score.parquet")
        ]
    )
    ok = res[res["status"] == "ok"]
    assert len(ok) == 2 * 2 * 2 * 2  # images x objects x strategies x selections
    assert np.isfinite(ok[["hce", "hce_fp", "hce_fn"]].to_numpy()).all()
    assert (ok["hce"] == ok["hce_fp"] + ok["hce_fn"]).all()
    # the score selection of the Box is the rectangle (its filled tight box) shifted right 3 px
    s5 = ok[ok["strategy"] == "S5"]
    row = s5[(s5["object_name"] == "Box") & (s5["selection"] == "score")].iloc[0]
    lab = np.asarray(Image.open(prepared / row["label_path"])) == 85
    expected = human_correction_effort(np.roll(lab, 3, axis=1), lab)
    assert (row["hce"], row["hce_fp"], row["hce_fn"]) == (
        expected.hce,
        expected.hce_fp,
        expected.hce_fn,
    )
    assert expected.hce == 0  # 3-px strips are thinner than relax = 5: relaxed away
    oracle = s5[(s5["object_name"] == "Box") & (s5["selection"] == "oracle")]
    assert (oracle["hce"] == 0).all()  # the filled tight box is the rectangle itself
    # S2 (one centre click -> a disc of radius 6) leaves most of each object to draw
    s2 = ok[ok["strategy"] == "S2"]
    assert (s2["hce"] > 0).any()


def _results() -> pd.DataFrame:
    def row(obj: str, strat: str, sel: str, status: str, hce: float, fp: float, fn: float) -> dict:
        return dict(
            object_name=obj,
            modality="CT",
            model="m",
            strategy=strat,
            selection=sel,
            status=status,
            hce=hce,
            hce_fp=fp,
            hce_fn=fn,
        )

    rows = []
    # two targets, strategies S2 and S1 (listed out of order), oracle + one score row
    for obj, hces in (
        ("Liver", {"S2": [4, 6], "S1": [10, 20]}),
        ("Kidney", {"S2": [1], "S1": [3]}),
    ):
        for strat, vals in hces.items():
            for v in vals:
                rows.append(row(obj, strat, "oracle", "ok", float(v), 1.0, float(v) - 1))
    rows.append(row("Liver", "S2", "oracle", "skipped", math.nan, math.nan, math.nan))
    rows.append(row("Liver", "S2", "score", "ok", 100.0, 50.0, 50.0))
    return pd.DataFrame(rows)


def test_hce_summary_means_per_target_and_strategy() -> None:
    s = hce_summary(_results(), main=False)
    assert list(s.columns) == [
        "target_modality",
        "model",
        "strategy",
        "n",
        "n_skipped",
        "hce",
        "hce_std",
        "hce_fp",
        "hce_fn",
    ]
    liver = s[s["target_modality"] == "Liver-CT"].set_index("strategy")
    assert list(liver.index) == ["S1", "S2"]  # strategy order, not row order
    assert liver.loc["S2", "hce"] == 5.0 and liver.loc["S2", "n"] == 2
    assert liver.loc["S2", "n_skipped"] == 1
    assert liver.loc["S2", "hce_std"] == pytest.approx(math.sqrt(2.0))
    assert liver.loc["S1", "hce_fn"] == 14.0
    pooled = hce_summary(_results(), by=None, main=False).set_index("strategy")
    assert pooled.loc["S1", "hce"] == pytest.approx(11.0)  # (10 + 20 + 3) / 3
    assert pooled.loc["S2", "hce"] == pytest.approx(11 / 3)  # (4 + 6 + 1) / 3, score row left out
    score = hce_summary(_results(), by=None, selection="score", main=False)
    assert score["hce"].tolist() == [100.0]


def test_hce_table_layout_and_missing_columns() -> None:
    res = _results()
    t = hce_table(res)
    assert list(t.columns) == ["target_modality", "S1", "S2"]
    assert t.set_index("target_modality").loc["Liver-CT", "S2"] == "5.00 (1.41)"
    with pytest.raises(ValueError, match="hce"):
        hce_summary(res.drop(columns=["hce", "hce_fp"]))


def test_write_tables_adds_the_hce_table_when_present(tmp_path: Path) -> None:
    res = _results().assign(
        image_id="a",
        embedding_cached=False,
        embed_seconds=1.0,
        decode_seconds=0.1,
        dice=50.0,
        jaccard=40.0,
        hd=3.0,
    )
    paths = write_tables(res, tmp_path / "with")
    t = pd.read_csv(paths["hce_by_target"])
    assert t.set_index("target_modality").loc["Kidney-CT", "S1"] == "3.00"
    old = write_tables(res.drop(columns=["hce", "hce_fp", "hce_fn"]), tmp_path / "old")
    assert "hce_by_target" not in old
