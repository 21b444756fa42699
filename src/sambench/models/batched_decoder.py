"""A mask decoder for many prompts on one image: the prompt-independent work once per image.

segment-anything's ``MaskDecoder.predict_masks`` copies the 1xCxhxw image embedding and positional
encoding once per prompt set (``repeat_interleave``) and recomputes, per prompt, every projection
of the image tokens. Until the first block's image-to-token attention the image tokens do not
depend on the prompts (when the dense prompt embedding is the same for all: no mask prompt), so
:class:`BatchedMaskDecoder` computes once per image

- the first block's token-to-image keys and values ``k_proj(src + pe)``, ``v_proj(src)`` and its
  image-to-token queries ``q_proj(src + pe)``,
- ``pe @ W.T + b`` of every later key-side projection that adds the positional encoding,

and runs the per-prompt work batched: every prompt's tokens attend to the shared image tokens in
one matrix product per head (prompts folded into the token axis), the later blocks and the output
upscaling over a chunk of prompts at once. Same modules, same weights, the official operations in
another order: equal to ``MaskDecoder.forward`` up to float summation order (tested). With a mask
prompt (per-prompt dense embeddings) the image tokens differ from the start and the official
decoder is called, ``chunk`` prompt sets at a time.

Shapes: image embedding and PE 1xCxhxw; sparse prompt embeddings BxNxC; dense 1xCxhxw or BxCxhxw.
A dense embedding expanded from one (stride 0 over the batch, as the prompt
encoder makes it without a mask prompt) counts as 1xCxhxw. Returns (Bx K x 4h x 4w low-res logits, BxK predicted IoU), K = 3 with ``multimask_output`` (mask
tokens 1..3) else 1 (token 0), as ``MaskDecoder.forward``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

DEFAULT_CHUNK = 32
"""Prompt sets decoded together (bounds memory: about 4 MB of image tokens per prompt set)."""


def _heads(x: Tensor, n: int) -> Tensor:
    b, t, c = x.shape
    return x.reshape(b, t, n, c // n).transpose(1, 2)  # B x heads x T x c/heads


def _merge(x: Tensor) -> Tensor:
    b, n, t, c = x.shape
    return x.transpose(1, 2).reshape(b, t, n * c)


def _softmax_attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """softmax(q k^T / sqrt(d)) v over matching leading dims."""
    attn = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    return torch.softmax(attn, dim=-1) @ v


def _linear_nobias(layer: Any, x: Tensor) -> Tensor:
    return x @ layer.weight.T


class BatchedMaskDecoder:
    """Wraps an official ``MaskDecoder`` (segment-anything's, or a copy of its API such as
    LiteMedSAM's); holds no weights of its own."""

    def __init__(self, mask_decoder: nn.Module, chunk: int = DEFAULT_CHUNK) -> None:
        if chunk < 1:
            raise ValueError(f"chunk: expected an integer >= 1, got {chunk}")
        self.decoder = mask_decoder
        self.chunk = chunk

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
        if image_embeddings.shape[0] != 1 or dense.shape[0] != 1:
            c = self.chunk
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
        shared = self._shared(image_embeddings + dense, image_pe)
        outs = [
            self._per_prompt(shared, sparse_prompt_embeddings[s : s + self.chunk])
            for s in range(0, sparse_prompt_embeddings.shape[0], self.chunk)
        ]
        masks = torch.cat([o[0] for o in outs])
        iou = torch.cat([o[1] for o in outs])
        sl = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, sl], iou[:, sl]

    def _shared(self, src: Tensor, image_pe: Tensor) -> dict[str, Tensor]:
        """Everything that depends on the image only (1 x HW x ... tensors)."""
        tr: Any = self.decoder.transformer
        _, c, h, w = src.shape
        keys = src.flatten(2).permute(0, 2, 1)  # 1 x HW x C
        pe = image_pe.flatten(2).permute(0, 2, 1)
        first = tr.layers[0]
        t2i, i2t = first.cross_attn_token_to_image, first.cross_attn_image_to_token
        out = {
            "keys": keys,
            "size": torch.tensor([c, h, w]),
            "k0": _heads(t2i.k_proj(keys + pe), t2i.num_heads)[0],  # heads x HW x d
            "v0": _heads(t2i.v_proj(keys), t2i.num_heads)[0],
            "q0": _heads(i2t.q_proj(keys + pe), i2t.num_heads)[0],
        }
        for i, layer in enumerate(tr.layers[1:], start=1):
            out[f"k{i}_pe"] = layer.cross_attn_token_to_image.k_proj(pe)  # pe W^T + b
            out[f"q{i}_pe"] = layer.cross_attn_image_to_token.q_proj(pe)
        out["kf_pe"] = tr.final_attn_token_to_image.k_proj(pe)
        return out

    def _per_prompt(self, shared: dict[str, Tensor], sparse: Tensor) -> tuple[Tensor, Tensor]:
        dec: Any = self.decoder
        tr: Any = dec.transformer
        b = sparse.shape[0]
        output_tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
        tokens = torch.cat((output_tokens.unsqueeze(0).expand(b, -1, -1), sparse), dim=1)
        query_pe = tokens
        queries = tokens
        keys = shared["keys"]
        for i, layer in enumerate(tr.layers):
            # self attention of the tokens
            if layer.skip_first_layer_pe:
                queries = layer.self_attn(q=queries, k=queries, v=queries)
            else:
                q = queries + query_pe
                queries = queries + layer.self_attn(q=q, k=q, v=queries)
            queries = layer.norm1(queries)
            t2i, i2t = layer.cross_attn_token_to_image, layer.cross_attn_image_to_token
            qt = _heads(t2i.q_proj(queries + query_pe), t2i.num_heads)  # B x n x T x d
            if i == 0:  # shared image tokens: prompts folded into the token axis
                n, t, d = qt.shape[1], qt.shape[2], qt.shape[3]
                folded = qt.transpose(0, 1).reshape(n, b * t, d)
                att = _softmax_attend(folded, shared["k0"], shared["v0"])
                att = att.reshape(n, b, t, d).transpose(0, 1)
            else:
                kk = _heads(_linear_nobias(t2i.k_proj, keys) + shared[f"k{i}_pe"], t2i.num_heads)
                att = _softmax_attend(qt, kk, _heads(t2i.v_proj(keys), t2i.num_heads))
            queries = layer.norm2(queries + t2i.out_proj(_merge(att)))
            queries = layer.norm3(queries + layer.mlp(queries))
            # image tokens attend to the tokens
            q = queries + query_pe
            kt = _heads(i2t.k_proj(q), i2t.num_heads)  # B x n x T x d
            vt = _heads(i2t.v_proj(queries), i2t.num_heads)
            if i == 0:
                qi = shared["q0"].unsqueeze(0)  # 1 x n x HW x d (broadcast over B)
            else:
                qi = _heads(_linear_nobias(i2t.q_proj, keys) + shared[f"q{i}_pe"], i2t.num_heads)
            att = _softmax_attend(qi, kt, vt)  # B x n x HW x d
            keys = layer.norm4(keys + i2t.out_proj(_merge(att)))
        fa = tr.final_attn_token_to_image
        qf = _heads(fa.q_proj(queries + query_pe), fa.num_heads)
        kf = _heads(_linear_nobias(fa.k_proj, keys) + shared["kf_pe"], fa.num_heads)
        att = _softmax_attend(qf, kf, _heads(fa.v_proj(keys), fa.num_heads))
        queries = tr.norm_final_attn(queries + fa.out_proj(_merge(att)))
        # output upscaling and the hypernetworks, as MaskDecoder.predict_masks
        c, h, w = (int(v) for v in shared["size"])
        iou_token_out = queries[:, 0, :]
        mask_tokens_out = queries[:, 1 : 1 + dec.num_mask_tokens, :]
        src = keys.transpose(1, 2).reshape(b, c, h, w)
        up = dec.output_upscaling(src)
        hyper = torch.stack(
            [
                dec.output_hypernetworks_mlps[i](mask_tokens_out[:, i])
                for i in range(dec.num_mask_tokens)
            ],
            dim=1,
        )
        bu, cu, hu, wu = up.shape
        masks = (hyper @ up.reshape(bu, cu, hu * wu)).reshape(bu, -1, hu, wu)
        return masks, dec.iou_prediction_head(iou_token_out)
