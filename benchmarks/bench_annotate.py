"""The annotator's cost per interaction and the simulated annotator's effort, side by side, in one run.

On the seed samples (default: the repository's ``tests/data/seed-samples``) on this machine's CPU:

1. Latency: a real uvicorn server on 127.0.0.1 with LiteMedSAM, driven over HTTP (httpx). Per
   image: the encoder time when it opens (once), then per object one box and ``--clicks``
   corrective clicks (RITM rule); for each, the model's decode time as the server logs it
   (``latency_ms``) and the client's round trip (HTTP + decode + the view's PNG encoding), p50 and
   p95; a manual brush stroke's round trip beside them (no model).
2. Effort: the simulated annotator (``sambench.annotate.simulate``) on every object, with
   LiteMedSAM and by hand (``--model none``): interactions and mouse operations per object, final
   IoU and HCE, and the ratio manual / model.

Usage: python benchmarks/bench_annotate.py [--images N] [--clicks K] [--seed-dir PATH] [--no-sim]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from PIL import Image

from sambench.annotate.server import make_server
from sambench.annotate.session import build_state
from sambench.annotate.simulate import api_headers, run_simulation
from sambench.data.prepare import prepare_dataset
from sambench.prompts.clicks import next_click
from sambench.store import annotation_sessions as S

HERE = Path(__file__).resolve().parent
DEFAULT_SEED = HERE.parent / "tests" / "data" / "seed-samples"


def _prepare(seed: Path, out: Path) -> Path:
    for ds in sorted(p for p in seed.iterdir() if p.is_dir()):
        modality = {"22_Heart": "MRI", "6_Pancreas": "CT"}.get(ds.name)
        prepare_dataset(ds, out, modality=modality, progress=False)
    return out


def latency(prepared: Path, session: Path, n_images: int, n_clicks: int) -> pd.DataFrame:
    state = build_state(prepared, session, "litemedsam", "bench")
    server, sock = make_server(state, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    rows = []
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        with httpx.Client(base_url=url, timeout=120) as c:
            c.headers.update(api_headers(c, "bench"))  # tab id, the page's token and Origin
            view = c.post("/api/claim").json()
            images: list[str] = []
            while not view["done"]:
                if view["image_id"] not in images:
                    if len(images) == n_images:
                        break
                    images.append(view["image_id"])
                key = {"image_id": view["image_id"], "label_value": view["label_value"]}
                rec = state.rows[(view["image_id"], view["label_value"])]
                gt = np.asarray(Image.open(prepared / rec["label_path"])) == view["label_value"]
                box = [
                    [rec["bbox_x_min"], rec["bbox_y_min"]],
                    [rec["bbox_x_max"], rec["bbox_y_max"]],
                ]
                t0 = time.perf_counter()
                v = c.post("/api/interact", json={**key, "kind": "box", "box": box}).json()
                rows.append(("box", v["latency_ms"], (time.perf_counter() - t0) * 1e3))
                clicked: list[list[int]] = []
                for _ in range(n_clicks):
                    pred = (
                        np.asarray(Image.open(__import__("io").BytesIO(c.get("/api/mask").content)))
                        > 0
                    )
                    click = next_click(pred, gt, np.array(clicked).reshape(-1, 2))
                    if click is None:
                        break
                    x, y, pos = click
                    clicked.append([x, y])
                    body = {**key, "kind": "click_pos" if pos else "click_neg", "point": [x, y]}
                    t0 = time.perf_counter()
                    v = c.post("/api/interact", json=body).json()
                    rows.append(("click", v["latency_ms"], (time.perf_counter() - t0) * 1e3))
                stroke = {**key, "kind": "brush", "points": [[2, 2], [12, 12]], "radius": 3}
                t0 = time.perf_counter()
                c.post("/api/interact", json=stroke).raise_for_status()
                rows.append(("brush (no model)", np.nan, (time.perf_counter() - t0) * 1e3))
                view = c.post("/api/accept", json=key).json()
    finally:
        server.should_exit = True
        thread.join(10)
        state.close()
    enc = [e["encode_ms"] for e in S.read_events(session) if e["type"] == "image_open"]
    df = pd.DataFrame(rows, columns=["interaction", "model_ms", "round_trip_ms"])
    out = df.groupby("interaction", sort=False).agg(
        n=("round_trip_ms", "size"),
        model_p50=("model_ms", "median"),
        model_p95=("model_ms", lambda s: s.quantile(0.95)),
        round_trip_p50=("round_trip_ms", "median"),
        round_trip_p95=("round_trip_ms", lambda s: s.quantile(0.95)),
    )
    out.loc["encoder (once per image)"] = [
        len(enc),
        np.median(enc),
        np.quantile(enc, 0.95),
        np.nan,
        np.nan,
    ]
    return out.round(1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed-dir", type=Path, default=DEFAULT_SEED)
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--clicks", type=int, default=3)
    ap.add_argument("--no-sim", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prepared = _prepare(args.seed_dir, Path(tmp) / "prep")
        print("== latency per interaction (ms), LiteMedSAM on CPU, real HTTP server")
        print(latency(prepared, Path(tmp) / "lat", args.images, args.clicks).to_string())
        if args.no_sim:
            return
        print("\n== simulated annotator, every object of the seed samples")
        frames = [
            run_simulation(prepared, Path(tmp) / f"sim-{m}", m) for m in ("litemedsam", "none")
        ]
        sim = pd.concat(frames, ignore_index=True)
        cols = ["n_interactions", "mouse_ops", "n_model", "n_undo", "n_polygons", "n_vertices",
                "n_strokes", "iou", "hce"]  # fmt: skip
        per = sim.groupby("model")[cols].mean().round(2)
        per.insert(0, "objects", sim.groupby("model").size())
        print(per.T.to_string())
        ratio = (
            per.loc["none", ["n_interactions", "mouse_ops"]]
            / per.loc["litemedsam", ["n_interactions", "mouse_ops"]]
        )
        print("manual / model:", ratio.round(2).to_dict())
        reached = sim.assign(ok=sim.iou >= 0.9).groupby("model").ok.mean().round(2).to_dict()
        print("share of objects reaching IoU >= 0.9:", reached)
        by_object = sim.pivot_table(
            index="object_name", columns="model", values="mouse_ops", aggfunc="mean"
        )
        print("\nmouse operations per object, by structure:\n" + by_object.round(1).to_string())


if __name__ == "__main__":
    main()
