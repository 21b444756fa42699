"""The annotation session's state machine, independent of HTTP: one object in progress at a time.

:class:`AnnotationState` owns a session folder (see :mod:`sambench.store.annotation_sessions`), the
prepared folder's manifest (the queue of objects, in manifest order: ``image_id`` then
``label_value``) and, in model mode, the adapter. The web app (:mod:`sambench.annotate.server`)
calls its methods under one lock; every method that changes something appends an event.

Conventions: coordinates are pixels of the prepared image, (X, Y) = (column, row); a box is XYXY
(inclusive corners, in any order); masks are HxW bool. The current mask of an object is replaced
by the model's mask on every box or click (the highest predicted IoU of the candidates when the
model returns several); brush, eraser, polygon and the manual box edit it in place. Undo restores
the state before the last interaction (mask, box, clicks and the model's logits).

Active time: the object's clock starts when it becomes current (for the first object of an image,
before the image is encoded, so waiting for the encoder counts), and every event adds the time since
the previous one, capped at ``IDLE_CAP_S`` (a coffee break counts as at most that).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from sambench.data.manifest import load_manifest
from sambench.models.base import Embedding, PromptableModel
from sambench.prompts.types import Prompts
from sambench.store import annotation_sessions as S

IDLE_CAP_S = 60.0
MAX_BRUSH_RADIUS = 200
MAX_POINTS = 10_000  # per stroke or polygon (a polygon's corners are clicks; a stroke's, pixels)
SHOWN_CHARS = 60


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters: a refusal never echoes a whole
    request back."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class RequestError(ValueError):
    """A request the session refuses; ``status`` is the HTTP status the app answers with."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


@dataclass
class _Snapshot:
    mask: np.ndarray
    box: list[float] | None
    clicks: list[list[float]]
    logits: np.ndarray | None


@dataclass
class _Work:
    """The object in progress."""

    row: dict[str, Any]
    mask: np.ndarray
    started_utc: str
    last_t: float
    box: list[float] | None = None
    clicks: list[list[float]] = field(default_factory=list)  # [x, y, 1|0]
    logits: np.ndarray | None = None  # 1xhxw low-res logits of the current model mask
    history: list[_Snapshot] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(S.INTERACTION_KINDS, 0))
    latencies: list[float] = field(default_factory=list)
    active_s: float = 0.0

    @property
    def key(self) -> tuple[str, int]:
        return str(self.row["image_id"]), int(self.row["label_value"])

    def snapshot(self) -> _Snapshot:
        return _Snapshot(self.mask.copy(), self.box, [list(c) for c in self.clicks], self.logits)

    def tick(self) -> None:
        now = time.monotonic()
        self.active_s += min(now - self.last_t, IDLE_CAP_S)
        self.last_t = now


def _png(arr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr))
    assert ok
    return bytes(buf)


class AnnotationState:
    """One session: ``prepared`` folder, ``session_dir``, ``model`` (None = manual baseline).

    ``model_name`` is what ``session.json`` records (``"litemedsam"`` or ``"none"``).
    ``embedding_cache`` (an :class:`sambench.engine.cache.EmbeddingCache` or None) keeps the
    encoder's output across restarts; in memory the last few images' embeddings are kept.
    """

    def __init__(
        self,
        prepared: Path | str,
        session_dir: Path | str,
        *,
        model: PromptableModel | None,
        model_name: str,
        annotator: str,
        embedding_cache: Any | None = None,
    ) -> None:
        if (model is None) != (model_name == "none"):
            raise ValueError("model: give an adapter exactly when model_name is not 'none'")
        self.prepared = Path(prepared).resolve()
        self.session_dir = Path(session_dir).resolve()
        self.manifest = load_manifest(self.prepared)
        self.info = S.open_session(
            self.session_dir,
            self.prepared,
            S.manifest_fingerprint(self.manifest),
            annotator,
            model_name,
        )
        self.model = model
        self.cache = embedding_cache
        self.rows: dict[tuple[str, int], dict[str, Any]] = {
            (str(r["image_id"]), int(r["label_value"])): {str(k): v for k, v in r.items()}
            for r in self.manifest.to_dict("records")
        }
        self.order = sorted(self.rows)
        self.image_ids = sorted({k[0] for k in self.order})
        self.accepted = S.accepted_keys(self.session_dir) & set(self.rows)
        self.current: _Work | None = None
        self._images: dict[str, np.ndarray] = {}
        self._embeddings: dict[str, Embedding] = {}
        self.encoder_passes = 0
        S.append_event(self.session_dir, {"type": "session_open", "model": model_name})

    # ------------------------------------------------------------------ queue
    def pending(self) -> list[tuple[str, int]]:
        return [k for k in self.order if k not in self.accepted]

    def check_image(self, image_id: str) -> None:
        if image_id not in self.image_ids:
            raise RequestError(404, f"image_id {shown(image_id)} is not in the prepared manifest")

    def image_path(self, image_id: str) -> Path:
        """The prepared image of ``image_id`` (refused unless it lies inside the prepared folder)."""
        self.check_image(image_id)
        rel = next(r["image_path"] for k, r in self.rows.items() if k[0] == image_id)
        path = (self.prepared / rel).resolve()
        if not path.is_relative_to(self.prepared):
            raise RequestError(403, f"image_id {shown(image_id)}: its path lies outside PREPARED")
        return path

    def image(self, image_id: str) -> np.ndarray:
        if image_id not in self._images:
            self._images = {image_id: np.asarray(Image.open(self.image_path(image_id)))}
        return self._images[image_id]

    def _embedding(self, image_id: str) -> tuple[Embedding, float]:
        """The image's embedding (encoded once; cached in memory and in the embedding cache)."""
        assert self.model is not None
        if image_id in self._embeddings:
            return self._embeddings[image_id], 0.0
        t0 = time.perf_counter()
        image = self.image(image_id)
        emb = None
        key = ""
        if self.cache is not None:
            from sambench.engine.cache import image_hash

            key = image_hash(image)
            emb = self.cache.load(key)
        if emb is None:
            emb = self.model.embed(image)
            self.encoder_passes += 1
            if self.cache is not None:
                self.cache.store(key, emb)
        if len(self._embeddings) >= 4:
            self._embeddings.pop(next(iter(self._embeddings)))
        self._embeddings[image_id] = emb
        return emb, (time.perf_counter() - t0) * 1000.0

    def _start(self, key: tuple[str, int]) -> None:
        t0, started = time.monotonic(), S.utc_now()
        image_id = key[0]
        if self.current is None or self.current.key[0] != image_id:
            encode_ms = self._embedding(image_id)[1] if self.model is not None else 0.0
            S.append_event(
                self.session_dir,
                {"type": "image_open", "image_id": image_id, "encode_ms": round(encode_ms, 2)},
            )
        row = self.rows[key]
        h, w = int(row["height"]), int(row["width"])
        self.current = _Work(row=row, mask=np.zeros((h, w), bool), started_utc=started, last_t=t0)
        self._event("object_start")

    def ensure_current(self) -> _Work | None:
        """The object in progress; the next pending one is started when there is none."""
        if self.current is None:
            pend = self.pending()
            if not pend:
                return None
            self._start(pend[0])
        return self.current

    def open_image(self, image_id: str) -> None:
        """Jump to ``image_id``: its first pending object (or its first object, re-annotated)."""
        self.check_image(image_id)
        keys = [k for k in self.order if k[0] == image_id]
        pend = [k for k in keys if k not in self.accepted]
        self._start((pend or keys)[0])

    def next_image(self) -> None:
        """Leave the object in progress (not saved) for the next image's first pending object."""
        cur = self.ensure_current()
        if cur is None:
            return
        self._event("skip")
        later = [k for k in self.pending() if k[0] > cur.key[0]]
        pend = later or [k for k in self.pending() if k[0] != cur.key[0]]
        if pend:
            self._start(pend[0])

    # ------------------------------------------------------------------ interactions
    def _require(self, image_id: str, label_value: int) -> _Work:
        self.check_image(image_id)
        cur = self.ensure_current()
        if cur is None or cur.key != (image_id, int(label_value)):
            raise RequestError(
                409,
                f"object {image_id}/{shown(label_value)} is not the one in progress "
                f"({'none' if cur is None else '/'.join(map(str, cur.key))}); reload the page",
            )
        return cur

    def _event(self, kind: str, **fields: Any) -> None:
        cur = self.current
        assert cur is not None
        cur.tick()
        image_id, value = cur.key
        S.append_event(
            self.session_dir,
            {"type": kind, "image_id": image_id, "label_value": value, **fields},
        )

    def _points(self, cur: _Work, pts: Any, field_name: str, n_min: int) -> np.ndarray:
        h, w = cur.mask.shape
        try:
            arr = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        except (TypeError, ValueError):
            raise RequestError(400, f"{field_name}: expected a list of [x, y] pairs") from None
        if len(arr) > MAX_POINTS:
            raise RequestError(
                400,
                f"{field_name}: at most {MAX_POINTS} points per stroke or polygon, got {len(arr)}; "
                "draw it in several",
            )
        if len(arr) < n_min or not np.isfinite(arr).all():
            raise RequestError(400, f"{field_name}: expected at least {n_min} finite [x, y] pairs")
        if (
            (arr[:, 0] < -0.5).any()
            or (arr[:, 0] > w - 0.5).any()
            or (arr[:, 1] < -0.5).any()
            or (arr[:, 1] > h - 0.5).any()
        ):
            raise RequestError(400, f"{field_name}: a point lies outside the {w}x{h} (W x H) image")
        return np.clip(np.rint(arr), 0, [w - 1, h - 1])

    def interact(self, image_id: str, label_value: int, kind: str, body: dict[str, Any]) -> None:
        """Apply one interaction (``kind`` in ``INTERACTION_KINDS`` minus ``undo``)."""
        cur = self._require(image_id, label_value)
        if kind not in ("box", "click_pos", "click_neg", "brush", "erase", "polygon"):
            raise RequestError(
                400,
                "kind: expected box, click_pos, click_neg, brush, erase or polygon, "
                f"got {shown(kind)}",
            )
        if kind.startswith("click") and self.model is None:
            raise RequestError(400, "kind: clicks need a model; this session runs --model none")
        before = cur.snapshot()
        latency: float | None = None
        coords: Any
        if kind == "box":
            p = self._points(cur, body.get("box"), "box", 2)[:2]
            box = [*np.minimum(p[0], p[1]).tolist(), *np.maximum(p[0], p[1]).tolist()]
            coords = box
            if self.model is None:
                cur.mask[int(box[1]) : int(box[3]) + 1, int(box[0]) : int(box[2]) + 1] = True
            else:
                cur.box, cur.clicks, cur.logits = box, [], None
                latency = self._decode(cur, first=True)
        elif kind.startswith("click"):
            x, y = self._points(cur, body.get("point"), "point", 1)[0].tolist()
            cur.clicks.append([x, y, 1 if kind == "click_pos" else 0])
            coords = [x, y]
            latency = self._decode(cur, first=cur.box is None and len(cur.clicks) == 1)
        elif kind in ("brush", "erase"):
            pts = self._points(cur, body.get("points"), "points", 1).astype(np.int32)
            r = body.get("radius", 5)
            if not isinstance(r, int | float) or not 0 <= r <= MAX_BRUSH_RADIUS:
                raise RequestError(
                    400, f"radius: expected a number 0..{MAX_BRUSH_RADIUS}, got {shown(r)}"
                )
            canvas = np.zeros(cur.mask.shape, np.uint8)
            rad = round(r)
            for p in pts:
                cv2.circle(canvas, (int(p[0]), int(p[1])), rad, 1, -1)
            for a, b in itertools.pairwise(pts):
                cv2.line(canvas, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 1, 2 * rad + 1)
            cur.mask = (
                cur.mask | canvas.astype(bool)
                if kind == "brush"
                else cur.mask & ~canvas.astype(bool)
            )
            coords = {"points": pts.tolist(), "radius": rad}
        else:  # polygon
            pts = self._points(cur, body.get("points"), "points", 3).astype(np.int32)
            canvas = np.zeros(cur.mask.shape, np.uint8)
            cv2.fillPoly(canvas, [pts.reshape(-1, 1, 2)], 1)
            erase = bool(body.get("erase", False))
            cur.mask = cur.mask & ~canvas.astype(bool) if erase else cur.mask | canvas.astype(bool)
            coords = {"points": pts.tolist(), "erase": erase}
        cur.history.append(before)
        cur.counts[kind] += 1
        if latency is not None:
            cur.latencies.append(latency)
        self._event(
            kind,
            coords=coords,
            latency_ms=None if latency is None else round(latency, 3),
            area=int(cur.mask.sum()),
        )

    def _decode(self, cur: _Work, *, first: bool) -> float:
        """Decode the object's box/clicks (+ previous logits) from the image's one embedding."""
        assert self.model is not None
        emb, _ = self._embedding(cur.key[0])
        t0 = time.perf_counter()
        pts = np.array([c[:2] for c in cur.clicks], np.float32).reshape(-1, 2)
        labels = np.array([c[2] for c in cur.clicks], np.int64)
        prompt = Prompts(
            points=pts if len(pts) else None,
            labels=labels if len(pts) else None,
            box=None if cur.box is None else np.asarray(cur.box, np.float32),
            mask_logits=None if first else cur.logits,
        )
        if first and cur.box is not None:
            multimask = getattr(self.model, "prompted_multimask", None)
        else:
            multimask = first  # a first click alone is ambiguous: three candidates
        pred = self.model.predict(emb, [prompt], multimask_output=multimask)
        best = int(np.argmax(pred.scores[0]))
        cur.mask = np.asarray(pred.masks[0, best], bool).copy()
        cur.logits = pred.low_res_logits[0, best][None].astype(np.float32)
        return (time.perf_counter() - t0) * 1000.0

    def undo(self, image_id: str, label_value: int) -> None:
        cur = self._require(image_id, label_value)
        if not cur.history:
            raise RequestError(400, "undo: nothing to undo for this object")
        snap = cur.history.pop()
        cur.mask, cur.box, cur.clicks, cur.logits = snap.mask, snap.box, snap.clicks, snap.logits
        cur.counts["undo"] += 1
        self._event("undo", area=int(cur.mask.sum()))

    def accept(self, image_id: str, label_value: int) -> None:
        """Save the object (mask, label map, objects.jsonl) and start the next pending one."""
        cur = self._require(image_id, label_value)
        self._event("accept", area=int(cur.mask.sum()))
        row = cur.row
        S.write_object_mask(self.session_dir, image_id, label_value, cur.mask)
        self.accepted.add(cur.key)
        self._write_label_map(str(row["dataset"]), image_id)
        n = {f"n_{k}": int(v) for k, v in cur.counts.items()}
        S.append_object(
            self.session_dir,
            {
                "annotator": self.info.annotator,
                "mode": self.info.mode,
                "model": self.info.model,
                "dataset": row["dataset"],
                "image_id": image_id,
                "label_value": int(label_value),
                "object_name": row["object_name"],
                "started_utc": cur.started_utc,
                "accepted_utc": S.utc_now(),
                "active_s": round(cur.active_s, 3),
                **n,
                "n_interactions": sum(n.values()),
                "mean_latency_ms": float(np.mean(cur.latencies)) if cur.latencies else None,
                "mask_path": S.mask_relpath(image_id, label_value),
            },
        )
        same = [k for k in self.pending() if k[0] == image_id]
        later = [k for k in self.pending() if k[0] > image_id]
        nxt = same or later or self.pending()
        if nxt:
            self._start(nxt[0])  # the same image is not reopened
        else:
            self.current = None

    def accepted_map(self, image_id: str) -> np.ndarray:
        """HxW uint8 label map of the accepted objects of ``image_id`` (higher values on top)."""
        keys = [k for k in self.order if k[0] == image_id and k in self.accepted]
        row = (
            self.rows[keys[0]]
            if keys
            else next(r for k, r in self.rows.items() if k[0] == image_id)
        )
        out = np.zeros((int(row["height"]), int(row["width"])), np.uint8)
        for k in keys:
            m = np.asarray(Image.open(self.session_dir / S.mask_relpath(*k))) > 0
            out[m] = k[1]
        return out

    def _write_label_map(self, dataset: str, image_id: str) -> None:
        info = {k[1]: str(self.rows[k]["object_name"]) for k in self.order if k[0] == image_id}
        S.write_label_map(
            self.session_dir, dataset, image_id, self.accepted_map(image_id), info, self.info
        )

    def close(self) -> None:
        S.append_event(self.session_dir, {"type": "session_close"})

    # ------------------------------------------------------------------ views
    def mask_png(self) -> bytes:
        cur = self.ensure_current()
        if cur is None:
            raise RequestError(404, "mask: no object in progress (the session is complete)")
        return _png(np.where(cur.mask, 255, 0).astype(np.uint8))

    def view(self) -> dict[str, Any]:
        """What the page shows: the object in progress, its image's objects, progress."""
        import base64

        cur = self.ensure_current()
        base = {
            "annotator": self.info.annotator,
            "mode": self.info.mode,
            "model": self.info.model,
            "accepted": len(self.accepted),
            "total": len(self.order),
        }
        if cur is None:
            return {**base, "done": True}
        image_id, value = cur.key
        objects = [
            {
                "label_value": k[1],
                "object_name": self.rows[k]["object_name"],
                "accepted": k in self.accepted,
            }
            for k in self.order
            if k[0] == image_id
        ]
        acc = self.accepted_map(image_id)
        acc[acc == value] = 0
        return {
            **base,
            "done": False,
            "image_id": image_id,
            "dataset": cur.row["dataset"],
            "label_value": value,
            "object_name": cur.row["object_name"],
            "width": int(cur.mask.shape[1]),
            "height": int(cur.mask.shape[0]),
            "objects": objects,
            "mask": base64.b64encode(self.mask_png()).decode(),
            "others": base64.b64encode(_png(np.where(acc > 0, 255, 0).astype(np.uint8))).decode(),
            "area": int(cur.mask.sum()),
            "box": cur.box,
            "clicks": cur.clicks,
            "counts": dict(cur.counts),
            "can_undo": bool(cur.history),
            "latency_ms": cur.latencies[-1] if cur.latencies else None,
        }
