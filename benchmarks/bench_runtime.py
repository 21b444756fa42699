"""Model runtimes on this CPU (issue 16): encoder seconds per image and decode latency.

Prints, side by side from one run, for LiteMedSAM (bundled weights) on seed images:

1. image-encoder seconds per image (best of ``--reps``) for eager torch, ONNX Runtime and
   OpenVINO, next to the FLOP limit: encoder FLOPs (``torch.utils.flop_counter``) divided by a
   large fp32 matmul's GFLOP/s measured in the same run; ratios runtime/limit and eager/runtime;
2. decode latency per interaction (one click on an embedded image: prompt encoder + mask decoder +
   post-processing to the original size, ``adapter.predict``), p50 and p95 over ``--clicks``
   clicks, for the eager batched decoder (what every runtime decodes with by default) and each
   runtime's exported decoder graph (``runtime_decoder=True``);
3. the largest |logit| difference of each runtime vs eager on those clicks.

Also the image encoder at ``--precision bf16`` (eager torch autocast, OpenVINO bf16), next to a
bf16 matmul's GFLOP/s; its deviation from fp32 is measured by ``benchmarks/precision_check.py``.

Exports go to a temporary folder (the first build of each runtime includes the export; the
timings exclude it). Usage: ``python benchmarks/bench_runtime.py [--images 2] [--clicks 50]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sambench.models.registry import build_model
from sambench.prompts.types import Prompts

SEED = Path(__file__).resolve().parents[1] / "tests" / "data" / "seed-samples"


SETUPS: dict[str, dict[str, str]] = {
    "torch": {},
    "onnxruntime": {"runtime": "onnxruntime"},
    "openvino": {"runtime": "openvino"},
    "torch bf16": {"precision": "bf16"},  # --precision bf16: not equal to fp32 (opt-in)
    "openvino bf16": {"runtime": "openvino", "precision": "bf16"},
}


def matmul_gflops(n: int = 2048, reps: int = 5, dtype: torch.dtype = torch.float32) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def encoder_flops(adapter: object, image: np.ndarray) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        adapter.embed(image)  # type: ignore[attr-defined]
    return float(fc.get_total_flops())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--clicks", type=int, default=50)
    ap.add_argument("--no-bf16", action="store_true", help="skip the --precision bf16 rows")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    paths = sorted(SEED.glob("*/images/*.png"))[: a.images]
    images = [np.asarray(Image.open(p)) for p in paths]
    export_dir = Path(tempfile.mkdtemp(prefix="sambench-exports-"))
    encoders = {}
    for label, kw in SETUPS.items():
        if "bf16" in label and a.no_bf16:
            continue
        t0 = time.perf_counter()
        m = build_model("litemedsam", device="cpu", export_dir=export_dir, **kw)
        print(f"build {label}: {time.perf_counter() - t0:.1f} s (export included)")
        encoders[label] = m
    flops = encoder_flops(encoders["torch"], images[0])
    peak = matmul_gflops()
    peak16 = matmul_gflops(dtype=torch.bfloat16)
    limit = flops / peak / 1e9
    print(
        f"torch threads {torch.get_num_threads()}; fp32 matmul {peak:.1f} GFLOP/s, bf16 matmul "
        f"{peak16:.1f} GFLOP/s; encoder {flops / 1e9:.1f} GFLOP -> FLOP limit {limit:.3f} "
        f"s/image (fp32), {flops / peak16 / 1e9:.3f} s/image (bf16)"
    )
    enc: dict[str, float] = {}
    for rt, m in encoders.items():
        times = []
        for im in images:
            m.embed(im)  # warm-up
            best = float("inf")
            for _ in range(a.reps):
                t0 = time.perf_counter()
                m.embed(im)
                best = min(best, time.perf_counter() - t0)
            times.append(best)
        enc[rt] = float(np.mean(times))
    print("\nruntime         encoder s/image  x fp32 FLOP limit  eager fp32/runtime")
    for rt, t in enc.items():
        print(f"{rt:15s} {t:15.3f} {t / limit:18.2f} {enc['torch'] / t:19.2f}")

    rng = np.random.default_rng(0)
    im = images[0]
    h, w = im.shape[:2]
    emb = encoders["torch"].embed(im)
    clicks = [
        Prompts(points=rng.random((1, 2)) * [w, h], labels=np.ones(1, int)) for _ in range(a.clicks)
    ]
    ref = [encoders["torch"].predict(emb, [c]) for c in clicks]
    # every runtime decodes with the eager batched decoder by default; the exported decoder
    # graph is opt-in (runtime_decoder=True): both are timed
    decoders = {"eager (default)": encoders["torch"]}
    for rt in ("onnxruntime", "openvino"):
        decoders[f"{rt} graph"] = build_model(
            "litemedsam", device="cpu", runtime=rt, export_dir=export_dir, runtime_decoder=True
        )
    print("\ndecoder           decode p50 ms  p95 ms  max |logit - eager|")
    for rt, m in decoders.items():
        m.predict(emb, clicks[:1])
        lat, diff = [], 0.0
        for c, r in zip(clicks, ref, strict=True):
            t0 = time.perf_counter()
            p = m.predict(emb, [c])
            lat.append(time.perf_counter() - t0)
            diff = max(diff, float(np.abs(p.low_res_logits - r.low_res_logits).max()))
        ms = np.array(lat) * 1e3
        print(f"{rt:17s} {np.percentile(ms, 50):13.1f} {np.percentile(ms, 95):7.1f} {diff:20.2e}")


if __name__ == "__main__":
    main()
