"""A tiny random-weight SAM 3 folder laid out as ``facebook/sam3`` (no download).

The folder holds what the published checkpoint holds: ``config.json`` of a ``Sam3VideoConfig``
(``model_type`` ``sam3_video``: ``detector_config`` + ``tracker_config``), ``model.safetensors``
with the ``Sam3VideoModel`` weights under their module names (``detector_model.*``,
``tracker_model.*``, ``tracker_neck.*``), and the processor (``Sam3ImageProcessor`` + a CLIP
tokenizer). ``Sam3Model.from_pretrained`` reads the detector from it and
``Sam3TrackerModel.from_pretrained`` the tracker (transformers' own key renaming). The weights
are written from the state dict because ``Sam3VideoModel.save_pretrained`` doubles the
tracker's prefix in transformers 5.25 (``tracker_model.tracker_model.*``), which the standalone
tracker cannot read.

The tokenizer is a CLIP BPE over single letters (``a``..``z``, each also as a word end
``a</w>``), no merges: every word becomes its letters, enough to make different phrases give
different token ids.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import torch

S = 112
"""Input side of the tiny model (8x8 patches of 14 px; FPN levels 32, 16, 8, 4)."""
H = 32


def tiny_config() -> Any:
    from transformers import Sam3VideoConfig

    vit = {
        "model_type": "sam3_vit_model",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": S,
        "patch_size": 14,
        "window_size": 4,
        "global_attn_indexes": [1],
        "pretrain_image_size": 56,
    }
    vision = {
        "model_type": "sam3_vision_model",
        "backbone_config": vit,
        "fpn_hidden_size": H,
        "backbone_feature_sizes": [[32, 32], [16, 16], [8, 8]],
    }
    small = {"hidden_size": H, "num_attention_heads": 2, "intermediate_size": 64}
    detector = {
        "vision_config": vision,
        "text_config": {
            "model_type": "clip_text_model",
            "vocab_size": 64,
            "hidden_size": 32,
            "intermediate_size": 64,
            "projection_dim": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 32,
            "hidden_act": "gelu",
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        "geometry_encoder_config": dict(small, num_layers=1, roi_size=7),
        "detr_encoder_config": dict(small, num_layers=1),
        "detr_decoder_config": dict(small, num_layers=1, num_queries=12),
        "mask_decoder_config": {"hidden_size": H, "num_attention_heads": 2},
    }
    tracker = {
        "vision_config": vision,
        "prompt_encoder_config": {"hidden_size": H, "image_size": S, "patch_size": 14},
        "mask_decoder_config": {
            "hidden_size": H,
            "mlp_dim": 64,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": 32,
        },
    }
    cfg = Sam3VideoConfig(detector_config=detector, tracker_config=tracker)
    # Sam3VideoConfig rebuilds the tracker's vision config with its defaults (1008 px input,
    # 288/144/72 feature maps, prompt encoder); the published config holds the same values in both heads.
    vis = cfg.tracker_config.vision_config
    vis.backbone_config.image_size = S
    vis.backbone_feature_sizes = vision["backbone_feature_sizes"]
    cfg.tracker_config.prompt_encoder_config.image_size = S
    if hasattr(cfg.tracker_config, "image_size"):
        cfg.tracker_config.image_size = S
    return cfg


def tiny_tokenizer() -> Any:
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in string.ascii_lowercase:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[])


def save_tiny_sam3(folder: Path, *, seed: int = 0, tokenizer: bool = True) -> Path:
    """Write the tiny SAM 3 folder (see the module docstring); ``tokenizer=False`` leaves the
    tokenizer's files out (a bad folder)."""
    from safetensors.torch import save_file
    from transformers import Sam3ImageProcessor, Sam3Processor, Sam3VideoModel

    folder.mkdir(parents=True, exist_ok=True)
    cfg = tiny_config()
    torch.manual_seed(seed)
    model = Sam3VideoModel(cfg)
    with torch.no_grad():  # random masks far from logit 0, random scores spread out
        for mlp in model.tracker_model.mask_decoder.output_hypernetworks_mlps:
            mlp.proj_out.weight.mul_(30.0)
        # the concept head: query scores spread over the sigmoid's range and a confident
        # presence token, so some phrases find instances at the 0.5 threshold and some do not
        det = model.detector_model
        det.dot_product_scoring.query_proj.weight.mul_(20.0)
        linears = [
            m for m in det.detr_decoder.presence_head.modules() if isinstance(m, torch.nn.Linear)
        ]
        linears[-1].bias.add_(3.0)
    cfg.save_pretrained(folder)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    proc = Sam3Processor(
        Sam3ImageProcessor(size={"height": S, "width": S}), tiny_tokenizer(), target_size=S
    )
    proc.save_pretrained(folder)
    if not tokenizer:
        for name in (
            "tokenizer.json",
            "tokenizer_config.json",
            "vocab.json",
            "merges.txt",
            "special_tokens_map.json",
        ):
            (folder / name).unlink(missing_ok=True)
    return folder
