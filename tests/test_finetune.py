"""Decoder fine-tuning: case split (leakage), targets, loss, training on real seed samples with
LiteMedSAM (loss falls, only the decoder changes, resume == uninterrupted), before/after table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file
from scipy import stats as sps

from sambench.analysis.summary import to_markdown
from sambench.data.manifest import load_manifest
from sambench.data.prepare import prepare_dataset
from sambench.finetune.compare import before_after_table, readable
from sambench.finetune.config import FinetuneConfig, FinetuneConfigMismatchError
from sambench.finetune.data import (
    cache_embeddings,
    jitter_box,
    lowres_target,
    make_batch,
    select_objects,
)
from sambench.finetune.split import (
    SplitError,
    case_keys,
    read_split,
    rows_of,
    split_cases,
    write_split,
)
from sambench.finetune.train import DiceBCELoss, finetune, freeze_all_but_decoder, train_step

from shared_data import SEED


def fake_manifest(cases: dict[str, int], slices: int = 3) -> pd.DataFrame:
    """dataset -> number of cases; each case has ``slices`` images with 2 objects each."""
    rows = []
    for ds, n in cases.items():
        for c in range(n):
            for s in range(slices):
                for v in (1, 2):
                    rows.append(
                        {
                            "dataset": ds,
                            "case": str(c),
                            "image_id": f"{ds}_{c}_{s}",
                            "label_value": v,
                        }
                    )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- split


def test_split_by_case_has_no_leakage_and_expected_counts() -> None:
    m = fake_manifest({"A": 10, "B": 5})
    split = split_cases(m, (0.6, 0.2, 0.2), seed=3)
    assert not split.duplicated(["dataset", "case"]).any()
    assert len(split) == 15
    counts = split.groupby(["dataset", "split"]).size().to_dict()
    assert counts == {
        ("A", "train"): 6, ("A", "val"): 2, ("A", "test"): 2,
        ("B", "train"): 3, ("B", "val"): 1, ("B", "test"): 1,
    }  # fmt: skip
    train, val, test = (rows_of(m, split, s) for s in ("train", "val", "test"))
    assert len(train) + len(val) + len(test) == len(m)
    assert not set(train["image_id"]) & set(test["image_id"])
    assert not set(train["image_id"]) & set(val["image_id"])
    # every slice of a test case is in test (split by case, never by slice)
    test_cases = set(zip(test["dataset"], test["case"], strict=True))
    for (ds, case), g in m.groupby(["dataset", "case"]):
        in_test = g.index.isin(test.index)
        assert in_test.all() == ((ds, case) in test_cases) and (in_test.all() or not in_test.any())


def test_split_is_deterministic_and_per_dataset() -> None:
    m = fake_manifest({"A": 10, "B": 5})
    a = split_cases(m, seed=1)
    pd.testing.assert_frame_equal(a, split_cases(m, seed=1))
    others = [split_cases(m, seed=s) for s in range(2, 8)]
    assert any(not o.equals(a) for o in others)
    # adding a dataset does not change another dataset's split
    more = split_cases(fake_manifest({"A": 10, "B": 5, "C": 4}), seed=1)
    pd.testing.assert_frame_equal(more[more["dataset"] != "C"].reset_index(drop=True), a)


def test_split_single_case_and_too_few_cases_are_clear_errors() -> None:
    with pytest.raises(SplitError, match=r"'Solo'.*1 case"):
        split_cases(fake_manifest({"A": 5, "Solo": 1}))
    with pytest.raises(SplitError, match=r"'Two'.*2 cases.*train=0, val=1, test=1"):
        split_cases(fake_manifest({"Two": 2}), (0.6, 0.2, 0.2))
    # two cases are enough without a test split
    s = split_cases(fake_manifest({"Two": 2}), (0.5, 0.5, 0.0))
    assert sorted(s["split"]) == ["train", "val"]


def test_split_file_roundtrip_and_bad_values(tmp_path: Path) -> None:
    split = split_cases(fake_manifest({"A": 5}))
    write_split(tmp_path / "split.csv", split)
    pd.testing.assert_frame_equal(read_split(tmp_path / "split.csv"), split)
    assert len(case_keys(split, "test")) == 1 and case_keys(split, "test")[0].startswith("A/")
    (tmp_path / "bad.csv").write_text("dataset,case,split\nA,1,training\n")
    with pytest.raises(ValueError, match=r"bad\.csv.*training.*train, val, test"):
        read_split(tmp_path / "bad.csv")


def test_real_heart_split_no_slice_of_test_case_in_train(heart: Path) -> None:
    m = load_manifest(heart)
    split = split_cases(m, (0.6, 0.2, 0.2), seed=0)
    assert sorted(split["case"]) == ["2", "3", "4", "5"]
    train, test = rows_of(m, split, "train"), rows_of(m, split, "test")
    test_case = set(test["case"])
    assert len(test_case) == 1 and not test_case & set(train["case"])
    # image ids carry the case: no train image name belongs to the test case
    (tc,) = test_case
    assert not any(i.startswith(f"22_Heart_{tc}_") for i in train["image_id"])


# ---------------------------------------------------------------- targets, boxes, loss


def test_lowres_target_maps_like_the_image_resize_and_pad() -> None:
    # LiteMedSAM-like: S = L = 256. 512x256 image -> resized 256x128, padded right.
    mask = np.zeros((512, 256), bool)
    mask[:256, :128] = True  # top-left quarter
    t = lowres_target(mask, (256, 128), (256, 256), (256, 256))
    want = np.zeros((256, 256), np.float32)
    want[:128, :64] = 1
    np.testing.assert_array_equal(t, want)
    # SAM-like: S = 1024, L = 256: the resized region 1024x512 covers 256x128 low-res pixels
    t2 = lowres_target(mask, (1024, 512), (1024, 1024), (256, 256))
    np.testing.assert_array_equal(t2, want)
    with pytest.raises(ValueError, match="input_size"):
        lowres_target(mask, (300, 128), (256, 256), (256, 256))


def test_jitter_box_moves_edges_outward_within_range() -> None:
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    box = np.array([10, 20, 30, 40])
    np.testing.assert_array_equal(jitter_box(box, 0, (50, 50), rng), box)
    assert rng.bit_generator.state == state  # no draw when off
    for _ in range(200):
        b = jitter_box(box, 5, (43, 33), rng)
        assert 5 <= b[0] <= 10 and 15 <= b[1] <= 20
        assert 30 <= b[2] <= 32 and 40 <= b[3] <= 42  # clipped to W-1 = 32, H-1 = 42
    edge = jitter_box(np.array([0, 0, 32, 42]), 5, (43, 33), rng)
    np.testing.assert_array_equal(edge, [0, 0, 32, 42])


def test_dice_bce_loss_matches_hand_formula() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 8, 8, generator=g)
    target = (torch.rand(2, 1, 8, 8, generator=g) > 0.5).float()
    p = torch.sigmoid(logits)
    eps = 1e-5  # MONAI's default smooth_nr = smooth_dr
    dims = (2, 3)
    dice = 1 - (2 * (p * target).sum(dims) + eps) / ((p**2).sum(dims) + (target**2).sum(dims) + eps)
    bce = -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()
    want = dice.mean() + bce
    torch.testing.assert_close(DiceBCELoss()(logits, target), want, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- config


def test_config_validation_names_the_field(tmp_path: Path) -> None:
    from sambench.errors import OptionError

    inf, nan = float("inf"), float("nan")
    for kw, field in [
        ({"epochs": 0}, "--epochs"),
        ({"loss": "focal"}, "loss.*dice\\+bce"),
        ({"train_fraction": 0.5}, "sum to 1"),
        ({"box_jitter": -1}, "--box-jitter"),
        ({"patience": 0}, "--patience"),
        ({"lr": inf}, "--lr: must be a finite number > 0, got inf"),
        ({"lr": nan}, "--lr: must be a finite number > 0, got nan"),
        ({"lr": 0.0}, "--lr"),
        ({"weight_decay": inf}, "--weight-decay: must be a finite number"),
        ({"seed": -1}, "--seed: must be >= 0, got -1"),
        ({"split_seed": -1}, "--split-seed: must be >= 0"),
        ({"test_fraction": nan}, "--test-fraction: train and val must be > 0"),
    ]:
        with pytest.raises(OptionError, match=field):
            FinetuneConfig(prepared=str(tmp_path), **kw).validate()  # type: ignore[arg-type]


def test_refused_finetune_leaves_nothing_behind(tmp_path: Path) -> None:
    """A setting found bad only when the run starts (here an unknown model name) writes no
    finetune.json or split.csv: the corrected command is not refused."""
    from sambench.errors import OptionError

    from fakes import make_prepared

    prepared = make_prepared(tmp_path / "prep", n_images=4)
    out = tmp_path / "run"
    cfg = FinetuneConfig(prepared=str(prepared), model="nope", progress=False)
    with pytest.raises(OptionError, match="--model: unknown name 'nope'"):
        finetune(cfg, out)
    assert not out.exists()
    out.mkdir()  # an empty folder given by the user stays (empty)
    with pytest.raises(OptionError, match="--model"):
        finetune(cfg, out)
    assert out.is_dir() and not any(out.iterdir())


@pytest.mark.parametrize("diverges", ["loss", "weights"])
def test_diverged_training_stops_and_saves_no_non_finite_decoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, diverges: str
) -> None:
    """A step whose loss is NaN, or that leaves a NaN weight in the decoder (what `--lr` far too
    large does), stops the run with an error naming --lr; nothing of that epoch is saved."""
    from segment_anything.build_sam import _build_sam

    import sambench.finetune.train as T
    from sambench.models.sam import adapter_from_sam

    from fakes import make_prepared

    torch.manual_seed(0)
    tiny = _build_sam(
        encoder_embed_dim=32, encoder_depth=2, encoder_num_heads=2, encoder_global_attn_indexes=[1]
    )
    adapter = adapter_from_sam(tiny, name="tiny_sam", device="cpu")  # type: ignore[arg-type]
    monkeypatch.setattr(T, "build_model", lambda *a, **k: adapter)

    def bad_step(model, optimizer, loss_fn, batch):  # type: ignore[no-untyped-def]
        if diverges == "loss":
            return float("nan")
        with torch.no_grad():
            next(model.mask_decoder.parameters()).fill_(float("nan"))
        return 0.5

    monkeypatch.setattr(T, "train_step", bad_step)
    prepared = make_prepared(tmp_path / "prep", n_images=4)
    out = tmp_path / "run"
    cfg = FinetuneConfig(prepared=str(prepared), epochs=2, max_objects=2, progress=False)
    what = "the training loss is not finite" if diverges == "loss" else "a decoder weight"
    with pytest.raises(
        T.FinetuneDivergedError, match=rf"--lr: training diverged in epoch 1: {what}"
    ):
        finetune(cfg, out)
    assert not (out / T.DECODER_NAME).exists() and not (out / T.CHECKPOINT_NAME).exists()
    assert list(pd.read_csv(out / T.EPOCHS_NAME)["epoch"]) == [0]


def test_resume_with_different_settings_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    FinetuneConfig(prepared=str(tmp_path), lr=1e-4, epochs=5).save(out)
    new = FinetuneConfig(prepared=str(tmp_path), lr=1e-3, epochs=5, cache_dir="elsewhere")
    with pytest.raises(FinetuneConfigMismatchError, match=r"lr: 0.0001 \(saved\) != 0.001") as e:
        finetune(new, out)
    assert "cache_dir" not in str(e.value)  # a free field is not a difference


# ---------------------------------------------------------------- before/after table


def _results(dice: Sequence[float], targets: Sequence[str]) -> pd.DataFrame:
    n = len(dice)
    return pd.DataFrame(
        {
            "dataset": "D",
            "case": [f"c{k:02d}" for k in range(n)],  # one object per case
            "image_id": [f"i{k}" for k in range(n)],
            "label_value": 1,
            "strategy": "S5",
            "object_name": targets,
            "modality": "MRI",
            "selection": "oracle",
            "status": "ok",
            "dice": dice,
        }
    )


def test_before_after_table_known_values() -> None:
    targets = ["LV"] * 6 + ["RV"] * 6
    before = _results([50, 60, 70, 80, 55, 65, 40, 45, 50, 42, 48, 44], targets)
    after_vals = [55, 62, 79, 81, 60, 70, 40, 43, 50, 40, 45, 44]
    after = _results(after_vals, targets)
    t = before_after_table(before, after, n_boot=500, rng=np.random.default_rng(0))
    assert list(t["target"]) == ["LV-MRI", "RV-MRI", "ALL"]
    lv = t.iloc[0]
    d = np.array(after_vals[:6]) - np.array([50, 60, 70, 80, 55, 65])
    assert lv["n"] == 6 and lv["change"] == pytest.approx(d.mean())
    assert lv["dice_before"] == pytest.approx(63.333333) and lv["dice_after"] == pytest.approx(
        np.mean(after_vals[:6])
    )
    assert lv["change_ci_lo"] <= lv["change"] <= lv["change_ci_hi"]
    assert lv["change_ci_lo"] >= d.min() and lv["change_ci_hi"] <= d.max()
    assert lv["p_value"] == pytest.approx(sps.wilcoxon(after_vals[:6], before["dice"][:6]).pvalue)
    assert t.iloc[2]["n"] == 12
    # all-zero differences: Wilcoxon undefined -> NaN
    same = before_after_table(before, before, n_boot=50, rng=np.random.default_rng(0))
    assert same["p_value"].isna().all() and (same["change"] == 0).all()
    assert (same["note"] == "every difference is 0: no test").all()
    # one object per case: by object, the same change, CI from the object bootstrap's draws
    obj = before_after_table(before, after, n_boot=500, rng=np.random.default_rng(0), unit="object")
    assert obj["change"].tolist() == t["change"].tolist() and (obj["note"] == "").all()
    assert obj["p_value"].tolist() == pytest.approx(t["p_value"].tolist())


def test_before_after_one_case_is_too_few_not_a_zero_width_ci() -> None:
    # n = 1 used to print "95 % CI -3.682 to -3.682, p = 1"
    before, after = _results([60.0], ["LV"]), _results([56.318], ["LV"])
    t = before_after_table(before, after, n_boot=200, rng=np.random.default_rng(0))
    assert t["change_ci_lo"].isna().all() and t["change_ci_hi"].isna().all()
    assert t["p_value"].isna().all() and (t["note"] == "n = 1 case: too few").all()
    assert t["change"].iloc[0] == pytest.approx(-3.682)
    # three slices of one case are still one case
    three = pd.concat([before] * 3, ignore_index=True).assign(image_id=["a", "b", "c"])
    t3 = before_after_table(
        three, three.assign(dice=[50.0, 55.0, 58.0]), n_boot=200, rng=np.random.default_rng(0)
    )
    assert (t3["n"] == 3).all() and (t3["n_cases"] == 1).all() and t3["p_value"].isna().all()
    text = to_markdown(readable(t))
    assert "n = 1 case: too few" in text and "-3.682 to" not in text and "nan" not in text
    assert "95 % CI (by case)" in text and "-3.7" in text


# ---------------------------------------------------------------- real training (LiteMedSAM)


@pytest.fixture(scope="module")
def heart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prepared")
    prepare_dataset(SEED / "22_Heart", out, modality="MRI", progress=False)
    return out


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embeddings")


@pytest.mark.slow
def test_overfit_loss_falls_and_only_decoder_changes(heart: Path, shared_cache: Path) -> None:
    from sambench.engine.cache import EmbeddingCache
    from sambench.engine.plan import embedding_signature
    from sambench.models.registry import build_model

    model = build_model("litemedsam", device="cpu")
    rows = select_objects(load_manifest(heart), 2)
    cache = EmbeddingCache(shared_cache, embedding_signature(model))
    objects = cache_embeddings(model, cache, heart, rows)
    frozen = {
        k: v.clone()
        for part in ("image_encoder", "prompt_encoder")
        for k, v in getattr(model, part).state_dict().items()
    }
    dec0 = model.decoder_state_dict()
    params = freeze_all_but_decoder(model)
    assert all(not p.requires_grad for p in model.image_encoder.parameters())
    assert all(not p.requires_grad for p in model.prompt_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4)
    batch = make_batch(model, cache, heart, objects, box_jitter=0, rng=np.random.default_rng(0))
    assert batch.features.shape == (2, 256, 64, 64) and batch.targets.shape == (2, 1, 256, 256)
    losses = [train_step(model, opt, DiceBCELoss(), batch) for _ in range(5)]
    assert losses[-1] < 0.8 * losses[0], losses
    after = {
        k: v
        for part in ("image_encoder", "prompt_encoder")
        for k, v in getattr(model, part).state_dict().items()
    }
    assert all(torch.equal(frozen[k], after[k]) for k in frozen)
    dec1 = model.decoder_state_dict()
    assert any(not torch.equal(dec0[k], dec1[k]) for k in dec0)


class Killed(RuntimeError):
    pass


@pytest.mark.slow
def test_finetune_resume_equals_uninterrupted_and_decoder_loads(
    heart: Path, shared_cache: Path, tmp_path: Path
) -> None:
    from sambench.models.registry import build_model
    from sambench.prompts.strategies import make_prompts

    cfg = FinetuneConfig(
        prepared=str(heart), epochs=2, lr=1e-4, max_objects=2, box_jitter=3,
        cache_dir=str(shared_cache), device="cpu", progress=False,
    )  # fmt: skip
    full = finetune(cfg, tmp_path / "a")
    assert list(full["epoch"]) == [0, 1, 2]
    assert full["train_loss"].iloc[1:].notna().all() and full["val_dice"].between(0, 100).all()

    seen: list[int] = []

    def kill_after_first(epoch: int, row: dict[str, object]) -> None:
        seen.append(epoch)
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        finetune(cfg, tmp_path / "b", on_epoch_end=kill_after_first)
    resumed = finetune(cfg, tmp_path / "b", on_epoch_end=lambda e, _row: seen.append(e))
    assert seen == [1, 2]  # epoch 1 was not redone
    pd.testing.assert_frame_equal(
        resumed.drop(columns="seconds"), full.drop(columns="seconds"), check_exact=False
    )
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["decoder"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["decoder"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    da, db = (load_file(str(tmp_path / r / "decoder.safetensors")) for r in ("a", "b"))
    assert all(torch.equal(da[k], db[k]) for k in da)

    info = json.loads((tmp_path / "a" / "decoder.json").read_text())
    assert info["base_model"] == "litemedsam" and info["best_epoch"] in (1, 2)
    assert info["train_objects"] == 2 and info["config"]["epochs"] == 2
    split = read_split(tmp_path / "a" / "split.csv")
    assert set(split["split"]) == {"train", "val", "test"}

    # the saved decoder loads and changes predictions on a held-out test image
    base = build_model("litemedsam", device="cpu")
    tuned = build_model("litemedsam", device="cpu", decoder=tmp_path / "a" / "decoder.safetensors")
    assert tuned.decoder_sha256 == info["decoder_sha256"]
    test_row = rows_of(load_manifest(heart), split, "test").iloc[0]
    from sambench.engine.image_work import read_png

    image = read_png(heart / test_row["image_path"])
    label = read_png(heart / test_row["label_path"]) == test_row["label_value"]
    emb = base.embed(image)
    p = [make_prompts(label, "S5")]
    low_base = base.predict(emb, p).low_res_logits
    low_tuned = tuned.predict(emb, p).low_res_logits
    assert np.abs(low_base - low_tuned).max() > 1e-3
    # before/after on the held-out test case through the engine
    from sambench.finetune.compare import COMPARE_COLUMNS, compare_before_after

    table = compare_before_after(tmp_path / "a", max_images=1, n_boot=200, progress=False)
    assert list(table.columns) == list(COMPARE_COLUMNS) and table["target"].iloc[-1] == "ALL"
    assert (table["strategy"] == "S5").all() and table["n"].iloc[-1] >= 1
    for name in ("compare.csv", "compare.md", "compare.png", "training.png"):
        assert (tmp_path / "a" / name).stat().st_size > 0
    after = pd.read_parquet(tmp_path / "a" / "eval_after" / "results.parquet")
    assert set(after["case"].astype(str)) == set(split.loc[split["split"] == "test", "case"])
    # finished run: calling again returns the log without training
    again = finetune(cfg, tmp_path / "a")
    assert list(again["epoch"]) == [0, 1, 2]


def test_decoder_of_another_architecture_is_a_clear_error(tmp_path: Path) -> None:
    from sambench.models.checkpoints import CheckpointError
    from sambench.models.registry import build_model

    model = build_model("litemedsam", device="cpu")
    state = model.decoder_state_dict()
    key = next(k for k in state if k.endswith("weight") and state[k].ndim == 2)
    state[key] = torch.zeros(state[key].shape[0] + 1, state[key].shape[1])
    state["extra.weight"] = torch.zeros(3)
    path = tmp_path / "other.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(CheckpointError, match=r"other\.safetensors.*another architecture"):
        build_model("litemedsam", device="cpu", decoder=path)


@pytest.mark.slow
def test_cli_finetune_and_compare(heart: Path, shared_cache: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sambench.cli import app

    runner = CliRunner()
    out = tmp_path / "ft"
    res = runner.invoke(
        app,
        ["finetune", str(heart), "--out", str(out), "--epochs", "1", "--max-objects", "2",
         "--cache-dir", str(shared_cache), "--no-compare", "--no-progress"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "val_dice" in res.output and (out / "decoder.safetensors").is_file()
    cfg = FinetuneConfig.load(out)
    assert cfg.epochs == 1 and cfg.max_objects == 2 and cfg.cache_dir == str(shared_cache)
    res = runner.invoke(app, ["finetune-compare", str(out), "--max-images", "1", "--no-progress"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "compare.csv")
    assert "ALL" in res.output and table["target"].iloc[-1] == "ALL"
    # a different setting on the same folder is refused, naming the field
    res = runner.invoke(app, ["finetune", str(heart), "--out", str(out), "--epochs", "1",
                              "--lr", "0.001", "--max-objects", "2", "--no-compare"])  # fmt: skip
    assert res.exit_code != 0 and "lr" in str(res.exception)


def test_cli_finetune_compare_prints_too_few_for_one_case(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    import sambench.finetune.compare as fc
    from sambench.cli import app

    before, after = _results([60.0], ["LV"]), _results([56.318], ["LV"])
    table = before_after_table(before, after, n_boot=100, rng=np.random.default_rng(0))
    monkeypatch.setattr(fc, "compare_before_after", lambda *a, **k: table)
    res = CliRunner().invoke(app, ["finetune-compare", str(tmp_path), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "n = 1 case: too few" in res.output and "-3.7" in res.output
    assert "-3.682 to -3.682" not in res.output and "nan" not in res.output.lower()


# ---------------------------------------------------------------- evaluate --decoder (issue 27)


def _decoder_folder(heart: Path, folder: Path) -> tuple[Path, pd.DataFrame]:
    """A fine-tuning run folder as `sambench finetune` leaves it: split.csv, decoder.json (with
    the split's hash) beside decoder.safetensors (its bytes are not read by the plan)."""
    from sambench.finetune.split import split_hash

    split = split_cases(load_manifest(heart), (0.5, 0.25, 0.25), seed=0)  # 4 heart cases: 2/1/1
    folder.mkdir(parents=True)
    write_split(folder / "split.csv", split)
    (folder / "decoder.json").write_text(json.dumps({"split_sha256": split_hash(split)}))
    (folder / "decoder.safetensors").write_bytes(b"not read by plan_run")
    return folder / "decoder.safetensors", split


def test_evaluate_decoder_skips_training_cases_unless_told(heart: Path, tmp_path: Path) -> None:
    from sambench.engine.config import RunConfig
    from sambench.engine.plan import plan_run
    from sambench.errors import DataError, OptionError
    from sambench.report.findings import case_scope

    decoder, split = _decoder_folder(heart, tmp_path / "ft")
    manifest = load_manifest(heart)
    case_of = dict(zip(manifest["image_id"], manifest["case"], strict=False))
    test = set(split.loc[split["split"] == "test", "case"])
    assert len(test) == 1 and manifest["case"].nunique() == 4

    cfg = RunConfig(prepared=str(heart), decoder=str(decoder), strategies=("S5",))
    plan = plan_run(cfg, tmp_path / "run", {}, ())
    assert plan.image_ids and {case_of[i] for i in plan.image_ids} == test  # test cases only
    assert RunConfig.load(tmp_path / "run").all_cases is False
    assert "only the test cases" in str(case_scope(cfg))

    every = RunConfig(prepared=str(heart), decoder=str(decoder), strategies=("S5",), all_cases=True)
    plan = plan_run(every, tmp_path / "run-all", {}, ())
    assert {case_of[i] for i in plan.image_ids} == set(manifest["case"])  # --all-cases: every one
    assert json.loads((tmp_path / "run-all" / "config.json").read_text())["all_cases"] is True
    assert "training and validation cases included" in str(case_scope(every))
    assert case_scope(RunConfig(prepared=str(heart))) is None  # no decoder: nothing to say

    # a --cases value that the decoder trained on is refused, naming the option
    train_case = split.loc[split["split"] == "train", "case"].iloc[0]
    asked = RunConfig(prepared=str(heart), decoder=str(decoder), cases=(f"22_Heart/{train_case}",))
    with pytest.raises(OptionError, match=r"--cases.*training or validation"):
        plan_run(asked, tmp_path / "run-asked", {}, ())
    # a split that is not the decoder's, or none at all, is a data error naming split.csv
    tampered = split.copy()
    tampered["split"] = tampered["split"].replace({"train": "test", "test": "train"})
    write_split(tmp_path / "ft" / "split.csv", tampered)
    with pytest.raises(DataError, match=r"ft/split\.csv.*not the split the decoder"):
        plan_run(cfg, tmp_path / "run-bad", {}, ())
    (tmp_path / "ft" / "split.csv").unlink()
    with pytest.raises(DataError, match=r"ft/split\.csv.*--all-cases"):
        plan_run(cfg, tmp_path / "run-none", {}, ())
    assert not (tmp_path / "run-bad").exists() and not (tmp_path / "run-none").exists()


def test_cli_evaluate_passes_all_cases(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sambench.cli import app
    from sambench.cli import executor as X

    seen = []
    monkeypatch.setattr(X, "run_and_print", lambda cfg, *a, **k: seen.append(cfg))
    runner = CliRunner()
    for extra, expected in (([], False), (["--all-cases"], True)):
        res = runner.invoke(app, ["evaluate", str(tmp_path), "--out", str(tmp_path / "r"),
                                  "--device", "cpu", *extra])  # fmt: skip
        assert res.exit_code == 0, res.output
        assert seen[-1].all_cases is expected


def test_finetune_compare_errors_name_its_folders_not_evaluate_options(tmp_path: Path) -> None:
    """finetune-compare has no --out or --wait-lock: its evaluation folders' problems are said
    in its own terms (issue 27: it told the user to pass --out)."""
    from sambench.engine.config import RunConfig
    from sambench.errors import DataError
    from sambench.finetune.compare import evaluate_into
    from sambench.store.runlock import RunLock

    from fakes import make_prepared

    cfg = RunConfig(prepared=str(make_prepared(tmp_path / "prep")), model="grabcut", progress=False)
    stray = tmp_path / "eval_before"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match=r"eval_before: holds files .*move them away") as e:
        evaluate_into(cfg, stray)
    assert "--out" not in str(e.value)
    busy = tmp_path / "eval_after"
    with (
        RunLock(busy, "evaluate"),
        pytest.raises(DataError, match=r"another sambench command") as e,
    ):
        evaluate_into(cfg, busy)
    assert "--wait-lock" not in str(e.value) and "--out" not in str(e.value)
