"""The concept tables (:mod:`sambench.analysis.concept`) on hand-made rows with known answers."""

from __future__ import annotations

import math
from pathlib import Path

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
        "case": f"case-{image}",
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
    p = presence_table(rows, rng=np.random.default_rng(0)).iloc[0]
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
    t = target_table(rows, rng=np.random.default_rng(0)).set_index("object_name")
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
    assert any(
        "Worst hallucination" in s and "'polyp'" in s
        for s in concept_sentences(rows, rng=np.random.default_rng(0))
    )
    quiet = rows[rows["strategy"] != "T-neg"]
    assert worst_hallucination(quiet) is None
    honest = rows.copy()
    honest.loc[honest["strategy"] == "T-neg", "n_instances"] = 0
    assert worst_hallucination(honest) is None
    assert any(
        "No hallucination" in s for s in concept_sentences(honest, rng=np.random.default_rng(0))
    )


# ---------------------------------------------------------------- CIs by case (SPEC 5b)


def _cases_table(n_cases: int) -> pd.DataFrame:
    """``n_cases`` cases of 2 images each: Liver present in both (T, seeded DICE), Polyp asked
    where absent (T-neg) on both, answered on every third image."""
    rng = np.random.default_rng(11)
    rows = []
    for c in range(n_cases):
        for k in range(2):
            image = f"c{c}-{k}"
            d = float(rng.uniform(20, 90))
            rows.append(_row("T", image, "Liver", case=f"p{c}", n_instances=1, dice=d, jaccard=d))
            hit = (2 * c + k) % 3 == 0
            rows.append(
                _row(
                    "T-neg",
                    image,
                    "Polyp",
                    case=f"p{c}",
                    n_instances=int(hit),
                    pred_area=40 * int(hit),
                    max_instance_score=0.7 if hit else float("nan"),
                )
            )
    return pd.DataFrame(rows)


def test_target_cis_equal_the_case_bootstrap_of_the_same_rows() -> None:
    from sambench.analysis.stats import case_bootstrap

    df = _cases_table(6)
    t = target_table(df, rng=np.random.default_rng(5)).set_index("object_name")
    # the reference: the same seed, the same order of draws (Liver's DICE, then Polyp's rate)
    ref = np.random.default_rng(5)
    liver = df[df["strategy"] == "T"]
    dice = case_bootstrap(liver["dice"], liver["case"], liver["dataset"], rng=ref)
    neg = df[df["strategy"] == "T-neg"]
    hit = 100.0 * (neg["n_instances"] > 0).astype(float)
    rate = case_bootstrap(hit, neg["case"], neg["dataset"], rng=ref)
    assert t.loc["Liver", "n_T"] == 12 and t.loc["Liver", "n_cases_T"] == 6
    assert t.loc["Liver", "dice_T"] == pytest.approx(liver["dice"].mean())
    assert (t.loc["Liver", "dice_T_ci_low"], t.loc["Liver", "dice_T_ci_high"]) == (
        pytest.approx(dice.low),
        pytest.approx(dice.high),
    )
    assert dice.low < dice.high and t.loc["Liver", "dice_T_ci_note"] == ""
    assert t.loc["Polyp", "n_neg"] == 12 and t.loc["Polyp", "n_cases_neg"] == 6
    assert t.loc["Polyp", "fp_rate"] == pytest.approx(100 * 4 / 12)  # images 0, 3, 6, 9
    assert (t.loc["Polyp", "fp_rate_ci_low"], t.loc["Polyp", "fp_rate_ci_high"]) == (
        pytest.approx(rate.low),
        pytest.approx(rate.high),
    )
    # by object (for comparison): the percentile bootstrap over the 12 objects
    from sambench.analysis.stats import bootstrap_ci

    o = target_table(df, rng=np.random.default_rng(5), unit="object").set_index("object_name")
    lo, hi = bootstrap_ci(liver["dice"].to_numpy(), rng=np.random.default_rng(5))
    assert (o.loc["Liver", "dice_T_ci_low"], o.loc["Liver", "dice_T_ci_high"]) == (
        pytest.approx(lo),
        pytest.approx(hi),
    )


def test_four_cases_are_too_few_and_zero_width_is_no_ci() -> None:
    df = _cases_table(4)
    t = target_table(df, rng=np.random.default_rng(0)).set_index("object_name")
    assert np.isnan(t.loc["Liver", "dice_T_ci_low"]) and np.isnan(t.loc["Liver", "dice_T_ci_high"])
    assert t.loc["Liver", "dice_T_ci_note"] == "n = 4 cases: too few"
    assert t.loc["Polyp", "fp_rate_ci_note"] == "n = 4 cases: too few"
    # 8 objects: by object there are enough units
    o = target_table(df, rng=np.random.default_rng(0), unit="object").set_index("object_name")
    assert o.loc["Liver", "dice_T_ci_note"] == "" and o.loc["Liver", "dice_T_ci_low"] > 0
    said = " ".join(concept_sentences(df, rng=np.random.default_rng(0)))
    assert "no CI: n = 4 cases: too few" in said and "8 objects in 4 cases" in said
    # an FP rate of 0 on every prompt: a bootstrap would have zero width, so no CI
    quiet = _cases_table(6)
    quiet.loc[quiet["strategy"] == "T-neg", "n_instances"] = 0
    q = target_table(quiet, rng=np.random.default_rng(0)).set_index("object_name")
    assert q.loc["Polyp", "fp_rate"] == 0 and np.isnan(q.loc["Polyp", "fp_rate_ci_low"])
    assert "every resample the same" == q.loc["Polyp", "fp_rate_ci_note"]


def test_presence_and_summary_cis_by_case() -> None:
    from sambench.analysis.stats import case_bootstrap

    df = _cases_table(6)
    df.loc[(df["strategy"] == "T") & (df["image_id"].str.endswith("-1")), "n_instances"] = 0
    p = presence_table(df, rng=np.random.default_rng(9)).iloc[0]
    ref = np.random.default_rng(9)
    both = df[df["strategy"].isin(["T", "T-neg"])]
    answered = both[both["n_instances"] > 0]
    prec = case_bootstrap(
        100.0 * (answered["strategy"] == "T"), answered["case"], answered["dataset"], rng=ref
    )
    pos = df[df["strategy"] == "T"]
    rec = case_bootstrap(100.0 * (pos["n_instances"] > 0), pos["case"], pos["dataset"], rng=ref)
    assert p["IL precision"] == pytest.approx(100 * 6 / 10) and p["cases"] == 6
    assert (p["IL precision_ci_low"], p["IL precision_ci_high"]) == (
        pytest.approx(prec.low),
        pytest.approx(prec.high),
    )
    # recall is 50 % in every case: the bootstrap has zero width, no CI
    assert p["IL recall"] == pytest.approx(50.0) and rec.low == rec.high == 50.0
    assert np.isnan(p["IL recall_ci_low"]) and "every resample the same" == p["IL recall_ci_note"]
    said = concept_sentences(df, rng=np.random.default_rng(9))
    t_line = next(s for s in said if "text prompts (T)" in s)
    assert "(95 % CI by case " in t_line and "12 objects in 6 cases" in t_line
    worst = next(s for s in said if s.startswith("Worst hallucination"))
    assert "4 of 12 images (33 %; 95 % CI by case " in worst and "6 cases" in worst
    assert "IL precision 60.0 % (95 % CI by case " in " ".join(said)


def test_report_section_shows_the_ci_cells(tmp_path: Path) -> None:
    from sambench.report import html as H
    from sambench.report.concept import text_prompts
    from sambench.report.context import ReportContext

    def section(df: pd.DataFrame, unit: str = "case") -> str:
        ctx = ReportContext(
            run_dir=tmp_path,
            out=tmp_path / unit,
            results=df,
            config=None,
            prepared=None,
            rng=np.random.default_rng(0),
            ci_unit=unit,
        )
        sec = H.Section("text", "Text")
        text_prompts(ctx, sec)
        return "".join(sec.parts)

    df = _cases_table(6)
    html = section(df)
    t = pd.read_csv(tmp_path / "case" / "tables" / "text_targets_sam3.csv")
    lo, hi = t.loc[0, "DICE T_ci_low"], t.loc[0, "DICE T_ci_high"]
    assert f"<td>{t.loc[0, 'DICE T']:.1f} ({lo:.1f} to {hi:.1f})</td>" in html
    assert "<th>DICE T (95 % CI)</th>" in html and "<th>FP rate T-neg % (95 % CI)</th>" in html
    a = pd.read_csv(tmp_path / "case" / "tables" / "text_absent_sam3.csv")
    rate = a.loc[0]
    assert (
        f"<td>33.3 ({rate['FP rate T-neg %_ci_low']:.1f} to "
        f"{rate['FP rate T-neg %_ci_high']:.1f})</td>" in html
    )
    assert "95 % CI by case (cluster bootstrap over cases within dataset" in html
    few = section(_cases_table(4), "case")
    assert "(no CI: n = 4 cases: too few)</td>" in few
    assert "95 % CI by object" in section(_cases_table(4), "object")


def test_report_section_of_phrasings_only(rows: pd.DataFrame, tmp_path: Path) -> None:
    from sambench.report import html as H
    from sambench.report.concept import text_prompts
    from sambench.report.context import ReportContext

    ctx = ReportContext(
        run_dir=tmp_path,
        out=tmp_path,
        results=rows[rows["strategy"] == "T-para"],
        config=None,
        prepared=None,
        rng=np.random.default_rng(0),
    )
    sec = H.Section("text", "Text")
    text_prompts(ctx, sec)
    t = pd.read_csv(tmp_path / "tables" / "text_targets_sam3.csv")
    assert list(t["target"]) == ["Liver"] and t.loc[0, "paraphrase spread (DICE points)"] == 60
    assert not (tmp_path / "tables" / "text_absent_sam3.csv").exists()
