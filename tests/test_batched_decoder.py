"""BatchedMaskDecoder against segment-anything's MaskDecoder (random weights and LiteMedSAM's)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from segment_anything.modeling import MaskDecoder, PromptEncoder, TwoWayTransformer

from sambench.models.batched_decoder import BatchedMaskDecoder
from sambench.models.registry import build_model
from sambench.models.sam_family import SamFamilyAdapter
from sambench.prompts.types import Prompts
from test_everything import tiny_sam
from test_runtime import mask_iou, seed_images

RTOL = 1e-4  # |batched - official| <= RTOL * max |official logit| (float summation order)


def sam_sized_parts(seed: int) -> tuple[PromptEncoder, MaskDecoder]:
    """segment-anything's decoder at SAM's real size (256 channels, 64x64), random weights."""
    torch.manual_seed(seed)
    pe = PromptEncoder(
        embed_dim=256,
        image_embedding_size=(64, 64),
        input_image_size=(1024, 1024),
        mask_in_chans=16,
    )
    dec = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
        transformer_dim=256,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
    )
    return pe.eval(), dec.eval()


def prompt_kinds(size: int, b: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    pts = torch.as_tensor(rng.random((b, 3, 2)) * size, dtype=torch.float)
    lab = torch.as_tensor(rng.integers(0, 2, (b, 3)), dtype=torch.int)
    xy = rng.random((b, 2)) * size / 2
    boxes = torch.as_tensor(np.hstack([xy, xy + size / 3]), dtype=torch.float)
    return [
        {"points": (pts, lab), "boxes": None},
        {"points": None, "boxes": boxes},
        {"points": (pts[:, :1], lab[:, :1]), "boxes": boxes},
    ]


def check(pe: PromptEncoder, dec: MaskDecoder, emb: torch.Tensor, size: int, chunk: int) -> None:
    rng = np.random.default_rng(3)
    image_pe = pe.get_dense_pe()
    batched = BatchedMaskDecoder(dec, chunk=chunk)
    with torch.no_grad():
        for kind in prompt_kinds(size, 5, rng):
            sparse, dense = pe(masks=None, **kind)
            for mm in (False, True):
                got = batched(emb, image_pe, sparse, dense, mm)
                want = dec(
                    image_embeddings=emb,
                    image_pe=image_pe,
                    sparse_prompt_embeddings=sparse,
                    dense_prompt_embeddings=dense,
                    multimask_output=mm,
                )
                one = dec(  # the official decoder, one prompt set per call
                    image_embeddings=emb,
                    image_pe=image_pe,
                    sparse_prompt_embeddings=sparse[2:3],
                    dense_prompt_embeddings=dense[2:3],
                    multimask_output=mm,
                )
                assert (
                    got[0].shape
                    == want[0].shape
                    == (5, 3 if mm else 1, 4 * emb.shape[-2], 4 * emb.shape[-1])
                )
                scale = float(want[0].abs().max())
                assert float((got[0] - want[0]).abs().max()) <= RTOL * scale
                assert float((got[0][2:3] - one[0]).abs().max()) <= RTOL * scale
                torch.testing.assert_close(got[1], want[1], atol=1e-5, rtol=1e-4)
                # not a copy of the official call: the first block ran on shared image tokens
                assert not torch.equal(got[0], want[0]) or scale == 0


@pytest.mark.parametrize("chunk", [1, 2, 32])
def test_equal_official_decoder_tiny_random(chunk: int) -> None:
    sam = tiny_sam(seed=1)
    torch.manual_seed(1)
    check(sam.prompt_encoder, sam.mask_decoder, torch.randn(1, 64, 16, 16), 256, chunk)


def test_equal_official_decoder_sam_size_random() -> None:
    pe, dec = sam_sized_parts(2)
    torch.manual_seed(2)
    check(pe, dec, torch.randn(1, 256, 64, 64), 1024, 2)


def test_mask_prompts_use_the_official_decoder() -> None:
    sam = tiny_sam(seed=4)
    pe, dec = sam.prompt_encoder, sam.mask_decoder
    torch.manual_seed(4)
    emb = torch.randn(1, 64, 16, 16)
    pts = (torch.rand(3, 1, 2) * 256, torch.ones(3, 1, dtype=torch.int))
    with torch.no_grad():
        sparse, dense = pe(points=pts, boxes=None, masks=torch.randn(3, 1, 64, 64))
        got = BatchedMaskDecoder(dec, chunk=2)(emb, pe.get_dense_pe(), sparse, dense, True)
        want = dec(emb, pe.get_dense_pe(), sparse, dense, True)
    scale = float(want[0].abs().max())
    assert float((got[0] - want[0]).abs().max()) <= RTOL * scale
    torch.testing.assert_close(got[1], want[1], atol=1e-5, rtol=1e-4)


def test_chunk_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk"):
        BatchedMaskDecoder(tiny_sam().mask_decoder, chunk=0)


@pytest.mark.slow
def test_litemedsam_adapter_batched_equals_official_per_prompt() -> None:
    lite = build_model("litemedsam", device="cpu")
    assert isinstance(lite, SamFamilyAdapter)
    image, label = seed_images(1)[0]
    emb = lite.embed(image)
    h, w = image.shape[:2]
    rng = np.random.default_rng(0)
    grid = [Prompts(points=rng.random((1, 2)) * [w, h], labels=np.ones(1)) for _ in range(20)]
    for v in np.unique(label)[1:]:
        ys, xs = np.nonzero(label == v)
        grid.append(Prompts(box=np.array([xs.min(), ys.min(), xs.max(), ys.max()], float)))
    for mm in (False, True):
        got = lite.predict(emb, grid, mm)
        lite.batched_decoding = False  # the official decoder, one prompt set per call on a CPU
        try:
            want = lite.predict(emb, grid, mm)
        finally:
            lite.batched_decoding = True
        scale = float(np.abs(want.low_res_logits).max())
        assert float(np.abs(got.low_res_logits - want.low_res_logits).max()) <= RTOL * scale
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-5, rtol=1e-4)
        for g, r in zip(got.masks.reshape(-1, h, w), want.masks.reshape(-1, h, w), strict=True):
            assert mask_iou(g, r) >= 0.999
