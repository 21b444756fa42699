"""Reduced precision vs fp32 (issue 16 item 3): ``--precision bf16|fp16`` on this machine.

``python benchmarks/precision_check.py [--images 10] [--device cpu|cuda]``. For LiteMedSAM
(bundled weights) on the committed seed images it prints, per set-up (fp32; bf16 under eager
torch; on a CPU also OpenVINO f32 and bf16; on CUDA also fp16; and bf16 with the decoder under
autocast too, through the official decoder):

- image-encoder seconds per image (best of 3; CUDA-synchronised) and the speed-up vs fp32 torch;
- decoder seconds per image (box prompts of every ground-truth object);
- the largest |feature| difference vs fp32 (relative to max |feature|), the lowest and mean
  per-mask IoU vs the fp32 masks, and the mean DICE of those masks vs the ground truth with its
  difference to fp32 in points.

Rule for "numerically safe" (the runtimes' one): every mask IoU >= 0.999 vs fp32 and |DICE
difference| < 0.05 points. sambench's ``--precision`` is opt-in because bf16 fails it here
(docs/performance.md).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from sambench.models.registry import build_model
from sambench.prompts.types import Prompts

SEED = Path(__file__).resolve().parents[1] / "tests" / "data" / "seed-samples"


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2 * np.logical_and(a, b).sum() / s)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return 1.0 if u == 0 else float(np.logical_and(a, b).sum() / u)


def timed(fn: Callable[[], Any], device: str, reps: int = 3) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(reps):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out


def load_pairs(n: int) -> list[tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]]:
    pairs = []
    for p in sorted(SEED.glob("*/images/*.png"))[:n]:
        img = np.asarray(Image.open(p))
        lab = np.asarray(Image.open(p.parent.parent / "labels" / p.name))
        boxes = []
        for v in np.unique(lab)[1:]:
            ys, xs = np.nonzero(lab == v)
            if len(ys) > 50:
                boxes.append((lab == v, np.array([xs.min(), ys.min(), xs.max(), ys.max()], float)))
        pairs.append((img, boxes))
    return pairs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    dev = a.device
    export_dir = tempfile.mkdtemp(prefix="sambench-exports-")
    setups: list[tuple[str, dict[str, str], bool]] = [("fp32 torch", {}, False)]
    setups.append(("bf16 torch", {"precision": "bf16"}, False))
    if dev == "cuda":
        setups.append(("fp16 torch", {"precision": "fp16"}, False))
    else:
        setups.append(("fp32 openvino", {"runtime": "openvino"}, False))
        setups.append(("bf16 openvino", {"runtime": "openvino", "precision": "bf16"}, False))
    setups.append(("bf16 torch + decoder", {"precision": "bf16"}, True))
    pairs = load_pairs(a.images)
    n_masks = sum(len(b) for _, b in pairs)
    print(f"device {dev}, torch {torch.__version__}, {len(pairs)} images, {n_masks} box prompts")
    ref: dict[int, tuple[torch.Tensor, np.ndarray]] = {}
    base_e, base_dice = 0.0, 0.0
    for name, kw, decoder_too in setups:
        model: Any = build_model("litemedsam", device=dev, export_dir=export_dir, **kw)
        if decoder_too:
            model.batched_decoding = False  # the official decoder under autocast
        enc_t, dec_t, ious, feat_diff, dices = [], [], [], 0.0, []
        for i, (img, boxes) in enumerate(pairs):
            te, emb = timed(lambda: model.embed(img), dev)  # noqa: B023
            prompts = [Prompts(box=b) for _, b in boxes]
            ctx = (
                torch.autocast(dev, dtype=torch.bfloat16)
                if decoder_too
                else contextlib.nullcontext()
            )
            with ctx:
                td, pred = timed(lambda: model.predict(emb, prompts, False), dev)  # noqa: B023
            enc_t.append(te)
            dec_t.append(td)
            masks = pred.masks[:, 0]
            if not ref.get(i):
                ref[i] = (emb.features, masks)
            fa, ma = ref[i]
            scale = float(fa.abs().max())
            feat_diff = max(feat_diff, float((emb.features - fa).abs().max()) / scale)
            ious += [iou(m, r) for m, r in zip(masks, ma, strict=True)]
            dices += [dice(m, gt) for m, (gt, _) in zip(masks, boxes, strict=True)]
        e, d, md = float(np.mean(enc_t)), float(np.mean(dec_t)), 100 * float(np.mean(dices))
        if not base_e:
            base_e, base_dice = e, md
        safe = min(ious) >= 0.999 and abs(md - base_dice) < 0.05
        print(
            f"{name:22s} encoder {e:.3f} s/image (x{base_e / e:.2f}), decoder {d * 1e3:.1f} ms, "
            f"max |feature diff| {feat_diff:.1e} of max, mask IoU vs fp32 min {min(ious):.4f} "
            f"mean {np.mean(ious):.4f}, DICE {md:.2f} ({md - base_dice:+.3f} points) "
            f"{'safe' if safe else 'NOT numerically safe'}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    main()
