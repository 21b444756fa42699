"""Statistics: partial Spearman vs pingouin, bootstrap CIs, paired Wilcoxon vs scipy, 3D DICE."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin
import pytest
from scipy import stats as sps

from sambench.analysis.stats import (
    attribute_correlations,
    bootstrap_ci,
    mean_with_ci,
    paired_wilcoxon,
    partial_spearman,
    table6_layout,
    volume_dice,
)

from shared_data import REFERENCE

ATTRS = ["size", "intensity_diff", "fourier_order", "modality_code", "aspect_ratio"]


def attr_frame(rng: np.random.Generator, n: int = 200) -> pd.DataFrame:
    """Attributes with a known structure: DICE rises with intensity_diff, falls with FO."""
    df = pd.DataFrame(
        {
            "size": rng.lognormal(6, 1, n),
            "intensity_diff": rng.uniform(0, 100, n),
            "fourier_order": rng.uniform(1, 50, n),
            "modality_code": rng.integers(0, 4, n),
            "aspect_ratio": rng.uniform(0.1, 1, n),
        }
    )
    df["dice"] = (
        40 + 0.5 * df["intensity_diff"] - 0.6 * df["fourier_order"] + rng.normal(0, 5, n)
    ).clip(0, 100)
    df["size"] += 5 * df["intensity_diff"]  # correlated covariate
    return df


# ------------------------------------------------------------------ partial Spearman


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_partial_spearman_equals_pingouin(seed):
    df = attr_frame(np.random.default_rng(seed))
    for a in ATTRS:
        covars = [c for c in ATTRS if c != a]
        r, p = partial_spearman(df, "dice", a, covars)
        ref = pingouin.partial_corr(df, x="dice", y=a, covar=covars, method="spearman")
        assert r == pytest.approx(float(ref["r"].iloc[0]), abs=1e-10)
        assert p == pytest.approx(float(ref["p_val"].iloc[0]), rel=1e-6, abs=1e-300)


def test_partial_spearman_known_structure_and_no_covariates():
    df = attr_frame(np.random.default_rng(3), n=400)
    r_id, p_id = partial_spearman(
        df, "dice", "intensity_diff", [c for c in ATTRS if c != "intensity_diff"]
    )
    r_fo, _ = partial_spearman(
        df, "dice", "fourier_order", [c for c in ATTRS if c != "fourier_order"]
    )
    r_ar, p_ar = partial_spearman(
        df, "dice", "aspect_ratio", [c for c in ATTRS if c != "aspect_ratio"]
    )
    assert r_id > 0.5 and p_id < 1e-10
    assert r_fo < -0.5
    assert abs(r_ar) < 0.2 and p_ar > 0.001
    # Without covariates it is the plain Spearman correlation.
    r, p = partial_spearman(df, "dice", "size", [])
    ref = sps.spearmanr(df["dice"], df["size"])
    assert r == pytest.approx(ref.statistic, abs=1e-10)
    assert p == pytest.approx(ref.pvalue, rel=1e-6)


def test_partial_spearman_drops_nan_and_handles_constants():
    df = attr_frame(np.random.default_rng(4), n=50)
    df.loc[[1, 5], "size"] = np.nan
    r, p = partial_spearman(df, "dice", "size", ["fourier_order"])
    ref = pingouin.partial_corr(df, x="dice", y="size", covar=["fourier_order"], method="spearman")
    assert int(ref["n"].iloc[0]) == 48
    assert p == pytest.approx(float(ref["p_val"].iloc[0]), rel=1e-6)
    assert r == pytest.approx(float(ref["r"].iloc[0]), abs=1e-10)
    df["const"] = 1.0
    r, p = partial_spearman(df, "dice", "const", ["size"])
    assert np.isnan(r) and np.isnan(p)
    with pytest.raises(ValueError, match="distinct"):
        partial_spearman(df, "dice", "size", ["size"])
    with pytest.raises(ValueError, match="missing columns"):
        partial_spearman(df, "dice", "nope", [])


def results_with_attrs(rng: np.random.Generator) -> pd.DataFrame:
    frames = []
    for model in ("vit_b", "vit_h"):
        for strategy in ("S5", "S2"):
            for sel in ("oracle", "score"):
                d = attr_frame(rng, 120)
                d["model"], d["strategy"], d["selection"], d["status"] = model, strategy, sel, "ok"
                frames.append(d)
    return pd.concat(frames, ignore_index=True)


def test_attribute_correlations_table6_layout():
    res = results_with_attrs(np.random.default_rng(5))
    res.loc[0, "status"] = "skipped"  # skipped rows do not count
    out = attribute_correlations(res)
    assert list(out[["model", "strategy"]].itertuples(index=False, name=None)) == [
        ("vit_b", "S2"),
        ("vit_b", "S5"),
        ("vit_h", "S2"),
        ("vit_h", "S5"),
    ]
    first = res[(res.model == "vit_b") & (res.strategy == "S5") & (res.selection == "oracle")]
    first = first[first.status == "ok"]
    row = out[(out.model == "vit_b") & (out.strategy == "S5")].iloc[0]
    assert row["n"] == len(first) == 119
    for a in ATTRS:
        ref = pingouin.partial_corr(
            first, x="dice", y=a, covar=[c for c in ATTRS if c != a], method="spearman"
        )
        assert row[a] == pytest.approx(float(ref["r"].iloc[0]), abs=1e-10)
        assert row[f"{a}_p"] == pytest.approx(float(ref["p_val"].iloc[0]), rel=1e-6, abs=1e-300)
        assert row[f"{a}_cell"].endswith("*") == (row[f"{a}_p"] < 0.001)
    assert row["intensity_diff_cell"] == f"{row['intensity_diff']:.3f}*"
    wide = table6_layout(out)
    ref_cols = pd.read_csv(REFERENCE / "paper-table6-spearman-partial.csv").columns
    assert list(wide.columns) == list(ref_cols)
    assert wide.loc[wide.strategy == "S5", "size_vit_b"].iloc[0] == row["size"]
    # rows in the paper's strategy order whatever the order of the input
    shuffled = table6_layout(out.iloc[::-1].reset_index(drop=True))
    assert list(shuffled["strategy"]) == ["S2", "S5"]


def test_attribute_correlations_constant_modality_is_nan():
    res = results_with_attrs(np.random.default_rng(6))
    res["modality_code"] = 0
    out = attribute_correlations(res)
    assert out["modality_code"].isna().all()
    g = res[(res.model == "vit_h") & (res.strategy == "S2") & (res.selection == "oracle")]
    others = ["intensity_diff", "fourier_order", "aspect_ratio"]
    r, _ = partial_spearman(g, "dice", "size", others)
    assert out[(out.model == "vit_h") & (out.strategy == "S2")]["size"].iloc[0] == pytest.approx(r)


# ------------------------------------------------------------------ bootstrap


def test_bootstrap_ci_contains_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small = rng.normal(50, 10, 30)
    big = rng.normal(50, 10, 3000)
    lo_s, hi_s = bootstrap_ci(small, rng=np.random.default_rng(1))
    lo_b, hi_b = bootstrap_ci(big, rng=np.random.default_rng(1))
    assert lo_s < small.mean() < hi_s and lo_b < big.mean() < hi_b
    assert hi_b - lo_b < (hi_s - lo_s) / 5
    # Normal theory: width about 2 * 1.96 * s / sqrt(n).
    assert hi_b - lo_b == pytest.approx(2 * 1.96 * big.std(ddof=1) / np.sqrt(big.size), rel=0.15)


def test_bootstrap_ci_seeded_and_matches_scipy():
    v = np.random.default_rng(2).exponential(10, 200)
    a = bootstrap_ci(v, rng=np.random.default_rng(7))
    b = bootstrap_ci(v, rng=np.random.default_rng(7))
    c = bootstrap_ci(v, rng=np.random.default_rng(8))
    assert a == b and a != c
    ref = sps.bootstrap(
        (v,), np.mean, n_resamples=20000, method="percentile", rng=np.random.default_rng(9)
    ).confidence_interval
    ours = bootstrap_ci(v, n_boot=20000, rng=np.random.default_rng(9))
    width = ref.high - ref.low
    assert ours[0] == pytest.approx(ref.low, abs=0.05 * width)
    assert ours[1] == pytest.approx(ref.high, abs=0.05 * width)


def test_bootstrap_ci_chunking_is_invisible_and_median_works():
    v = np.arange(40, dtype=float)
    a = bootstrap_ci(v, stat=np.median, n_boot=500, rng=np.random.default_rng(3))
    b = bootstrap_ci(v, stat=np.median, n_boot=500, rng=np.random.default_rng(3), max_elements=100)
    assert a == b
    assert bootstrap_ci(np.full(10, 3.0), rng=np.random.default_rng(0)) == (3.0, 3.0)


def test_bootstrap_ci_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci([], rng=rng)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_ci([1.0, np.nan], rng=rng)
    with pytest.raises(ValueError, match="ci"):
        bootstrap_ci([1.0], ci=1.5, rng=rng)
    with pytest.raises(ValueError, match="Generator"):
        bootstrap_ci([1.0], rng=0)  # type: ignore[arg-type]


def test_mean_with_ci_groups():
    rows = [
        {"model": "m", "strategy": s, "selection": sel, "status": st, "dice": d}
        for s, vals in (("S2", [10.0, 20.0, 30.0]), ("S5", [80.0, 90.0]))
        for d in vals
        for sel in ("oracle", "score")
        for st in ("ok",)
    ]
    rows.append(
        {"model": "m", "strategy": "S5", "selection": "oracle", "status": "skipped", "dice": np.nan}
    )
    out = mean_with_ci(pd.DataFrame(rows), rng=np.random.default_rng(0))
    assert list(out["strategy"]) == ["S2", "S5"]
    assert list(out["n"]) == [3, 2]
    assert list(out["mean"]) == [20.0, 85.0]
    assert (out["ci_lo"] <= out["mean"]).all() and (out["mean"] <= out["ci_hi"]).all()
    assert out["ci_lo"].iloc[0] >= 10 and out["ci_hi"].iloc[0] <= 30
    again = mean_with_ci(pd.DataFrame(rows), rng=np.random.default_rng(0))
    pd.testing.assert_frame_equal(out, again)
    with pytest.raises(ValueError, match="selection"):
        mean_with_ci(pd.DataFrame(rows), selection="best", rng=np.random.default_rng(0))


# ------------------------------------------------------------------ paired Wilcoxon


def paired_table(rng: np.random.Generator, n: int = 40) -> pd.DataFrame:
    rows = []
    for i in range(n):
        base = rng.uniform(40, 90)
        for s, shift in (("S2", 0.0), ("S3", 3.0), ("S5", 10.0)):
            for sel in ("oracle", "score"):
                rows.append(
                    dict(
                        dataset="d",
                        image_id=f"img{i // 2}",
                        label_value=1 + i % 2,
                        model="m",
                        strategy=s,
                        selection=sel,
                        status="ok",
                        dice=base + shift + rng.normal(0, 4),
                    )
                )
    return pd.DataFrame(rows)


def test_paired_wilcoxon_equals_scipy_on_matched_objects():
    df = paired_table(np.random.default_rng(0))
    # Shuffle rows and drop one S3 object: pairing must be by object, not by position.
    df = df.sample(frac=1.0, random_state=1).reset_index(drop=True)
    drop = (df.strategy == "S3") & (df.image_id == "img0") & (df.label_value == 1)
    df = df[~drop]
    out = paired_wilcoxon(df, "dice", between="strategy")
    assert list(out[["a", "b"]].itertuples(index=False, name=None)) == [
        ("S2", "S3"),
        ("S2", "S5"),
        ("S3", "S5"),
    ]
    o = df[df.selection == "oracle"]
    for _, row in out.iterrows():
        a = o[o.strategy == row["a"]].set_index(["image_id", "label_value"])["dice"]
        b = o[o.strategy == row["b"]].set_index(["image_id", "label_value"])["dice"]
        common = a.index.intersection(b.index)
        ref = sps.wilcoxon(a.loc[common].to_numpy(), b.loc[common].to_numpy())
        assert row["n"] == len(common)
        assert row["statistic"] == pytest.approx(ref.statistic)
        assert row["p_value"] == pytest.approx(ref.pvalue)
        assert row["median_diff"] == pytest.approx(np.median(a.loc[common] - b.loc[common]))
    assert out.loc[0, "n"] == 39 and out.loc[1, "n"] == 40
    _, holm = pingouin.multicomp(out["p_value"].to_numpy(), method="holm")
    np.testing.assert_allclose(out["p_holm"], holm)
    assert (out["p_holm"] >= out["p_value"]).all()


def test_paired_wilcoxon_between_models_and_choices():
    df = paired_table(np.random.default_rng(1), n=12)
    other = df.copy()
    other["model"] = "m2"
    other["dice"] = other["dice"] - 1.0
    both = pd.concat([df, other], ignore_index=True)
    out = paired_wilcoxon(both, between="model", pairs=[("m", "m2")])
    assert list(out["strategy"]) == ["S2", "S3", "S5"]
    np.testing.assert_allclose(out["median_diff"], 1.0)
    assert (out["statistic"] == 0).all()  # every difference positive: W- = 0
    same = paired_wilcoxon(pd.concat([df, df.assign(model="m3")]), between="model")
    assert same["p_value"].isna().all() and (same["n"] == 12).all()
    with pytest.raises(ValueError, match="strategy, model"):
        paired_wilcoxon(df, between="dataset")
    with pytest.raises(ValueError, match="not in the results"):
        paired_wilcoxon(df, pairs=[("S2", "S6")])


# ------------------------------------------------------------------ volume DICE


def test_volume_dice_sums_counts_over_slices():
    common = dict(
        dataset="d", case="c1", object_name="Liver", label_value=1, model="m", strategy="S5"
    )
    rows = [
        # slice 0: tp 90, fp 10, fn 0 -> Dice 2*90/190; slice 1: tp 10, fp 0, fn 30 -> 2*10/50
        dict(
            common,
            slice_index=0,
            selection="oracle",
            status="ok",
            tp=90,
            fp=10,
            fn=0,
            dice=100 * 180 / 190,
        ),
        dict(
            common,
            slice_index=1,
            selection="oracle",
            status="ok",
            tp=10,
            fp=0,
            fn=30,
            dice=100 * 20 / 50,
        ),
        dict(
            common,
            slice_index=2,
            selection="oracle",
            status="skipped",
            tp=-1,
            fp=-1,
            fn=-1,
            dice=np.nan,
        ),
        dict(common, slice_index=-1, selection="oracle", status="ok", tp=5, fp=5, fn=5, dice=50.0),
        dict(
            common,
            case="c2",
            slice_index=0,
            selection="oracle",
            status="ok",
            tp=1,
            fp=1,
            fn=0,
            dice=100 * 2 / 3,
        ),
    ]
    out = volume_dice(pd.DataFrame(rows))
    assert len(out) == 2
    c1 = out[out.case == "c1"].iloc[0]
    assert c1["n_slices"] == 2
    assert c1["volume_dice"] == pytest.approx(100 * 2 * 100 / (2 * 100 + 10 + 30))
    assert c1["mean_slice_dice"] == pytest.approx((100 * 180 / 190 + 40) / 2)
    assert (c1["tp"], c1["fp"], c1["fn"]) == (100, 10, 30)
    assert out[out.case == "c2"]["volume_dice"].iloc[0] == pytest.approx(100 * 2 / 3)


def test_volume_dice_keeps_shift_rows_apart_and_checks_columns():
    common = dict(
        dataset="d",
        case="c",
        object_name="K",
        label_value=1,
        model="m",
        strategy="S2",
        selection="oracle",
        status="ok",
        slice_index=0,
        dice=100.0,
    )
    rows = [
        dict(common, tp=10, fp=0, fn=0, shift_range="none", shift_repeat=0),
        dict(common, tp=5, fp=5, fn=5, shift_range="0-10", shift_repeat=1),
    ]
    out = volume_dice(pd.DataFrame(rows))
    assert sorted(out["volume_dice"].round(6)) == [50.0, 100.0]
    with pytest.raises(ValueError, match="missing columns"):
        volume_dice(pd.DataFrame(rows).drop(columns="tp"))
