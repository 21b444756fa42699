"""Statistics: partial Spearman vs pingouin, bootstrap CIs, paired Wilcoxon vs scipy, 3D DICE."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pingouin
import pytest
from scipy import stats as sps

from sambench.analysis.stats import (
    attribute_correlations,
    bootstrap_ci,
    case_bootstrap,
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


def test_mean_with_ci_groups_object_unit():
    # unit="object": the former object-level bootstrap (no case column needed), groups of at
    # least MIN_CASES objects; a smaller group has no CI and says why.
    rows = [
        {"model": "m", "strategy": s, "selection": sel, "status": st, "dice": d}
        for s, vals in (("S2", [10.0, 20.0, 30.0, 40.0, 50.0]), ("S5", [80.0, 90.0]))
        for d in vals
        for sel in ("oracle", "score")
        for st in ("ok",)
    ]
    rows.append(
        {"model": "m", "strategy": "S5", "selection": "oracle", "status": "skipped", "dice": np.nan}
    )
    out = mean_with_ci(pd.DataFrame(rows), rng=np.random.default_rng(0), unit="object")
    assert list(out["strategy"]) == ["S2", "S5"]
    assert list(out["n"]) == [5, 2]
    assert list(out["mean"]) == [30.0, 85.0]
    s2 = out.iloc[0]
    # the same draws as bootstrap_ci on the group's values with the same generator
    assert (s2["ci_lo"], s2["ci_hi"]) == bootstrap_ci(
        [10.0, 20.0, 30.0, 40.0, 50.0], rng=np.random.default_rng(0)
    )
    assert 10 <= s2["ci_lo"] < 30 < s2["ci_hi"] <= 50 and s2["ci_note"] == ""
    s5 = out.iloc[1]
    assert np.isnan(s5["ci_lo"]) and np.isnan(s5["ci_hi"])
    assert s5["ci_note"] == "n = 2 objects: too few"
    again = mean_with_ci(pd.DataFrame(rows), rng=np.random.default_rng(0), unit="object")
    pd.testing.assert_frame_equal(out, again)
    with pytest.raises(ValueError, match="selection"):
        mean_with_ci(
            pd.DataFrame(rows), selection="best", rng=np.random.default_rng(0), unit="object"
        )
    with pytest.raises(ValueError, match="no 'case' column"):
        mean_with_ci(pd.DataFrame(rows), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="unit"):
        mean_with_ci(pd.DataFrame(rows), rng=np.random.default_rng(0), unit="slice")


# ------------------------------------------------------------------ case (cluster) bootstrap


def tiny_cases() -> pd.DataFrame:
    """3 datasets: A with cases a1 (objects 10, 20: mean 15), a2 (30), a3 (40, 50, 60: mean 50);
    B with b1 (70), b2 (80, 90: mean 85); C with c1 (5) alone."""
    spec = {
        ("A", "a1"): [10.0, 20.0],
        ("A", "a2"): [30.0],
        ("A", "a3"): [40.0, 50.0, 60.0],
        ("B", "b1"): [70.0],
        ("B", "b2"): [80.0, 90.0],
        ("C", "c1"): [5.0],
    }
    rows = [{"dataset": d, "case": c, "dice": v} for (d, c), vals in spec.items() for v in vals]
    return pd.DataFrame(rows)


def hand_resample_means() -> dict[float, float]:
    """Every resample of tiny_cases by hand: 3 draws of A's cases x 2 draws of B's, C fixed;
    mean = (sum of drawn case sums) / (their object counts). Returns {mean: probability}."""
    a = [(30.0, 2), (30.0, 1), (150.0, 3)]  # (sum, count) per case
    b = [(70.0, 1), (170.0, 2)]
    c = (5.0, 1)
    out: dict[float, float] = {}
    for ia in itertools.product(range(3), repeat=3):
        for ib in itertools.product(range(2), repeat=2):
            s = c[0] + sum(a[i][0] for i in ia) + sum(b[i][0] for i in ib)
            n = c[1] + sum(a[i][1] for i in ia) + sum(b[i][1] for i in ib)
            key = round(s / n, 9)
            out[key] = out.get(key, 0.0) + 1.0 / (27 * 4)
    return out


def test_case_bootstrap_against_hand_computation():
    t = tiny_cases()
    r = case_bootstrap(
        t["dice"], t["case"], t["dataset"], n_boot=4000, rng=np.random.default_rng(0)
    )
    # point estimate: the mean over the 10 objects = 455 / 10
    assert r.estimate == pytest.approx(45.5)
    assert (r.n_objects, r.n_cases, r.note) == (10, 6, "")
    exact = hand_resample_means()
    got = np.round(r.distribution, 9)
    assert set(got) <= set(exact)  # every resampled mean is one a case resample can give
    # C's single case never moves; A and B are resampled separately: the frequencies follow
    # the hand enumeration (4000 draws: within 4 binomial standard errors)
    for value, prob in exact.items():
        freq = float(np.mean(got == value))
        assert abs(freq - prob) <= 4 * np.sqrt(prob * (1 - prob) / got.size) + 1e-12
    mean_exact = sum(k * p for k, p in exact.items())
    assert float(r.distribution.mean()) == pytest.approx(mean_exact, abs=1.0)
    assert r.low < r.estimate < r.high
    assert min(exact) <= r.low and r.high <= max(exact)


def test_case_bootstrap_equals_scipy_called_directly():
    t = tiny_cases()
    r = case_bootstrap(t["dice"], t["case"], t["dataset"], rng=np.random.default_rng(5))
    # the same bootstrap written out: one sample of case indices per dataset with >= 2 cases
    sums = np.array([30.0, 30.0, 150.0, 70.0, 170.0, 5.0])
    counts = np.array([2.0, 1.0, 3.0, 1.0, 2.0, 1.0])

    def stat(ia, ib, axis=-1):
        s = sums[5] + sums[ia].sum(axis=axis) + sums[ib].sum(axis=axis)
        n = counts[5] + counts[ia].sum(axis=axis) + counts[ib].sum(axis=axis)
        return s / n

    ref = sps.bootstrap(
        (np.arange(3), np.arange(3, 5)),
        stat,
        n_resamples=2000,
        method="BCa",
        rng=np.random.default_rng(5),
    )
    np.testing.assert_allclose(r.distribution, ref.bootstrap_distribution)
    assert r.low == pytest.approx(ref.confidence_interval.low)
    assert r.high == pytest.approx(ref.confidence_interval.high)
    pct = case_bootstrap(
        t["dice"], t["case"], t["dataset"], rng=np.random.default_rng(5), method="percentile"
    )
    assert (pct.low, pct.high) == pytest.approx(
        tuple(np.quantile(ref.bootstrap_distribution, [0.025, 0.975]))
    )


def test_case_bootstrap_one_object_per_case_equals_scipy_mean_bootstrap():
    # one object per case, one dataset: the case bootstrap is the ordinary bootstrap of the mean
    v = np.random.default_rng(2).exponential(10, 40)
    r = case_bootstrap(v, [f"c{i:02d}" for i in range(40)], rng=np.random.default_rng(3))
    ref = sps.bootstrap((v,), np.mean, n_resamples=2000, rng=np.random.default_rng(3))
    assert r.low == pytest.approx(ref.confidence_interval.low)
    assert r.high == pytest.approx(ref.confidence_interval.high)


def test_case_bootstrap_too_few_and_degenerate():
    rng = np.random.default_rng(0)
    # 24 objects of one case (the demo's one template volume): no CI, whatever the object count
    r = case_bootstrap(np.arange(24.0), np.zeros(24), rng=rng)
    assert np.isnan(r.low) and np.isnan(r.high) and r.note == "n = 1 case: too few"
    assert r.estimate == pytest.approx(11.5) and r.distribution.size == 0
    r = case_bootstrap([1.0, 2.0, 3.0, 4.0], ["a", "b", "c", "d"], rng=rng)
    assert r.note == "n = 4 cases: too few"
    # five datasets of one case each: nothing to resample within a dataset
    r = case_bootstrap([1.0, 2, 3, 4, 5], list("abcde"), list("VWXYZ"), rng=rng)
    assert np.isnan(r.low) and r.note == "n = 5 cases, 0 in datasets of 2 or more: too few"
    # equal case means: every resample gives the same mean, the CI is that value
    r = case_bootstrap(np.full(10, 3.0), np.repeat(np.arange(5), 2), rng=rng)
    assert (r.low, r.high) == (3.0, 3.0)
    assert case_bootstrap([], [], rng=rng).note == "n = 0 cases: too few"
    with pytest.raises(ValueError, match="NaN"):
        case_bootstrap([1.0, np.nan], ["a", "b"], rng=rng)
    with pytest.raises(ValueError, match="one length"):
        case_bootstrap([1.0, 2.0], ["a"], rng=rng)


def test_mean_with_ci_by_case_is_the_case_bootstrap_per_group():
    t = tiny_cases()
    rows = pd.concat(
        [t.assign(model="m", strategy=s, selection="oracle", status="ok") for s in ("S2", "S5")]
    )
    rows.loc[rows["strategy"] == "S5", "dice"] += 1.0
    out = mean_with_ci(rows, rng=np.random.default_rng(4))
    assert list(out.columns) == [
        "model", "strategy", "n", "n_cases", "mean", "ci_lo", "ci_hi", "ci_note"
    ]  # fmt: skip
    rng = np.random.default_rng(4)
    for rec in out.to_dict("records"):
        g = rows[rows["strategy"] == rec["strategy"]]
        r = case_bootstrap(g["dice"], g["case"], g["dataset"], rng=rng)
        assert (rec["n"], rec["n_cases"]) == (10, 6)
        assert rec["mean"] == pytest.approx(r.estimate)
        assert (rec["ci_lo"], rec["ci_hi"]) == (r.low, r.high)
    # 6 cases of 8 near-identical slices each: objects as independent units give an interval
    # far narrower than the cases support (pseudo-replication); by case it is about the
    # bootstrap of the 6 case means
    gen = np.random.default_rng(9)
    case_means = gen.normal(60, 10, 6)
    clustered = pd.DataFrame(
        {
            "dataset": "d",
            "case": np.repeat([f"c{i}" for i in range(6)], 8),
            "dice": np.repeat(case_means, 8) + gen.normal(0, 0.5, 48),
            "model": "m",
            "strategy": "S5",
            "selection": "oracle",
            "status": "ok",
        }
    )
    by_case = mean_with_ci(clustered, rng=np.random.default_rng(1)).iloc[0]
    by_obj = mean_with_ci(clustered, rng=np.random.default_rng(1), unit="object").iloc[0]
    assert by_obj["ci_hi"] - by_obj["ci_lo"] < 0.6 * (by_case["ci_hi"] - by_case["ci_lo"])
    assert (by_case["n"], by_case["n_cases"], by_obj["n_cases"]) == (48, 6, 6)
    one = rows[rows["case"] == "a3"]
    few = mean_with_ci(one, rng=np.random.default_rng(4))
    assert few["ci_lo"].isna().all() and (few["ci_note"] == "n = 1 case: too few").all()
    assert list(few["n"]) == [3, 3]


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
                        case=f"case{i // 8}",
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
    # unit="object": the object-level option (objects as if independent), for comparison
    out = paired_wilcoxon(df, "dice", between="strategy", unit="object")
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
    out = paired_wilcoxon(both, between="model", pairs=[("m", "m2")], unit="object")
    assert list(out["strategy"]) == ["S2", "S3", "S5"]
    np.testing.assert_allclose(out["median_diff"], 1.0)
    assert (out["statistic"] == 0).all()  # every difference positive: W- = 0
    same = paired_wilcoxon(pd.concat([df, df.assign(model="m3")]), between="model", unit="object")
    assert same["p_value"].isna().all() and (same["n"] == 12).all()
    assert (same["test_note"] == "every difference is 0: no test").all()
    with pytest.raises(ValueError, match="strategy, model"):
        paired_wilcoxon(df, between="dataset")
    with pytest.raises(ValueError, match="not in the results"):
        paired_wilcoxon(df, pairs=[("S2", "S6")])


def test_paired_wilcoxon_by_case_tests_case_means():
    df = paired_table(np.random.default_rng(3), n=48)  # 6 cases of 8 objects
    df = df[~((df.strategy == "S3") & (df.image_id == "img0") & (df.label_value == 1))]
    out = paired_wilcoxon(df, "dice", between="strategy")
    o = df[df.selection == "oracle"]
    for _, row in out.iterrows():
        keys = ["case", "image_id", "label_value"]
        a = o[o.strategy == row["a"]].set_index(keys)["dice"]
        b = o[o.strategy == row["b"]].set_index(keys)["dice"]
        common = a.index.intersection(b.index)
        ca = a.loc[common].groupby(level="case").mean()
        cb = b.loc[common].groupby(level="case").mean()
        ref = sps.wilcoxon(ca.to_numpy(), cb.to_numpy())
        assert (row["n"], row["n_objects"]) == (6, len(common))
        assert row["statistic"] == pytest.approx(ref.statistic)
        assert row["p_value"] == pytest.approx(ref.pvalue)
        assert row["mean_a"] == pytest.approx(ca.mean())
        assert row["median_diff"] == pytest.approx(np.median(ca - cb))
        assert row["test_note"] == ""
    assert list(out["n_objects"]) == [47, 48, 47]
    # four cases: no test, the note says why, and Holm skips the row
    few = paired_wilcoxon(df[df.case.isin(["case0", "case1", "case2", "case3"])], "dice")
    assert few["p_value"].isna().all() and few["p_holm"].isna().all()
    assert (few["test_note"] == "n = 4 cases: too few").all()
    with pytest.raises(ValueError, match="no 'case' column"):
        paired_wilcoxon(df.drop(columns="case"))


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


def test_case_bootstrap_percentile_above_bca_max_cases(monkeypatch: pytest.MonkeyPatch):
    import sambench.analysis.stats as st

    gen = np.random.default_rng(8)
    v = gen.exponential(20, 30)  # skewed: BCa moves the interval
    cases, strata = [f"c{i // 3:02d}" for i in range(30)], ["A"] * 15 + ["B"] * 15
    bca = case_bootstrap(v, cases, strata, rng=np.random.default_rng(6))
    pct = case_bootstrap(v, cases, strata, rng=np.random.default_rng(6), method="percentile")
    np.testing.assert_array_equal(bca.distribution, pct.distribution)
    assert (bca.low, bca.high) != (pct.low, pct.high)
    monkeypatch.setattr(st, "BCA_MAX_CASES", 9)  # 10 resampled cases: above it
    big = case_bootstrap(v, cases, strata, rng=np.random.default_rng(6))
    assert (big.low, big.high) == (pct.low, pct.high)
    # in batches (bounded memory) scipy draws the strata in another order: other resamples of
    # the same bootstrap, an interval within Monte-Carlo error
    small = case_bootstrap(
        v, cases, strata, rng=np.random.default_rng(6), max_elements=100, n_boot=8000
    )
    assert small.distribution.size == 8000
    width = pct.high - pct.low
    assert abs(small.low - pct.low) < 0.2 * width and abs(small.high - pct.high) < 0.2 * width
