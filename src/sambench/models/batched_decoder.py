"""A mask decoder for many prompts on one image: no image-sized work repeated per prompt.

segment-anything's ``MaskDecoder.predict_masks`` copies the 1xCxhxw image embedding and positional
encoding once per prompt set (``repeat_interleave``) and projects, per prompt and attention, all
HW image tokens to queries, keys and values (HW x C x D products). :class:`BatchedMaskDecoder`
runs the same modules with the same weights, in another order:

- Until the first block's image-to-token attention the image tokens do not depend on the prompts
  (when the dense prompt embedding is the same for all: no mask prompt): they and tokens + PE are
  formed once per image and every product with them runs over all prompts at once.
- The projections of the image tokens are folded into the few prompt tokens (T = 7 with a box or
  point and the 4 output tokens), per head h (see :func:`_token_to_image`,
  :func:`_image_to_token`): scores ``(q_h Wk_h) (k + pe)^T``, values ``(p_h k) Wv_h^T + bv_h``
  (softmax rows sum to 1), image-side queries ``(k + pe) (Wq_h^T k_h^T)``, outputs
  ``sum_h p_h (v_h Wo_h^T + bo / n)``. Products with ``pe`` (shared) run over all prompts in one
  matrix product, so ``k + pe`` is never formed per prompt.
- SAM's output upscaling (two non-overlapping 2x2 stride-2 transposed convolutions with a
  channel norm and GELUs) is a per-token MLP to a 4x4 block of pixels: two matrix products on the
  B x HW x C tokens (:func:`_upscaled_masks`), a block of token rows at a time so the
  activations stay in cache, and only the returned mask tokens are formed.

Equal to ``MaskDecoder.forward`` up to float summation order (tested). A decoder whose upscaling
differs from SAM's uses its own ``output_upscaling`` on the batched tokens; with a mask prompt
(per-prompt dense embeddings) the official decoder is called, ``chunk`` prompt sets at a time.

Shapes: image embedding and PE 1xCxhxw; sparse prompt embeddings BxNxC; dense 1xCxhxw or BxCxhxw.
A dense embedding expanded from one (stride 0 over the batch, as the prompt encoder makes it
without a mask prompt) counts as 1xCxhxw. Returns (B x K x 4h x 4w low-res logits, B x K predicted
IoU), K = 3 with ``multimask_output`` (mask tokens 1..3) else 1 (token 0), as
``MaskDecoder.forward``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DEFAULT_CHUNK = 4
"""Prompt sets decoded together (bounds memory: about 4 MB of image tokens per prompt set)."""
UPSCALE_TOKENS = 1024
"""Image tokens upscaled together (whole rows; 1024 tokens: 3 MB of 4x4-pixel activations)."""


def _head_rows(linear: Any, n: int) -> Tensor:
    """A projection's weight split by output head: n x d x C_in (head h = output rows h*d:(h+1)*d,
    as ``Attention._separate_heads``)."""
    w = linear.weight
    return w.reshape(n, w.shape[0] // n, w.shape[1])


def _scores(a: Tensor, k: Tensor, pe: Tensor, kp: Tensor | None, bias: Tensor | None) -> Tensor:
    """``a @ (k + pe)^T (+ bias)``: a B x R x C; k 1 x HW x C, the image tokens shared by all
    prompts, with ``kp = k + pe`` given, or k B x HW x C per prompt with kp None; pe 1 x HW x C;
    bias B x R x 1 or None. Returns B x R x HW, contiguous (the softmaxes run over its last
    dimension or, for image-to-token, over R in whole HW rows).

    Shared k: one product over all prompts. Per prompt k: the product with pe over all prompts
    at once, then ``a k^T`` added in place per prompt (``k + pe`` is never formed per prompt)."""
    b, r, c = a.shape
    flat = a.reshape(b * r, c)
    other = kp[0] if kp is not None else pe[0]
    s = flat @ other.T if bias is None else torch.addmm(bias.reshape(b * r, 1), flat, other.T)
    s = s.reshape(b, r, -1)
    return s if kp is not None else s.baddbmm_(a, k.transpose(1, 2))


def _token_to_image(
    attn: Any, q_tokens: Tensor, k: Tensor, pe: Tensor, kp: Tensor | None
) -> Tensor:
    """``attn(q=q_tokens, k=k + pe, v=k)`` (tokens attend to the image), the key and value
    projections of the image tokens folded into the token side.

    q_tokens B x T x C; k, pe, kp as :func:`_scores`. Per head h, with q_h = q_proj(q_tokens)_h:
    ``q_h k_proj(k + pe)_h^T = (q_h Wk_h)(k + pe)^T + q_h bk_h``, the last term the same for
    every image token (softmax drops it); ``softmax_h v_proj(k)_h = (softmax_h k) Wv_h^T + bv_h``.
    Returns B x T x C.
    """
    n = attn.num_heads
    q = attn.q_proj(q_tokens)
    b, t, dd = q.shape
    d = dd // n
    a = torch.einsum("btnd,ndc->bntc", q.reshape(b, t, n, d), _head_rows(attn.k_proj, n))
    a = (a / math.sqrt(d)).reshape(b, n * t, -1)  # B x nT x C
    p = torch.softmax(_scores(a, k, pe, kp, None), dim=-1)  # B x nT x HW
    if kp is not None:  # shared image tokens: one product over all prompts
        pk = p @ k[0]
    else:
        pk = torch.bmm(p, k)
    att = torch.einsum("bntc,ndc->btnd", pk.reshape(b, n, t, -1), _head_rows(attn.v_proj, n))
    att = att + attn.v_proj.bias.reshape(n, d)
    return attn.out_proj(att.reshape(b, t, dd))


def _image_to_token(
    attn: Any, k: Tensor, pe: Tensor, kp: Tensor | None, q_tokens: Tensor, v_tokens: Tensor
) -> Tensor:
    """``k + attn(q=k + pe, k=q_tokens, v=v_tokens)`` (the image attends to the tokens), the query
    projection of the image tokens and the output projection folded into the token side.

    k, pe, kp as :func:`_scores`; q_tokens, v_tokens B x T x C; returns B x HW x C, written into
    ``k`` when k is per prompt (kp None: the caller's k is used up). Per head h, with k_h, v_h the
    projected tokens: ``q_proj(k + pe)_h k_h^T = (k + pe)(Wq_h^T k_h^T) + bq_h k_h^T``;
    ``out_proj(concat_h p_h v_h) = sum_h p_h (v_h Wo_h^T + bo / n)`` (each head's softmax rows sum
    to 1): one HW x nT x C product. The softmax over T runs on B x n x T x HW (HW innermost: T is
    small).
    """
    n = attn.num_heads
    kt, vt = attn.k_proj(q_tokens), attn.v_proj(v_tokens)
    b, t, dd = kt.shape
    d = dd // n
    kh = kt.reshape(b, t, n, d) / math.sqrt(d)
    m = torch.einsum("btnd,ndc->bntc", kh, _head_rows(attn.q_proj, n)).reshape(b, n * t, -1)
    bias = torch.einsum("btnd,nd->bnt", kh, attn.q_proj.bias.reshape(n, d)).reshape(b, n * t, 1)
    s = _scores(m, k, pe, kp, bias)  # B x nT x HW
    hw = s.shape[-1]
    p = torch.softmax(s.reshape(b, n, t, hw), dim=2).reshape(b, n * t, hw)
    wo = attn.out_proj.weight  # C x D, head h = columns h*d:(h+1)*d
    vo = torch.einsum("btnd,cnd->bntc", vt.reshape(b, t, n, d), wo.reshape(-1, n, d))
    vo = (vo + attn.out_proj.bias / n).reshape(b, n * t, -1)
    if kp is not None:  # shared image tokens: into a new tensor (one copy; baddbmm makes two)
        k = k.expand(b, -1, -1).clone(memory_format=torch.contiguous_format)
    return k.baddbmm_(p.transpose(1, 2), vo)


def _pixel_mlp(upscaling: nn.Module) -> tuple[Any, ...] | None:
    """SAM's ``output_upscaling`` as per-token weights when it is ConvTranspose2d(k=2, s=2) ->
    LayerNorm2d -> GELU -> ConvTranspose2d(k=2, s=2) -> GELU (SAM, MedSAM, LiteMedSAM), else None:
    (w1 C x 4C1, b1 4C1, the norm, its GELU, w2 C1 x 4C2, b2 4C2, the last GELU), kernel offsets
    (ky, kx) major in the 4C1 and 4C2 columns.

    Such a stack maps every image token to its own 4x4 block of output pixels (the transposed
    convolutions do not overlap, the norm is over channels): a per-token MLP
    C -> 2x2xC1 -> norm, GELU -> 2x2x(2x2xC2) -> GELU."""
    parts: list[Any] = list(upscaling.children()) if isinstance(upscaling, nn.Sequential) else []
    if len(parts) != 5:
        return None
    ct1, ln, g1, ct2, g2 = parts
    for ct in (ct1, ct2):
        if not (
            isinstance(ct, nn.ConvTranspose2d)
            and tuple(ct.kernel_size) == tuple(ct.stride) == (2, 2)
            and tuple(ct.padding) == tuple(ct.output_padding) == (0, 0)
            and tuple(ct.dilation) == (1, 1)
            and ct.groups == 1
            and ct.bias is not None
        ):
            return None
    gelus = all(isinstance(g, nn.GELU) for g in (g1, g2))
    norm = type(ln).__name__ == "LayerNorm2d" and all(hasattr(ln, a) for a in ("eps", "weight"))
    if not (gelus and norm):
        return None
    c, c1 = ct1.in_channels, ct1.out_channels
    w1 = ct1.weight.permute(0, 2, 3, 1).reshape(c, 4 * c1).contiguous()  # C x (ky, kx, C1)
    w2 = ct2.weight.permute(0, 2, 3, 1).reshape(c1, 4 * ct2.out_channels).contiguous()
    return w1, ct1.bias.repeat(4), ln, g1, w2, ct2.bias.repeat(4), g2


def _upscaled_masks(mlp: tuple[Any, ...], keys: Tensor, hyper: Tensor, out: Tensor) -> None:
    """``hyper @ output_upscaling(keys as C x h x w)`` for one prompt set in the per-token form of
    :func:`_pixel_mlp` (``mlp``, as it returns them), written into ``out``: keys R x C (R = r x w
    tokens: whole rows of the h x w token grid), hyper M x C2, out M x 4r x 4w. SAM's
    LayerNorm2d is ``F.layer_norm`` over channels."""
    w1, b1, ln, g1, w2, b2, g2 = mlp
    r = keys.shape[0]
    m, h4, w4 = out.shape
    c1, c2 = w2.shape[0], hyper.shape[1]
    x = torch.addmm(b1, keys, w1).reshape(-1, c1)
    x = F.gelu(F.layer_norm(x, (c1,), ln.weight, ln.bias, ln.eps), approximate=g1.approximate)
    y = F.gelu(torch.addmm(b2, x, w2), approximate=g2.approximate)
    pix = (y.reshape(r * 16, c2) @ hyper.T).reshape(h4 // 4, w4 // 4, 2, 2, 2, 2, m)
    # token (i, j), kernel offsets (a1, c1), (a2, c2) -> pixel (4i + 2a1 + a2, 4j + 2c1 + c2)
    out.view(m, h4 // 4, 2, 2, w4 // 4, 2, 2).copy_(pix.permute(6, 0, 2, 4, 1, 3, 5))


class BatchedMaskDecoder:
    """Wraps an official ``MaskDecoder`` (segment-anything's, or a copy of its API such as
    LiteMedSAM's); holds no weights of its own. ``chunk``: prompt sets decoded together."""

    def __init__(self, mask_decoder: nn.Module, chunk: int = DEFAULT_CHUNK) -> None:
        if chunk < 1:
            raise ValueError(f"chunk: expected an integer >= 1, got {chunk}")
        self.decoder = mask_decoder
        self.chunk = chunk
        self.upscale_tokens = UPSCALE_TOKENS

    @torch.no_grad()
    def __call__(
        self,
        image_embeddings: Tensor,
        image_pe: Tensor,
        sparse_prompt_embeddings: Tensor,
        dense_prompt_embeddings: Tensor,
        multimask_output: bool,
    ) -> tuple[Tensor, Tensor]:
        dec: Any = self.decoder
        dense = dense_prompt_embeddings
        if dense.shape[0] > 1 and dense.stride(0) == 0:  # one embedding expanded (no mask prompt)
            dense = dense[:1]
        c = self.chunk
        if image_embeddings.shape[0] != 1 or dense.shape[0] != 1:
            parts = [
                dec(
                    image_embeddings=image_embeddings
                    if image_embeddings.shape[0] == 1
                    else image_embeddings[s : s + c],
                    image_pe=image_pe,
                    sparse_prompt_embeddings=sparse_prompt_embeddings[s : s + c],
                    dense_prompt_embeddings=dense_prompt_embeddings[s : s + c],
                    multimask_output=multimask_output,
                )
                for s in range(0, sparse_prompt_embeddings.shape[0], c)
            ]
            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        src = image_embeddings + dense
        # 1 x HW x C row-major (a channel-major view would make every per-prompt copy and
        # LayerNorm of the image tokens a strided pass), shared by all prompts
        keys = src.flatten(2).transpose(1, 2).contiguous()
        pe = image_pe.flatten(2).transpose(1, 2).contiguous()
        kp = keys + pe
        tokens = slice(1, dec.num_mask_tokens) if multimask_output else slice(0, 1)
        b, (h, w) = sparse_prompt_embeddings.shape[0], src.shape[-2:]
        masks = torch.empty(
            b, tokens.stop - tokens.start, 4 * h, 4 * w, dtype=src.dtype, device=src.device
        )
        ious, mlp = [], _pixel_mlp(dec.output_upscaling)
        for s in range(0, b, c):
            ious.append(
                self._decode(
                    keys,
                    pe,
                    kp,
                    sparse_prompt_embeddings[s : s + c],
                    tokens,
                    masks[s : s + c],
                    (h, w),
                    mlp,
                )
            )
        return masks, torch.cat(ious)

    def _decode(
        self,
        keys: Tensor,
        pe: Tensor,
        kp: Tensor | None,
        sparse: Tensor,
        tokens: slice,
        masks: Tensor,
        size: tuple[int, int],
        mlp: tuple[Any, ...] | None,
    ) -> Tensor:
        """One chunk of prompt sets: writes its masks (of the mask tokens ``tokens``) into
        ``masks`` and returns their predicted IoU; ``mlp``: :func:`_pixel_mlp` of the decoder."""
        dec: Any = self.decoder
        tr: Any = dec.transformer
        b = sparse.shape[0]
        output_tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
        query_pe = torch.cat((output_tokens.unsqueeze(0).expand(b, -1, -1), sparse), dim=1)
        queries = query_pe
        for layer in tr.layers:  # TwoWayAttentionBlock.forward, reordered
            if layer.skip_first_layer_pe:
                queries = layer.self_attn(q=queries, k=queries, v=queries)
            else:
                q = queries + query_pe
                queries = queries + layer.self_attn(q=q, k=q, v=queries)
            queries = layer.norm1(queries)
            t2i = layer.cross_attn_token_to_image
            queries = layer.norm2(queries + _token_to_image(t2i, queries + query_pe, keys, pe, kp))
            queries = layer.norm3(queries + layer.mlp(queries))
            i2t = layer.cross_attn_image_to_token
            keys = layer.norm4(_image_to_token(i2t, keys, pe, kp, queries + query_pe, queries))
            kp = None  # the image tokens are per prompt from here on
        # the final attention for the tokens that are read (each query row attends on its own):
        # the IoU token and the returned mask tokens, not the other mask tokens and the prompts
        ids = range(tokens.start, tokens.stop)
        read = [0, *(1 + i for i in ids)]
        queries, query_pe = queries[:, read], query_pe[:, read]
        fa = tr.final_attn_token_to_image
        queries = tr.norm_final_attn(
            queries + _token_to_image(fa, queries + query_pe, keys, pe, kp)
        )
        # the hypernetworks and the output upscaling, as MaskDecoder.predict_masks
        hyper = torch.stack(
            [dec.output_hypernetworks_mlps[i](queries[:, 1 + j]) for j, i in enumerate(ids)], 1
        )
        h, w = size
        if mlp is not None:  # a block of token rows at a time: the activations stay in cache
            rows = max(1, self.upscale_tokens // w)
            for j in range(b):
                for i in range(0, h, rows):
                    blk = keys[j, i * w : (i + rows) * w]
                    _upscaled_masks(mlp, blk, hyper[j], masks[j, :, 4 * i : 4 * (i + rows)])
        else:
            up = dec.output_upscaling(keys.transpose(1, 2).reshape(b, -1, h, w))
            masks.copy_((hyper @ up.flatten(2)).reshape(masks.shape))
        return dec.iou_prediction_head(queries[:, 0])[:, tokens]
