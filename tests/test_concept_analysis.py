"""The concept tables (:mod:`sambench.analysis.concept`) on hand-made rows with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sambench.analysis.concept import (
    concept_sentences,
    mcc,
    presence_table,
    target_table,
    worst_hallucination,
)


def _row(strategy: str, image: str, target: str, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "model": "sam3",
        "dataset": "d",
        "image_id": image,
        "object_name": target,
        "strategy": strategy,
        "status": "ok",
        "selection": "union",
        "phrase": target.lower(),
        "phrase_index": 0,
        "n_instances": 0,
        "pred_area": 0,
        "max_instance_score": float("nan"),
        "instance_type": False,
        "dice": float("nan"),
        "jaccard": float("nan"),
        "inst_n_gt": float("nan"),
        "inst_tp": float("nan"),
        "inst_f1": float("nan"),
        "inst_dice_tp": float("nan"),
    }
    base.update(kw)
    return base


@pytest.fixture()
def rows() -> pd.DataFrame:
    r = [
        # present: Liver found twice (IoU 60 %, 40 %), missed once; Polyp: 2 GT, 3 returned, 1 TP
        _row("T", "a", "Liver", n_instances=1, pred_area=50, dice=75.0, jaccard=60.0),
        _row("T", "b", "Liver", n_instances=2, pred_area=70, dice=57.0, jaccard=40.0),
        _row("T", "c", "Liver", dice=0.0, jaccard=0.0),
        _row(
            "T",
            "a",
            "Polyp",
            n_instances=3,
            dice=50.0,
            jaccard=33.0,
            instance_type=True,
            inst_n_gt=2,
            inst_tp=1,
            inst_f1=40.0,
            inst_dice_tp=90.0,
        ),
        # absent: Polyp asked on b and c (invented on c), Liver on d (nothing)
        _row("T-neg", "b", "Polyp"),
        _row("T-neg", "c", "Polyp", n_instances=2, pred_area=321, max_instance_score=0.9),
        _row("T-neg", "d", "Liver"),
        # paraphrases of Liver
        _row("T-para", "a", "Liver", phrase="liver", dice=80.0),
        _row("T-para", "a", "Liver", phrase="hepar", phrase_index=1, dice=20.0),
        _row("E", "a", "Liver", n_instances=1, dice=66.0),
    ]
    return pd.DataFrame(r)


def test_mcc_equals_pearson_of_binary_vectors() -> None:
    rng = np.random.default_rng(3)
    truth, said = rng.random(40) > 0.4, rng.random(40) > 0.5
    tp = int((truth & said).sum())
    fp = int((~truth & said).sum())
    fn = int((truth & ~said).sum())
    tn = int((~truth & ~said).sum())
    assert mcc(tp, fp, fn, tn) == pytest.approx(np.corrcoef(truth, said)[0, 1])
    assert mcc(3, 0, 0, 0) == 0.0  # a zero factor


def test_presence_and_cgf1(rows: pd.DataFrame) -> None:
    p = presence_table(rows).iloc[0]
    # image level: positives a, b, c (Liver) + a (Polyp): returned on 3 -> TP 3, FN 1;
    # negatives: Polyp b (no), Polyp c (yes), Liver d (no) -> FP 1, TN 2
    assert (p["IL TP"], p["IL FN"], p["IL FP"], p["IL TN"]) == (3, 1, 1, 2)
    assert p["IL precision"] == pytest.approx(75.0) and p["IL recall"] == pytest.approx(75.0)
    il = (3 * 2 - 1 * 1) / math.sqrt(4 * 4 * 3 * 3)
    assert p["IL_MCC"] == pytest.approx(il)
    # pmF1 at IoU 0.5: Liver a TP; Liver b FP + FN (IoU 40 %); Liver c FN; Polyp TP 1 FP 2 FN 1
    tp, fp, fn = 2, 3, 3
    pm = 2 * tp / (2 * tp + fp + fn)
    assert p["pmF1@0.5"] == pytest.approx(100 * pm)
    assert p["cgF1-like"] == pytest.approx(100 * pm * il)


def test_target_table(rows: pd.DataFrame) -> None:
    t = target_table(rows).set_index("object_name")
    assert t.loc["Liver", "n_T"] == 3 and t.loc["Liver", "dice_T"] == pytest.approx(44.0)
    assert t.loc["Polyp", "fp_rate"] == pytest.approx(50.0) and t.loc["Liver", "fp_rate"] == 0
    assert t.loc["Polyp", "inst_f1_T"] == pytest.approx(40.0)
    assert t.loc["Liver", "para_spread"] == pytest.approx(60.0)
    assert t.loc["Liver", "dice_E"] == pytest.approx(66.0)


def test_worst_hallucination(rows: pd.DataFrame) -> None:
    w = worst_hallucination(rows)
    assert w is not None
    assert (w["target"], w["image_id"], w["area"], w["n_fp"], w["n_neg"]) == (
        "Polyp",
        "c",
        321,
        1,
        2,
    )
    assert any("Worst hallucination" in s and "'polyp'" in s for s in concept_sentences(rows))
    quiet = rows[rows["strategy"] != "T-neg"]
    assert worst_hallucination(quiet) is None
    honest = rows.copy()
    honest.loc[honest["strategy"] == "T-neg", "n_instances"] = 0
    assert worst_hallucination(honest) is None
    assert any("No hallucination" in s for s in concept_sentences(honest))
