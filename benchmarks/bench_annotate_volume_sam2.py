"""SAM 2 in the volume annotator on this CPU: the per-slice decode with the embedding ready, and
a propagation by each rule with the same model, side by side in one run.

Model: SAM 2.1 Hiera-T at its real size (1024 px) with **random weights** (seeded): the time of
a forward pass does not depend on the weights' values, so this times the architecture the user's
checkpoint would run (``sam2.1_hiera_tiny.pt``; nothing is downloaded). What random weights do
change is where propagation stops: the slices reached are printed, and times are per slice.
In-process :class:`sambench.annotate.volume_state.VolumeState` (the code the server runs) on the
spinal-cord MRI of ``tests/data/sct-spinalcord`` (the middle axial slice, reach 15 both ways).

1. ``--n`` boxes and clicks (alternating) on the middle axial slice, embedding ready: decode ms.
2. Propagation from that slice's box mask, reach ``--reach``:
   ``sam2-video`` (the official video predictor: it encodes every frame itself) and
   ``propagate-protocol`` with the same adapter, cold (encoder in the loop) and warm (every
   slice's embedding held, as the background encoder leaves them).

Usage: python benchmarks/bench_annotate_volume_sam2.py [--n 20] [--reach 15] [--threads T]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from bench_annotate_volume import _box, _pct  # the same box rule and percentiles (this folder)
from sambench.annotate.volume_source import list_items
from sambench.annotate.volume_state import PROPAGATION_SLICES, VolumeState
from sambench.models.sam2 import Sam2Adapter, build_sam2_model

HERE = Path(__file__).resolve().parent
SCT = HERE.parent / "tests" / "data" / "sct-spinalcord"
NAME = "sam2.1_hiera_t"


def _state(folder: Path, model: Sam2Adapter) -> VolumeState:
    return VolumeState(list_items(SCT), folder, model=model, model_name=NAME, annotator="bench",
                       source=str(SCT), prefetch=False)  # fmt: skip


def _propagate(st: VolumeState, k: int, reach: int) -> tuple[dict, float, float]:
    t, c = time.perf_counter(), time.process_time()
    r = st.interact("propagate", {"view": "axial", "slice": k, "max_slices": reach})
    return r, time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--reach", type=int, default=15)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Sam2Adapter(NAME, build_sam2_model(NAME), device="cpu")
    tmp = Path(tempfile.mkdtemp())
    st = _state(tmp / "clicks", model)
    k = st.depth("axial") // 2
    box = _box(st, k)
    t0 = time.perf_counter()
    st._store("axial").get(k)
    encode_s = time.perf_counter() - t0
    decode = []
    cx, cy = (box[0][0] + box[1][0]) // 2, (box[0][1] + box[1][1]) // 2
    for i in range(args.n):
        if i % 2 == 0:
            r = st.interact("box", {"view": "axial", "slice": k, "box": box})
        else:
            r = st.interact("click_pos", {"view": "axial", "slice": k, "point": [cx, cy]})
        decode.append(float(r["latency_ms"]))
    print(f"one slice's encoder pass: {encode_s:.2f} s (torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")  # fmt: skip
    print(pd.DataFrame([{"measure": "2D decode (latency_ms, embedding ready)", **_pct(decode)}])
          .to_string(index=False, float_format=lambda v: f"{v:.1f}"))  # fmt: skip

    rows = []
    video = _state(tmp / "video", model)
    video.interact("box", {"view": "axial", "slice": k, "box": box})
    r, s, c = _propagate(video, k, args.reach)
    rows.append({"rule": "sam2-video (official video predictor)", "slices": r["n_slices"],
                 "frames": r["frames"][1] - r["frames"][0] + 1, "seconds": s, "cpu_seconds": c})  # fmt: skip
    slices = _state(tmp / "slices", model)
    slices.propagation = PROPAGATION_SLICES
    slices.interact("box", {"view": "axial", "slice": k, "box": box})
    r, s, c = _propagate(slices, k, args.reach)
    rows.append({"rule": "propagate-protocol, cold (encoder in the loop)", "slices": r["n_slices"],
                 "frames": r["encodes"], "seconds": s, "cpu_seconds": c})  # fmt: skip
    slices.undo()
    r, s, c = _propagate(slices, k, args.reach)
    rows.append({"rule": "propagate-protocol, warm (embeddings held)", "slices": r["n_slices"],
                 "frames": r["encodes"], "seconds": s, "cpu_seconds": c})  # fmt: skip
    df = pd.DataFrame(rows)
    df["s_per_slice"] = df["seconds"] / df["slices"].clip(lower=1)
    print("(frames: given to the video predictor, or encoder passes of the propagate rule)")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"video / warm propagate-protocol per slice: "
          f"{df['s_per_slice'][0] / df['s_per_slice'][2]:.1f}x; load average now "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
