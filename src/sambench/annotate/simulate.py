"""A simulated annotator: a scripted user that drives the annotator's HTTP API like the page does.

It sees what the page sees (the object to annotate, its current mask from ``GET /api/mask``) plus
the prepared ground truth, which a real annotator has in their head. Per object, until the whole
session is accepted:

- Model mode: one box, the object's tight bounding box (the manifest's inclusive XYXY box, what a
  careful annotator drags); then corrective clicks by the RITM rule
  (:func:`sambench.prompts.clicks.next_click`: a positive click in the larger false-negative region
  or a negative one in the larger false-positive region, at its point farthest from the region's
  boundary) while IoU < ``iou_target`` and fewer than ``max_model`` model interactions were made
  (box included).
- Manual mode (``--model none``): one polygon per outer contour of the ground truth and an erasing
  polygon per hole (``cv2.findContours`` with ``RETR_CCOMP``, simplified by Ramer-Douglas-Peucker
  with ``epsilon`` pixels, HCE's tolerance: one polygon corner per mouse click).
- Then, in both modes, brush strokes for what is left while IoU < ``iou_target`` (at most
  ``max_strokes``): the same rule picks the larger error region; a dab of the brush (or eraser)
  at its farthest point, of radius (distance to the region's boundary - 1, at least 1), so it
  stays inside the error.
- Accept.

Returns one row per object: interaction counts as the session logs them, ``n_vertices`` (polygon
corners), ``mouse_ops`` (box 1 drag, click 1, stroke 1, polygon 1 per corner, undo 1), and the
final ``iou`` and ``hce`` against the ground truth.
"""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from sambench.data.manifest import load_manifest
from sambench.metrics.hce import human_correction_effort
from sambench.prompts.clicks import error_distance, next_click


def _iou(pred: np.ndarray, gt: np.ndarray) -> float:
    union = int((pred | gt).sum())
    return 1.0 if union == 0 else int((pred & gt).sum()) / union


def api_headers(http: Any, tab: str) -> dict[str, str]:
    """The headers the page sends with every API call, for a client ``http`` (an
    ``httpx.Client`` or a ``TestClient`` with a base URL): the tab id ``tab``, the session's token
    read from the page at ``/`` (as the page's own script reads it) and the page's ``Origin``."""
    page = http.get("/")
    m = re.search(r'<meta name="sambench-token" content="([^"]+)"', page.text)
    if page.status_code != 200 or m is None:
        raise RuntimeError(f"GET /: HTTP {page.status_code}, no session token in the page")
    url = http.base_url
    return {
        "X-Sambench-Tab": tab,
        "X-Sambench-Token": m.group(1),
        "Origin": f"{url.scheme}://{url.netloc.decode()}",
    }


class _Client:
    def __init__(self, http: Any) -> None:
        self.http = http
        self.headers = api_headers(http, f"simulated-{uuid.uuid4()}")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = self.http.request(method, path, json=body, headers=self.headers)
        if r.status_code != 200:
            raise RuntimeError(f"{method} {path}: HTTP {r.status_code} {r.text}")
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r

    def mask(self) -> np.ndarray:
        r = self.call("GET", "/api/mask")
        return np.asarray(Image.open(io.BytesIO(r.content))) > 127


def _polygons(gt: np.ndarray, epsilon: float) -> list[tuple[list[list[int]], bool]]:
    """(corners, erase) of the outer contours of ``gt`` (erase False), then of its holes (True).

    A hole's polygon runs on the hole's own boundary pixels, so erasing it leaves the object's.
    """
    from scipy.ndimage import binary_fill_holes

    filled = binary_fill_holes(gt)
    out = []
    for region, erase in ((gt, False), (filled & ~gt, True)):
        contours, _ = cv2.findContours(
            region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
        )
        for c in contours:
            approx = cv2.approxPolyDP(c, epsilon, True).reshape(-1, 2)
            if len(approx) < 3:
                x, y, w, h = cv2.boundingRect(c)
                approx = np.array([[x, y], [x + w - 1, y], [x + w - 1, y + h - 1], [x, y + h - 1]])
            out.append(([[int(v) for v in p] for p in approx], erase))
    return out


def _stroke(pred: np.ndarray, gt: np.ndarray) -> tuple[str, list[list[int]], int] | None:
    """The next brush stroke: (``"brush"``/``"erase"``, points Nx2 (X, Y), radius), or None.

    The larger error (RITM's rule) decides brush or eraser; the stroke follows the skeleton of
    that error's connected component holding its farthest pixel, walked from neighbour to
    neighbour (it ends where it would jump), with radius (median distance to the region's
    boundary along the walk - 1, at least 0).
    """
    from skimage.measure import label
    from skimage.morphology import skeletonize

    fn, fp = gt & ~pred, pred & ~gt
    fn_dt, fp_dt = error_distance(fn), error_distance(fp)
    if fn_dt.max() == 0 and fp_dt.max() == 0:
        return None
    positive = bool(fn_dt.max() > fp_dt.max())
    region, dt = (fn, fn_dt) if positive else (fp, fp_dt)
    y, x = divmod(int(np.argmax(dt)), gt.shape[1])
    comp = label(region, connectivity=2)
    part = comp == comp[y, x]
    ys, xs = np.nonzero(skeletonize(part) & part)
    left = {(int(u), int(v)) for u, v in zip(xs, ys, strict=True)} or {(x, y)}
    start = min(left, key=lambda q: (q[0] - x) ** 2 + (q[1] - y) ** 2)
    path = [start]
    left.discard(start)
    steps = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dx or dy]
    while True:
        px, py = path[-1]
        near = [(px + dx, py + dy) for dx, dy in steps if (px + dx, py + dy) in left]
        if not near:
            break
        path.append(near[0])
        left.discard(near[0])
    radius = max(0, int(np.median([dt[q[1], q[0]] for q in path])) - 1)
    return ("brush" if positive else "erase"), [list(q) for q in path], radius


def simulate_session(
    http: Any,
    prepared: Path | str,
    *,
    iou_target: float = 0.9,
    max_model: int = 10,
    max_strokes: int = 20,
    epsilon: float = 2.0,
    max_objects: int | None = None,
) -> pd.DataFrame:
    """Annotate every pending object of the session behind ``http`` (an ``httpx.Client`` whose
    base URL is the app, or Starlette's ``TestClient`` of it with ``base_url="http://127.0.0.1"``:
    the app answers only to its own host names).

    ``prepared`` is the session's prepared folder (read for the ground truth only). Returns one
    row per object annotated in this call (see the module docstring for the columns).
    """
    prepared = Path(prepared).resolve()
    manifest = load_manifest(prepared).set_index(["image_id", "label_value"])
    api = _Client(http)
    view = api.call("POST", "/api/claim")
    rows: list[dict[str, Any]] = []
    gts: dict[str, np.ndarray] = {}
    while not view["done"] and (max_objects is None or len(rows) < max_objects):
        key = {"image_id": view["image_id"], "label_value": view["label_value"]}
        rec = manifest.loc[(view["image_id"], view["label_value"])]
        path = str(prepared / rec["label_path"])
        if path not in gts:
            gts = {path: np.asarray(Image.open(path))}
        gt = gts[path] == view["label_value"]
        n_vertices = n_model = n_undo = n_polygons = 0
        pred = np.zeros_like(gt)
        if view["mode"] == "model":
            box = [[int(rec["bbox_x_min"]), int(rec["bbox_y_min"])],
                   [int(rec["bbox_x_max"]), int(rec["bbox_y_max"])]]  # fmt: skip
            api.call("POST", "/api/interact", {**key, "kind": "box", "box": box})
            n_model, pred = 1, api.mask()
            clicked: list[list[int]] = []
            while _iou(pred, gt) < iou_target and n_model < max_model:
                click = next_click(pred, gt, np.array(clicked).reshape(-1, 2))
                if click is None:
                    break
                x, y, pos = click
                clicked.append([x, y])
                kind = "click_pos" if pos else "click_neg"
                api.call("POST", "/api/interact", {**key, "kind": kind, "point": [x, y]})
                n_model, after = n_model + 1, api.mask()
                if _iou(after, gt) <= _iou(pred, gt):  # the click made it worse: undo, brush
                    api.call("POST", "/api/undo", key)
                    n_undo += 1
                    break
                pred = after
        else:
            for corners, erase in _polygons(gt, epsilon):
                body = {**key, "kind": "polygon", "points": corners, "erase": erase}
                api.call("POST", "/api/interact", body)
                n_vertices += len(corners)
                n_polygons += 1
            pred = api.mask()
        strokes = 0
        while _iou(pred, gt) < iou_target and strokes < max_strokes:
            stroke = _stroke(pred, gt)
            if stroke is None:
                break
            kind, points, radius = stroke
            body = {**key, "kind": kind, "points": points, "radius": radius}
            api.call("POST", "/api/interact", body)
            strokes, pred = strokes + 1, api.mask()
        hce = human_correction_effort(pred, gt)
        done = api.call("POST", "/api/accept", key)
        rows.append(
            {
                "mode": view["mode"],
                "model": view["model"],
                "image_id": view["image_id"],
                "label_value": int(view["label_value"]),
                "object_name": view["object_name"],
                "n_model": n_model,
                "n_undo": n_undo,
                "n_polygons": n_polygons,
                "n_strokes": strokes,
                "n_interactions": n_model + n_undo + n_polygons + strokes,
                "n_vertices": n_vertices,
                "mouse_ops": n_model + n_undo + strokes + n_vertices,
                "iou": _iou(pred, gt),
                "hce": hce.hce,
            }
        )
        view = done
    return pd.DataFrame(rows)


def run_simulation(
    prepared: Path | str,
    session_dir: Path | str,
    model: str = "litemedsam",
    *,
    annotator: str = "simulated",
    **settings: Any,
) -> pd.DataFrame:
    """Open (or resume) a session and run :func:`simulate_session` against its app in-process
    (the real FastAPI app through Starlette's test transport, no socket)."""
    from fastapi.testclient import TestClient

    from sambench.annotate.server import create_app
    from sambench.annotate.session import build_state

    state = build_state(Path(prepared), Path(session_dir), model, annotator)
    try:
        with TestClient(create_app(state), base_url="http://127.0.0.1") as client:
            return simulate_session(client, prepared, **settings)
    finally:
        state.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m sambench.annotate.simulate PREPARED SESSION [--model M] [--annotator NAME]``: print the counts."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m sambench.annotate.simulate")
    ap.add_argument("prepared", type=Path)
    ap.add_argument("session", type=Path)
    ap.add_argument("--model", default="litemedsam", choices=["litemedsam", "none"])
    ap.add_argument("--iou-target", type=float, default=0.9)
    ap.add_argument("--max-model", type=int, default=10)
    ap.add_argument("--annotator", default="simulated", help="the session's annotator name")
    args = ap.parse_args(argv)
    df = run_simulation(
        args.prepared,
        args.session,
        args.model,
        annotator=args.annotator,
        iou_target=args.iou_target,
        max_model=args.max_model,
    )
    print(df.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
