"""The evaluation engine with a deterministic fake adapter: encode once, selections, resume,
config refusal, bad input, prompt skips, the embedding cache, and the summary tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sambench.analysis.summary import paper_table, summary_long, timing_table, write_tables
from sambench.engine.config import ConfigMismatchError, RunConfig
from sambench.engine.evaluate import evaluate
from sambench.errors import DataError, OptionError

from fakes import FakeModel, make_prepared

KEY = ["image_id", "label_value", "strategy", "selection"]
METRICS = ["dice", "jaccard", "hd", "hd95", "assd", "nsd"]


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    return make_prepared(tmp_path / "prepared")


def run(prepared: Path, out: Path, model: FakeModel | None = None, **kw: object) -> pd.DataFrame:
    cfg = RunConfig(prepared=str(prepared), model="fake", progress=False, **kw)  # type: ignore[arg-type]
    return evaluate(cfg, out, model=model or FakeModel(), flush_every=1)


def test_encode_once_and_one_batched_decode_per_strategy(prepared: Path, tmp_path: Path) -> None:
    model = FakeModel()
    res = run(prepared, tmp_path / "run", model)
    assert model.embed_calls == 4  # one encoder pass per image, five strategies
    assert model.predict_calls == 4 * 5  # both objects of an image decoded in one call per strategy
    assert len(res) == 4 * 2 * 5 * 2
    assert not res.duplicated(KEY).any()
    assert set(res["status"]) == {"ok"}
    assert (tmp_path / "run" / "results.parquet").exists()
    assert (tmp_path / "run" / "config.json").exists()


def test_oracle_and_score_selection_known_answers(prepared: Path, tmp_path: Path) -> None:
    res = run(prepared, tmp_path / "run", strategies=("S5",))
    box = res[(res["object_name"] == "Box") & (res["image_id"] == "toy_c0_0")].set_index(
        "selection"
    )
    # candidate 0 is the filled tight box = the rectangle itself
    assert box.loc["oracle", "candidate_index"] == 0
    assert box.loc["oracle", "dice"] == pytest.approx(100.0)
    assert box.loc["oracle", "hd"] == pytest.approx(0.0)
    # the predicted-IoU pick is candidate 1: the rectangle (16 px wide) shifted right by 3 px
    assert box.loc["score", "candidate_index"] == 1
    assert box.loc["score", "predicted_iou"] == pytest.approx(0.9)
    assert box.loc["score", "dice"] == pytest.approx(100 * 2 * 13 / 32)
    assert box.loc["score", "hd"] == pytest.approx(3.0)


def test_resume_after_kill_gives_the_same_rows_without_duplicates(
    prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = run(prepared, tmp_path / "full")

    model = FakeModel()
    original = model.embed
    calls = {"n": 0}

    def dying_embed(image: np.ndarray):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed while on the third image
        return original(image)

    monkeypatch.setattr(model, "embed", dying_embed)
    with pytest.raises(KeyboardInterrupt):
        run(prepared, tmp_path / "resumed", model)
    parts = list((tmp_path / "resumed" / "parts").glob("part-*.parquet"))
    assert len(parts) == 2  # the two finished images were flushed
    assert not (tmp_path / "resumed" / "results.parquet").exists()

    model2 = FakeModel()
    resumed = run(prepared, tmp_path / "resumed", model2)
    assert model2.embed_calls == 2  # only the two missing images
    assert not resumed.duplicated(KEY).any()
    a = full.sort_values(KEY).reset_index(drop=True)
    b = resumed.sort_values(KEY).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[[*KEY, *METRICS]], b[[*KEY, *METRICS]])


def test_refuses_to_mix_configs(prepared: Path, tmp_path: Path) -> None:
    run(prepared, tmp_path / "run", strategies=("S2",))
    before = pd.read_parquet(tmp_path / "run" / "results.parquet")
    with pytest.raises(ConfigMismatchError, match="strategies"):
        run(prepared, tmp_path / "run", strategies=("S2", "S5"))
    after = pd.read_parquet(tmp_path / "run" / "results.parquet")
    pd.testing.assert_frame_equal(before, after)


def test_images_keeps_those_ids_then_max_images(prepared: Path, tmp_path: Path) -> None:
    """``RunConfig.images`` (the demo's MNI152 subset + seed slices): only those ids, then the
    evenly spaced ``max_images`` among them; saved in config.json; an unknown id is refused
    before the run folder exists."""
    ids = ("toy_c0_0", "toy_c2_2", "toy_c3_3")
    res = run(prepared, tmp_path / "run", strategies=("S5",), images=ids)
    assert sorted(res["image_id"].unique()) == list(ids)
    assert RunConfig.load(tmp_path / "run").images == ids
    res = run(prepared, tmp_path / "two", strategies=("S5",), images=ids, max_images=2)
    assert sorted(res["image_id"].unique()) == ["toy_c0_0", "toy_c3_3"]  # first and last
    with pytest.raises(OptionError, match=r"images: \['toy_c9_9'\] not found in .*prepared"):
        run(prepared, tmp_path / "bad", images=("toy_c0_0", "toy_c9_9"))
    assert not (tmp_path / "bad").exists()
    with pytest.raises(OptionError, match="images: expected image ids"):
        RunConfig(prepared=str(prepared), images=()).validate()


def test_unknown_strategy_lists_allowed(prepared: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="S2, S3, S4, S5, S6"):
        run(prepared, tmp_path / "run", strategies=("S7",))
    with pytest.raises(ValueError, match="paper"):
        run(prepared, tmp_path / "run2", prompt_rules="nope")


def test_missing_image_file_is_an_error_or_a_recorded_skip(prepared: Path, tmp_path: Path) -> None:
    missing = prepared / "toy" / "images" / "toy_c1_1.png"
    missing.unlink()
    with pytest.raises(DataError, match=r"toy_c1_1\.png"):
        run(prepared, tmp_path / "strict")
    res = run(prepared, tmp_path / "lenient", skip_bad=True)
    bad = res[res["image_id"] == "toy_c1_1"]
    assert len(bad) == 2 * 5 * 2 and set(bad["status"]) == {"skipped"}
    assert bad["skip_reason"].str.contains("toy_c1_1.png").all()
    assert bad["dice"].isna().all()
    assert set(res.loc[res["image_id"] != "toy_c1_1", "status"]) == {"ok"}


def test_label_value_absent_from_png(prepared: Path, tmp_path: Path) -> None:
    lab_path = prepared / "toy" / "labels" / "toy_c2_2.png"
    lab = np.asarray(Image.open(lab_path)).copy()
    lab[lab == 170] = 0
    Image.fromarray(lab).save(lab_path)
    with pytest.raises(DataError, match="label value 170"):
        run(prepared, tmp_path / "strict")
    res = run(prepared, tmp_path / "lenient", skip_bad=True)
    disc = res[(res["image_id"] == "toy_c2_2") & (res["label_value"] == 170)]
    assert len(disc) == 10 and set(disc["status"]) == {"skipped"}
    box = res[(res["image_id"] == "toy_c2_2") & (res["label_value"] == 85)]
    assert set(box["status"]) == {"ok"}


def test_object_without_background_is_skipped_with_reason(tmp_path: Path) -> None:
    prepared = make_prepared(tmp_path / "prepared", n_images=1)
    # make the rectangle fill the whole image: no background pixel can be sampled for S4
    lab_path = prepared / "toy" / "labels" / "toy_c0_0.png"
    lab = np.full((64, 80), 85, np.uint8)
    Image.fromarray(lab).save(lab_path)
    man = pd.read_parquet(prepared / "toy" / "manifest.parquet")
    man = man[man["label_value"] == 85]
    man.to_parquet(prepared / "toy" / "manifest.parquet", index=False)
    res = run(prepared, tmp_path / "run")
    s4 = res[res["strategy"] == "S4"]
    assert set(s4["status"]) == {"skipped"}
    assert s4["skip_reason"].str.startswith("prompt:").all()
    assert set(res.loc[res["strategy"] != "S4", "status"]) == {"ok"}


def test_embedding_cache_is_reused_and_checked(prepared: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = FakeModel()
    a = run(prepared, tmp_path / "a", first, cache_dir=str(cache))
    assert first.embed_calls == 4 and not a["embedding_cached"].any()
    second = FakeModel()
    b = run(prepared, tmp_path / "b", second, cache_dir=str(cache))
    assert second.embed_calls == 0 and b["embedding_cached"].all()
    pd.testing.assert_frame_equal(
        a.sort_values(KEY)[METRICS].reset_index(drop=True),
        b.sort_values(KEY)[METRICS].reset_index(drop=True),
    )
    # another signature (another model set-up) never uses these files
    other = FakeModel(r=7)
    run(prepared, tmp_path / "c", other, cache_dir=str(cache))
    assert other.embed_calls == 4


def test_summary_tables_paper_layout(prepared: Path, tmp_path: Path) -> None:
    res = run(prepared, tmp_path / "run")
    table = paper_table(res, "dice")
    assert list(table.columns) == ["target_modality", "S2", "S3", "S4", "S5", "S6"]
    assert list(table["target_modality"]) == ["Box-CT", "Disc-CT"]
    long = summary_long(res, "dice")
    box_s5 = long[(long["target_modality"] == "Box-CT") & (long["strategy"] == "S5")].iloc[0]
    assert box_s5["n"] == 4 and box_s5["mean"] == pytest.approx(100.0)
    assert table.loc[0, "S5"] == "100.00 (0.00)"
    timing = timing_table(res)
    assert list(timing.columns) == ["model", "images", "embedding", "S2", "S3", "S4", "S5", "S6"]
    assert timing.loc[0, "images"] == 4
    paths = write_tables(res, tmp_path / "tables")
    assert pd.read_csv(paths["dice_by_target"]).shape == table.shape
    assert (tmp_path / "tables" / "dice_by_target.md").read_text().startswith("|")


def test_main_rows_and_timing_with_shift_and_interactive(prepared: Path, tmp_path: Path) -> None:
    """Shifted repeats and interactive clicks stay out of the paper tables; the timing table has
    every strategy in the paper's order, interactive last."""
    from sambench.analysis.summary import main_rows

    cfg = RunConfig(
        prepared=str(prepared),
        model="fake",
        strategies=("S5", "S2", "interactive"),
        shift=True,
        shift_repeats=1,
        max_clicks=2,
        progress=False,
    )
    res = evaluate(cfg, tmp_path / "run", model=FakeModel())
    main = main_rows(res)
    assert set(main["strategy"]) == {"S2", "S5"}
    assert main["shift_range"].isna().all() or (main["shift_range"].astype(str) == "none").all()
    n_objects = res[["image_id", "label_value"]].drop_duplicates().shape[0]
    assert len(main) == n_objects * 2 * 2  # 2 strategies x 2 selections
    # the written tables equal those of the main rows (shifted rows would lower S5's 100.00)
    paths = write_tables(res, tmp_path / "tables")
    table = pd.read_csv(paths["dice_by_target"])
    assert table.loc[table["target_modality"] == "Box-CT", "S5"].item() == "100.00 (0.00)"
    timing = timing_table(res)
    assert list(timing.columns) == ["model", "images", "embedding", "S2", "S5", "interactive"]
    assert timing["interactive"].notna().all()


def test_save_masks_writes_the_selected_masks_as_png(prepared: Path, tmp_path: Path) -> None:
    from medpy.metric.binary import dc

    from sambench.engine.image_work import read_png
    from sambench.engine.single_round import mask_png_path

    res = run(prepared, tmp_path / "run", strategies=("S3", "S5"), save_masks=True)
    for _, row in res.iterrows():
        path = mask_png_path(
            tmp_path / "run" / "masks", row.to_dict(), row["strategy"], row["selection"]
        )
        png = read_png(path)
        assert png.dtype == np.uint8 and set(np.unique(png)) <= {0, 255}
        assert int((png > 0).sum()) == row["pred_area"]
        gt = read_png(prepared / row["label_path"]) == row["label_value"]
        assert 100 * dc(png > 0, gt) == pytest.approx(row["dice"], abs=1e-6)
    # off by default
    run(prepared, tmp_path / "run2", strategies=("S5",))
    assert not (tmp_path / "run2" / "masks").exists()


def test_resume_refuses_a_changed_prepared_image(prepared: Path, tmp_path: Path) -> None:
    """Before: a prepared image changed between runs kept its old rows silently (issue 28
    item 12). Every row records the SHA-256 of its image and label files; resume checks them."""
    out = tmp_path / "run"
    res = run(prepared, out, strategies=("S5",))
    img = prepared / "toy" / "images" / "toy_c0_0.png"
    from sambench.engine.image_work import file_sha256

    assert (res.loc[res["image_id"] == "toy_c0_0", "image_sha256"] == file_sha256(img)).all()
    assert res["label_sha256"].str.len().eq(64).all()
    run(prepared, out, strategies=("S5",))  # unchanged: resumes (nothing to do)
    arr = np.array(Image.open(img))
    arr[0, 0] ^= 1
    Image.fromarray(arr).save(img)
    with pytest.raises(DataError) as err:
        run(prepared, out, strategies=("S5",))
    assert err.value.path == img
    assert "changed (SHA-256" in err.value.problem and "toy_c0_0" in err.value.problem
    assert "new --out" in err.value.problem
    label = prepared / "toy" / "labels" / "toy_c0_0.png"
    run(prepared, tmp_path / "new", strategies=("S5",))  # a new --out is fine
    label.unlink()
    with pytest.raises(DataError, match=r"toy_c0_0\.png: is gone"):
        run(prepared, tmp_path / "new", strategies=("S5",))
