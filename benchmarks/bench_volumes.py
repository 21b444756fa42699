"""Benchmark ``evaluate-3d``: seconds per volume and peak memory, protocol by protocol.

A synthetic CT volume (``bench_prepare.write_ct_volume``: three blobs over 60 % of the slices) is
prepared once, then each protocol runs in a fresh subprocess (its own peak RSS), with a box-filling
stand-in model (so the figures are sambench's own cost: reading the 3D form, the protocol loop,
3D scoring in mm, ``--save-masks``) and, with ``--model litemedsam``, the real model. Printed side by
side: seconds per volume, decodes, peak RSS, what the run added to the RSS after the imports, and
that as a multiple of the volume's uint8 size (one volume, its label and per-object masks in memory).

    .venv/bin/python benchmarks/bench_volumes.py                 # 512x512x120, stand-in model
    .venv/bin/python benchmarks/bench_volumes.py --quick         # 256x256x40
    .venv/bin/python benchmarks/bench_volumes.py --quick --model litemedsam
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_prepare import write_ct_volume


class BoxModel:
    """Stand-in adapter: the prompt's box filled; no encoder cost."""

    name = "boxfill"

    def embed(self, image: np.ndarray):  # type: ignore[no-untyped-def]
        import torch

        from sambench.models.base import Embedding

        return Embedding(torch.zeros(1, 1, 1, 1), image.shape[:2], image.shape[:2])

    def predict(self, embedding, prompts, multimask_output=None):  # type: ignore[no-untyped-def]
        from sambench.models.base import Prediction

        h, w = embedding.original_size
        masks = np.zeros((len(prompts), 1, h, w), bool)
        for i, p in enumerate(prompts):
            if p.box is not None:
                x0, y0, x1, y1 = (round(v) for v in p.box)
                masks[i, 0, y0 : y1 + 1, x0 : x1 + 1] = True
        n = len(prompts)
        return Prediction(masks, np.ones((n, 1), np.float32), np.zeros((n, 1, 4, 4), np.float32))


def _child(prepared: str, protocol: str, model: str, out: str) -> None:
    from sambench.volumes.evaluate import Run3DConfig, evaluate_3d

    cfg = Run3DConfig(prepared=prepared, model=model, protocols=(protocol,), save_masks=True)
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # after the imports
    t0 = time.perf_counter()
    df = evaluate_3d(cfg, out, model=BoxModel() if model == "boxfill" else None)
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": seconds,
                "protocol_seconds": float(df["seconds"].sum()),
                "decodes": int(df["n_slices_predicted"].sum()),
                "dsc": float(df["dsc"].mean()),
                "peak_mb": peak_kb / 1024,
                "added_mb": (peak_kb - base_kb) / 1024,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", default="boxfill", help="boxfill (stand-in) or a registry model")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    shape = (256, 256, 40) if args.quick else (512, 512, 120)
    from sambench.data.prepare import prepare_dataset

    with tempfile.TemporaryDirectory() as tmp:
        src = write_ct_volume(Path(tmp) / "src", shape, np.random.default_rng(0))
        t0 = time.perf_counter()
        prepare_dataset(src, Path(tmp) / "prep", modality="CT", progress=False)
        print(f"volume {shape} (x, y, z), uint8 {np.prod(shape) / 2**20:.1f} MiB; "
              f"prepare with the 3D form {time.perf_counter() - t0:.1f} s")  # fmt: skip
        print(f"{'protocol':14s} {'s/volume':>9s} {'model+loop s':>12s} {'decodes':>8s} "
              f"{'DSC %':>6s} {'peak MiB':>9s} {'added MiB':>9s} {'added/volume':>12s}")  # fmt: skip
        for protocol in ("slicewise-gt", "propagate"):
            out = str(Path(tmp) / f"run-{protocol}")
            cmd = [sys.executable, __file__, "--child", str(Path(tmp) / "prep"), protocol,
                   args.model, out]  # fmt: skip
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            ratio = r["added_mb"] / (np.prod(shape) / 2**20)
            print(f"{protocol:14s} {r['seconds']:9.2f} {r['protocol_seconds']:12.2f} "
                  f"{r['decodes']:8d} {r['dsc']:6.1f} {r['peak_mb']:9.0f} {r['added_mb']:9.0f} {ratio:12.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
