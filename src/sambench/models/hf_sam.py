"""Hugging Face ``transformers`` SAM / SAM 2 adapters (``hf_sam``, ``hf_sam2``) for a local folder.

The folder is what ``save_pretrained`` writes (``config.json``, ``model.safetensors``, the
processor's ``processor_config.json`` / ``preprocessor_config.json``), e.g. a clone of
``facebook/sam-vit-base`` or ``facebook/sam2.1-hiera-tiny``. It is opened with
``from_pretrained(folder, local_files_only=True)``: nothing is downloaded.

Everything is transformers' own code, not a re-implementation:

- ``embed``: the processor on the HxWx3 uint8 RGB image (SAM: resize the longest side to S,
  rescale, ImageNet mean/std, pad to SxS; SAM 2: resize to SxS ignoring the aspect ratio) and
  ``model.get_image_embeddings``. SAM: ``features`` = 1x256x64x64 at S = 1024. SAM 2: ``features``
  = the last feature map and ``extras`` = ``high_res_feats_0`` / ``high_res_feats_1`` (the two
  high-resolution maps, already projected by the decoder's ``conv_s0``/``conv_s1`` as
  ``get_image_embeddings`` returns them);
- prompts: the processor's coordinate normalization (SAM: float64 numpy, boxes rounded to float32
  first, as ``SamProcessor``; SAM 2: float32 tensors, ``Sam2Processor``);
- decoding: ``model(image_embeddings=..., input_points=(1xBxNx2), input_labels=(1xBxN),
  input_boxes=(1xBx4), input_masks=(1x1xhxw), multimask_output=...)``;
- masks: ``processor.post_process_masks`` (bilinear to the padded input, crop, bilinear to HxW;
  ``binarize=False``), foreground where the logit > 0; scores = ``iou_scores``; low-res logits =
  ``pred_masks`` as returned (BxKx256x256 at S = 1024), usable as the next round's mask prompt.

Default: multimask output (three candidates), as both models' ``forward``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sambench.errors import OptionError
from sambench.models.base import Embedding
from sambench.models.sam_family import (
    HIGH_RES_KEYS,
    ChunkDecodeFn,
    ChunkedDecoding,
    PointTensors,
    as_rgb_uint8,
    decode_chunk_for,
    high_res_maps,
    resolve_device,
    stack_prompts,
)
from sambench.prompts.types import Prompts
from sambench.version import __version__

HF_KINDS: dict[str, tuple[str, str]] = {
    "hf_sam": ("sam", "SamModel"),
    "hf_sam2": ("sam2", "Sam2Model"),
    "sam_hq": ("sam_hq", "SamHQModel"),
}
"""``--model`` name -> (``config.json`` ``model_type``, transformers class)."""
PROCESSORS: dict[str, str] = {
    "sam": "SamProcessor",
    "sam2": "Sam2Processor",
    "sam_hq": "SamHQProcessor",
    "sam3_tracker": "Sam3TrackerProcessor",
}
"""``kind`` (the model type) -> its transformers processor class."""
FAMILY: dict[str, str] = {"sam": "sam", "sam_hq": "sam", "sam2": "sam2", "sam3_tracker": "sam2"}
"""``kind`` -> the prompt/embedding arithmetic it shares: SAM's (longest side + pad, float64
coordinates) or SAM 2's (square resize, float32 tensors, high-resolution maps)."""
HQ_KEY = "hq_intermediate_"
"""Embedding ``extras`` prefix of SAM-HQ's intermediate ViT embeddings (``hq_intermediate_0``...)."""


def _folder_sha256(folder: Path) -> str:
    """SHA-256 over the names and bytes of the folder's config and weight files (sorted)."""
    digest = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix in (".json", ".safetensors", ".bin"):
            digest.update(p.name.encode() + b"|")
            with p.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
    return digest.hexdigest()


def check_hf_folder(folder: str | Path | None, name: str) -> Path:
    """The folder given as ``--checkpoint`` for ``name``, checked to hold a model of its kind.

    Raises :class:`~sambench.errors.OptionError` naming ``--checkpoint`` for a missing folder, a
    file instead of a folder, a folder without ``config.json``, or a config of another model type.
    """
    want, cls = HF_KINDS[name]
    if folder is None:
        raise OptionError(
            "--checkpoint",
            f"model {name!r} needs a local Hugging Face model folder (config.json + weights, "
            f"as save_pretrained writes; a transformers {cls}); nothing is downloaded",
        )
    p = Path(folder)
    if not p.is_dir():
        what = "a file" if p.exists() else "no such folder"
        raise OptionError(
            "--checkpoint",
            f"{p}: {what}; model {name!r} expects a Hugging Face model folder ({cls})",
        )
    cfg = p / "config.json"
    if not cfg.is_file():
        raise OptionError(
            "--checkpoint", f"{p}: no config.json; not a Hugging Face model folder ({cls})"
        )
    try:
        model_type = json.loads(cfg.read_text(encoding="utf-8")).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
        raise OptionError("--checkpoint", f"{cfg}: not a readable JSON config ({e})") from None
    if model_type != want:
        other = [n for n, (t, _) in HF_KINDS.items() if t == model_type]
        hint = f"; use --model {other[0]}" if other else ""
        raise OptionError(
            "--checkpoint",
            f"{cfg}: model_type {model_type!r}, but model {name!r} expects {want!r} "
            f"(a transformers {cls}){hint}",
        )
    return p


class HfPreprocessing:
    """What S1 reads from an adapter's pipeline: the mask threshold and a description."""

    def __init__(self, kind: str, size: int) -> None:
        self.mask_threshold = 0.0
        family = FAMILY[kind]
        resize = "longest side" if family == "sam" else "both sides (aspect ignored)"
        self.description = (
            f"transformers {kind}: processor resize {resize} to {size}, rescale, mean/std"
            + (", pad" if family == "sam" else "")
            + "; post_process_masks bilinear to HxW, logits > 0"
            + (f"; embedding: image_embed + {', '.join(HIGH_RES_KEYS)}" if family == "sam2" else "")
            + ("; embedding: image_embed + intermediate ViT embeddings" if kind == "sam_hq" else "")
        )


class HfSamAdapter(ChunkedDecoding):
    """:class:`~sambench.models.base.PromptableModel` for a transformers ``SamModel`` or
    ``Sam2Model`` with its processor (``kind`` = ``"sam"`` or ``"sam2"``), a ``SamHQModel``
    (``"sam_hq"``: the intermediate ViT embeddings ride in the embedding's ``extras`` and go to
    the decoder; ``hq_token_only`` False, the forward's default) or SAM 3's point/box head, a
    ``Sam3TrackerModel`` (``"sam3_tracker"``: SAM 2's arithmetic).

    ``checkpoint_sha256`` identifies the weights (the folder's hash; None hashes nothing and
    uses ``"unhashed"``). Decoding goes one prompt set per forward on a CPU (what the processor
    path does for one prompt), ``decode_chunk`` prompt sets per forward otherwise (never with a
    mask prompt: transformers adds the dense mask embedding per image, not per prompt).
    """

    def __init__(
        self,
        name: str,
        model: Any,
        processor: Any,
        kind: str,
        *,
        device: str | torch.device | None = None,
        checkpoint_sha256: str | None = None,
        default_multimask: bool = True,
        decode_chunk: int | None = None,
    ) -> None:
        if kind not in FAMILY:
            raise ValueError(f"kind: expected one of {', '.join(FAMILY)}, got {kind!r}")
        self.name = name
        self.kind = kind
        self.family = FAMILY[kind]
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.default_multimask = default_multimask
        self.checkpoint_sha256 = checkpoint_sha256
        self.decoder_sha256: str | None = None
        self.decode_chunk = decode_chunk_for(decode_chunk, self.device, 64)
        self.preprocessing = HfPreprocessing(kind, int(processor.target_size))
        emb = model.config.prompt_encoder_config
        side = 4 * int(emb.image_size // emb.patch_size)
        self.mask_input_size: tuple[int, int] = (side, side)

    # ------------------------------------------------------------------ encoder
    def embed(self, image: np.ndarray) -> Embedding:
        """Encode one HxW or HxWx3 uint8 image (processor + ``get_image_embeddings``)."""
        rgb = as_rgb_uint8(image)
        inputs = self.processor(images=rgb, return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device)
        h, w = int(rgb.shape[0]), int(rgb.shape[1])
        with torch.inference_mode():
            out = self.model.get_image_embeddings(pixels)
        if self.kind == "sam_hq":
            resized = inputs["reshaped_input_sizes"][0].tolist()
            emb, inter = out
            return Embedding(
                features=emb,
                original_size=(h, w),
                input_size=(int(resized[0]), int(resized[1])),
                extras={f"{HQ_KEY}{i}": t for i, t in enumerate(inter)},
            )
        if self.family == "sam":
            resized = inputs["reshaped_input_sizes"][0].tolist()
            return Embedding(
                features=out, original_size=(h, w), input_size=(int(resized[0]), int(resized[1]))
            )
        size = int(self.processor.target_size)
        return Embedding(
            features=out[-1],
            original_size=(h, w),
            input_size=(size, size),
            extras={k: t for k, t in zip(HIGH_RES_KEYS, out[:-1], strict=True)},
        )

    def _image_embeddings(self, embedding: Embedding) -> Any:
        feats = embedding.features.to(self.device)
        if self.family == "sam":
            return feats
        return [*high_res_maps(self.name, embedding, self.device), feats]

    # ------------------------------------------------------------------ coordinates
    def _normalize(self, coords: np.ndarray, size: tuple[int, int], box: bool) -> torch.Tensor:
        proc = self.processor
        hw = (int(size[0]), int(size[1]))
        if self.family == "sam":
            arr = np.asarray(coords, np.float32 if box else np.float64)
            out = proc._normalize_coordinates(proc.target_size, arr, hw, is_bounding_box=box)
            return torch.from_numpy(np.asarray(out))
        t = torch.as_tensor(np.asarray(coords, np.float64), dtype=torch.float32)
        return proc._normalize_coordinates(proc.target_size, t, hw, is_bounding_box=box)  # type: ignore[no-any-return]

    def to_model_coords(self, points: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        """...x2 (X, Y) original pixels -> model-input pixels (the processor's arithmetic)."""
        p = np.asarray(points, np.float64)
        return (
            self._normalize(p.reshape(-1, 2), original_size, False)
            .double()
            .numpy()
            .reshape(p.shape)
        )

    def to_model_boxes(self, boxes: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        """Bx4 (or 4) XYXY original pixels -> Bx4 model-input pixels."""
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        return self._normalize(b, original_size, True).double().numpy().reshape(-1, 4)

    # ------------------------------------------------------------------ decoder
    def _chunk_size(self, mask_inputs: torch.Tensor | None) -> int:
        """``decode_chunk``, but one prompt set per forward with a mask prompt (transformers
        adds the dense mask embedding per image, not per prompt)."""
        return 1 if mask_inputs is not None else self.decode_chunk

    def _chunk_decoder(self, embedding: Embedding, multimask_output: bool) -> ChunkDecodeFn:
        """The model's forward from the embedding (``pred_masks``, ``iou_scores``), the prompts
        as 1xCx... tensors (float64 coordinates for SAM, float32 for SAM 2)."""
        image_embeddings = self._image_embeddings(embedding)
        dtype = torch.float64 if self.family == "sam" else torch.float32
        hq: list[torch.Tensor] = []
        if self.kind == "sam_hq":
            n = len([k for k in embedding.extras if k.startswith(HQ_KEY)])
            hq = [embedding.extras[f"{HQ_KEY}{i}"].to(self.device) for i in range(n)]

        def decode(
            pts: PointTensors, bx: torch.Tensor | None, mk: torch.Tensor | None
        ) -> tuple[torch.Tensor, torch.Tensor]:
            kw: dict[str, Any] = {}
            if pts is not None:
                kw["input_points"] = pts[0].to(self.device, dtype)[None]
                kw["input_labels"] = pts[1].to(self.device, torch.int64)[None]
            if bx is not None:
                kw["input_boxes"] = bx.to(self.device, dtype)[None]
            if mk is not None:
                kw["input_masks"] = mk.to(self.device, torch.float32)
            if self.kind == "sam_hq":
                kw["intermediate_embeddings"] = hq
            out = self.model(
                image_embeddings=image_embeddings, multimask_output=multimask_output, **kw
            )
            return out.pred_masks[0], out.iou_scores[0]

        return decode

    def postprocess(self, low_res_logits: torch.Tensor, embedding: Embedding) -> torch.Tensor:
        """BxKxhxw logits -> BxKxHxW logits (``post_process_masks``, ``binarize=False``)."""
        hw = [[int(v) for v in embedding.original_size]]
        if self.family == "sam":
            resized = [[int(v) for v in embedding.input_size]]
            out = self.processor.post_process_masks([low_res_logits], hw, resized, binarize=False)
        else:
            out = self.processor.post_process_masks([low_res_logits], hw, binarize=False)
        return out[0]  # type: ignore[no-any-return]

    def _prompt_tensors(
        self, group: Sequence[Prompts], size: tuple[int, int]
    ) -> tuple[PointTensors, torch.Tensor | None, torch.Tensor | None]:
        """Stack prompt sets of one signature (:func:`stack_prompts`) and normalize them with
        the processor's arithmetic; CPU tensors (the decoder moves and casts them)."""
        coords, labels, raw, arr = stack_prompts(group, self.mask_input_size)
        points = boxes = masks = None
        if coords is not None and labels is not None:
            n = coords.shape[1]
            pts = self._normalize(coords.reshape(-1, 2), size, False).reshape(len(group), n, 2)
            points = (pts, torch.as_tensor(labels.astype(np.int64)))
        if raw is not None:
            boxes = self._normalize(raw, size, True)
        if arr is not None:
            masks = torch.as_tensor(arr)
        return points, boxes, masks

    def signature(self) -> dict[str, str]:
        """Cache key: model, folder hash, preprocessing and sambench version."""
        return {
            "model": self.name,
            "checkpoint_sha256": self.checkpoint_sha256 or "unhashed",
            "decoder_sha256": self.decoder_sha256 or "",
            "preprocessing": self.preprocessing.description,
            "sambench_version": __version__,
        }


def build_hf_adapter(
    checkpoint: str | Path | None, *, name: str, device: str | torch.device | None = None
) -> HfSamAdapter:
    """``hf_sam`` / ``hf_sam2``: the model and processor of a local Hugging Face folder
    (``from_pretrained(folder, local_files_only=True)``).

    Raises :class:`~sambench.errors.OptionError` for a folder that is not a model of that kind
    (see :func:`check_hf_folder`) or when ``transformers`` is not installed.
    """
    if name not in HF_KINDS:
        raise ValueError(f"model: expected one of {', '.join(HF_KINDS)}, got {name!r}")
    folder = check_hf_folder(checkpoint, name)
    kind, cls_name = HF_KINDS[name]
    try:
        import transformers
    except ImportError:
        raise OptionError(
            "--model",
            f"{name!r} needs the optional package transformers: "
            'pip install -c constraints.txt "sambench[hf]"',
        ) from None
    model_cls = getattr(transformers, cls_name)
    proc_cls = getattr(transformers, PROCESSORS[kind])
    try:
        model = model_cls.from_pretrained(str(folder), local_files_only=True)
        processor = proc_cls.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise OptionError(
            "--checkpoint", f"{folder}: cannot load a transformers {cls_name} from it ({first})"
        ) from None
    return HfSamAdapter(
        name, model, processor, kind, device=device, checkpoint_sha256=_folder_sha256(folder)
    )
