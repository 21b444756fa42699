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

``--multi`` runs instead the encode-once case (issue 33): a BraTS-size 240 x 240 x 155 volume
with 4 overlapping objects (nested in plane, 51-74 slices each) and the three protocols
slicewise-gt, propagate and interactive-3d in one run, before (``--embed-budget-mb 0``, no
cache: each object and protocol encodes its own slices) and after (one embedding per slice,
``--embed-budget-mb`` 1024 and a small budget; then a cold and a warm ``--cache-dir``), each
in a fresh subprocess, side by side: wall time, encoder passes, distinct slices, peak RSS, the
most MiB of embeddings held, and whether every metric of every step equals the before run's.
Its stand-in model thresholds the slice inside the prompt (``tests/threshold_model.py``) and
emulates an encoder: each pass sleeps ``--encode-seconds`` and returns a SAM-size embedding
(1x256x64x64 float32, 4 MiB), so passes cost time and the budget holds real memory.

    .venv/bin/python benchmarks/bench_volumes.py --multi                       # 240x240x155
    .venv/bin/python benchmarks/bench_volumes.py --multi --shape 120,120,78    # reduced
    .venv/bin/python benchmarks/bench_volumes.py --multi --model litemedsam    # the real encoder
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
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_prepare import write_ct_volume

# (label, centre x, centre y as fractions, in-plane radius as a fraction of x, z range as
# fractions of the depth): BraTS-like sub-regions, nested in plane, overlapping in z
MULTI_OBJECTS = (
    (1, 0.50, 0.50, 0.10, 0.32, 0.71),  # core: 61 of 155 slices
    (2, 0.50, 0.50, 0.20, 0.26, 0.74),  # edema: 74 slices, around the core
    (3, 0.44, 0.46, 0.05, 0.36, 0.72),  # necrosis: 56 slices, inside the core
    (4, 0.57, 0.55, 0.06, 0.37, 0.70),  # enhancing: 51 slices
)


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


class EncoderCostModel:
    """The multi-object case's stand-in: ``tests/threshold_model.ThresholdModel``'s masks (bright
    pixels in the box, the bright component under a click), behind an emulated encoder that
    sleeps ``seconds`` per pass and returns a 1x256x64x64 float32 embedding (4 MiB, touched)."""

    name = "threshold-encoder"

    def __init__(self, seconds: float) -> None:
        sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
        from threshold_model import ThresholdModel

        self.inner = ThresholdModel()
        self.seconds = seconds

    def signature(self) -> dict[str, str]:
        return {"model": self.name}

    def embed(self, image: np.ndarray):  # type: ignore[no-untyped-def]
        import torch

        from sambench.models.base import Embedding

        time.sleep(self.seconds)
        feats = torch.ones(1, 256, 64, 64)
        slice_ = torch.from_numpy(np.asarray(image, np.float32))[None, None]
        return Embedding(feats, image.shape[:2], image.shape[:2], extras={"slice": slice_})

    def predict(self, embedding, prompts, multimask_output=None):  # type: ignore[no-untyped-def]
        from sambench.models.base import Embedding

        e = embedding
        inner = Embedding(e.extras["slice"], e.original_size, e.input_size)
        return self.inner.predict(inner, prompts, multimask_output)


def write_multi_volume(path: Path, shape: tuple[int, int, int], rng: np.random.Generator) -> Path:
    """An MR-like volume with :data:`MULTI_OBJECTS` (bright, on darker noise), 1 mm isotropic,
    sliced along z; ``path/images/v0.nii``, ``path/labels/v0.nii`` and ``path/dataset.yaml``."""
    import nibabel as nib

    x, y, z = shape
    xx, yy = np.meshgrid(np.arange(x), np.arange(y), indexing="ij")
    image = rng.integers(0, 300, size=shape).astype(np.int16)
    label = np.zeros(shape, np.uint8)
    for value, cx, cy, r, z0, z1 in sorted(MULTI_OBJECTS, key=lambda o: -o[3]):  # big first
        k0, k1 = round(z0 * z), round(z1 * z) - 1
        for k in range(k0, k1 + 1):
            t = abs(k - (k0 + k1) / 2) / max(1.0, (k1 - k0) / 2)
            rk = r * x * (1 - 0.6 * t**2)
            label[:, :, k][(xx - cx * x) ** 2 + (yy - cy * y) ** 2 <= rk**2] = value
    image[label > 0] = rng.integers(600, 1000, size=int((label > 0).sum()))
    image[0, 0, :] = 1000  # one bright voxel per slice: the per-slice min-max keeps noise dark
    for sub, arr in (("images", image), ("labels", label)):
        (path / sub).mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(arr, np.eye(4)), path / sub / "v0.nii")
    (path / "dataset.yaml").write_text(
        "name: multi\nmodality: MR\nclasses: {Core: 1, Edema: 2, Necrosis: 3, Enhancing: 4}\n"
    )
    return path


def _multi_child(prepared: str, out: str, budget: str, cache: str, model: str, enc: str) -> None:
    import hashlib

    from sambench.volumes.evaluate import VOLUME_ENCODER_COLUMNS, Run3DConfig, evaluate_3d
    from sambench.volumes.types import ProtocolConfig

    cfg = Run3DConfig(
        prepared=prepared,
        model=model,
        protocols=("slicewise-gt", "propagate", "interactive-3d"),
        protocol=ProtocolConfig(steps=5),
        embedding_budget_mb=float(budget),
        cache_dir=cache or None,
    )
    m = EncoderCostModel(float(enc)) if model == "stand-in" else None
    if m is None:
        from sambench.models.registry import build_any

        m = build_any(model, None, device="cpu")
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # after imports and the model
    t0 = time.perf_counter()
    df = evaluate_3d(cfg, out, model=m)
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    keep = [
        c for c in df.columns if c not in ("seconds", "encoder_passes", *VOLUME_ENCODER_COLUMNS)
    ]
    digest = hashlib.sha256(df[keep].to_csv(index=False).encode()).hexdigest()[:12]
    per = df.groupby("protocol")["encoder_passes"].sum()
    print(json.dumps({
        "seconds": seconds, "rows": len(df), "digest": digest,
        "passes": int(df["volume_encoder_passes"].iloc[0]),
        "slices": int(df["volume_slices"].iloc[0]),
        "by_protocol": {k: int(v) for k, v in per.items()},
        "embedding_peak_mb": float(df["volume_embedding_peak_mb"].iloc[0]),
        "peak_mb": peak_kb / 1024, "added_mb": (peak_kb - base_kb) / 1024,
    }))  # fmt: skip


def multi(args: argparse.Namespace) -> None:
    """The encode-once case (see the module docstring); prints one row per configuration."""
    x, y, z = (int(v) for v in args.shape.split(",")) if args.shape_given else (240, 240, 155)
    with tempfile.TemporaryDirectory() as tmp:
        src = write_multi_volume(Path(tmp) / "src", (x, y, z), np.random.default_rng(0))
        prep = str(Path(tmp) / "prep")
        from sambench.data.prepare import prepare_dataset

        prepare_dataset(src, Path(prep), config=src / "dataset.yaml", progress=False)
        import pandas as pd

        objs = pd.read_parquet(Path(prep) / "multi" / "volumes3d.parquet")
        spans = ", ".join(f"{r.object_name} {r.n_slices}" for r in objs.itertuples())
        print(f"volume {x}x{y}x{z} (x, y, z), 4 objects (slices: {spans}); model {args.model}"
              + (f", encoder emulated at {args.encode_seconds} s/pass" if args.model == "stand-in" else "")
              + "; protocols slicewise-gt, propagate, interactive-3d (5 clicks)")  # fmt: skip
        print(f"{'configuration':30s} {'wall s':>8s} {'passes':>7s} {'slices':>7s} "
              f"{'sw/prop/int passes in rows':>27s} {'emb MiB':>8s} {'peak MiB':>9s} "
              f"{'added MiB':>9s} {'speed-up':>8s} same")  # fmt: skip
        cache = str(Path(tmp) / "cache")
        runs = [("before: per object (budget 0)", "0", ""),
                ("after: budget 1024 MiB", "1024", ""),
                ("after: budget 64 MiB", "64", ""),
                ("after: budget 1024, cold cache", "1024", cache),
                ("after: budget 1024, warm cache", "1024", cache)]  # fmt: skip
        first: dict[str, object] = {}
        for i, (label, budget, cdir) in enumerate(runs):
            out = str(Path(tmp) / f"run{i}")
            r = _run(
                ["--multi-child", prep, out, budget, cdir, args.model, str(args.encode_seconds)]
            )
            first = first or r
            bp = r["by_protocol"]
            rows_passes = "/".join(
                str(bp.get(p, 0)) for p in ("slicewise-gt", "propagate", "interactive-3d")
            )  # type: ignore[union-attr]
            print(f"{label:30s} {r['seconds']:8.1f} {r['passes']:7d} {r['slices']:7d} "
                  f"{rows_passes:>27s} {r['embedding_peak_mb']:8.0f} {r['peak_mb']:9.0f} "
                  f"{r['added_mb']:9.0f} {first['seconds'] / r['seconds']:7.1f}x "  # type: ignore[operator]
                  f"{'yes' if r['digest'] == first['digest'] else 'NO'}", flush=True)  # fmt: skip


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
                "dsc": float(df["dice"].mean()),  # 3D DICE, %
                "peak_mb": peak_kb / 1024,
                "added_mb": (peak_kb - base_kb) / 1024,
            }
        )
    )


def _run(args: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, *args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="256x256x40")
    ap.add_argument(
        "--shape", default=None, help="X,Y,Z voxels (default 512,512,300; --multi 240,240,155)"
    )
    ap.add_argument("--multi", action="store_true", help="the encode-once case (issue 33)")
    ap.add_argument("--encode-seconds", type=float, default=0.25,
                    help="--multi: the stand-in encoder's seconds per pass (default 0.25)")  # fmt: skip
    ap.add_argument("--model", default=None,
                    help="boxfill (stand-in; --multi: stand-in) or a registry model")  # fmt: skip
    ap.add_argument("--protocols", default="slicewise-gt,propagate")
    ap.add_argument("--no-save-masks", action="store_true", help="score only, write no NIfTI")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    ap.add_argument("--prepare-child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--multi-child", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.multi_child:
        _multi_child(*args.multi_child)
        return
    args.shape_given = args.shape is not None
    if args.multi:
        args.model = args.model or "stand-in"
        multi(args)
        return
    args.model = args.model or "boxfill"
    args.shape = args.shape or "512,512,300"
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
