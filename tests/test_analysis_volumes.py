"""3D analysis tables: known answers, scipy's Wilcoxon, and the CVPR 2025 AUC transcription."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import cvpr25_iter_eval_reference as ref
from sambench.analysis import volumes as av


def _rows() -> pd.DataFrame:
    """Two models x three protocols x 6 objects; interactive-3d with 6 steps."""
    rng = np.random.default_rng(3)
    rows = []
    for model in ("m1", "m2"):
        for v in range(6):
            base = dict(dataset="D", case=f"c{v}", volume_id=f"D_c{v}", label_value=1,
                        object_name="Liver", model=model, status="ok")  # fmt: skip
            sw = 80 + rng.normal(0, 5)
            rows.append({**base, "protocol": "slicewise-gt", "step": 0, "dice": sw, "nsd": sw,
                         "n_slices_predicted": 20, "seconds": 1.0})  # fmt: skip
            pr = sw - 10 + rng.normal(0, 3)
            rows.append({**base, "protocol": "propagate", "step": 0, "dice": pr, "nsd": pr,
                         "n_slices_predicted": 14, "seconds": 0.5})  # fmt: skip
            d = np.clip(np.sort(rng.uniform(0.4, 0.95, 6)), 0, 1)
            for k in range(6):
                rows.append({**base, "protocol": "interactive-3d", "step": k, "dice": 100 * d[k],
                             "nsd": 90 * d[k], "challenge_dsc_01": d[k], "challenge_nsd_01": 0.9 * d[k],
                             "n_slices_predicted": 3, "seconds": 0.1 * (k + 1)})  # fmt: skip
    rows.append({**rows[0], "protocol": "propagate", "volume_id": "D_bad", "status": "error"})
    return pd.DataFrame(rows)


def test_final_rows_take_the_last_ok_step() -> None:
    df = _rows()
    f = av.final_rows(df)
    assert len(f) == 2 * 6 * 3
    inter = f[f["protocol"] == "interactive-3d"]
    assert set(inter["step"]) == {5}
    assert "D_bad" not in set(f["volume_id"])


def test_protocol_table_means_and_ci() -> None:
    df = _rows()
    t = av.protocol_table(df, rng=np.random.default_rng(0), n_boot=500)
    assert len(t) == 6
    f = av.final_rows(df)
    for r in t.itertuples():
        want = f[(f["model"] == r.model) & (f["protocol"] == r.protocol)]["dice"]
        assert r.n == 6 and r.mean == pytest.approx(want.mean())
        assert r.ci_lo <= r.mean <= r.ci_hi


def test_protocol_tests_equal_scipy_wilcoxon() -> None:
    df = _rows()
    t = av.protocol_tests(df, pairs=[("slicewise-gt", "propagate")])
    f = av.final_rows(df)
    for r in t.itertuples():
        g = f[f["model"] == r.model].sort_values("volume_id")
        a = g[g["protocol"] == "slicewise-gt"]["dice"].to_numpy()
        b = g[g["protocol"] == "propagate"]["dice"].to_numpy()
        res = sps.wilcoxon(a, b)
        assert (r.n, r.p_value) == (6, pytest.approx(res.pvalue))
    assert set(t.columns) >= {"model", "a", "b", "p_holm"}
    by_model = av.protocol_tests(df, between="model")
    assert set(by_model["protocol"]) == {"slicewise-gt", "propagate", "interactive-3d"}
    with pytest.raises(ValueError, match="between"):
        av.protocol_tests(df, between="strategy")


def test_interactive_table_equals_the_challenge_script() -> None:
    df = _rows()
    t = av.interactive_table(df)
    assert len(t) == 12
    for r in t.itertuples():
        g = df[(df["protocol"] == "interactive-3d") & (df["model"] == r.model)]
        g = g[g["volume_id"] == r.volume_id].sort_values("step")
        want = ref.reference_aucs(list(g["challenge_dsc_01"]), list(g["challenge_nsd_01"]))
        assert (r.DSC_AUC, r.NSD_AUC) == (pytest.approx(want[0]), pytest.approx(want[1]))
        assert (r.DSC_Final, r.NSD_Final) == (want[2], want[3])
        assert r.seconds_total == pytest.approx(2.1)


def test_click_curve_per_step() -> None:
    c = av.click_curve(_rows(), rng=np.random.default_rng(0), n_boot=200)
    assert list(c[c["model"] == "m1"]["step"]) == [0, 1, 2, 3, 4, 5]
    m1 = c[c["model"] == "m1"]["mean"].to_numpy()
    assert np.all(np.diff(m1) > 0)  # the rows' DSC is sorted per object


def test_slicewise_vs_propagate_side_by_side() -> None:
    s = av.slicewise_vs_propagate(_rows())
    assert len(s) == 12
    assert np.allclose(s["dice_gap"], s["dice_slicewise-gt"] - s["dice_propagate"])
    assert (s["n_slices_predicted_slicewise-gt"] == 20).all()


def test_volume_dice_vs_3d_known_answer() -> None:
    v2 = pd.DataFrame(
        [
            dict(dataset="D", case="c0", object_name="Liver", label_value=1, model="m1",
                 strategy="S5", selection="score", n_slices=10, volume_dice=90.0),
            dict(dataset="D", case="c0", object_name="Liver", label_value=1, model="m1",
                 strategy="S2", selection="score", n_slices=10, volume_dice=50.0),
        ]
    )  # fmt: skip
    t = av.volume_dice_vs_3d(v2, _rows())
    assert len(t) == 1
    want = _rows().query("model == 'm1' and case == 'c0' and protocol == 'slicewise-gt'")
    assert t["dice_3d"].iloc[0] == pytest.approx(want["dice"].iloc[0])
    assert t["gap"].iloc[0] == pytest.approx(90.0 - want["dice"].iloc[0])


def test_sphere_attributes_known_answers() -> None:
    r = 8.0  # mm
    for sp, shape, top in (
        ((1.0, 1.0, 1.0), (24, 24, 24), 1.12),
        ((2.0, 0.5, 0.5), (14, 48, 48), 1.25),
    ):
        c = np.array(shape) / 2
        zz, yy, xx = np.indices(shape).astype(float)
        m = ((zz - c[0]) * sp[0]) ** 2 + ((yy - c[1]) * sp[1]) ** 2 + (
            (xx - c[2]) * sp[2]
        ) ** 2 <= r**2
        img = np.where(m, 200, 50).astype(np.uint8)
        a = av.object_attributes_3d(img, m, sp)
        assert a["volume_ml"] == pytest.approx(4 / 3 * np.pi * r**3 / 1000, rel=0.05)
        # marching cubes on a binary mask overestimates the area (staircase): 1 mm isotropic
        # reads 6.6 % above 4 pi r^2, 2 x 0.5 x 0.5 mm 15.6 % above
        assert 4 * np.pi * r**2 < a["surface_mm2"] < top * 4 * np.pi * r**2
        assert 1.0 < a["surface_complexity"] < top
        assert a["intensity_diff"] == pytest.approx(150.0)
    # a flat slab of the same volume is far more complex than the sphere
    slab = np.zeros_like(m)
    slab[7, 2:46, 2:46] = True
    assert av.object_attributes_3d(img, slab, sp)["surface_complexity"] > 1.5
    t = av.attributes_table_3d([({"volume_id": "v", "label_value": 1}, img, m, sp)])
    assert list(t["volume_id"]) == ["v"] and "surface_complexity" in t.columns
    with pytest.raises(ValueError, match="empty"):
        av.object_attributes_3d(img, np.zeros_like(m), sp)


def test_missing_columns_are_named() -> None:
    with pytest.raises(ValueError, match="missing columns"):
        av.final_rows(pd.DataFrame({"model": ["m"]}))


def test_one_volume_gives_too_few_not_a_ci_or_test() -> None:
    # one volume: no CI (not a zero-width one) and no Wilcoxon row with a p-value
    df = _rows()
    one = df[df["case"] == "c0"]
    t = av.protocol_table(one, rng=np.random.default_rng(0), n_boot=200)
    assert t["ci_lo"].isna().all() and t["ci_hi"].isna().all()
    assert (t["ci_note"] == "n = 1 case: too few").all() and (t["n_cases"] == 1).all()
    tests = av.protocol_tests(one)
    assert tests["p_value"].isna().all() and tests["p_holm"].isna().all()
    assert (tests["test_note"] == "n = 1 case: too few").all()
    curve = av.click_curve(one, rng=np.random.default_rng(0), n_boot=200)
    assert curve["ci_lo"].isna().all() and (curve["ci_note"] != "").all()
    # six volumes of one object each: by case and by object are the same statistic
    by_case = av.protocol_table(df, rng=np.random.default_rng(1), n_boot=300)
    by_obj = av.protocol_table(df, rng=np.random.default_rng(1), n_boot=300, unit="object")
    assert (by_case["ci_note"] == "").all() and (by_obj["ci_note"] == "").all()
    pd.testing.assert_series_equal(by_case["mean"], by_obj["mean"])


def test_old_column_names_load_and_give_the_same_tables() -> None:
    """Results written before the 2D/3D naming (dsc, challenge_dsc, challenge_nsd) still load."""
    from sambench.metrics.columns3d import LEGACY_NAMES, upgrade_results3d

    new = _rows()
    old = new.rename(columns={v: k for k, v in LEGACY_NAMES.items()})
    assert {"dsc", "challenge_dsc", "challenge_nsd"} <= set(old.columns)
    assert "dice" not in old.columns
    up = upgrade_results3d(old)
    assert set(up.columns) == set(new.columns)
    pd.testing.assert_frame_equal(up[new.columns], new)
    a = av.protocol_table(old, rng=np.random.default_rng(0), n_boot=200)
    b = av.protocol_table(new, rng=np.random.default_rng(0), n_boot=200)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(av.interactive_table(old), av.interactive_table(new))
    # a run resumed across versions: old parts and new parts concatenated -> one column
    half = len(new) // 2
    mixed = pd.concat([old.iloc[:half], new.iloc[half:]], ignore_index=True)
    merged = upgrade_results3d(mixed)
    assert "dsc" not in merged.columns and merged["dice"].notna().all()
    np.testing.assert_allclose(merged["dice"], new["dice"])
    assert upgrade_results3d(new) is new  # nothing to map: the same table
