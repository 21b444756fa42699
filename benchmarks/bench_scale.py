"""COSMOS scale without the models: planning, resume detection, the paper tables, bootstrap CIs and
paired tests on a synthetic 1.05 M-image / 6 M-object manifest and its 72 M-row results dataset,
timed with peak memory at 1 %, 10 % and 100 % of the rows (issue 17, docs/scale.md).

The data are written once, in bounded memory (one synthetic dataset shard at a time), under
``benchmarks/.cache/scale`` (git-ignored; about 3 GB at full size):

- ``prepared/ds000 .. ds099/manifest.parquet``: 100 shards of 10 500 images (5 or 6 objects each,
  6 M objects in all; the manifest columns of :mod:`sambench.data.records`);
- ``parts/part-NNNNNN.parquet`` + ``parts/_manifest.jsonl``: the results dataset as ``evaluate``
  writes it (10 parts per shard, about 72 k rows each): per object S1 (grid 32) and S2-S6, oracle
  and score selections, one model, the result columns the tables read (12 rows per object);
- ``frac-<p>/``: run and prepared folders of the first p % of the shards (symbolic links to the
  parts and manifests; each run folder has its own ``_manifest.jsonl`` of its parts).

Each size runs in a fresh child process: phases are timed with ``time.perf_counter`` (wall) and
``time.process_time`` (CPU of all the process's threads: the fair figure on a shared machine), and
their peak resident memory read from ``VmHWM`` (reset between phases through ``/proc/self/clear_refs``).
DuckDB runs with ``memory_limit=2GB`` (the dataset default) and spills beyond it.

Usage: python benchmarks/bench_scale.py [--fractions 0.01,0.1,1] [--shards 100] [--report]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sambench.data.records import MANIFEST_COLUMNS
from sambench.data.records import MANIFEST_NAME as PREP_MANIFEST
from sambench.store.atomic import atomic_path
from sambench.store.results_dataset import PartEntry, append_manifest, read_manifest

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "scale"
IMAGES_PER_SHARD = 10_500
PARTS_PER_SHARD = 10
STRATS = ("S1", "S2", "S3", "S4", "S5", "S6")
SELECTIONS = ("oracle", "score")
MODALITIES = ("CT", "MR", "US", "XRay", "Endoscopy", "Dermoscopy", "Fundus", "Microscopy")
ORGANS = tuple(f"organ{i:02d}" for i in range(1, 21))
STRATEGY_DICE = {"S1": 55.0, "S2": 62.0, "S3": 70.0, "S4": 75.0, "S5": 85.0, "S6": 83.0}


def _dict(values: np.ndarray, names: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(values.astype(np.int32)), pa.array(names))


def shard(k: int) -> tuple[pa.Table, pa.Table]:
    """(manifest, results) of shard ``k``: one dataset of IMAGES_PER_SHARD images, seeded by k."""
    rng = np.random.default_rng(k)
    ds, mod = f"ds{k:03d}", MODALITIES[k % len(MODALITIES)]
    n_img = IMAGES_PER_SHARD
    n_obj = np.where(rng.random(n_img) < 0.714, 6, 5)  # 6 M objects / 1.05 M images
    img = np.repeat(np.arange(n_img), n_obj)
    label = np.concatenate([np.arange(1, n + 1) for n in n_obj])
    case, sl = img // 50, img % 50
    ids = [f"{ds}_case{i // 50:04d}_{i % 50:03d}" for i in range(n_img)]
    no = len(img)
    area = rng.integers(60, 20_000, no)
    manifest = pa.table(
        {
            "dataset": _dict(np.zeros(no), [ds]),
            "case": pa.array([f"case{c:04d}" for c in case]),
            "slice_index": pa.array(sl),
            "image_id": _dict(img, ids),
            "image_path": pa.array([f"{ds}/images/{ids[i]}.png" for i in img]),
            "label_path": pa.array([f"{ds}/labels/{ids[i]}.png" for i in img]),
            "object_name": _dict(label - 1, list(ORGANS[:6])),
            "label_value": pa.array(label),
            "modality": _dict(np.zeros(no), [mod]),
            "height": pa.array(np.full(no, 256)),
            "width": pa.array(np.full(no, 256)),
            "spacing_x": pa.array(np.ones(no)),
            "spacing_y": pa.array(np.ones(no)),
            "spacing_z": pa.array(np.ones(no)),
            "slice_axis": pa.array(np.full(no, 2)),
            "area": pa.array(area),
            "bbox_x_min": pa.array(np.zeros(no, np.int64)),
            "bbox_y_min": pa.array(np.zeros(no, np.int64)),
            "bbox_x_max": pa.array(np.full(no, 99)),
            "bbox_y_max": pa.array(np.full(no, 99)),
            "source_image": pa.array([f"/data/{ds}/case{c:04d}.nii.gz" for c in case]),
            "roi_path": pa.array([""] * no),
            "channel": pa.array([""] * no),
        }
    )
    assert tuple(manifest.column_names) == MANIFEST_COLUMNS
    reps = len(STRATS) * len(SELECTIONS)
    nr = no * reps
    obj = np.repeat(np.arange(no), reps)
    strat = np.tile(np.repeat(np.arange(len(STRATS)), len(SELECTIONS)), no)
    sel = np.tile(np.arange(len(SELECTIONS)), no * len(STRATS))
    mean = np.array([STRATEGY_DICE[s] for s in STRATS])[strat] + 3.0 * (k % 7)
    dice = np.clip(mean + rng.normal(0, 15, nr) - 4.0 * sel, 0, 100)
    ok = rng.random(nr) > 0.002
    tp = rng.integers(0, 5000, nr)
    embed = rng.uniform(0.8, 1.2, n_img)[img][obj]
    results = pa.table(
        {
            "dataset": _dict(np.zeros(nr), [ds]),
            "image_id": _dict(img[obj], ids),
            "label_value": pa.array(label[obj]),
            "case": _dict(case[obj], [f"case{c:04d}" for c in range(case.max() + 1)]),
            "slice_index": pa.array(sl[obj]),
            "object_name": _dict(label[obj] - 1, list(ORGANS[:6])),
            "modality": _dict(np.zeros(nr), [mod]),
            "model": _dict(np.zeros(nr), ["litemedsam"]),
            "strategy": _dict(strat, list(STRATS)),
            "selection": _dict(sel, list(SELECTIONS)),
            "status": _dict(np.where(ok, 0, 1), ["ok", "skipped"]),
            "dice": pa.array(np.where(ok, dice, np.nan), from_pandas=True),
            "jaccard": pa.array(np.where(ok, dice / (200 - dice) * 100, np.nan), from_pandas=True),
            "hd": pa.array(np.where(ok, rng.gamma(2.0, 6.0, nr), np.nan), from_pandas=True),
            "hce": pa.array(rng.integers(0, 12, nr).astype(np.float64)),
            "hce_fp": pa.array(rng.integers(0, 6, nr).astype(np.float64)),
            "hce_fn": pa.array(rng.integers(0, 6, nr).astype(np.float64)),
            "tp": pa.array(tp),
            "fp": pa.array(rng.integers(0, 800, nr)),
            "fn": pa.array(rng.integers(0, 800, nr)),
            "embed_seconds": pa.array(embed),
            "embedding_cached": pa.array(np.zeros(nr, bool)),
            "decode_seconds": pa.array(rng.uniform(0.005, 0.02, no)[obj]),
            "grid": pa.array(np.where(strat == 0, 32.0, np.nan), from_pandas=True),
        }
    )
    return manifest, results


def generate(cache: Path, shards: int) -> None:
    """Write the shards not yet written (a shard's manifest is its completion marker)."""
    parts = cache / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    listed = read_manifest(parts)
    for k in range(shards):
        prep = cache / "prepared" / f"ds{k:03d}" / PREP_MANIFEST
        if prep.is_file():
            continue
        t0 = time.perf_counter()
        manifest, results = shard(k)
        img = results.column("image_id").combine_chunks().indices.to_numpy()
        bounds = np.searchsorted(img, np.linspace(0, IMAGES_PER_SHARD, PARTS_PER_SHARD + 1))
        for j in range(PARTS_PER_SHARD):
            name = f"part-{k * PARTS_PER_SHARD + j + 1:06d}.parquet"
            chunk = results.slice(bounds[j], bounds[j + 1] - bounds[j])
            with atomic_path(parts / name) as tmp:
                pq.write_table(chunk, tmp)
            if name not in listed:
                ids = chunk.column("image_id").combine_chunks()
                images = np.unique(ids.indices.to_numpy())
                names = [ids.dictionary[int(i)].as_py() for i in images]
                append_manifest(parts, PartEntry(name, chunk.num_rows, tuple(names)))
        with atomic_path(prep) as tmp:
            pq.write_table(manifest, tmp)
        print(f"shard {k}: {results.num_rows} rows in {time.perf_counter() - t0:.1f} s", flush=True)


def fraction_dirs(cache: Path, frac: float, shards: int) -> tuple[Path, Path]:
    """(prepared, run) folders of the first ``frac`` of the shards (links; made once)."""
    n = max(1, round(frac * shards))
    root = cache / f"frac-{n:03d}"
    prepared, run = root / "prepared", root / "run"
    if (run / "parts" / "_manifest.jsonl").is_file():
        return prepared, run
    (run / "parts").mkdir(parents=True, exist_ok=True)
    prepared.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        link = prepared / f"ds{k:03d}"
        if not link.exists():
            link.symlink_to(cache / "prepared" / f"ds{k:03d}")
    entries = read_manifest(cache / "parts")
    lines = []
    for i in range(n * PARTS_PER_SHARD):
        name = f"part-{i + 1:06d}.parquet"
        link = run / "parts" / name
        if not link.exists():
            link.symlink_to(cache / "parts" / name)
        lines.append(entries[name].to_json())
    with atomic_path(run / "parts" / "_manifest.jsonl") as tmp:
        tmp.write_text("".join(lines))
    return prepared, run


def _hwm_reset() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(prepared: Path, run: Path, report: bool) -> dict[str, Any]:
    """Every phase on one size; returns {phase: (seconds, peak RSS MB)} and the row count."""
    from sambench.analysis import lazy
    from sambench.data.manifest import load_manifest
    from sambench.engine.plan import select_images
    from sambench.engine.results import ResultsStore
    from sambench.store.results_dataset import scan_results

    out: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    state: dict[str, Any] = {}

    def phase(name: str, fn: Callable[[], Any]) -> None:
        _hwm_reset()
        t0, c0 = time.perf_counter(), time.process_time()
        state[name] = fn()
        out[name] = (time.perf_counter() - t0, _hwm_mb(), time.process_time() - c0)

    def planning() -> int:
        manifest = load_manifest(prepared)
        ids = select_images(manifest, None)
        state["objects"] = len(manifest)
        return len(ids)

    phase("planning", planning)
    phase("resume", lambda: len(ResultsStore(run).done_image_ids()))
    ds = scan_results(run)
    out["rows"] = ds.count()
    out["images"], out["objects"] = state["planning"], state["objects"]
    phase("tables", lambda: lazy.write_tables_lazy(ds, tmp / "tables"))
    phase("ci", lambda: lazy.mean_with_ci_lazy(ds, rng=np.random.default_rng(0)))
    phase("paired", lambda: lazy.paired_wilcoxon_lazy(ds))
    if report:
        from sambench.report.lazy_report import build_report_lazy

        phase("report", lambda: build_report_lazy(run, tmp / "report"))
    out["dice_S5"] = float(state["ci"].set_index("strategy").loc["S5", "mean"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fractions", default="0.01,0.1,1")
    ap.add_argument("--shards", type=int, default=100, help="100 = 1.05 M images")
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--report", action="store_true", help="also build the out-of-core report")
    ap.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.report)))
        return
    fracs = [float(f) for f in args.fractions.split(",")]
    n_gen = max(max(1, round(f * args.shards)) for f in fracs)
    t0 = time.perf_counter()
    generate(args.cache, n_gen)
    print(f"data ready ({n_gen} shards) in {time.perf_counter() - t0:.0f} s", flush=True)
    phases = ["planning", "resume", "tables", "ci", "paired"] + (["report"] if args.report else [])
    head = f"{'rows':>11} {'images':>9} " + " ".join(f"{p + ' s/cpu s/MB':>23}" for p in phases)
    results = []
    for frac in fracs:
        prepared, run = fraction_dirs(args.cache, frac, args.shards)
        cmd = [sys.executable, __file__, "--child", str(prepared), str(run)]
        cmd += ["--report"] if args.report else []
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
        if proc.returncode:
            sys.exit(f"child for {frac} failed:\n{proc.stderr[-3000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        if len(results) == 1:
            print(head)
        cells = " ".join(f"{r[p][0]:>7.1f}/{r[p][2]:>7.1f}/{r[p][1]:>7.0f}" for p in phases)
        print(f"{r['rows']:>11,} {r['images']:>9,} {cells}", flush=True)
    base = results[0]
    for r in results[1:]:
        ratio = r["rows"] / base["rows"]
        times = ", ".join(f"{p} x{r[p][2] / max(base[p][2], 1e-9):.1f}" for p in phases)
        print(f"{r['rows']:,} rows = x{ratio:.0f} the first size: CPU time {times}")


if __name__ == "__main__":
    main()
