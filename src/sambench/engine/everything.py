"""Everything mode (S1): the official SAM automatic mask generator over one cached embedding.

For each grid size m, a regular m x m grid of single positive points covers the image
(``segment_anything.utils.amg.build_all_layer_point_grids(m, 0, 1)`` scaled by ``[W, H]``, as
``SamAutomaticMaskGenerator`` does); the points are decoded in batches through the adapter
(multimask output, three candidates per point, for SAM) and the candidates go through EXACTLY the official
generator's pipeline for one crop covering the whole image: ``MaskData``, predicted-IoU filter,
``calculate_stability_score`` filter, binarization, ``batched_mask_to_box``, RLE compression
(``mask_to_rle_pytorch``), ``torchvision.ops.batched_nms``, and optionally
``SamAutomaticMaskGenerator.postprocess_small_regions``. The near-crop-edge filter of the official
generator is a no-op for the whole-image crop and is left out. All grid sizes reuse the one
embedding of the image (no re-encoding).

Differences from the official code that do not change any number (checked by the tests against
``SamAutomaticMaskGenerator`` on a random-weight SAM):

- the predicted-IoU filter runs on the low-resolution outputs, so only the survivors are
  up-sampled to the original size (the filter depends on the scores alone);
- survivors are up-sampled ``postprocess_chunk`` at a time (every later step is per mask), which
  bounds memory independently of ``points_per_batch``;
- only RLEs are kept after each batch: a 256x256 grid (65,536 prompts) runs in bounded memory.

Output spaces: SAM's ``postprocess`` returns logits, thresholded at ``mask_threshold`` = 0.0 with
stability cut-offs 0 +- ``offset`` (official). LiteMedSAM and MedSAM return probabilities
(``mask_threshold`` = 0.5); their stability cut-offs are ``sigmoid(+-offset)`` =
``0.5 +- (sigmoid(offset) - 0.5)``, i.e. the official logit cut-offs mapped through the sigmoid.
For LiteMedSAM (bilinear resize of the logits, then sigmoid) this equals the logit-space rule up
to float rounding; for MedSAM (sigmoid, then resize) it is the same rule on its own output.

Mask matching (paper Eq. 1): each ground-truth object is matched to the generated mask with the
highest Dice (computed from the RLE runs, without decoding every mask); ties take the first mask.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from segment_anything.automatic_mask_generator import SamAutomaticMaskGenerator
from segment_anything.utils.amg import (
    MaskData,
    area_from_rle,
    batch_iterator,
    batched_mask_to_box,
    box_xyxy_to_xywh,
    build_all_layer_point_grids,
    calculate_stability_score,
    mask_to_rle_pytorch,
    rle_to_mask,
)
from torchvision.ops.boxes import batched_nms

from sambench.engine.amg_settings import AmgSettings
from sambench.engine.context import ImageContext
from sambench.engine.single_round import scored_rows
from sambench.models.base import Embedding
from sambench.prompts.types import Prompts
from sambench.store.atomic import write_json_atomic

STRATEGY = "S1"
OFFICIAL_CROP_NMS_THRESH = 0.7
"""The official generator's ``crop_nms_thresh`` default; with ``min_mask_region_area > 0`` it
re-runs NMS at ``max(box_nms_thresh, crop_nms_thresh)`` (reproduced for equality)."""
_DECODER_API = ("decode_embedding", "postprocess", "to_model_coords", "preprocessing", "device")


@dataclass
class GeneratedMasks:
    """The N masks generated for one image at one grid size, in the official output order.

    - ``rles``: N uncompressed RLEs ``{"size": [H, W], "counts": [...]}`` in column-major
      (Fortran, COCO) order, starting with a background run.
    - ``predicted_iou``, ``stability_score``: N float32.
    - ``boxes``: Nx4 XYXY inclusive pixel boxes (float64).
    - ``points``: Nx2 float64 (X, Y): the grid point that produced each mask.
    """

    size: tuple[int, int]
    rles: list[dict[str, Any]]
    predicted_iou: np.ndarray
    stability_score: np.ndarray
    boxes: np.ndarray
    points: np.ndarray

    def __len__(self) -> int:
        return len(self.rles)

    def mask(self, i: int) -> np.ndarray:
        """Mask ``i`` as HxW bool."""
        return rle_to_mask(self.rles[i])

    def areas(self) -> np.ndarray:
        """N int64 pixel counts."""
        return np.array([area_from_rle(r) for r in self.rles], dtype=np.int64)

    def to_json(self) -> dict[str, Any]:
        """JSON-able records like the official generator's (bbox XYWH, uncompressed RLE)."""
        masks = []
        for i, rle in enumerate(self.rles):
            box = torch.as_tensor(self.boxes[i], dtype=torch.float64)
            masks.append(
                {
                    "segmentation": rle,
                    "area": int(area_from_rle(rle)),
                    "bbox": [float(v) for v in box_xyxy_to_xywh(box).tolist()],
                    "predicted_iou": float(self.predicted_iou[i]),
                    "point_coords": [[float(v) for v in self.points[i]]],
                    "stability_score": float(self.stability_score[i]),
                }
            )
        return {"height": int(self.size[0]), "width": int(self.size[1]), "masks": masks}


def grid_points(points_per_side: int, size: tuple[int, int]) -> np.ndarray:
    """The official m x m grid scaled to an image of ``size`` = (H, W): (m*m)x2 float64 (X, Y)."""
    if not isinstance(points_per_side, (int, np.integer)) or points_per_side < 1:
        raise ValueError(f"grid: expected an integer >= 1 points per side, got {points_per_side!r}")
    grid = build_all_layer_point_grids(int(points_per_side), 0, 1)[0]
    scale = np.array(size)[None, ::-1]  # [[W, H]], as SamAutomaticMaskGenerator._process_crop
    return np.asarray(grid * scale)


def check_decoder_adapter(model: object) -> None:
    """Raise ValueError unless ``model`` exposes the SAM-family decoder API S1 needs."""
    missing = [a for a in _DECODER_API if not hasattr(model, a)]
    if missing:
        raise ValueError(
            f"model {getattr(model, 'name', type(model).__name__)!r}: everything mode (S1) needs a "
            f"SAM-family adapter with {', '.join(_DECODER_API)}; missing {', '.join(missing)}"
        )


def output_cutoffs(mask_threshold: float, offset: float) -> tuple[float, float]:
    """(threshold, stability offset) in the adapter's output space.

    ``mask_threshold`` 0.5 means probabilities: the offset becomes ``sigmoid(offset) - 0.5``, so
    the cut-offs are ``sigmoid(+-offset)``; any other threshold is a logit threshold (SAM: 0.0) and
    the offset is used as given (official).
    """
    if mask_threshold == 0.5:
        return 0.5, 1.0 / (1.0 + math.exp(-offset)) - 0.5
    return float(mask_threshold), float(offset)


def generate_masks(
    adapter: Any,
    embedding: Embedding,
    points_per_side: int,
    settings: AmgSettings | None = None,
    *,
    multimask_output: bool = True,
    max_batches: int | None = None,
) -> GeneratedMasks:
    """Run the official one-crop automatic-mask-generator pipeline from ``embedding``.

    ``adapter`` is a :class:`~sambench.models.sam_family.SamFamilyAdapter` (or anything with its
    ``decode_embedding``/``postprocess``/``to_model_coords``/``preprocessing``/``device``).
    ``multimask_output``: three candidates per point (official) or one (K = 1).
    ``max_batches`` stops after that many point batches (for memory benchmarks).
    """
    check_decoder_adapter(adapter)
    s = settings or AmgSettings()
    size = (int(embedding.original_size[0]), int(embedding.original_size[1]))
    threshold, offset = output_cutoffs(
        float(adapter.preprocessing.mask_threshold), s.stability_score_offset
    )
    points_all = grid_points(points_per_side, size)
    device = torch.device(adapter.device)
    data = MaskData()
    with torch.inference_mode():
        for b, (points,) in enumerate(batch_iterator(s.points_per_batch, points_all)):
            if max_batches is not None and b >= max_batches:
                break
            data.cat(
                _process_batch(
                    adapter, device, embedding, points, s, threshold, offset, multimask_output
                )
            )
        if not any(k == "rles" for k, _ in data.items()):
            return _empty(size)  # max_batches=0
        keep = batched_nms(
            data["boxes"].float(),
            data["iou_preds"],
            torch.zeros(len(data["boxes"])),
            iou_threshold=s.box_nms_thresh,
        )
        data.filter(keep)
        data.to_numpy()
        if s.min_mask_region_area > 0:
            data = SamAutomaticMaskGenerator.postprocess_small_regions(
                data,
                s.min_mask_region_area,
                max(s.box_nms_thresh, OFFICIAL_CROP_NMS_THRESH),
            )
    n = len(data["rles"])
    return GeneratedMasks(
        size=size,
        rles=list(data["rles"]),
        predicted_iou=np.asarray(data["iou_preds"], np.float32).reshape(n),
        stability_score=np.asarray(data["stability_score"], np.float32).reshape(n),
        boxes=np.asarray(data["boxes"], np.float64).reshape(n, 4),
        points=np.asarray(data["points"], np.float64).reshape(n, 2),
    )


def _empty(size: tuple[int, int]) -> GeneratedMasks:
    return GeneratedMasks(
        size=size,
        rles=[],
        predicted_iou=np.zeros(0, np.float32),
        stability_score=np.zeros(0, np.float32),
        boxes=np.zeros((0, 4)),
        points=np.zeros((0, 2)),
    )


def _process_batch(
    adapter: Any,
    device: torch.device,
    embedding: Embedding,
    points: np.ndarray,
    s: AmgSettings,
    threshold: float,
    offset: float,
    multimask_output: bool,
) -> MaskData:
    """The official ``_process_batch`` for the whole-image crop (IoU filter before upsampling)."""
    coords = adapter.to_model_coords(points, embedding.original_size)
    in_points = torch.as_tensor(coords, device=device)  # float64, as the official SAM generator
    in_labels = torch.ones(in_points.shape[0], dtype=torch.int, device=device)
    low, iou = adapter.decode_embedding(
        embedding, (in_points[:, None, :], in_labels[:, None]), None, None, multimask_output
    )
    k = low.shape[1]
    data = MaskData(
        low=low.flatten(0, 1),
        iou_preds=iou.flatten(0, 1),
        points=torch.as_tensor(points.repeat(k, axis=0)),
    )
    if s.pred_iou_thresh > 0.0:
        data.filter(data["iou_preds"] > s.pred_iou_thresh)
    out = MaskData()
    n = len(data["iou_preds"])
    for start in range(0, max(n, 1), s.postprocess_chunk):
        sl = slice(start, start + s.postprocess_chunk)
        part = MaskData(iou_preds=data["iou_preds"][sl], points=data["points"][sl])
        masks = adapter.postprocess(data["low"][sl][:, None], embedding)[:, 0]
        part["stability_score"] = calculate_stability_score(masks, threshold, offset)
        if s.stability_score_thresh > 0.0:
            keep = part["stability_score"] >= s.stability_score_thresh
            part.filter(keep)
            masks = masks[keep]
        binary = masks > threshold
        del masks
        part["boxes"] = batched_mask_to_box(binary)
        part["rles"] = mask_to_rle_pytorch(binary)
        out.cat(part)
    return out


def dice_matrix(generated: GeneratedMasks, gts: Sequence[np.ndarray]) -> np.ndarray:
    """Dice (in [0, 1]) of every ground truth (HxW bool) against every generated mask: GxN float64.

    Intersections come from the RLE runs and a column-major cumulative sum of each ground truth,
    so the N masks are never decoded.
    """
    h, w = generated.size
    n = len(generated)
    out = np.zeros((len(gts), n), np.float64)
    if n == 0 or not gts:
        return out
    cum = np.zeros((len(gts), h * w + 1), np.int64)
    gt_area = np.zeros(len(gts), np.int64)
    for g, gt in enumerate(gts):
        arr = np.asarray(gt, bool)
        if arr.shape != (h, w):
            raise ValueError(f"ground truth {g}: expected shape {(h, w)}, got {arr.shape}")
        np.cumsum(arr.T.ravel(), out=cum[g, 1:])
        gt_area[g] = cum[g, -1]
    idx, starts, ends = [], [], []
    for i, rle in enumerate(generated.rles):
        bounds = np.concatenate([[0], np.cumsum(rle["counts"])])
        s, e = bounds[1:-1:2], bounds[2::2]  # foreground runs [s, e)
        idx.append(np.full(len(s), i))
        starts.append(s)
        ends.append(e)
    run_idx = np.concatenate(idx)
    run_s = np.concatenate(starts).astype(np.int64)
    run_e = np.concatenate(ends).astype(np.int64)
    areas = np.bincount(run_idx, weights=run_e - run_s, minlength=n)
    for g in range(len(gts)):
        inter = np.bincount(run_idx, weights=cum[g, run_e] - cum[g, run_s], minlength=n)
        denom = areas + gt_area[g]
        out[g] = np.where(denom > 0, 2.0 * inter / np.maximum(denom, 1), 0.0)
    return out


def match_masks(
    generated: GeneratedMasks, gts: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Paper Eq. 1: per ground truth, the index of the highest-Dice generated mask (first on
    ties; -1 when there are no masks) and that Dice in [0, 1] (0 when none)."""
    d = dice_matrix(generated, gts)
    if d.shape[1] == 0:
        return np.full(len(gts), -1, np.int64), np.zeros(len(gts))
    best = np.argmax(d, axis=1).astype(np.int64)
    return best, d[np.arange(len(gts)), best]


@dataclass
class EverythingTask:
    """S1 rows for every object at every grid size, all from the image's one embedding.

    Rows (strategy ``"S1"``, one per object, grid size and selection; both selections are the
    matched mask): ``grid`` (m), ``n_generated`` (= ``n_candidates``, N masks of the image at that
    grid), ``candidate_index`` (the matched mask's index in the generated list, -1 if N = 0),
    ``predicted_iou`` and ``stability_score`` of the matched mask, ``prompt`` (its grid point),
    ``s1_image_seconds`` (the whole generation time of the image at that grid: decoding,
    filtering, NMS) and ``decode_seconds`` = ``s1_image_seconds`` / number of objects. N = 0 gives
    an empty prediction (metrics by the empty convention), not a skipped row.
    Candidates per point follow the run's ``multimask`` setting (``ctx.multimask``); ``None``
    (auto) uses the adapter's ``default_multimask``: three for SAM (the official generator),
    one for LiteMedSAM/MedSAM, whose multimask heads were not trained (LiteMedSAM's multimask
    logits stay below 0.2 on real images, so the official setting would give no masks at all).
    ``settings``: the official generator's filters and batch size (:class:`AmgSettings`).
    ``masks_dir``: when set, the generated masks of each image and grid are written as JSON
    (``<masks_dir>/<image_id>.grid<m>.json``, uncompressed column-major RLE).
    """

    grids: tuple[int, ...] = (32,)
    settings: AmgSettings = field(default_factory=AmgSettings)
    masks_dir: Path | str | None = None
    name: str = "everything"

    def __post_init__(self) -> None:
        self.grids = tuple(self.grids)
        if not self.grids:
            raise ValueError("grid: give at least one grid size (points per side), e.g. 32")
        for m in self.grids:
            if not isinstance(m, (int, np.integer)) or isinstance(m, bool) or m < 1:
                raise ValueError(f"grid: expected integers >= 1 (points per side), got {m!r}")
        if len(set(self.grids)) != len(self.grids):
            raise ValueError(f"grid: duplicates in {list(self.grids)}")

    def __call__(self, ctx: ImageContext) -> list[dict[str, object]]:
        if not ctx.objects:
            return []
        check_decoder_adapter(ctx.model)
        rows: list[dict[str, object]] = []
        gts = [o.mask for o in ctx.objects]
        h, w = gts[0].shape
        multimask = ctx.multimask
        if multimask is None:
            multimask = bool(getattr(ctx.model, "default_multimask", True))
        for m in self.grids:
            t0 = time.perf_counter()
            gen = generate_masks(
                ctx.model, ctx.embedding, int(m), self.settings, multimask_output=multimask
            )
            seconds = time.perf_counter() - t0
            if self.masks_dir is not None:
                self._save(ctx, int(m), gen)
            best, _ = match_masks(gen, gts)
            n = len(gen)
            for obj, k in zip(ctx.objects, best, strict=True):
                if k < 0:
                    cand = np.zeros((1, h, w), bool)
                    scores = np.array([np.nan], np.float32)
                    prompts, stability = None, float("nan")
                else:
                    cand = gen.mask(int(k))[None]
                    scores = gen.predicted_iou[k : k + 1]
                    prompts = Prompts(points=gen.points[k][None], labels=np.ones(1, np.int64))
                    stability = float(gen.stability_score[k])
                rows += scored_rows(
                    ctx,
                    obj,
                    STRATEGY,
                    cand,
                    scores,
                    prompts,
                    seconds / len(ctx.objects),
                    grid=int(m),
                    n_generated=n,
                    n_candidates=n,
                    candidate_index=int(k),
                    stability_score=stability,
                    s1_image_seconds=seconds,
                )
        return rows

    def _save(self, ctx: ImageContext, m: int, gen: GeneratedMasks) -> None:
        assert self.masks_dir is not None
        image_id = str(ctx.objects[0].row.get("image_id", "image"))
        payload = {"image_id": image_id, "model": ctx.model.name, "grid": m}
        payload.update(gen.to_json())
        write_json_atomic(Path(self.masks_dir) / f"{image_id}.grid{m}.json", payload)


def grid_table(
    results: pd.DataFrame,
    metric: str = "dice",
    *,
    selection: str = "oracle",
    decimals: int = 1,
) -> pd.DataFrame:
    """The paper's Table 5 layout: S1 ``metric`` mean and std per target-modality, dataset and
    model, one ``grid_<m>_mean`` / ``grid_<m>_std`` column pair per grid size (ascending).

    Only ``status == "ok"`` S1 rows of ``selection`` count; std is the sample std (ddof=1).
    Columns: target, dataset, model, n, then the grid pairs.
    """
    need = {"strategy", "selection", "status", "grid", "object_name", "modality", metric}
    missing = sorted(need - set(results.columns))
    if missing:
        raise ValueError(f"results: S1 grid table needs columns {missing}")
    df = results[
        (results["strategy"] == STRATEGY)
        & (results["selection"] == selection)
        & (results["status"] == "ok")
    ].copy()
    df["target"] = df["object_name"].astype(str) + "-" + df["modality"].astype(str)
    keys = ["target", "dataset", "model"]
    df["grid"] = df["grid"].astype(int)
    g = df.groupby([*keys, "grid"], sort=True)[metric]
    long = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1)}).round(decimals).reset_index()
    wide = long.pivot_table(index=keys, columns="grid", values=["mean", "std"], aggfunc="first")
    if df.empty:
        return pd.DataFrame(columns=[*keys, "n"])
    first = df[df["grid"] == df["grid"].min()]
    out = first.groupby(keys, sort=True).size().rename("n").to_frame()
    for m in sorted(df["grid"].unique()):
        out[f"grid_{m}_mean"] = wide[("mean", m)]
        out[f"grid_{m}_std"] = wide[("std", m)]
    return out.reset_index()
