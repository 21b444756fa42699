"""Interactive segmentation cost, measured side by side in one run (issue: interactive).

On the real seed samples (../shared/data/seed-samples) on this machine's CPU:

1. LiteMedSAM through the engine, ``--clicks`` rounds per object (default 20): encoder passes
   counted (aim: one per image, never a re-encode), the encoder time of one image and the decoder
   time of all rounds of one object, and their ratio: (encoder + all rounds) / encoder
   (about 2x with litemedsam, the issue's figure);
2. the classical baselines (random walker, GrabCut) on the same objects and clicks: seconds per
   click beside LiteMedSAM's.

Usage: python benchmarks/bench_interactive.py [--images N] [--clicks K] [--seed-dir PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sambench.data.prepare import prepare_dataset
from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate
from sambench.models.baselines import build_baseline
from sambench.models.registry import build_model

HERE = Path(__file__).resolve().parent
DEFAULT_SEED = HERE.parent.parent / "shared" / "data" / "seed-samples"


class CountingModel:
    """Wraps an adapter and counts encoder passes and decoder calls."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.device = getattr(inner, "device", "cpu")
        self.embeds = 0
        self.predicts = 0

    def signature(self) -> dict[str, str]:
        return dict(self.inner.signature())

    def embed(self, image: np.ndarray) -> Any:
        self.embeds += 1
        return self.inner.embed(image)

    def predict(self, embedding: Any, prompts: Any, multimask_output: Any = None) -> Any:
        self.predicts += 1
        return self.inner.predict(embedding, prompts, multimask_output)


def run(
    model: Any, prepared: Path, out: Path, images: int, clicks: int
) -> tuple[pd.DataFrame, float]:
    cfg = RunConfig(
        prepared=str(prepared),
        model=model.name,
        strategies=("interactive",),
        max_clicks=clicks,
        max_images=images,
        progress=False,
    )
    t0 = time.perf_counter()
    res = evaluate(cfg, out, model=model)
    return res, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=4, help="seed images used (evenly spaced)")
    ap.add_argument("--clicks", type=int, default=20)
    ap.add_argument("--seed-dir", type=Path, default=DEFAULT_SEED)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sambench-bench-"))
    prepared = tmp / "prepared"
    prepare_dataset(a.seed_dir / "22_Heart", prepared, modality="MRI", progress=False)

    lite = build_model("litemedsam", device="cpu")
    lite.embed(np.zeros((64, 64), np.uint8))  # warm-up
    models = [CountingModel(lite)] + [
        CountingModel(build_baseline(n)) for n in ("random_walker", "grabcut")
    ]
    print(f"{a.images} seed images (22_Heart), {a.clicks} clicks per object, CPU")
    print(f"{'model':14s} {'images':>6s} {'objects':>7s} {'encodes':>7s} {'decodes':>7s} "
          f"{'enc s/img':>9s} {'s/click':>8s} {'s/object':>8s} {'(enc+rounds)/enc':>16s} {'wall s':>7s}")  # fmt: skip
    for m in models:
        res, wall = run(m, prepared, tmp / m.name, a.images, a.clicks)
        n_img = res["image_id"].nunique()
        n_obj = res[["image_id", "label_value"]].drop_duplicates().shape[0]
        fresh = res.drop_duplicates("image_id")
        enc = float(fresh["embed_seconds"].mean())
        done = (
            res[~res["carried_forward"].fillna(False).astype(bool)]
            if "carried_forward" in res
            else res
        )
        per_click = float(done["decode_seconds"].mean())
        per_obj = float(res.groupby(["image_id", "label_value"])["decode_seconds"].sum().mean())
        ratio = (enc + per_obj) / enc if enc > 1e-3 else float("nan")
        print(f"{m.name:14s} {n_img:6d} {n_obj:7d} {m.embeds:7d} {m.predicts:7d} {enc:9.3f} "
              f"{per_click:8.4f} {per_obj:8.3f} {ratio:16.2f} {wall:7.1f}")  # fmt: skip
    print(
        "encodes = encoder passes (one per image: the rounds never re-encode); decodes = batched "
        "decoder calls (all objects of an image decoded together in each round)"
    )


if __name__ == "__main__":
    main()
