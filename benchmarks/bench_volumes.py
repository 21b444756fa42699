"""Benchmark ``evaluate-3d``: seconds per volume and peak memory, protocol by protocol, for the
same volume prepared as NIfTI (read whole) and as zarr (streamed by slice).

A synthetic CT volume (``bench_prepare.write_ct_volume``: three blobs over 60 % of the slices) is
prepared twice, ``--volume-format nifti`` and ``zarr``, each in a fresh subprocess (its peak RSS:
the prepare pass), then each protocol runs on each in a fresh subprocess, with a box-filling
stand-in model (so the figures are sambench's own cost: reading the 3D form, the protocol loop,
3D scoring in mm, ``--save-masks``) and, with ``--model litemedsam``, the real model. Printed side by
side: seconds per volume, decodes, peak RSS, what the run added to the RSS after the imports, and
that as a multiple of the volume's uint8 size.

    .venv/bin/python benchmarks/bench_volumes.py                 # 512x512x300, stand-in model
    .venv/bin/python benchmarks/bench_volumes.py --quick         # 256x256x40
    .venv/bin/python benchmarks/bench_volumes.py --shape 512,512,160 --no-save-masks
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


def _prepare_child(src: str, out: str, fmt: str) -> None:
    import zarr  # noqa: F401  (imported before the baseline, as numpy and ITK are)

    from sambench.data.prepare import prepare_dataset

    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    prepare_dataset(Path(src), Path(out), modality="CT", progress=False, volume_format=fmt)
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mb": peak_kb / 1024,
                      "added_mb": (peak_kb - base_kb) / 1024}))  # fmt: skip


def _child(prepared: str, protocol: str, model: str, out: str, save_masks: str) -> None:
    import zarr  # noqa: F401

    from sambench.volumes.evaluate import Run3DConfig, evaluate_3d

    cfg = Run3DConfig(
        prepared=prepared, model=model, protocols=(protocol,), save_masks=save_masks == "1"
    )
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


def _run(args: list[str]) -> dict[str, float]:
    cmd = [sys.executable, __file__, *args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="256x256x40")
    ap.add_argument("--shape", default="512,512,300", help="X,Y,Z voxels (default 512,512,300)")
    ap.add_argument("--model", default="boxfill", help="boxfill (stand-in) or a registry model")
    ap.add_argument("--protocols", default="slicewise-gt,propagate")
    ap.add_argument("--no-save-masks", action="store_true", help="score only, write no NIfTI")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    ap.add_argument("--prepare-child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    if args.prepare_child:
        _prepare_child(*args.prepare_child)
        return
    x, y, z = (256, 256, 40) if args.quick else (int(v) for v in args.shape.split(","))
    shape = (x, y, z)
    mib = float(np.prod(shape)) / 2**20
    save = "0" if args.no_save_masks else "1"
    with tempfile.TemporaryDirectory() as tmp:
        src = write_ct_volume(Path(tmp) / "src", shape, np.random.default_rng(0))
        print(f"volume {shape} (x, y, z), uint8 {mib:.1f} MiB per array (image, label); "
              f"model {args.model}; --save-masks {'off' if save == '0' else 'on'}")  # fmt: skip
        head = (f"{'format':6s} {'step':14s} {'s/volume':>9s} {'decodes':>8s} {'DSC %':>6s} "
                f"{'peak MiB':>9s} {'added MiB':>9s} {'added/volume':>12s}")  # fmt: skip
        print(head)
        rows = []
        for fmt in ("nifti", "zarr"):
            prep = str(Path(tmp) / f"prep-{fmt}")
            r = _run(["--prepare-child", str(src), prep, fmt])
            rows.append(f"{fmt:6s} {'prepare':14s} {r['seconds']:9.2f} {'':>8s} {'':>6s} "
                        f"{r['peak_mb']:9.0f} {r['added_mb']:9.0f} {r['added_mb'] / mib:12.1f}")  # fmt: skip
            print(rows[-1], flush=True)
            for protocol in args.protocols.split(","):
                out = str(Path(tmp) / f"run-{fmt}-{protocol}")
                r = _run(["--child", prep, protocol, args.model, out, save])
                rows.append(f"{fmt:6s} {protocol:14s} {r['seconds']:9.2f} {r['decodes']:8d} "
                            f"{r['dsc']:6.1f} {r['peak_mb']:9.0f} {r['added_mb']:9.0f} "
                            f"{r['added_mb'] / mib:12.1f}")  # fmt: skip
                print(rows[-1], flush=True)


if __name__ == "__main__":
    main()
