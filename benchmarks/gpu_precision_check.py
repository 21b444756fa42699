"""fp16 / bf16 autocast vs fp32 on a GPU (issue 16 item 3): a short prepared check, NOT yet run.

No GPU was available when this was written; docs/performance.md says the figures are not
measured. On a CUDA machine: ``python benchmarks/gpu_precision_check.py [--images 4]``.

For LiteMedSAM (bundled weights) on the committed seed images it prints, per dtype (fp32, fp16,
bf16 under ``torch.autocast``):

- encoder and decoder seconds per image (CUDA-synchronised, best of 3) and the speed-up vs fp32;
- the largest |logit| difference vs fp32, the lowest per-mask IoU vs the fp32 masks (box prompts
  of every ground-truth object), and the mean DICE of those masks vs the ground truth, with its
  difference to fp32 in points.

Pass criterion (the CPU runtimes' one): every mask IoU >= 0.999 vs fp32 and |DICE difference| <
0.05 points; a dtype that fails it is reported as not numerically safe. Exit status 1 when CUDA is
absent.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sambench.models.registry import build_model
from sambench.prompts.types import Prompts

SEED = Path(__file__).resolve().parents[1] / "tests" / "data" / "seed-samples"
DTYPES = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2 * np.logical_and(a, b).sum() / s)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return 1.0 if u == 0 else float(np.logical_and(a, b).sum() / u)


def timed(fn, reps: int = 3):  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=4)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing measured")
        return 1
    model = build_model("litemedsam", device="cuda")
    pairs = []
    for p in sorted(SEED.glob("*/images/*.png"))[: a.images]:
        img = np.asarray(Image.open(p))
        lab = np.asarray(Image.open(p.parent.parent / "labels" / p.name))
        boxes = []
        for v in np.unique(lab)[1:]:
            ys, xs = np.nonzero(lab == v)
            if len(ys) > 50:
                boxes.append((lab == v, np.array([xs.min(), ys.min(), xs.max(), ys.max()], float)))
        pairs.append((img, boxes))
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {len(pairs)} images")
    ref: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    base_t: tuple[float, float] | None = None
    base_dice = 0.0
    ok = True
    for name, dt in DTYPES.items():
        enc_t, dec_t, worst_iou, max_diff, dices = [], [], 1.0, 0.0, []
        for i, (img, boxes) in enumerate(pairs):
            with torch.autocast("cuda", dtype=dt or torch.float32, enabled=dt is not None):
                te, emb = timed(lambda: model.embed(img))  # noqa: B023
                prompts = [Prompts(box=b) for _, b in boxes]
                td, pred = timed(lambda: model.predict(emb, prompts, False))  # noqa: B023
            enc_t.append(te)
            dec_t.append(td)
            masks, logits = pred.masks[:, 0], pred.low_res_logits
            if dt is None:
                ref[i] = (masks, logits)
            worst_iou = min(
                [worst_iou, *(iou(m, r) for m, r in zip(masks, ref[i][0], strict=True))]
            )
            max_diff = max(max_diff, float(np.abs(logits - ref[i][1]).max()))
            dices += [dice(m, gt) for m, (gt, _) in zip(masks, boxes, strict=True)]
        e, d, md = float(np.mean(enc_t)), float(np.mean(dec_t)), 100 * float(np.mean(dices))
        if base_t is None:
            base_t, base_dice = (e, d), md
        safe = worst_iou >= 0.999 and abs(md - base_dice) < 0.05
        ok &= safe
        print(
            f"{name}: encoder {e:.4f} s (x{base_t[0] / e:.2f}), decoder {d:.4f} s "
            f"(x{base_t[1] / d:.2f}), max |logit diff| {max_diff:.2e}, min mask IoU "
            f"{worst_iou:.4f}, DICE {md:.2f} ({md - base_dice:+.3f} points) "
            f"{'safe' if safe else 'NOT numerically safe'}"
        )
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
