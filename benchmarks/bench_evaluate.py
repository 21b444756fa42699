"""Encode-once reuse, measured side by side in one run (issue: evaluation engine).

On the real seed samples (../shared/data/seed-samples) with LiteMedSAM on this machine's CPU:

1. the engine with all five strategies S2-S6 vs the engine with one strategy (aim: <= 1.3x);
2. the engine with S2-S6 vs the naive loop that re-encodes the image for every strategy and decodes
   one object at a time (SamPredictor used once per strategy; aim: >= 3.5x faster);
3. images per second and peak memory (RSS) of the engine;
4. how decoding cost grows with objects per image (batched decode of 1..8 objects).

Usage: python benchmarks/bench_evaluate.py [--images N] [--seed-dir PATH]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from sambench.data.manifest import load_manifest
from sambench.data.prepare import prepare_dataset
from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate
from sambench.engine.image_work import read_png
from sambench.engine.selection import select_and_score
from sambench.metrics import MetricConfig
from sambench.models.registry import build_model
from sambench.prompts.strategies import make_prompts

STRATS = ("S2", "S3", "S4", "S5", "S6")
HERE = Path(__file__).resolve().parent
DEFAULT_SEED = HERE.parent.parent / "shared" / "data" / "seed-samples"


def naive_loop(model, prepared: Path, manifest, image_ids) -> int:  # type: ignore[no-untyped-def]
    """Re-encode per strategy, decode per object (the official predictor's usage pattern)."""
    cfg = MetricConfig()
    n = 0
    for strategy in STRATS:
        for image_id in image_ids:
            rows = manifest[manifest["image_id"] == image_id]
            image = read_png(prepared / rows.iloc[0]["image_path"])
            label = read_png(prepared / rows.iloc[0]["label_path"])
            emb = model.embed(image)  # set_image, again for every strategy
            for value in rows["label_value"]:
                gt = label == value
                pred = model.predict(emb, [make_prompts(gt, strategy)])
                select_and_score(pred.masks[0], pred.scores[0], gt, cfg)
                n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=8, help="seed images used (evenly spaced)")
    ap.add_argument("--seed-dir", type=Path, default=DEFAULT_SEED)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sambench-bench-"))
    prepared = tmp / "prepared"
    prepare_dataset(args.seed_dir / "22_Heart", prepared, modality="MRI", progress=False)
    prepare_dataset(args.seed_dir / "6_Pancreas", prepared, modality="CT", progress=False)
    manifest = load_manifest(prepared)
    model = build_model("litemedsam", device="cpu")
    model.embed(np.zeros((64, 64), np.uint8))  # warm-up

    def engine(strategies: tuple[str, ...], tag: str) -> tuple[float, int]:
        cfg = RunConfig(
            prepared=str(prepared), strategies=strategies, max_images=args.images, progress=False
        )
        t0 = time.perf_counter()
        res = evaluate(cfg, tmp / tag, model=model)
        return time.perf_counter() - t0, int(res["image_id"].nunique())

    t_one, n_img = engine(("S5",), "one")
    t_all, _ = engine(STRATS, "all")
    from sambench.engine.plan import select_images

    ids = select_images(manifest, args.images)
    t0 = time.perf_counter()
    n_obj = naive_loop(model, prepared, manifest, ids)
    t_naive = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"LiteMedSAM on CPU, {n_img} seed images, {n_obj // len(STRATS)} objects")
    print(f"engine, one strategy (S5):     {t_one:7.2f} s")
    print(
        f"engine, five strategies S2-S6: {t_all:7.2f} s  -> ratio {t_all / t_one:.2f}x (aim <= 1.3x)"
    )
    print(
        f"naive re-encode loop S2-S6:    {t_naive:7.2f} s  -> engine is {t_naive / t_all:.2f}x faster (aim >= 3.5x)"
    )
    print(
        f"engine throughput: {n_img / t_all:.2f} images/s with 5 strategies; peak RSS {peak_mb:.0f} MB"
    )

    # decoding cost vs objects per image (one embedding, box prompts, batched)
    image = read_png(prepared / manifest.iloc[0]["image_path"])
    emb = model.embed(image)
    label = read_png(prepared / manifest.iloc[0]["label_path"])
    gt = label == manifest.iloc[0]["label_value"]
    p = make_prompts(gt, "S5")
    print("objects/image  decode s (batched)  per object")
    for k in (1, 2, 4, 8):
        model.predict(emb, [p] * k)
        t0 = time.perf_counter()
        for _ in range(3):
            model.predict(emb, [p] * k)
        dt = (time.perf_counter() - t0) / 3
        print(f"{k:13d}  {dt:18.4f}  {dt / k:10.4f}")


if __name__ == "__main__":
    main()
