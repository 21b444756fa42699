"""``--precision bf16|fp16`` for the image encoder (sambench.models.precision).

The bf16 path is tested against the official ``SamPredictor`` run under ``torch.autocast`` (the
same operations: equal features), against fp32 with the deviation measured on real weights
(bf16 is not numerically equal to fp32: docs/performance.md), and its option errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor
from segment_anything.build_sam import _build_sam

from sambench.engine.config import RunConfig, check_compatible
from sambench.errors import OptionError
from sambench.models import runtime as rt
from sambench.models.registry import build_any, build_model
from sambench.models.sam import adapter_from_sam
from sambench.models.sam_family import SamFamilyAdapter
from sambench.prompts.types import Prompts
from test_runtime import mask_iou, seed_images


@pytest.fixture(scope="module")
def tiny_sam() -> torch.nn.Module:
    torch.manual_seed(3)
    return _build_sam(
        encoder_embed_dim=32, encoder_depth=2, encoder_num_heads=2, encoder_global_attn_indexes=[1]
    ).eval()


def test_bf16_encoder_equals_official_predictor_under_autocast(tiny_sam: torch.nn.Module) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (96, 120, 3), dtype=np.uint8)
    fp32 = adapter_from_sam(tiny_sam, name="tiny_sam", device="cpu")  # type: ignore[arg-type]
    ref32 = fp32.embed(image).features
    bf16 = rt.apply_runtime(
        adapter_from_sam(tiny_sam, name="tiny_sam", device="cpu"),  # type: ignore[arg-type]
        "torch",
        precision="bf16",
    )
    emb = bf16.embed(image)
    predictor = SamPredictor(tiny_sam)  # type: ignore[arg-type]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        predictor.set_image(image)
    official = predictor.features.float()
    assert emb.features.dtype == torch.float32
    torch.testing.assert_close(emb.features, official, atol=0, rtol=0)
    # autocast was applied: bf16 differs from fp32, by a bf16-sized amount
    diff = float((emb.features - ref32).abs().max()) / float(ref32.abs().max())
    assert 1e-4 < diff < 0.1
    assert bf16.signature()["precision"] == "bf16" and fp32.signature()["precision"] == "fp32"
    others = {k: v for k, v in bf16.signature().items() if k != "precision"}
    assert others == {k: v for k, v in fp32.signature().items() if k != "precision"}
    # the decoder stays fp32: same logits from the same (fp32) embedding
    box = [Prompts(box=np.array([20.0, 15.0, 90.0, 80.0]))]
    np.testing.assert_array_equal(
        bf16.predict(emb, box, False).low_res_logits, fp32.predict(emb, box, False).low_res_logits
    )


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["torch", "openvino"])
def test_litemedsam_bf16_close_to_fp32_on_seed_images(runtime: str, tmp_path: Path) -> None:
    """Measured here (10 seed images, box prompts): mask IoU vs fp32 mean ~0.95, min ~0.56."""
    ref = build_model("litemedsam", device="cpu")
    fast = build_model(
        "litemedsam", device="cpu", runtime=runtime, precision="bf16", export_dir=tmp_path
    )
    assert isinstance(fast, SamFamilyAdapter) and fast.precision == "bf16"
    if runtime == "openvino":
        assert fast.image_encoder.session.precision == "bf16"  # type: ignore[union-attr]
    ious, diffs = [], []
    for image, label in seed_images(2):
        e32, e16 = ref.embed(image), fast.embed(image)
        assert e16.features.dtype == torch.float32
        scale = float(e32.features.abs().max())
        diffs.append(float((e16.features - e32.features).abs().max()) / scale)
        boxes = []
        for v in np.unique(label)[1:]:
            ys, xs = np.nonzero(label == v)
            boxes.append(Prompts(box=np.array([xs.min(), ys.min(), xs.max(), ys.max()], float)))
        m32 = ref.predict(e32, boxes, False).masks[:, 0]
        m16 = fast.predict(e16, boxes, False).masks[:, 0]
        ious += [mask_iou(a, b) for a, b in zip(m16, m32, strict=True)]
    assert all(1e-4 < d < 0.3 for d in diffs), diffs
    assert np.mean(ious) >= 0.85 and min(ious) >= 0.5, ious


def test_precision_options_refused_with_the_option_named(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match=r"--precision.*'fp8' is not one of fp32, bf16, fp16"):
        build_model("litemedsam", device="cpu", precision="fp8")
    with pytest.raises(OptionError, match=r"--precision.*fp16 needs a CUDA device.*use bf16"):
        build_model("litemedsam", device="cpu", precision="fp16")
    with pytest.raises(OptionError, match=r"--precision.*onnxruntime"):
        build_model(
            "litemedsam", device="cpu", runtime="onnxruntime", precision="bf16", export_dir=tmp_path
        )
    with pytest.raises(OptionError, match=r"--precision.*SAM family only.*'grabcut'"):
        build_any("grabcut", precision="bf16")
    with pytest.raises(OptionError, match="--precision"):
        RunConfig(prepared=str(tmp_path), precision="half").validate()
    with pytest.raises(OptionError, match=r"--precision.*fp16 needs a CUDA device"):
        RunConfig(prepared=str(tmp_path), precision="fp16", device="cpu").validate()
    with pytest.raises(OptionError, match=r"--precision.*onnxruntime"):
        RunConfig(prepared=str(tmp_path), precision="bf16", runtime="onnxruntime").validate()
    with pytest.raises(OptionError, match=r"--precision.*SAM family only.*'sam2.1_hiera_t'"):
        RunConfig(prepared=str(tmp_path), model="sam2.1_hiera_t", precision="bf16").validate()
    RunConfig(prepared=str(tmp_path), precision="bf16", runtime="openvino").validate()


def test_precision_saved_and_resume_with_another_refused(tmp_path: Path) -> None:
    a = RunConfig(prepared=str(tmp_path), precision="bf16")
    b = RunConfig.from_json_dict(a.to_json_dict())
    assert b.precision == "bf16"
    old = a.to_json_dict()
    del old["precision"]  # a config.json from before the option: fp32
    assert RunConfig.from_json_dict(old).precision == "fp32"
    with pytest.raises(ValueError, match="precision"):
        check_compatible(RunConfig(prepared=str(tmp_path)), a, tmp_path)


def test_demo_refuses_fp16_on_a_cpu_before_writing(tmp_path: Path) -> None:
    from sambench.demo.run import DemoConfig, run_demo

    if torch.cuda.is_available():
        pytest.skip("fp16 runs on this machine's CUDA device")
    with pytest.raises(OptionError, match=r"--precision.*fp16 needs a CUDA device"):
        run_demo(tmp_path / "demo", DemoConfig(precision="fp16"))
    assert not (tmp_path / "demo").exists()
