"""Benchmark ``prepare_dataset``: throughput (slices/s) and peak memory (max RSS) on synthetic CT.

Each measurement runs in a fresh subprocess, so its peak RSS (``resource.getrusage``, the process
and its worker processes) is its own. Memory should stay roughly constant as the number of
volumes grows (one volume per worker in memory at a time).

    .venv/bin/python benchmarks/bench_prepare.py            # 512x512x300 int16, 1/2/4 volumes
    .venv/bin/python benchmarks/bench_prepare.py --quick    # 256x256x80, 1/2 volumes
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


def write_ct_volume(path: Path, shape: tuple[int, int, int], rng: np.random.Generator) -> Path:
    """An int16 CT-like volume (air -1000, a body ellipse, noise) and a label with 3 blobs.

    Writes ``path/images/v0.nii`` and ``path/labels/v0.nii`` (uncompressed NIfTI, spacing
    0.8 x 0.8 x 2.5 mm, so slices are axial); blobs cover about 60 % of the slices.
    """
    import nibabel as nib

    x, y, z = shape
    xx, yy = np.meshgrid(np.arange(x), np.arange(y), indexing="ij")
    body = ((xx - x / 2) / (0.42 * x)) ** 2 + ((yy - y / 2) / (0.35 * y)) ** 2 <= 1
    image = np.full(shape, -1000, np.int16)
    label = np.zeros(shape, np.uint8)
    blobs = [(0.40, 0.45, 0.08, 1), (0.60, 0.50, 0.05, 2), (0.50, 0.35, 0.03, 3)]
    for k in range(z):
        noise = rng.normal(40, 25, size=(x, y)).astype(np.int16)
        image[:, :, k] = np.where(body, noise, -1000)
        if 0.2 * z <= k < 0.8 * z:
            for cx, cy, r, v in blobs:
                label[:, :, k][((xx - cx * x) ** 2 + (yy - cy * y) ** 2) <= (r * x) ** 2] = v
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    for sub, arr in (("images", image), ("labels", label)):
        (path / sub).mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(arr, affine), path / sub / "v0.nii")
    return path


def make_source(base: Path, n_volumes: int, volume_dir: Path) -> Path:
    """A source folder with ``n_volumes`` cases, all symlinks to the one written volume."""
    src = base / f"src{n_volumes}"
    for sub in ("images", "labels"):
        (src / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n_volumes):
            link = src / sub / f"v{i}.nii"
            if not link.exists():
                link.symlink_to((volume_dir / sub / "v0.nii").resolve())
    (src / "dataset.yaml").write_text(
        "name: bench\nmodality: CT\nclasses: {Liver: 1, Kidney: 2, Tumor: 3}\n"
    )
    return src


def child(src: str, out: str, workers: int) -> None:
    """Run one prepare and print a JSON line with seconds, slices and peak RSS (MiB)."""
    from sambench.data.prepare import prepare_dataset

    t0 = time.perf_counter()
    r = prepare_dataset(
        Path(src), Path(out), config=Path(src) / "dataset.yaml", workers=workers, progress=False
    )
    dt = time.perf_counter() - t0
    kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    print(
        json.dumps(
            {"seconds": dt, "slices": r.slices_read, "kept": r.slices_kept, "rss_mib": kib / 1024}
        )
    )


def run(src: Path, out: Path, workers: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", str(src), str(out), str(workers)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="256x256x80 volume, 1 and 2 volumes")
    ap.add_argument("--workers", type=int, default=1, help="also time this many workers (4 vols)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    shape = (256, 256, 80) if args.quick else (512, 512, 300)
    counts = (1, 2) if args.quick else (1, 2, 4)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench_prepare_") as tmp:
        base = Path(tmp)
        t0 = time.perf_counter()
        vol = write_ct_volume(base / "vol", shape, rng)
        print(f"volume {shape} int16 written in {time.perf_counter() - t0:.1f} s")
        volume_mib = np.prod(shape) * 2 / 2**20
        print(f"one volume in memory: {volume_mib:.0f} MiB (int16)\n")
        print(
            f"{'volumes':>7} {'workers':>7} {'slices':>7} {'kept':>6} {'s':>7} {'slices/s':>9} {'peak RSS MiB':>13}"
        )
        runs = [(n, 1) for n in counts]
        if args.workers > 1:
            runs.append((counts[-1], args.workers))
        rows = []
        for n, w in runs:
            src = make_source(base, n, vol)
            r = run(src, base / f"out{n}_{w}", w)
            rows.append(r)
            print(
                f"{n:>7} {w:>7} {int(r['slices']):>7} {int(r['kept']):>6} {r['seconds']:>7.1f} "
                f"{r['slices'] / r['seconds']:>9.1f} {r['rss_mib']:>13.0f}"
            )
        single = [r["rss_mib"] for r in rows[: len(counts)]]
        print(
            f"\npeak RSS ratio {counts[-1]} volumes / 1 volume: {single[-1] / single[0]:.2f} "
            "(~1.0 = bounded: one volume at a time)"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
