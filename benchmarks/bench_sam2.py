"""SAM 2.1 Hiera-T beside LiteMedSAM: encoder seconds per image, decoder milliseconds per prompt.

One run on this machine's CPU: Hiera-T at its real size (1024 px) with random weights
(``torch.manual_seed(0)``; speed does not depend on the weights) and LiteMedSAM with its bundled
weights, on the same synthetic 256x256 uint8 image. Decoder time: one box prompt and one point
prompt through ``predict`` (single-mask output, masks at the original size), the median of
``--repeats`` calls. SAM ViT-B (random weights, 1024 px) runs in the same run unless
``--no-sam-vit-b``.

Usage: python benchmarks/bench_sam2.py [--repeats N] [--encodes N] [--no-sam-vit-b]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import torch

from sambench.models.litemedsam import build_litemedsam_adapter
from sambench.models.sam2 import Sam2Adapter, build_sam2_model
from sambench.prompts.types import Prompts


def _image(size: int = 256) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = (rng.random((size, size)) * 60).astype(np.uint8)
    img[64:192, 80:200] += 150
    return img


def measure(model: Any, encodes: int, repeats: int) -> tuple[float, float, float]:
    """(encoder s/image, decoder ms per box prompt, decoder ms per point prompt), medians."""
    img = _image()
    model.embed(img)  # warm-up
    enc = []
    emb = None
    for _ in range(encodes):
        t0 = time.perf_counter()
        emb = model.embed(img)
        enc.append(time.perf_counter() - t0)
    box = [Prompts(box=np.array([80.0, 64.0, 199.0, 191.0]))]
    point = [Prompts(points=np.array([[140.0, 128.0]]), labels=np.array([1]))]
    out = []
    for prompts in (box, point):
        model.predict(emb, prompts, multimask_output=False)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.predict(emb, prompts, multimask_output=False)
            times.append(time.perf_counter() - t0)
        out.append(1000 * statistics.median(times))
    return statistics.median(enc), out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--encodes", type=int, default=2)
    ap.add_argument("--no-sam-vit-b", dest="sam_vit_b", action="store_false")
    args = ap.parse_args()
    torch.manual_seed(0)
    models: list[tuple[str, Any]] = [
        ("litemedsam", build_litemedsam_adapter(device="cpu")),
        (
            "sam2.1_hiera_t",
            Sam2Adapter("sam2.1_hiera_t", build_sam2_model("sam2.1_hiera_t"), device="cpu"),
        ),
    ]
    if args.sam_vit_b:
        from segment_anything import sam_model_registry

        from sambench.models.sam import adapter_from_sam

        models.append(
            (
                "sam_vit_b",
                adapter_from_sam(sam_model_registry["vit_b"](), name="sam_vit_b", device="cpu"),
            )
        )
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"{'model':<16} {'encoder s/img':>14} {'box ms/prompt':>14} {'point ms/prompt':>16}")
    rows = []
    for name, model in models:
        enc, box_ms, pt_ms = measure(model, args.encodes, args.repeats)
        rows.append((name, enc, box_ms, pt_ms))
        print(f"{name:<16} {enc:>14.2f} {box_ms:>14.1f} {pt_ms:>16.1f}")
    base = rows[0]
    for name, enc, box_ms, _ in rows[1:]:
        print(
            f"{name} / litemedsam: encoder x{enc / base[1]:.1f}, decoder (box) x{box_ms / base[2]:.1f}"
        )


if __name__ == "__main__":
    main()
