"""The cost model's measured inputs (docs/scale.md): per model, encoder seconds per image, decoder
seconds per image for S2-S6 (one batched call per strategy, all objects of the image, multimask as
the engine runs it) and for S1 (seconds per grid point, from a grid-8 generation with the
official generator's defaults; S1 time is linear in grid points, docs/everything.md), on one real
seed image and this machine's CPU. ``--clock cpu`` (default) counts CPU seconds of all threads
(core-seconds: on an idle 2-core machine wall time is about half with 2 torch threads), which a
loaded shared machine disturbs far less than wall time.

LiteMedSAM with its bundled weights; SAM ViT-B and SAM 2.1 Hiera-T with random weights
(``torch.manual_seed(0)``; speed does not depend on the weights). Prints one table and, from it,
the hours of COSMOS 1050K (1.05 M images, 6 M objects) on this CPU.

Usage: python benchmarks/bench_cost.py [--models litemedsam,sam2.1_hiera_t,sam_vit_b]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from sambench.engine.amg_settings import AmgSettings
from sambench.engine.everything import generate_masks
from sambench.prompts.strategies import make_prompts

SEED = Path(__file__).resolve().parent.parent / "tests" / "data" / "seed-samples" / "22_Heart"
STRATS = ("S2", "S3", "S4", "S5", "S6")
COSMOS_IMAGES, COSMOS_OBJECTS = 1_050_000, 6_000_000


def build(name: str) -> Any:
    torch.manual_seed(0)
    if name == "litemedsam":
        from sambench.models.litemedsam import build_litemedsam_adapter

        return build_litemedsam_adapter(device="cpu")
    if name == "sam2.1_hiera_t":
        from sambench.models.sam2 import Sam2Adapter, build_sam2_model

        return Sam2Adapter(name, build_sam2_model(name), device="cpu")
    if name == "sam_vit_b":
        from segment_anything import sam_model_registry

        from sambench.models.sam import adapter_from_sam

        return adapter_from_sam(sam_model_registry["vit_b"](), name=name, device="cpu")
    raise SystemExit(f"--models: unknown {name!r}")


def seed_image() -> tuple[np.ndarray, list[np.ndarray]]:
    """The first seed image of 22_Heart and its objects (label values, > 50 px)."""
    path = sorted((SEED / "images").glob("*.png"))[0]
    image = np.asarray(Image.open(path))
    label = np.asarray(Image.open(SEED / "labels" / path.name))
    label = label[..., 0] if label.ndim == 3 else label
    objs = [label == v for v in np.unique(label) if v and (label == v).sum() > 50]
    return image, objs


def measure(
    model: Any, image: np.ndarray, objs: list[np.ndarray], encodes: int, clock: Any
) -> dict[str, float]:
    """Seconds by ``clock`` (``time.perf_counter``: wall; ``time.process_time``: CPU of all
    threads, the figure that a loaded shared machine disturbs least)."""
    model.embed(image)  # warm-up
    enc = []
    for _ in range(encodes):
        t0 = clock()
        emb = model.embed(image)
        enc.append(clock() - t0)
    out = {"encoder": statistics.median(enc)}
    for s in STRATS:
        prompts = [make_prompts(m, s) for m in objs]
        model.predict(emb, prompts)  # warm-up
        t0 = clock()
        model.predict(emb, prompts)
        out[s] = clock() - t0
    t0 = clock()
    generate_masks(model, emb, 8, AmgSettings(64), multimask_output=True)
    out["s1_per_point"] = (clock() - t0) / 64
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="litemedsam,sam2.1_hiera_t,sam_vit_b")
    ap.add_argument("--encodes", type=int, default=2)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = ap.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    image, objs = seed_image()
    print(
        f"torch threads {torch.get_num_threads()}; image {image.shape}, {len(objs)} objects; "
        f"{args.clock} seconds"
    )
    print(
        f"{'model':<16} {'enc s/img':>9} {'S2-S6 dec s/img':>15} {'s/obj':>7} "
        f"{'S1 s/point':>10} {'S1@32 s/img':>11} {'COSMOS h (S2-S6)':>16} {'+S1@32 h':>9}"
    )
    per_obj_images = COSMOS_OBJECTS / COSMOS_IMAGES
    for name in args.models.split(","):
        r = measure(build(name), image, objs, args.encodes, clock)
        dec = sum(r[s] for s in STRATS)
        per_obj = dec / len(objs)
        s1 = r["s1_per_point"] * 32 * 32
        hours = COSMOS_IMAGES * (r["encoder"] + per_obj * per_obj_images) / 3600
        hours_s1 = hours + COSMOS_IMAGES * s1 / 3600
        print(
            f"{name:<16} {r['encoder']:>9.2f} {dec:>15.2f} {per_obj:>7.3f} "
            f"{r['s1_per_point']:>10.4f} {s1:>11.1f} {hours:>16,.0f} {hours_s1:>9,.0f}"
        )


if __name__ == "__main__":
    main()
