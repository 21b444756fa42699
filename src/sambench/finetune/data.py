"""Training data for decoder fine-tuning: objects, cached embeddings, box prompts, targets.

Conventions: boxes are XYXY inclusive pixels of the original (prepared) image, int64; ground-truth
masks are HxW bool at the original size; targets are LxL float32 (L = the decoder's low-resolution
logit size, 256 for the SAM family) in MODEL INPUT space: the mask is resized exactly like the image
(longest side to the model input size S, nearest neighbour), zero-padded bottom/right to SxS, then
(when S != L, e.g. SAM's 1024) resized to LxL by nearest neighbour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from sambench.engine.cache import EmbeddingCache, image_hash
from sambench.engine.image_work import read_png
from sambench.models.base import Embedding
from sambench.models.sam2 import Sam2Adapter
from sambench.models.sam_family import SamFamilyAdapter
from sambench.prompts.strategies import bounding_box

OBJECT_ORDER = ("dataset", "image_id", "label_value")


@dataclass(frozen=True)
class TrainObject:
    """One object to train or validate on: where its image/label are and its cached embedding."""

    dataset: str
    case: str
    image_id: str
    label_path: str
    label_value: int
    object_name: str
    image_hash: str  # key of the image's embedding in the EmbeddingCache


def select_objects(rows: pd.DataFrame, max_objects: int | None) -> pd.DataFrame:
    """Rows sorted by (dataset, image_id, label_value), the first ``max_objects`` (None = all)."""
    df = rows.sort_values(list(OBJECT_ORDER), kind="stable").reset_index(drop=True)
    return df if max_objects is None else df.head(max_objects)


def read_label(prepared: Path, label_path: str) -> np.ndarray:
    """A prepared label PNG as HxW uint8."""
    label = read_png(prepared / label_path)
    return label[..., 0] if label.ndim == 3 else label


def object_mask(prepared: Path, obj: TrainObject) -> np.ndarray:
    """The HxW bool ground-truth mask of ``obj``; ValueError naming the file when it is empty."""
    mask = read_label(prepared, obj.label_path) == obj.label_value
    if not mask.any():
        raise ValueError(
            f"{prepared / obj.label_path}: label value {obj.label_value} is absent "
            "(the manifest does not match the label file)"
        )
    return mask


def cache_embeddings(
    model: SamFamilyAdapter | Sam2Adapter,
    cache: EmbeddingCache,
    prepared: Path,
    rows: pd.DataFrame,
    *,
    progress: bool = False,
) -> list[TrainObject]:
    """Make sure every image of ``rows`` has its embedding in ``cache`` (one encoder pass per
    image not yet cached) and return the rows as :class:`TrainObject` s, in ``rows`` order."""
    hashes: dict[str, str] = {}
    firsts = rows.drop_duplicates("image_id")
    for rec in tqdm(firsts.to_dict("records"), desc="embeddings", unit="img", disable=not progress):
        image = read_png(prepared / str(rec["image_path"]))
        key = image_hash(image)
        if not cache.path_for(key).exists() or cache.load(key) is None:
            cache.store(key, model.embed(image))
        hashes[str(rec["image_id"])] = key
    return [
        TrainObject(
            dataset=str(r["dataset"]),
            case=str(r["case"]),
            image_id=str(r["image_id"]),
            label_path=str(r["label_path"]),
            label_value=int(r["label_value"]),
            object_name=str(r["object_name"]),
            image_hash=hashes[str(r["image_id"])],
        )
        for r in rows.to_dict("records")
    ]


def load_embedding(cache: EmbeddingCache, obj: TrainObject, device: torch.device) -> Embedding:
    """The cached embedding of ``obj``'s image (it must have been cached by
    :func:`cache_embeddings`)."""
    emb = cache.load(obj.image_hash, device)
    if emb is None:
        raise FileNotFoundError(
            f"{cache.path_for(obj.image_hash)}: embedding of {obj.image_id} missing from the cache"
        )
    return emb


def jitter_box(
    box: np.ndarray, max_shift: int, shape: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """MedSAM's box augmentation: each edge moves OUTWARD by an integer drawn uniformly from
    0..``max_shift`` (independently per edge), clipped to the HxW image.

    ``box``: XYXY inclusive int pixels. Returns a new int64 XYXY box (unchanged when
    ``max_shift == 0``; no random number is drawn then).
    """
    b = np.asarray(box, np.int64).copy()
    if max_shift <= 0:
        return b
    d = rng.integers(0, max_shift + 1, size=4)
    h, w = shape
    b[0] = max(0, b[0] - d[0])
    b[1] = max(0, b[1] - d[1])
    b[2] = min(w - 1, b[2] + d[2])
    b[3] = min(h - 1, b[3] + d[3])
    return b


def lowres_target(
    mask: np.ndarray,
    input_size: tuple[int, int],
    model_input_size: tuple[int, int],
    lowres_size: tuple[int, int],
) -> np.ndarray:
    """Map an HxW bool mask into the decoder's LxL low-resolution logit space (float32 0/1).

    ``input_size`` (h, w) is the resized image inside the model input (``Embedding.input_size``),
    ``model_input_size`` (S, S) the padded model input, ``lowres_size`` (L, L) the logits' size.
    """
    h, w = (int(v) for v in input_size)
    s_h, s_w = (int(v) for v in model_input_size)
    if h > s_h or w > s_w:
        raise ValueError(f"input_size: {input_size} exceeds the model input {model_input_size}")
    resized = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    padded = np.zeros((s_h, s_w), np.uint8)
    padded[:h, :w] = resized
    if (s_h, s_w) == tuple(lowres_size):
        return padded.astype(np.float32)
    low = cv2.resize(
        padded, (int(lowres_size[1]), int(lowres_size[0])), interpolation=cv2.INTER_NEAREST
    )
    return np.asarray(low, dtype=np.float32)


def model_input_size(model: SamFamilyAdapter | Sam2Adapter) -> tuple[int, int]:
    """(S, S): the padded model input size, from the prompt encoder (``input_image_size``)."""
    size = getattr(model.prompt_encoder, "input_image_size", None)
    if size is None:
        raise ValueError(f"model {model.name!r}: prompt encoder has no input_image_size")
    return int(size[0]), int(size[1])


@dataclass
class Batch:
    """B objects ready for the decoder: features Bx256x64x64, boxes Bx4 float32 XYXY in model
    input pixels, targets Bx1xLxL float32 (0/1)."""

    features: torch.Tensor
    boxes: torch.Tensor
    targets: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    """The images' further feature maps by name, batched (SAM 2's high-resolution features)."""


def make_batch(
    model: SamFamilyAdapter | Sam2Adapter,
    cache: EmbeddingCache,
    prepared: Path,
    objects: Sequence[TrainObject],
    *,
    box_jitter: int,
    rng: np.random.Generator,
) -> Batch:
    """Load embeddings, masks and boxes of ``objects`` (jittered boxes draw from ``rng`` in
    object order)."""
    dev = model.device
    s = model_input_size(model)
    feats, boxes, targets = [], [], []
    extras: dict[str, list[torch.Tensor]] = {}
    for obj in objects:
        emb = load_embedding(cache, obj, dev)
        for k, t in emb.extras.items():
            extras.setdefault(k, []).append(t)
        mask = object_mask(prepared, obj)
        box = jitter_box(bounding_box(mask), box_jitter, mask.shape, rng)
        feats.append(emb.features)
        boxes.append(model.to_model_boxes(box.astype(np.float64), emb.original_size)[0])
        targets.append(lowres_target(mask, emb.input_size, s, model.mask_input_size))
    return Batch(
        features=torch.cat(feats).to(dev),
        boxes=torch.as_tensor(np.stack(boxes), dtype=torch.float32, device=dev),
        targets=torch.as_tensor(np.stack(targets)[:, None], dtype=torch.float32, device=dev),
        extras={k: torch.cat(v).to(dev) for k, v in extras.items()},
    )
