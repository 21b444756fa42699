"""Everything mode (S1) speed and memory with LiteMedSAM (issue 4 "Speed and memory").

Prints, side by side:

1. S1 seconds per image at ``--grid`` (default 32) from a cached embedding, ours (batched decoder,
   ``sambench.models.batched_decoder``), ours before it (segment-anything's decoder one prompt set
   per call, ``batched_decoding=False``) and the official
   ``SamAutomaticMaskGenerator``. The official generator runs over LiteMedSAM's own modules
   wrapped in a segment-anything ``Sam``; its ``predictor.set_image`` is replaced by one that
   installs OUR embedding (features, input and original size), so both sides time exactly the
   decoding + filtering + NMS of the same grid, same settings, multimask output (official), and
   neither times the encoder. (The official predictor's point transform rounds the resized size,
   ours scales by 256/max(H, W): mask counts may differ slightly, times are comparable.)
2. Achieved decoder GFLOP/s (FLOPs of one single-point decode counted with
   ``torch.utils.flop_counter.FlopCounterMode`` x points / seconds) next to a large fp32 matmul's
   GFLOP/s measured in the same run.
3. Time and peak RSS for grids ``--grids`` (default 8,16,32,64), and the peak RSS over the first
   ``--batches`` batches of a 256x256 grid on a 512x512 image.

Usage: ``python benchmarks/bench_everything.py [--images 2] [--grid 32] [--threads N]``.
"""

from __future__ import annotations

import argparse
import resource
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from sambench.engine.everything import AmgSettings, generate_masks, grid_points
from sambench.models.base import Embedding
from sambench.models.registry import build_model

SEED = Path(__file__).resolve().parents[2] / "shared" / "data" / "seed-samples"
if not SEED.is_dir():  # a worktree or fresh clone: the committed sample
    SEED = Path(__file__).resolve().parents[1] / "tests" / "data" / "seed-samples"


class PeakRss:
    """Samples the process RSS every 5 ms in a thread; ``peak_mb`` above the start value."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()

    def __enter__(self) -> PeakRss:
        self.start = self.rss()
        self.peak = self.start
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.rss())

    @property
    def peak_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def seed_images(n: int) -> list[np.ndarray]:
    paths = sorted(SEED.glob("*/images/*.png"))[:n]
    if not paths:
        raise SystemExit(f"{SEED}: no seed images found")
    return [np.asarray(Image.open(p)) for p in paths]


def official_generator(lite: Any, emb: Embedding, m: int, s: AmgSettings) -> Any:
    from segment_anything import SamAutomaticMaskGenerator
    from segment_anything.modeling import Sam

    sam = Sam(lite.image_encoder, lite.prompt_encoder, lite.mask_decoder).eval()
    gen = SamAutomaticMaskGenerator(
        sam,
        points_per_side=m,
        points_per_batch=s.points_per_batch,
        pred_iou_thresh=s.pred_iou_thresh,
        stability_score_thresh=s.stability_score_thresh,
        box_nms_thresh=s.box_nms_thresh,
        output_mode="uncompressed_rle",
    )
    pred = gen.predictor

    def set_image(image: np.ndarray, image_format: str = "RGB") -> None:
        pred.reset_image()
        pred.features = emb.features
        pred.original_size = tuple(emb.original_size)
        pred.input_size = tuple(emb.input_size)
        pred.is_image_set = True

    pred.set_image = set_image  # type: ignore[method-assign]
    return gen


def matmul_gflops(n: int = 2048, reps: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def decode_flops(lite: Any, emb: Embedding, multimask: bool) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    pts = torch.as_tensor(lite.to_model_coords(np.array([[10.0, 10.0]]), emb.original_size))
    lab = torch.ones(1, 1, dtype=torch.int)
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        lite.decode_logits(emb.features, (pts[:, None], lab), None, None, multimask)
    return float(fc.get_total_flops())


def _grid_prompts(lite: Any, emb: Embedding, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    h, w = emb.original_size
    rng = np.random.default_rng(0)
    pts = torch.as_tensor(lite.to_model_coords(rng.random((n, 1, 2)) * [w, h], emb.original_size))
    return pts.float(), torch.ones(n, 1, dtype=torch.int)


def batched_flops(lite: Any, emb: Embedding, n: int) -> float:
    """FLOPs per point executed by the batched decoder over a batch of ``n`` points."""
    from torch.utils.flop_counter import FlopCounterMode

    pts = _grid_prompts(lite, emb, n)
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        lite.decode_logits(emb.features, pts, None, None, True)
    return float(fc.get_total_flops()) / n


def decode_seconds(lite: Any, emb: Embedding, n: int, reps: int = 3) -> float:
    """Best-of-``reps`` seconds of one batched decode of ``n`` points (no post-processing)."""
    pts = _grid_prompts(lite, emb, n)
    best = float("inf")
    with torch.inference_mode():
        for _ in range(reps):
            t0 = time.perf_counter()
            lite.decode_logits(emb.features, pts, None, None, True)
            best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--grid", type=int, default=32)
    ap.add_argument("--grids", default="8,16,32,64")
    ap.add_argument("--points-per-batch", type=int, default=64)
    ap.add_argument("--batches", type=int, default=4, help="batches of the 256x256 grid")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave)")
    ap.add_argument("--skip-official", action="store_true")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    lite = build_model("litemedsam", device="cpu")
    s = AmgSettings(a.points_per_batch)
    images = seed_images(a.images)
    embs = [lite.embed(im) for im in images]
    print(f"torch threads {torch.get_num_threads()}, {len(images)} seed images, grid {a.grid}")

    # 1. ours vs official, multimask (the official setting)
    ours_t, off_t, before_t = [], [], []
    for emb, im in zip(embs, images, strict=True):
        t0 = time.perf_counter()
        g = generate_masks(lite, emb, a.grid, s, multimask_output=True)
        ours_t.append(time.perf_counter() - t0)
        msg = f"  image {im.shape}: ours {ours_t[-1]:.2f} s ({len(g)} masks)"
        lite.batched_decoding = False
        t0 = time.perf_counter()
        g0 = generate_masks(lite, emb, a.grid, s, multimask_output=True)
        before_t.append(time.perf_counter() - t0)
        lite.batched_decoding = True
        msg += f", before {before_t[-1]:.2f} s ({len(g0)} masks)"
        if not a.skip_official:
            gen = official_generator(lite, emb, a.grid, s)
            rgb = np.repeat(im[:, :, None], 3, 2) if im.ndim == 2 else im
            t0 = time.perf_counter()
            ref = gen.generate(rgb)
            off_t.append(time.perf_counter() - t0)
            msg += f", official {off_t[-1]:.2f} s ({len(ref)} masks)"
        print(msg)
    print(
        f"S1 {a.grid}x{a.grid} multimask: ours {np.mean(ours_t):.2f} s/image, before "
        f"{np.mean(before_t):.2f} s/image (before/ours {np.mean(before_t) / np.mean(ours_t):.2f})",
        end="",
    )
    if off_t:
        print(
            f", official {np.mean(off_t):.2f} s/image, ratio official/ours "
            f"{np.mean(off_t) / np.mean(ours_t):.2f}"
        )
    else:
        print()
    t0 = time.perf_counter()
    g = generate_masks(lite, embs[0], a.grid, s, multimask_output=False)
    single = time.perf_counter() - t0
    print(f"S1 {a.grid}x{a.grid} single mask (LiteMedSAM default): {single:.2f} s, {len(g)} masks")

    # 2. achieved decoder throughput vs matmul
    lite.batched_decoding = False
    fl = decode_flops(lite, embs[0], True)  # the official decoder's FLOPs for one point
    lite.batched_decoding = True
    flb = batched_flops(lite, embs[0], s.points_per_batch)
    n_pts = a.grid**2
    achieved = fl * n_pts / np.mean(ours_t) / 1e9
    mm = matmul_gflops()
    print(
        f"decoder: {fl / 1e9:.2f} GFLOP per point (official), {flb / 1e9:.2f} batched; achieved "
        f"{achieved:.1f} GFLOP/s official-equivalent (whole S1 time), fp32 matmul {mm:.1f} "
        f"GFLOP/s, ratio {achieved / mm:.2f}"
    )
    t_dec = decode_seconds(lite, embs[0], s.points_per_batch)
    print(
        f"decoder alone, batches of {s.points_per_batch}: {t_dec * 1e3 / s.points_per_batch:.1f} "
        f"ms/point, {flb * s.points_per_batch / t_dec / 1e9:.1f} GFLOP/s executed, ratio to "
        f"matmul {flb * s.points_per_batch / t_dec / 1e9 / mm:.2f}"
    )

    # 3. grids: time and peak RSS
    for m in (int(v) for v in a.grids.split(",")):
        with PeakRss() as p:
            t0 = time.perf_counter()
            g = generate_masks(lite, embs[0], m, s, multimask_output=True)
            dt = time.perf_counter() - t0
        print(f"grid {m:3d}: {dt:7.2f} s, {len(g):4d} masks, peak RSS +{p.peak_mb:.0f} MiB")
    big = np.zeros((512, 512), np.uint8)
    big[100:300, 150:400] = 200
    emb = lite.embed(big)
    with PeakRss() as p:
        t0 = time.perf_counter()
        generate_masks(lite, emb, 256, s, multimask_output=True, max_batches=a.batches)
        dt = time.perf_counter() - t0
    total = len(grid_points(256, (512, 512))) // s.points_per_batch
    print(
        f"grid 256 on 512x512: first {a.batches} of {total} batches {dt:.2f} s, "
        f"peak RSS +{p.peak_mb:.0f} MiB"
    )


if __name__ == "__main__":
    main()
