"""The volume annotator's model latency on this CPU: per 2D interaction with the slice embedding
ready, and a propagation through a 30-slice object, cold (encoder in the loop) and warm
(embeddings computed in the background first), side by side in one run.

Volume: the spinal-cord MRI of ``tests/data/sct-spinalcord`` (60x55x52, 1 mm); the cord runs
through every axial slice, so a propagation from the middle slice with reach 15 visits 30
neighbours (31 slices with the start). LiteMedSAM (bundled weights), in-process
(:class:`sambench.annotate.volume_state.VolumeState`, the code the server runs; the HTTP layer
adds the slice transfer, measured by ``bench_annotate.py`` for the 2D tool).

1. Per interaction, embedding ready: ``--n`` boxes and positive clicks on the middle axial slice
   (alternating), each timed as the model decode (``latency_ms``, what the logs record) and the
   whole interaction (decode + writing the voxels + undo record). p50 / p95 / max.
2. Propagation (reach 15, both directions): cold (a fresh session: 30 encoder passes in the
   loop), then undone and run again on the same session, warm (every slice's embedding held, as
   the background encoder leaves them while the user works): seconds, per-slice time, CPU
   seconds, and the encoder seconds the cold run spent (the background's work).

With ``--threads 1`` the CPU time per decode is the decoder's own cost (no OpenMP spin-waiting
counted), the figure to compare across machines when this one is shared.

Usage: python benchmarks/bench_annotate_volume.py [--n 30] [--reach 15] [--threads T]
       [--no-propagation]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sambench.annotate.views import view_array
from sambench.annotate.volume_source import list_items
from sambench.annotate.volume_state import VolumeState
from sambench.models.registry import build_model

HERE = Path(__file__).resolve().parent
SCT = HERE.parent / "tests" / "data" / "sct-spinalcord"


def _state(folder: Path, model: object) -> VolumeState:
    return VolumeState(list_items(SCT), folder, model=model, model_name="litemedsam",  # type: ignore[arg-type]
                       annotator="bench", source=str(SCT), prefetch=False)  # fmt: skip


def _box(st: VolumeState, k: int) -> list[list[int]]:
    ref = view_array(st.vol.reference, "axial")[k]  # type: ignore[union-attr]
    rows, cols = np.nonzero(ref)
    return [[int(cols.min()) - 2, int(rows.min()) - 2], [int(cols.max()) + 2, int(rows.max()) + 2]]


def _pct(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs)
    return {"n": len(a), "p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)),
            "max_ms": float(a.max())}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--reach", type=int, default=15)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-propagation", action="store_true", help="the 2D interactions only")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build_model("litemedsam", device="cpu")
    tmp = Path(tempfile.mkdtemp())
    st = _state(tmp / "clicks", model)
    k = st.depth("axial") // 2
    box = _box(st, k)
    t0 = time.perf_counter()
    st._store("axial").get(k)  # the embedding ready, as the background encoder leaves it
    encode_s = time.perf_counter() - t0
    decode, whole, cpu = [], [], []
    cx, cy = (box[0][0] + box[1][0]) // 2, (box[0][1] + box[1][1]) // 2
    for i in range(args.n):
        t1, c1 = time.perf_counter(), time.process_time()
        if i % 2 == 0:
            r = st.interact("box", {"view": "axial", "slice": k, "box": box})
        else:
            r = st.interact("click_pos", {"view": "axial", "slice": k, "point": [cx, cy]})
        whole.append((time.perf_counter() - t1) * 1000)
        cpu.append((time.process_time() - c1) * 1000)
        decode.append(float(r["latency_ms"]))
    rows = [
        {"measure": "2D decode (latency_ms, embedding ready)", **_pct(decode)},
        {"measure": "2D interaction in the session (decode + voxels + undo)", **_pct(whole)},
        {"measure": "its CPU time, all threads (contention-free cost)", **_pct(cpu)},
    ]
    print(f"one slice's encoder pass: {encode_s:.2f} s (torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")  # fmt: skip
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.1f}"))

    if args.no_propagation:
        return
    # propagation: cold (a fresh session: the encoder in the loop), then warm: undone and run
    # again on the same session, whose store now holds every slice's embedding, as the
    # background encoder leaves them while the user works
    prop_state = _state(tmp / "prop", model)
    prop_state.interact("box", {"view": "axial", "slice": k, "box": box})
    store = prop_state._store("axial")
    enc0 = store.seconds
    t2, c2 = time.perf_counter(), time.process_time()
    r_cold = prop_state.interact(
        "propagate", {"view": "axial", "slice": k, "max_slices": args.reach}
    )
    cold_s, cold_cpu = time.perf_counter() - t2, time.process_time() - c2
    background_s = store.seconds - enc0
    prop_state.undo()
    t4, c4 = time.perf_counter(), time.process_time()
    r_warm = prop_state.interact(
        "propagate", {"view": "axial", "slice": k, "max_slices": args.reach}
    )
    warm_s, warm_cpu = time.perf_counter() - t4, time.process_time() - c4
    n = r_cold["n_slices"]
    prop = pd.DataFrame(
        [
            {"propagation": "cold (encoder in the loop)", "slices": n, "encodes": r_cold["encodes"],
             "seconds": cold_s, "cpu_seconds": cold_cpu, "ms_per_slice": 1000 * cold_s / max(n, 1)},
            {"propagation": "warm (embeddings from the background)", "slices": r_warm["n_slices"],
             "encodes": r_warm["encodes"], "seconds": warm_s, "cpu_seconds": warm_cpu,
             "ms_per_slice": 1000 * warm_s / max(r_warm["n_slices"], 1)},
        ]
    )  # fmt: skip
    print(prop.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"encoder time inside the cold run: {background_s:.1f} s; cold/warm ratio "
          f"{cold_s / warm_s:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
