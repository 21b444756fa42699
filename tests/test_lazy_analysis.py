"""The out-of-core analysis (DuckDB over the parts) equals the in-memory one on a small run:
means, counts and tables to float precision; bootstrap CIs exactly when no group is sampled and
within Monte-Carlo tolerance when groups are sampled; Wilcoxon tests equal scipy's on the same
pairs; the parts' manifest drives resume detection."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sambench.analysis import lazy
from sambench.analysis.effort import hce_summary
from sambench.analysis.robustness import shift_drop_long, shift_drop_table
from sambench.analysis.stats import mean_with_ci, paired_wilcoxon, volume_dice
from sambench.analysis.summary import main_rows, paper_table, summary_long, timing_table
from sambench.engine.results import ResultsStore
from sambench.store.results_dataset import (
    MANIFEST_NAME,
    read_manifest,
    reconcile_manifest,
    scan_results,
)
from sambench.store.run_files import load_all

STRATS = ("S1", "S2", "S3", "S4", "S5", "S6")


def image_rows(rng: np.random.Generator, i: int, n_obj: int) -> list[dict[str, object]]:
    """All rows of one synthetic image: S1 (two grids), S2-S6, x2 selections, a shift repeat."""
    ds = "toy_ct" if i % 3 else "toy_mr"
    rows: list[dict[str, object]] = []
    embed = float(rng.uniform(0.5, 2.0))
    cached = bool(rng.random() < 0.2)
    for obj in range(1, n_obj + 1):
        for strat in STRATS:
            for grid in (16, 32) if strat == "S1" else (None,):
                shifts = [(None, 0)] if strat == "S1" else [(None, 0), ("0-10", 1)]
                decode = float(rng.uniform(0.01, 0.1))
                for shift_range, rep in shifts:
                    for sel in ("oracle", "score"):
                        ok = rng.random() > 0.05
                        tp, fp, fn = (int(x) for x in rng.integers(0, 500, 3))
                        dice = float(rng.beta(5, 2) * 100)
                        rows.append(
                            dict(
                                dataset=ds, image_id=f"{ds}/img{i:04d}", label_value=obj,
                                case=f"case{i // 4}", slice_index=i % 4,
                                object_name=f"organ{obj}", modality=ds.split("_")[1],
                                model="m1", strategy=strat, selection=sel,
                                status="ok" if ok else "skipped",
                                dice=dice if ok else np.nan,
                                jaccard=dice / 2 if ok else np.nan,
                                hd=float(rng.gamma(2, 5)) if rng.random() > 0.1 else np.nan,
                                hce=float(rng.integers(0, 9)), hce_fp=1.0, hce_fn=2.0,
                                tp=tp, fp=fp, fn=fn, embed_seconds=embed,
                                embedding_cached=cached, decode_seconds=decode,
                                grid=grid, shift_range=shift_range, shift_repeat=rep,
                            )
                        )  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A run folder written through ResultsStore (parts + manifest), and its rows in part order."""
    rng = np.random.default_rng(7)
    out = tmp_path_factory.mktemp("lazy") / "run"
    store = ResultsStore(out, flush_every=5)
    for i in range(40):
        store.add_image(image_rows(rng, i, 1 + i % 3))
    store.flush()
    return out, store.read_parts()


def eq(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False, rtol=1e-9
    )


def test_manifest_lists_parts_rows_and_images(run: tuple[Path, pd.DataFrame]) -> None:
    out, rows = run
    entries = read_manifest(out / "parts")
    assert sorted(entries) == sorted(p.name for p in (out / "parts").glob("part-*.parquet"))
    assert sum(e.rows for e in entries.values()) == len(rows)
    assert {i for e in entries.values() for i in e.images} == set(rows["image_id"])
    for name, e in entries.items():
        ids = pd.read_parquet(out / "parts" / name, columns=["image_id"])["image_id"]
        assert e.rows == len(ids) and set(e.images) == set(ids)


def test_resume_reads_the_manifest_not_the_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    store = ResultsStore(tmp_path, flush_every=1)
    for i in range(3):
        store.add_image(image_rows(rng, i, 1))
    part = tmp_path / "parts" / "part-000002.parquet"
    # a part the manifest does not name yet (killed between rename and append) + a torn line
    listed = read_manifest(tmp_path / "parts")
    text = "".join(e.to_json() for n, e in listed.items() if n != part.name)
    (tmp_path / "parts" / MANIFEST_NAME).write_text(text + '{"part": "part-0000')
    again = ResultsStore(tmp_path)
    assert again.done_image_ids() == set(rows_ids(tmp_path))
    assert set(read_manifest(tmp_path / "parts")) == set(listed)  # reconciled, torn line dropped
    # the store answers from the manifest: an unreadable part does not matter once listed
    part.write_bytes(b"not parquet")
    assert ResultsStore(tmp_path).done_image_ids() == again.done_image_ids()
    with pytest.raises(ValueError, match="line 1 is not a manifest entry"):
        (tmp_path / "parts" / MANIFEST_NAME).write_text("garbage\n")
        reconcile_manifest(tmp_path / "parts")


def rows_ids(run_dir: Path) -> list[str]:
    return [
        str(i)
        for p in sorted((run_dir / "parts").glob("part-*.parquet"))
        for i in pd.read_parquet(p, columns=["image_id"])["image_id"].unique()
    ]


def test_tables_equal_in_memory(run: tuple[Path, pd.DataFrame]) -> None:
    out, rows = run
    with scan_results(out) as ds:
        assert ds.count() == len(rows)
        for metric, by, sel in [("dice", "target_modality", "oracle"), ("hd", "modality", "score")]:
            eq(
                lazy.summary_long_lazy(ds, metric, by=by, selection=sel),
                summary_long(main_rows(rows), metric, by=by, selection=sel),
            )
            eq(
                lazy.paper_table_lazy(ds, metric, by=by, selection=sel),
                paper_table(main_rows(rows), metric, by=by, selection=sel),
            )
        eq(lazy.timing_table_lazy(ds), timing_table(rows))
        eq(lazy.hce_summary_lazy(ds), hce_summary(rows))
        eq(lazy.hce_summary_lazy(ds, by=None, main=False), hce_summary(rows, by=None, main=False))
        eq(lazy.volume_dice_lazy(ds), volume_dice(rows))
        with pytest.raises(ValueError, match="several unshifted rows"):
            lazy.shift_drop_long_lazy(ds)  # S1's two grids: two unshifted rows per object
        with pytest.raises(ValueError, match="several unshifted rows"):
            shift_drop_long(rows)
        no_s1 = rows[rows["strategy"] != "S1"]
        ds.restrict("strategy <> 'S1'")
        eq(lazy.shift_drop_long_lazy(ds), shift_drop_long(no_s1))
        eq(lazy.shift_drop_table_lazy(ds, "score"), shift_drop_table(no_s1, "score"))
        # the S1 16-grid rows are out of the main tables, as in memory
        assert main_rows(rows)["grid"].dropna().unique().tolist() == [32]


def test_tables_from_finalized_single_files(run: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    """finalize_dataset(single_file=True) streams the per-protocol files; they read back (the
    old in-memory loader) to the same rows as the parts."""
    out, rows = run
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    with ResultsStore(copy).finalize_dataset(single_file=True) as ds:
        assert ds.count() == len(rows)
    assert (copy / "results.parquet").is_file() and (copy / "everything.parquet").is_file()
    assert (copy / "prompts.jsonl").is_file()
    eq(summary_long(main_rows(load_all(copy))), summary_long(main_rows(rows)))
    shutil.rmtree(copy / "parts")  # a folder with single files only is still scanned
    with scan_results(copy) as ds:
        eq(lazy.summary_long_lazy(ds), summary_long(main_rows(rows)))


def test_ci_exact_unsampled_and_close_when_sampled(run: tuple[Path, pd.DataFrame]) -> None:
    out, rows = run
    with scan_results(out) as ds:
        got = lazy.mean_with_ci_lazy(ds, rng=np.random.default_rng(3), n_boot=500, unit="object")
        want = mean_with_ci(rows, rng=np.random.default_rng(3), n_boot=500, unit="object")
        want = want[list(got.columns)]
        eq(got, want)  # no group above max_sample: same values, same draws
        n_min = int(want["n"].min())
        sampled = lazy.mean_with_ci_lazy(
            ds, rng=np.random.default_rng(4), n_boot=2000, max_sample=n_min // 2, unit="object"
        )
    eq(sampled[["model", "strategy", "n", "mean"]], want[["model", "strategy", "n", "mean"]])
    width = (want["ci_hi"] - want["ci_lo"]).to_numpy()
    for col in ("ci_lo", "ci_hi"):
        err = np.abs(sampled[col].to_numpy() - want[col].to_numpy())
        assert (err < 0.25 * width).all(), (col, err / width)
    assert (sampled["ci_lo"] < sampled["mean"]).all() and (sampled["mean"] < sampled["ci_hi"]).all()


def test_case_ci_out_of_core_equals_in_memory(run: tuple[Path, pd.DataFrame]) -> None:
    """By case (the default), the out-of-core CI is the in-memory cluster bootstrap exactly:
    per-case sums from SQL, the same resamples from the same rng (same order of cases)."""
    out, rows = run
    with scan_results(out) as ds:
        for by in (("model", "strategy"), ("model", "strategy", "object_name")):
            got = lazy.mean_with_ci_lazy(ds, by=by, rng=np.random.default_rng(5), n_boot=400)
            want = mean_with_ci(rows, by=by, rng=np.random.default_rng(5), n_boot=400)
            eq(got, want)
            assert got["ci_lo"].notna().any()  # enough cases for CIs: a real comparison
            assert (got["n_cases"] < got["n"]).all()  # cases, not objects, were resampled


@pytest.mark.parametrize("between", ["strategy", "model"])
def test_paired_wilcoxon_equal(run: tuple[Path, pd.DataFrame], between: str) -> None:
    out, rows = run
    rows = rows[rows["strategy"] != "S1"]  # S1 has two grids per object: not one-to-one
    with scan_results(out) as ds:
        ds.restrict("strategy <> 'S1'")
        if between == "model":  # a second model: the same rows with other DICE values
            rows = pd.concat([rows, rows.assign(model="m2", dice=rows["dice"] * 0.9)])
            ds.con.execute("CREATE TABLE m1 AS SELECT * FROM results")
            ds.con.execute(
                "CREATE OR REPLACE VIEW results AS SELECT * FROM m1 UNION ALL "
                "SELECT * REPLACE ('m2' AS model, dice * 0.9 AS dice) FROM m1"
            )
        for unit in ("case", "object"):
            eq(
                lazy.paired_wilcoxon_lazy(ds, between=between, unit=unit),
                paired_wilcoxon(rows, between=between, unit=unit),
            )
        with pytest.raises(ValueError, match="not in the results"):
            lazy.paired_wilcoxon_lazy(ds, between=between, pairs=[("S2", "nope")])


def test_lazy_report_tables_equal_in_memory(run: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    from sambench.report.lazy_report import build_report_lazy

    out, rows = run
    page = build_report_lazy(out, tmp_path / "report")
    html = page.read_text()
    assert "Table 2: DICE per target-modality" in html and "not built at this scale" in html
    assert "cluster bootstrap over cases" in html and "paired on case means" in html
    tables = tmp_path / "report" / "tables"
    got = pd.read_csv(tables / "dice_by_target.csv")
    want = pd.read_csv(io.StringIO(paper_table(main_rows(rows), "dice").to_csv(index=False)))
    eq(got, want)
    main = main_rows(rows)
    want_w = paired_wilcoxon(main[main["strategy"] != "S1"], "hd", between="strategy")
    got_w = pd.read_csv(tables / "wilcoxon_strategies_hd.csv")
    got_w = got_w[(got_w["a"] != "S1") & (got_w["b"] != "S1")]
    eq(got_w[["a", "b", "n", "mean_a", "statistic", "p_value"]],
       want_w[["a", "b", "n", "mean_a", "statistic", "p_value"]])  # fmt: skip
    assert (tmp_path / "report" / "figures" / "fig6_mean_ci.png").stat().st_size > 1000


def test_cli_report_out_of_core(run: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sambench.cli import app

    out, _ = run
    res = CliRunner().invoke(
        app, ["report", str(out), "--out", str(tmp_path / "r"), "--out-of-core"]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "report.html").is_file()
    assert (tmp_path / "r" / "tables" / "timing_seconds.csv").is_file()


def test_attribute_correlations_equal(run: tuple[Path, pd.DataFrame]) -> None:
    """Table 6 from rank covariances in DuckDB equals the in-memory partial Spearman (ties in
    the integer attributes exercise the average ranks; modality_code is constant per dataset)."""
    from sambench.analysis.lazy_attributes import attribute_correlations_lazy
    from sambench.analysis.stats import attribute_correlations

    out, rows = run
    rng = np.random.default_rng(5)
    objs = rows[["dataset", "image_id", "label_value"]].drop_duplicates().reset_index(drop=True)
    attrs = objs.assign(
        size=rng.integers(50, 80, len(objs)),
        intensity_diff=rng.normal(30, 10, len(objs)),
        fourier_order=rng.integers(1, 6, len(objs)).astype(float),
        modality_code=(objs["dataset"] == "toy_mr").astype(int),
        aspect_ratio=rng.uniform(0.2, 1, len(objs)),
    )
    want = attribute_correlations(rows.merge(attrs, on=["dataset", "image_id", "label_value"]))
    with scan_results(out) as ds:
        got = attribute_correlations_lazy(ds, attrs)
    eq(got, want)
    assert want["size"].notna().all()
