"""``sam3`` against transformers' own SAM 3 path, call for call, on a tiny random-weight folder.

The folder (:mod:`sam3_tiny`) is laid out as ``facebook/sam3`` with a tokenizer made here. The
references are transformers' documented calls from the pixels, never from our embedding:

- concept head: ``Sam3Processor(images=..., text=..., input_boxes=..., input_boxes_labels=...)``,
  ``Sam3Model(**inputs)``, ``processor.post_process_instance_segmentation(threshold=0.5,
  mask_threshold=0.5, target_sizes=[(H, W)])``;
- tracker head: ``Sam3TrackerProcessor(images=..., input_points=..., input_boxes=...)``,
  ``Sam3TrackerModel(**inputs)``, ``processor.post_process_masks``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import transformers

from sam3_tiny import save_tiny_sam3
from sambench.errors import OptionError
from sambench.models import build_model
from sambench.models.base import Instances
from sambench.models.hf_sam3 import Sam3Adapter
from sambench.prompts.types import ConceptPrompt, Prompts


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sam3(tmp_path_factory.mktemp("sam3"))


@pytest.fixture(scope="module")
def adapter(folder: Path) -> Sam3Adapter:
    a = build_model("sam3", folder, device="cpu")
    assert isinstance(a, Sam3Adapter)
    a.score_threshold = 0.0  # keep every query: the random model's scores are near 0.5
    return a


def _image(h: int = 90, w: int = 120) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = (rng.random((h, w)) * 60).astype(np.uint8)
    img[20:60, 30:90] += 150
    return np.repeat(img[:, :, None], 3, axis=2)


@pytest.fixture(scope="module")
def reference(folder: Path) -> tuple[Any, Any]:
    model = transformers.Sam3Model.from_pretrained(str(folder), local_files_only=True).eval()
    proc = transformers.Sam3Processor.from_pretrained(str(folder), local_files_only=True)
    return model, proc


def _concept_reference(
    reference: tuple[Any, Any], image: np.ndarray, p: ConceptPrompt, threshold: float
) -> dict[str, Any]:
    model, proc = reference
    kw: dict[str, Any] = {}
    if p.boxes is not None:
        kw["input_boxes"] = [np.asarray(p.boxes).tolist()]
        kw["input_boxes_labels"] = [
            [1] * len(p.boxes) if p.box_labels is None else [int(v) for v in p.box_labels]
        ]
    inputs = proc(images=image, text=p.text, return_tensors="pt", **kw)
    with torch.no_grad():
        out = model(**inputs)
    return proc.post_process_instance_segmentation(
        out, threshold=threshold, mask_threshold=0.5, target_sizes=[image.shape[:2]]
    )[0]


CONCEPTS = [
    ConceptPrompt(text="left ventricle"),
    ConceptPrompt(text="liver in ct"),
    ConceptPrompt(boxes=np.array([[30.0, 20.0, 89.0, 59.0]])),
    ConceptPrompt(text="polyp", boxes=np.array([[30.0, 20.0, 60.0, 40.0]])),
    ConceptPrompt(
        boxes=np.array([[30.0, 20.0, 60.0, 40.0], [0.0, 0.0, 20.0, 20.0]]),
        box_labels=np.array([1, 0]),
    ),
]


def test_concept_head_equals_transformers(reference: tuple[Any, Any], adapter: Sam3Adapter) -> None:
    """Every query (threshold 0), then a threshold at the median score: some instances kept,
    some dropped, the same ones as transformers' post-processing keeps."""
    image = _image()
    emb = adapter.embed(image)
    everything = adapter.segment_concepts(emb, CONCEPTS)
    median = float(np.median(np.concatenate([i.scores for i in everything])))
    kept = []
    for threshold in (0.0, median):
        adapter.score_threshold = threshold
        try:
            got = adapter.segment_concepts(emb, CONCEPTS)
        finally:
            adapter.score_threshold = 0.0
        areas = set()
        for p, inst in zip(CONCEPTS, got, strict=True):
            ref = _concept_reference(reference, image, p, threshold)
            assert isinstance(inst, Instances)
            n = len(ref["scores"])
            assert inst.masks.shape == (n, *image.shape[:2])
            if n:
                np.testing.assert_array_equal(inst.masks, ref["masks"].numpy().astype(bool), str(p))
            np.testing.assert_array_equal(inst.scores, ref["scores"].numpy(), str(p))
            np.testing.assert_array_equal(inst.boxes, ref["boxes"].numpy(), str(p))
            areas.add(int(inst.masks.sum()))
            kept.append(n)
        assert len(areas) > 1, "different prompts should give different masks"
    assert kept[: len(CONCEPTS)] == [12] * len(CONCEPTS)  # every query of the tiny decoder
    assert 0 < sum(kept[len(CONCEPTS) :]) < 12 * len(CONCEPTS)


def test_text_changes_the_answer(adapter: Sam3Adapter) -> None:
    """The phrase reaches the model: two phrases give different scores."""
    emb = adapter.embed(_image())
    a, b = adapter.segment_concepts(
        emb, [ConceptPrompt(text="liver"), ConceptPrompt(text="spleen")]
    )
    assert not np.array_equal(a.scores, b.scores)


TRACKER_PROMPTS: list[dict[str, Any]] = [
    {"points": [[60.0, 40.0]], "labels": [1]},
    {"points": [[60.0, 40.0], [10.5, 80.25]], "labels": [1, 0]},
    {"box": [30.0, 20.0, 89.0, 59.0]},
    {"box": [30.0, 20.0, 89.0, 59.0], "points": [[50.0, 45.0]], "labels": [1]},
]


def test_tracker_head_equals_transformers(folder: Path, adapter: Sam3Adapter) -> None:
    model = transformers.Sam3TrackerModel.from_pretrained(str(folder), local_files_only=True)
    proc = transformers.Sam3TrackerProcessor.from_pretrained(str(folder), local_files_only=True)
    model.eval()
    image = _image()
    emb = adapter.embed(image)
    areas = set()
    for p in TRACKER_PROMPTS:
        kw: dict[str, Any] = {}
        if "points" in p:
            kw["input_points"], kw["input_labels"] = [[p["points"]]], [[p["labels"]]]
        if "box" in p:
            kw["input_boxes"] = [[p["box"]]]
        inputs = proc(images=image, return_tensors="pt", **kw)
        for multimask in (True, False):
            with torch.no_grad():
                out = model(**inputs, multimask_output=multimask)
            ref = proc.post_process_masks(out.pred_masks, inputs["original_sizes"])[0][0]
            pred = adapter.predict(
                emb,
                [
                    Prompts(
                        points=np.asarray(p["points"]) if "points" in p else None,
                        labels=np.asarray(p["labels"]) if "labels" in p else None,
                        box=np.asarray(p["box"]) if "box" in p else None,
                    )
                ],
                multimask_output=multimask,
            )
            np.testing.assert_array_equal(pred.masks[0], ref.numpy(), str(p))
            np.testing.assert_array_equal(pred.scores[0], out.iou_scores[0, 0].numpy(), str(p))
            areas.add(int(ref[0].sum()))
    assert len(areas) > 1


def test_folder_without_tokenizer_is_one_line_error(tmp_path: Path) -> None:
    bad = save_tiny_sam3(tmp_path / "notok", tokenizer=False)
    with pytest.raises(OptionError, match=r"--checkpoint") as e:
        build_model("sam3", bad, device="cpu")
    msg = str(e.value)
    assert "\n" not in msg
    assert (
        str(bad) in msg and "lacks a tokenizer (tokenizer.json, or vocab.json + merges.txt)" in msg
    )


def test_not_a_sam3_folder(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match=r"lacks config\.json; model\.safetensors"):
        build_model("sam3", tmp_path, device="cpu")
    with pytest.raises(OptionError, match=r"needs a local copy"):
        build_model("sam3", None, device="cpu")


def test_everything_mode_uses_sam2_generator_defaults() -> None:
    from sambench.engine.config import RunConfig

    assert RunConfig(prepared="p", model="sam3").pred_iou_thresh == 0.8


def test_evaluate_runs_every_point_box_protocol(adapter: Sam3Adapter, tmp_path: Path) -> None:
    """S1 (point grid), S2-S6, prompt shift and clicks all run through the tracker head."""
    from sambench.engine.config import RunConfig
    from sambench.engine.evaluate import evaluate

    from fakes import make_prepared

    prepared = make_prepared(tmp_path / "prepared", n_images=1)
    cfg = RunConfig(
        prepared=str(prepared),
        model="sam3",
        strategies=("S1", "S2", "S3", "S4", "S5", "S6", "interactive"),
        grid=(2,),
        max_clicks=2,
        shift=True,
        shift_repeats=1,
        progress=False,
    )
    df = evaluate(cfg, tmp_path / "run", model=adapter)
    ok = df[df["status"] == "ok"]
    assert set(ok["strategy"]) >= {"S1", "S2", "S3", "S4", "S5", "S6", "interactive"}
    assert ok["shift_range"].notna().any()
