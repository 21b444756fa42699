"""``hf_sam`` / ``hf_sam2`` / ``sam_hq`` against transformers' own processor + model forward.

Each architecture is built from a transformers config with small sizes (256 px input, 16x16
embedding) and random weights, saved with ``save_pretrained`` (model and processor) to a temporary
folder and loaded back through the adapter (``local_files_only``). The reference is the documented
transformers path: ``processor(images=..., input_points=..., input_boxes=...)``, ``model(**inputs)``
from the pixels (not from our embedding), ``processor.post_process_masks``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import transformers

from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate
from sambench.errors import OptionError
from sambench.models import build_model
from sambench.models.hf_sam import HfSamAdapter
from sambench.prompts.types import Prompts

from fakes import make_prepared

S = 256


PROMPT_AND_MASK_DECODER: dict[str, Any] = {
    "prompt_encoder_config": {"hidden_size": 64, "image_size": S},
    "mask_decoder_config": {
        "hidden_size": 64,
        "mlp_dim": 128,
        "num_attention_heads": 2,
        "iou_head_hidden_dim": 64,
    },
}
"""The small prompt encoder and mask decoder of both test models (SAM and SAM 2 configs)."""


SAM_VISION: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": S,
    "global_attn_indexes": [1],
    "window_size": 4,
    "output_channels": 64,
    "mlp_dim": 64,
    "num_pos_feats": 32,
    "initializer_range": 0.02,
}
"""The small ViT of the SAM and SAM-HQ test models."""


def _save_sam(folder: Path) -> None:
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    cfg = SamConfig(vision_config=SAM_VISION, **PROMPT_AND_MASK_DECODER)
    torch.manual_seed(0)
    model = SamModel(cfg)
    _confident(model)
    model.save_pretrained(folder)
    proc = SamProcessor(
        SamImageProcessor(size={"longest_edge": S}, pad_size={"height": S, "width": S})
    )
    proc.save_pretrained(folder)


def _save_sam_hq(folder: Path) -> None:
    from transformers import SamHQConfig, SamHQModel, SamHQProcessor, SamImageProcessor

    decoder = dict(PROMPT_AND_MASK_DECODER["mask_decoder_config"], vit_dim=32)
    cfg = SamHQConfig(
        vision_config=SAM_VISION,
        prompt_encoder_config=PROMPT_AND_MASK_DECODER["prompt_encoder_config"],
        mask_decoder_config=decoder,
    )
    torch.manual_seed(0)
    model = SamHQModel(cfg)
    _confident(model)
    model.save_pretrained(folder)
    proc = SamHQProcessor(
        SamImageProcessor(size={"longest_edge": S}, pad_size={"height": S, "width": S})
    )
    proc.save_pretrained(folder)


def _save_sam2(folder: Path) -> None:
    from transformers import (
        Sam2Config,
        Sam2HieraDetConfig,
        Sam2ImageProcessor,
        Sam2Model,
        Sam2Processor,
    )

    backbone = Sam2HieraDetConfig(
        hidden_size=16,
        image_size=[S, S],
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[16, 32, 64, 128],
        num_attention_heads_per_stage=[1, 1, 1, 1],
        window_size_per_stage=[4, 4, 4, 4],
        global_attention_blocks=[3],
        window_positional_embedding_background_size=[4, 4],
    )
    cfg = Sam2Config(
        vision_config={
            "backbone_config": backbone,
            "backbone_channel_list": [128, 64, 32, 16],
            "backbone_feature_sizes": [[S // 4, S // 4], [S // 8, S // 8], [S // 16, S // 16]],
            "fpn_hidden_size": 64,
        },
        **PROMPT_AND_MASK_DECODER,
    )
    torch.manual_seed(0)
    model = Sam2Model(cfg)
    _confident(model)
    model.save_pretrained(folder)
    Sam2Processor(Sam2ImageProcessor(size={"height": S, "width": S})).save_pretrained(folder)


def _confident(model: Any) -> None:
    """Scale the hypernetworks' last layers so random masks are not all near logit 0."""
    with torch.no_grad():
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.proj_out.weight.mul_(30.0)


SAVERS = {"hf_sam": _save_sam, "hf_sam2": _save_sam2, "sam_hq": _save_sam_hq}
CLASSES = {
    "sam": ("SamModel", "SamProcessor"),
    "sam2": ("Sam2Model", "Sam2Processor"),
    "sam_hq": ("SamHQModel", "SamHQProcessor"),
}


@pytest.fixture(scope="module", params=list(SAVERS))
def folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(request.param + "_")
    SAVERS[request.param](out)
    return out


def _name(folder: Path) -> str:
    return next(n for n in ("hf_sam2", "sam_hq", "hf_sam") if folder.name.startswith(n + "_"))


def _image(h: int = 90, w: int = 120) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = (rng.random((h, w)) * 60).astype(np.uint8)
    img[20:60, 30:90] += 150
    return np.repeat(img[:, :, None], 3, axis=2)


PROMPTS: list[dict[str, Any]] = [
    {"points": [[60.0, 40.0]], "labels": [1]},
    {"points": [[60.0, 40.0], [10.5, 80.25]], "labels": [1, 0]},
    {"box": [30.0, 20.0, 89.0, 59.0]},
    {"box": [30.0, 20.0, 89.0, 59.0], "points": [[50.0, 45.0]], "labels": [1]},
]


def _reference(
    kind: str,
    model: Any,
    proc: Any,
    image: np.ndarray,
    p: dict[str, Any],
    multimask: bool,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """transformers' documented path for one prompt set: (masks KxHxW, scores K, low-res)."""
    kw: dict[str, Any] = {}
    nest = 3 if kind == "sam2" else 2  # SamProcessor: [image, point, xy]; Sam2: [image, obj, ...]
    if "points" in p:
        pts: Any = p["points"]
        lbl: Any = p["labels"]
        for _ in range(nest - 1):
            pts, lbl = [pts], [lbl]
        kw["input_points"], kw["input_labels"] = pts, lbl
    if "box" in p:
        kw["input_boxes"] = [[p["box"]]]
    inputs = proc(images=image, return_tensors="pt", **kw)
    extra: dict[str, Any] = {}
    if mask is not None:
        extra["input_masks"] = torch.as_tensor(mask)[None]
    with torch.no_grad():
        out = model(**inputs, multimask_output=multimask, **extra)
    if kind != "sam2":
        m = proc.post_process_masks(
            out.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"]
        )
    else:
        m = proc.post_process_masks(out.pred_masks, inputs["original_sizes"])
    return m[0][0].numpy(), out.iou_scores[0, 0].numpy(), out.pred_masks[0, 0].numpy()


def _prompts(p: dict[str, Any], mask: np.ndarray | None = None) -> Prompts:
    return Prompts(
        points=None if "points" not in p else np.asarray(p["points"]),
        labels=None if "labels" not in p else np.asarray(p["labels"]),
        box=None if "box" not in p else np.asarray(p["box"]),
        mask_logits=mask,
    )


def test_masks_and_scores_equal_transformers(folder: Path) -> None:
    name = _name(folder)
    adapter = build_model(name, folder, device="cpu")
    assert isinstance(adapter, HfSamAdapter)
    kind = adapter.kind
    cls, pcls = (getattr(transformers, c) for c in CLASSES[kind])
    model = cls.from_pretrained(str(folder), local_files_only=True).eval()
    proc = pcls.from_pretrained(str(folder), local_files_only=True)
    image = _image()
    emb = adapter.embed(image)
    if kind == "sam2":
        assert set(emb.extras) == {"high_res_feats_0", "high_res_feats_1"}
    if kind == "sam_hq":
        assert set(emb.extras) == {"hq_intermediate_0"}  # one global-attention layer
    areas = set()
    for p in PROMPTS:
        for multimask in (True, False):
            m, s, low = _reference(kind, model, proc, image, p, multimask)
            pred = adapter.predict(emb, [_prompts(p)], multimask_output=multimask)
            np.testing.assert_array_equal(pred.masks[0], m, err_msg=str(p))
            np.testing.assert_array_equal(pred.scores[0], s, err_msg=str(p))
            np.testing.assert_array_equal(pred.low_res_logits[0], low, err_msg=str(p))
            areas.add(int(m[0].sum()))
            # the previous round's low-res logits as mask prompt (interactive)
            prev = low[int(np.argmax(s))][None]
            m2, s2, _ = _reference(kind, model, proc, image, p, False, prev)
            pred2 = adapter.predict(emb, [_prompts(p, prev)], multimask_output=False)
            np.testing.assert_array_equal(pred2.masks[0], m2, err_msg=str(p))
            np.testing.assert_array_equal(pred2.scores[0], s2, err_msg=str(p))
    assert len(areas) > 1, "the random model's masks should differ between prompts"
    # a batch of mixed signatures equals the one-by-one results
    batch = adapter.predict(emb, [_prompts(p) for p in PROMPTS])
    for j, p in enumerate(PROMPTS):
        m, s, _ = _reference(kind, model, proc, image, p, True)
        np.testing.assert_array_equal(batch.masks[j], m)
        np.testing.assert_array_equal(batch.scores[j], s)


def test_evaluate_runs_every_protocol(folder: Path, tmp_path: Path) -> None:
    name = _name(folder)
    adapter = build_model(name, folder, device="cpu")
    prepared = make_prepared(tmp_path / "prepared", n_images=1)
    cfg = RunConfig(
        prepared=str(prepared),
        model=name,
        strategies=("S1", "S2", "S3", "S4", "S5", "S6", "interactive"),
        grid=(2,),
        max_clicks=2,
        cache_dir=str(tmp_path / "cache"),
        progress=False,
    )
    df = evaluate(cfg, tmp_path / "run", model=adapter)
    ok = df[df["status"] == "ok"]
    assert set(ok["strategy"]) >= {"S2", "S3", "S4", "S5", "S6", "interactive"}
    assert set(ok[ok["strategy"] == "interactive"]["click_index"]) == {1, 2}


def test_folder_of_another_kind_is_refused(folder: Path, tmp_path: Path) -> None:
    name = _name(folder)
    other = "hf_sam" if name != "hf_sam" else "hf_sam2"
    with pytest.raises(OptionError, match=rf"--checkpoint.*model_type.*use --model {name}"):
        build_model(other, folder, device="cpu")


def test_not_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match=r"--checkpoint.*no config\.json"):
        build_model("hf_sam", tmp_path, device="cpu")
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(OptionError, match=r"model_type 'bert'.*expects 'sam'"):
        build_model("hf_sam", tmp_path, device="cpu")
    f = tmp_path / "sam_vit_b.pth"
    f.write_bytes(b"x")
    with pytest.raises(OptionError, match=r"a file; model 'hf_sam2' expects a Hugging Face"):
        build_model("hf_sam2", f, device="cpu")
