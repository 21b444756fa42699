"""Model runtimes (ONNX Runtime, OpenVINO) against eager PyTorch, and their export cache.

Tolerance (docs/performance.md): low-res logits within ``LOGIT_ATOL + LOGIT_RTOL * |logit|`` of
eager, predicted IoUs within 1e-4, every mask's IoU with the eager mask >= 0.999.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from segment_anything.build_sam import _build_sam

from sambench.errors import OptionError
from sambench.models import runtime as rt
from sambench.models.registry import build_model
from sambench.models.sam import adapter_from_sam
from sambench.models.sam_family import SamFamilyAdapter
from sambench.prompts.types import Prompts

from shared_data import SEED

LOGIT_ATOL, LOGIT_RTOL = 1e-3, 1e-4
RUNTIMES = ("onnxruntime", "openvino")
# each SAM variant's block layout, scaled down (random weights): depth, heads, global blocks
SAM_LAYOUTS = {"vit_b": (2, 2, [1]), "vit_l": (3, 2, [1, 2]), "vit_h": (4, 2, [1, 3])}


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def prompt_sets(h: int, w: int) -> list[list[Prompts]]:
    """Batches of each prompt kind inside an HxW image (points (X, Y), boxes XYXY)."""
    box = np.array([0.2 * w, 0.25 * h, 0.7 * w, 0.8 * h])
    pts = np.array([[0.45 * w, 0.5 * h], [0.1 * w, 0.1 * h]])
    return [
        [Prompts(box=box), Prompts(box=box * 0.9)],
        [
            Prompts(points=pts, labels=np.array([1, 0])),
            Prompts(points=pts[::-1], labels=np.array([1, 1])),
        ],
        [Prompts(points=pts[:1], labels=np.array([1]), box=box)],
    ]


def assert_same(adapter: SamFamilyAdapter, ref: SamFamilyAdapter, image: np.ndarray) -> None:
    """Features, logits, IoUs and masks of ``adapter`` equal eager ``ref``'s within tolerance."""
    emb, emb_ref = adapter.embed(image), ref.embed(image)
    scale = float(emb_ref.features.abs().max())
    assert float((emb.features - emb_ref.features).abs().max()) <= 1e-4 * max(scale, 1.0)
    h, w = image.shape[:2]
    for group in prompt_sets(h, w):
        for multimask in (False, True):
            got = adapter.predict(emb_ref, group, multimask)
            want = ref.predict(emb_ref, group, multimask)
            assert got.low_res_logits.shape == want.low_res_logits.shape
            np.testing.assert_allclose(
                got.low_res_logits, want.low_res_logits, atol=LOGIT_ATOL, rtol=LOGIT_RTOL
            )
            np.testing.assert_allclose(got.scores, want.scores, atol=1e-4)
            for g, r in zip(
                got.masks.reshape(-1, h, w), want.masks.reshape(-1, h, w), strict=False
            ):
                assert mask_iou(g, r) >= 0.999
    # a mask prompt (the next interactive round) with a point
    first = ref.predict(emb_ref, prompt_sets(h, w)[1][:1], False)
    nxt = [
        Prompts(
            points=np.array([[0.5 * w, 0.5 * h]]),
            labels=np.array([1]),
            mask_logits=first.low_res_logits[0, :1],
        )
    ]
    np.testing.assert_allclose(
        adapter.predict(emb_ref, nxt, False).low_res_logits,
        ref.predict(emb_ref, nxt, False).low_res_logits,
        atol=LOGIT_ATOL,
        rtol=LOGIT_RTOL,
    )


def small_sam(variant: str) -> torch.nn.Module:
    depth, heads, glob = SAM_LAYOUTS[variant]
    torch.manual_seed(len(variant) + depth)
    return _build_sam(
        encoder_embed_dim=32,
        encoder_depth=depth,
        encoder_num_heads=heads,
        encoder_global_attn_indexes=glob,
    ).eval()


def seed_images(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first ``n`` seed pairs (image HxW uint8, label HxW uint8), datasets alternating."""
    per = [sorted((d / "images").glob("*.png")) for d in sorted(SEED.iterdir()) if d.is_dir()]
    paths = [p for pair in zip(*per, strict=False) for p in pair][:n]
    return [
        (np.asarray(Image.open(p)), np.asarray(Image.open(p.parent.parent / "labels" / p.name)))
        for p in paths
    ]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(
    "variant", ["vit_b", *(pytest.param(v, marks=pytest.mark.slow) for v in ("vit_l", "vit_h"))]
)
def test_sam_random_weights_equal_eager(variant: str, runtime: str, tmp_path: Path) -> None:
    sam = small_sam(variant)
    ref = adapter_from_sam(sam, name=f"tiny_{variant}", device="cpu")  # type: ignore[arg-type]
    fast = adapter_from_sam(sam, name=f"tiny_{variant}", device="cpu")  # type: ignore[arg-type]
    rt.apply_runtime(fast, runtime, export_dir=tmp_path, decoder=True)
    assert fast.runtime == runtime and fast.runtime_decoder is not None
    rng = np.random.default_rng(1)
    assert_same(fast, ref, (rng.random((90, 130, 3)) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def lite_eager() -> SamFamilyAdapter:
    return build_model("litemedsam", device="cpu")  # type: ignore[return-value]


@pytest.mark.slow
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_litemedsam_real_weights_equal_eager_on_seed_images(
    runtime: str, lite_eager: SamFamilyAdapter, tmp_path: Path
) -> None:
    fast = build_model(
        "litemedsam", device="cpu", runtime=runtime, export_dir=tmp_path, runtime_decoder=True
    )
    assert isinstance(fast, SamFamilyAdapter) and fast.runtime == runtime
    for image, label in seed_images(2):
        assert_same(fast, lite_eager, image)
        # ground-truth boxes of the real objects (S5-style prompts), several in one batch
        emb = lite_eager.embed(image)
        boxes = []
        for v in np.unique(label)[1:]:
            ys, xs = np.nonzero(label == v)
            boxes.append(Prompts(box=np.array([xs.min(), ys.min(), xs.max(), ys.max()], float)))
        got, want = fast.predict(emb, boxes), lite_eager.predict(emb, boxes)
        for g, r in zip(got.masks[:, 0], want.masks[:, 0], strict=False):
            assert mask_iou(g, r) >= 0.999


def eager_and_onnxruntime(tmp_path: Path) -> tuple[SamFamilyAdapter, SamFamilyAdapter]:
    """Two adapters over one random-weight small SAM: eager, and ONNX Runtime (encoder only)."""
    sam = small_sam("vit_b")
    ref = adapter_from_sam(sam, name="tiny", device="cpu")  # type: ignore[arg-type]
    fast = rt.apply_runtime(
        adapter_from_sam(sam, name="tiny", device="cpu"),  # type: ignore[arg-type]
        "onnxruntime",
        export_dir=tmp_path,
    )
    return ref, fast


def test_signature_names_the_runtime(tmp_path: Path) -> None:
    ref, fast = eager_and_onnxruntime(tmp_path)
    sig, ref = fast.signature(), ref.signature()
    assert ref["runtime"] == "torch"
    assert sig["runtime"] == f"onnxruntime {rt.package_version('onnxruntime')}"
    assert {k: v for k, v in sig.items() if k != "runtime"} == {
        k: v for k, v in ref.items() if k != "runtime"
    }


def test_export_reused_and_rebuilt_for_another_version(tmp_path: Path) -> None:
    sam = small_sam("vit_b")
    a = adapter_from_sam(sam, name="tiny", device="cpu")  # type: ignore[arg-type]
    rt.apply_runtime(a, "onnxruntime", export_dir=tmp_path, decoder=True)
    folders = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert [p.name.split("-")[1] for p in folders] == ["decoder", "encoder"]
    stamps = {p: (p / "model.onnx").stat().st_mtime_ns for p in folders}
    b = adapter_from_sam(sam, name="tiny", device="cpu")  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reuse: no rebuild warning
        rt.apply_runtime(b, "onnxruntime", export_dir=tmp_path, decoder=True)
    assert {p: (p / "model.onnx").stat().st_mtime_ns for p in folders} == stamps
    meta_path = folders[1] / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["sambench_version"] = "0.0.1"
    meta_path.write_text(json.dumps(meta))
    c = adapter_from_sam(sam, name="tiny", device="cpu")  # type: ignore[arg-type]
    with pytest.warns(UserWarning, match="sambench_version"):
        rt.apply_runtime(c, "onnxruntime", export_dir=tmp_path, decoder=True)
    assert json.loads(meta_path.read_text())["sambench_version"] != "0.0.1"
    assert (folders[1] / "model.onnx").stat().st_mtime_ns != stamps[folders[1]]


def test_default_runtime_decodes_with_the_eager_batched_decoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``decoder=True`` only the encoder is exported; decoding is the eager batched
    decoder's (faster), so its logits equal eager torch's exactly for the same embedding."""
    from sambench.models import batched_decoder as bd

    ref, fast = eager_and_onnxruntime(tmp_path)
    assert fast.runtime == "onnxruntime" and fast.runtime_decoder is None
    assert [p.name.split("-")[1] for p in tmp_path.iterdir() if p.is_dir()] == ["encoder"]
    calls = []
    real = bd.BatchedMaskDecoder.__call__
    monkeypatch.setattr(
        bd.BatchedMaskDecoder,
        "__call__",
        lambda self, *a, **k: calls.append(1) or real(self, *a, **k),
    )
    image = (np.random.default_rng(2).random((80, 100, 3)) * 255).astype(np.uint8)
    emb = ref.embed(image)
    group = prompt_sets(80, 100)[0]
    np.testing.assert_array_equal(
        fast.predict(emb, group).low_res_logits, ref.predict(emb, group).low_res_logits
    )
    assert len(calls) == 2


def test_unknown_and_missing_runtime_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(OptionError, match=r"--runtime.*'tensorrt' is not one of torch"):
        rt.resolve_runtime("tensorrt", "cpu")
    monkeypatch.setattr(rt, "_installed", lambda name: False)
    with pytest.raises(OptionError, match="install the package 'openvino'"):
        rt.resolve_runtime("openvino", "cpu")
    assert rt.resolve_runtime("auto", "cpu") == "torch"
    monkeypatch.setattr(rt, "_installed", lambda name: True)
    assert rt.resolve_runtime("auto", "cpu") == "openvino"
    assert rt.resolve_runtime("auto", "cuda") == "torch"
    with pytest.raises(OptionError, match="--device cpu"):
        rt.resolve_runtime("onnxruntime", "cuda")


def test_failed_export_falls_back_only_under_auto(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(*args: object, **kwargs: object) -> Path:
        raise RuntimeError("unsupported operator aten::weird")

    monkeypatch.setattr(rt, "exported_file", broken)
    sam = small_sam("vit_b")
    a = adapter_from_sam(sam, name="tiny", device="cpu")  # type: ignore[arg-type]
    with pytest.warns(UserWarning, match="aten::weird.*using torch"):
        rt.apply_runtime(a, "auto", export_dir=tmp_path)
    assert a.runtime == "torch" and a.runtime_decoder is None
    with pytest.raises(rt.RuntimeExportError, match=r"--runtime.*aten::weird"):
        rt.apply_runtime(a, "openvino", export_dir=tmp_path)


def test_run_config_refuses_unknown_runtime(tmp_path: Path) -> None:
    from sambench.engine.config import RunConfig

    with pytest.raises(OptionError, match="--runtime"):
        RunConfig(prepared=str(tmp_path), runtime="fast").validate()
    RunConfig(prepared=str(tmp_path), runtime="openvino").validate()


@pytest.mark.slow
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_four_image_run_dice_table_within_005_points(runtime: str, tmp_path: Path) -> None:
    """A 4-image evaluate run (S1 grid 4, S2-S6): mean DICE per target and strategy within 0.05
    points of the eager run's."""
    from sambench.analysis.summary import main_rows, summary_long
    from sambench.data.prepare import prepare_dataset
    from sambench.engine.config import RunConfig
    from sambench.engine.evaluate import evaluate

    prepared = tmp_path / "prepared"
    prepare_dataset(SEED / "22_Heart", prepared, modality="MRI", progress=False)
    base = RunConfig(
        prepared=str(prepared),
        strategies=("S1", "S2", "S3", "S4", "S5", "S6"),
        grid=(4,),
        max_images=4,
        device="cpu",
        progress=False,
        cache_dir=str(tmp_path / "embeddings"),
    )
    tables = {}
    for rt_name in ("torch", runtime):
        res = evaluate(replace(base, runtime=rt_name), tmp_path / rt_name)
        assert res["image_id"].nunique() == 4
        tables[rt_name] = summary_long(main_rows(res), "dice").set_index(
            ["target_modality", "strategy"]
        )["mean"]
    eager, fast = tables["torch"], tables[runtime]
    assert list(eager.index) == list(fast.index) and len(eager) >= 6
    assert float((eager - fast).abs().max()) < 0.05  # DICE in %, points
    # the two runs used separate cache entries (the runtime is part of the signature)
    assert len([p for p in (tmp_path / "embeddings").iterdir() if p.is_dir()]) == 2
