"""One machine at full speed, measured side by side in one run (issue 17, item 2).

On the seed samples with LiteMedSAM (S2-S6, oracle and score selections):

1. the local executor with the prefetching reader (``prefetch=2``: PNG decoding, label masks and
   cache reads in a reader thread) vs reading in the model's thread (``prefetch=0``): wall
   seconds and the ratio;
2. ``--cache-dtype float16`` vs float32: the DICE difference it causes, per row (mean and max
   absolute difference in DICE points, rows whose selected candidate changed) and per strategy;
3. with ``--ray``, the Ray executor on a local instance with 2 workers beside the local one
   (start-up included: on a small set Ray's start-up dominates).

Usage: python benchmarks/bench_throughput.py [--seed-dir PATH] [--max-images N] [--ray]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from sambench.data.prepare import prepare_dataset
from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate
from sambench.engine.executor import ExecutorOptions
from sambench.models.registry import build_model

HERE = Path(__file__).resolve().parent
SHARED_SEED = HERE.parent.parent / "shared" / "data" / "seed-samples"
REPO_SEED = HERE.parent / "tests" / "data" / "seed-samples"
KEYS = ["dataset", "image_id", "label_value", "strategy", "selection"]


def timed_run(
    cfg: RunConfig, out: Path, model: object, opts: ExecutorOptions
) -> tuple[float, pd.DataFrame]:
    t0 = time.perf_counter()
    df = evaluate(cfg, out, model=model, options=opts)  # type: ignore[arg-type]
    return time.perf_counter() - t0, df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--seed-dir", type=Path, default=SHARED_SEED if SHARED_SEED.is_dir() else REPO_SEED
    )
    ap.add_argument("--max-images", type=int, default=None)
    ap.add_argument("--ray", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        prep = root / "prepared"
        for ds in sorted(p for p in a.seed_dir.iterdir() if (p / "images").is_dir()):
            prepare_dataset(
                ds, prep, modality="MRI" if "Heart" in ds.name else "CT", progress=False
            )
        model = build_model("litemedsam", device="cpu")
        base = RunConfig(
            prepared=str(prep), model="litemedsam", max_images=a.max_images, progress=False
        )
        model.embed(__import__("numpy").zeros((64, 64), "uint8"))  # warm-up
        t_seq, ref = timed_run(base, root / "noprefetch", model, ExecutorOptions(prefetch=0))
        t_pre, pre = timed_run(base, root / "prefetch", model, ExecutorOptions(prefetch=2))
        n = ref["image_id"].nunique()
        print(f"LiteMedSAM on {n} seed images ({a.seed_dir}), S2-S6, CPU")
        print(f"reading in the model's thread: {t_seq:6.1f} s  ({n / t_seq:.2f} img/s)")
        print(
            f"prefetching reader (depth 2):  {t_pre:6.1f} s  ({n / t_pre:.2f} img/s)  ratio {t_seq / t_pre:.2f}x"
        )
        same = ref.sort_values(KEYS)["dice"].reset_index(drop=True)
        assert same.equals(pre.sort_values(KEYS)["dice"].reset_index(drop=True)), (
            "prefetch changed DICE"
        )

        fp16 = RunConfig(**{**base.__dict__, "cache_dtype": "float16"})
        _, half = timed_run(fp16, root / "fp16", model, ExecutorOptions())
        m = ref.merge(half, on=KEYS, suffixes=("_32", "_16"))
        ok = m[(m["status_32"] == "ok") & (m["status_16"] == "ok")]
        d = (ok["dice_16"] - ok["dice_32"]).abs()
        changed = (ok["candidate_index_16"] != ok["candidate_index_32"]).mean()
        print(f"\n--cache-dtype float16 vs float32 over {len(ok)} rows (DICE in points of 100):")
        print(
            f"  mean |dDICE| {d.mean():.4f}, max |dDICE| {d.max():.4f}, rows with another candidate selected {100 * changed:.1f}%"
        )
        table = ok.groupby(["strategy", "selection"]).agg(
            dice_fp32=("dice_32", "mean"), dice_fp16=("dice_16", "mean")
        )
        table["diff"] = table["dice_fp16"] - table["dice_fp32"]
        print(table.round(4).to_string())

        if a.ray:
            import ray

            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            opts = ExecutorOptions(executor="ray", workers=2, batch_images=2)
            t_ray, on_ray = timed_run(base, root / "ray", None, opts)
            print(
                f"\nRay, 2 workers (local instance, actor start-up included): {t_ray:6.1f} s ({n / t_ray:.2f} img/s) vs local {t_pre:.1f} s"
            )
            r = on_ray.sort_values(KEYS)["dice"].reset_index(drop=True)
            print("Ray DICE equal to local:", r.equals(same))
            ray.shutdown()


if __name__ == "__main__":
    main()
