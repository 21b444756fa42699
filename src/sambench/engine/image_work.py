"""The work on one image, shared by every executor (the local loop and the Ray actors).

Two halves, so that reading overlaps the model (:func:`prefetch`):

- :meth:`ImageWork.load` (I/O, no model): read the image, label and ROI PNGs, build each
  object's HxW bool mask, hash the image and read its cached embedding (when a cache is used).
  A :class:`~sambench.errors.DataError` is kept in the result, not raised, so the consumer
  raises it (or records skipped rows with ``--skip-bad``) at the same image as the serial loop.
- :meth:`ImageWork.run` (the model): encode the images that have no cached embedding, in
  encoder batches of ``encoder_batch`` images when the model offers ``embed_batch`` and runs on
  a GPU (one image at a time otherwise: the CPU path is unchanged), then run every task.

Every row carries ``image_sha256`` and ``label_sha256``: the SHA-256 of the prepared image and
label PNG files it was computed from. On resume, :func:`check_unchanged_inputs` hashes the
files of the images already in the parts again and refuses the run (a DataError naming the
file) when one changed, so old rows never stand beside new inputs.

Out of GPU memory (:func:`is_out_of_memory`): an encoder batch is split in halves and retried
down to one image; a task's decoding is retried with the adapter's ``decode_chunk`` halved down
to 1. When one image still does not fit, it is reported: :class:`GpuMemoryError` naming the
image, or skipped rows (``skip_reason`` ``out_of_memory: ...``) with ``--skip-bad``.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch

from sambench.data.roi import read_roi
from sambench.engine.cache import EmbeddingCache, image_hash, round_embedding
from sambench.engine.config import RunConfig
from sambench.engine.context import ImageContext, ImageTask, ObjectTarget
from sambench.engine.single_round import skipped_rows
from sambench.errors import DataError
from sambench.metrics import MetricConfig
from sambench.models.base import Embedding, PromptableModel

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


class GpuMemoryError(RuntimeError):
    """One image does not fit in the GPU's memory even at encoder batch 1 and decoder chunk 1."""


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an accelerator out-of-memory error (CUDA, or a backend's message)."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free_gpu_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def read_png(path: Path) -> np.ndarray:
    """A prepared PNG as HxW or HxWx3 uint8; a clear DataError when missing or unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except FileNotFoundError:
        raise DataError(path, "file is missing (listed in the manifest)") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(path, f"cannot be read as an image ({e})") from None
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.dtype != np.uint8:
        raise DataError(path, f"expected a uint8 prepared image, got {arr.dtype}")
    return arr


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks; "" when it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return ""
    return h.hexdigest()


INPUT_HASH_COLUMNS = ("image_sha256", "label_sha256")


def check_unchanged_inputs(
    prepared: Path, parts_dir: Path, by_image: dict[str, pd.DataFrame], done: set[str]
) -> None:
    """Refuse a resume whose prepared inputs changed: for every image already in the parts
    (``done``) whose rows recorded the hashes of its image and label files, hash the files again;
    a difference (or a file gone) is a :class:`DataError` naming the file. Rows written by an
    older sambench (no hash columns) are not checked."""
    import pyarrow.parquet as pq

    recorded: dict[str, tuple[str, str]] = {}
    for part in sorted(parts_dir.glob("part-*.parquet")):
        names = set(pq.read_schema(part).names)
        cols = ["image_id", *INPUT_HASH_COLUMNS]
        if not set(cols) <= names:
            continue
        t = pq.read_table(part, columns=cols).to_pandas().drop_duplicates("image_id")
        for r in t.itertuples(index=False):
            if r.image_sha256:
                recorded[str(r.image_id)] = (str(r.image_sha256), str(r.label_sha256))
    for image_id in sorted(done & recorded.keys()):
        rows = by_image.get(image_id)
        if rows is None:
            continue
        first = rows.iloc[0]
        rels = (str(first["image_path"]), str(first["label_path"]))
        for rel, old in zip(rels, recorded[image_id], strict=True):
            now = file_sha256(prepared / rel)
            if old and now != old:
                what = (
                    f"is gone (SHA-256 {old[:12]}...)"
                    if not now
                    else (f"changed (SHA-256 {old[:12]}... then, {now[:12]}... now)")
                )
                raise DataError(
                    prepared / rel,
                    f"{what} since the rows of {image_id} were written to {parts_dir.parent}; "
                    "evaluate into a new --out, or put the original file back to resume",
                )


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a manifest slice as dicts with string keys."""
    return [{str(k): v for k, v in r.items()} for r in df.to_dict("records")]


def spacing_mm(row: Any) -> tuple[float, float] | None:
    """(row, col) mm spacing of a manifest row, or None when its source carries none: a 2D image
    file (PNG, JPEG, ...: spacing 1.0 placeholders) or a non-finite / non-positive value."""
    from sambench.data.readers import IMAGE_2D_SUFFIXES

    sp = (float(row["spacing_y"]), float(row["spacing_x"]))
    src = str(row.get("source_image", "")).lower()
    if int(row["slice_axis"]) < 0 and src.endswith(IMAGE_2D_SUFFIXES):
        return None
    return sp if all(np.isfinite(v) and v > 0 for v in sp) else None


@dataclass
class LoadedImage:
    """One image read from disk, ready for the model (what :meth:`ImageWork.load` returns)."""

    image_id: str
    rows_df: pd.DataFrame
    image: np.ndarray | None = None  # HxW or HxWx3 uint8
    label_shape: tuple[int, int] = (0, 0)
    roi: np.ndarray | None = None  # HxW bool
    label: np.ndarray | None = None  # HxW uint8 label image
    objects: list[ObjectTarget] = field(default_factory=list)
    absent: list[tuple[dict[str, object], str]] = field(default_factory=list)
    error: DataError | None = None
    cache_key: str = ""
    image_sha256: str = ""  # of the prepared image file ("" when unreadable)
    label_sha256: str = ""
    embedding: Embedding | None = None  # from the cache
    load_seconds: float = 0.0  # cache read time (counted as the embedding time of a hit)


def prefetch(items: Iterable[T], load: Callable[[T], R], depth: int = 2) -> Iterator[R]:
    """``load(item)`` for each item, in order, computed by one reader thread up to ``depth``
    items ahead (a bounded queue: memory stays at ``depth`` loaded images). An exception of
    ``load`` is raised by the consumer at that item. ``depth=0`` loads in the caller's thread.
    Closing the generator early stops the reader."""
    if depth <= 0:
        for it in items:
            yield load(it)
        return
    q: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(v: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(v, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for it in items:
                if not put((True, load(it))):
                    return
        except BaseException as e:  # handed to the consumer, raised there
            put((False, e))
            return
        put((True, done))

    t = threading.Thread(target=reader, name="sambench-prefetch", daemon=True)
    t.start()
    try:
        while True:
            ok, v = q.get()
            if not ok:
                raise v
            if v is done:
                return
            yield v
    finally:
        stop.set()
        t.join(timeout=5)


def groups(items: Iterable[LoadedImage], size: int) -> Iterator[list[LoadedImage]]:
    """Consecutive groups of up to ``size`` loaded images; an image with an error (and the
    images before it) never share a group, so :meth:`ImageWork.run` raises only after the
    images before it were stored."""
    group: list[LoadedImage] = []
    for it in items:
        if it.error is not None:
            if group:
                yield group
            yield [it]
            group = []
            continue
        group.append(it)
        if len(group) >= size:
            yield group
            group = []
    if group:
        yield group


def _load_objects(
    rows: pd.DataFrame, prepared: Path, label: np.ndarray
) -> tuple[list[ObjectTarget], list[tuple[dict[str, object], str]]]:
    """Ground-truth masks per manifest row; rows whose value is absent come back with a reason."""
    objects, absent = [], []
    for rec in records(rows):
        mask = label == int(rec["label_value"])  # manifest column, int
        if not mask.any():
            reason = f"label value {rec['label_value']} absent from {prepared / rec['label_path']}"
            absent.append((rec, reason))
        else:
            objects.append(ObjectTarget(row=rec, mask=mask))
    return objects, absent


def skip_image(
    rows_df: pd.DataFrame, model_name: str, strategies: Sequence[str], reason: str
) -> list[dict[str, object]]:
    """Skipped rows for every object x strategy x selection of an image that was not evaluated."""
    rows = []
    for rec in records(rows_df):
        base = dict(rec, model=model_name, embed_seconds=float("nan"), embedding_cached=False)
        for s in strategies:
            rows += skipped_rows(base, s, reason)
    return rows


class ImageWork:
    """Everything one model replica needs to turn images into result rows.

    ``encoder_batch``: images per encoder pass on a GPU (models with ``embed_batch``); 1 = one
    image at a time. ``cache``: the embedding cache or None; ``cache_dtype`` ``"float16"``
    rounds every embedding to fp16 (cached or not, so a run's numbers never depend on which
    images were cache hits).
    """

    def __init__(
        self,
        config: RunConfig,
        model: PromptableModel,
        tasks: Sequence[ImageTask],
        cache: EmbeddingCache | None,
        *,
        encoder_batch: int = 1,
    ) -> None:
        self.config = config
        self.prepared = Path(config.prepared)
        self.model = model
        self.tasks = list(tasks)
        self.cache = cache
        self.metric_config = MetricConfig(
            nsd_tolerance=config.nsd_tolerance,
            empty=config.empty,  # type: ignore[arg-type]
            nsd_tolerance_mm=config.nsd_tolerance_mm,
        )
        self.multimask = {"auto": None, "on": True, "off": False}[config.multimask]
        device = torch.device(str(getattr(model, "device", "cpu")))
        batched = device.type == "cuda" and hasattr(model, "embed_batch")
        self.encoder_batch = max(1, int(encoder_batch)) if batched else 1

    # ------------------------------------------------------------------ reading (no model)
    def load(self, image_id: str, rows_df: pd.DataFrame) -> LoadedImage:
        """Read one image and its objects (see the module docstring); never raises DataError."""
        item = LoadedImage(image_id=image_id, rows_df=rows_df)
        first = rows_df.iloc[0]
        prepared = self.prepared
        try:
            image = read_png(prepared / str(first["image_path"]))
            label = read_png(prepared / str(first["label_path"]))
            if label.ndim == 3:
                label = label[..., 0]
            if label.shape != image.shape[:2]:
                raise DataError(
                    prepared / str(first["label_path"]),
                    f"label shape {label.shape} differs from image shape {image.shape[:2]}",
                )
            roi_rel = str(first.get("roi_path", "") or "")
            item.roi = read_roi(prepared / roi_rel) if roi_rel else None
            item.objects, item.absent = _load_objects(rows_df, prepared, label)
            if item.absent and not self.config.skip_bad:
                raise DataError(prepared / str(first["label_path"]), item.absent[0][1])
        except DataError as e:
            item.error = e
            return item
        item.image, item.label_shape = image, (int(label.shape[0]), int(label.shape[1]))
        item.label = label
        item.image_sha256 = file_sha256(prepared / str(first["image_path"]))
        item.label_sha256 = file_sha256(prepared / str(first["label_path"]))
        if self.cache is not None:
            t0 = time.perf_counter()
            item.cache_key = image_hash(image)
            item.embedding = self.cache.load(
                item.cache_key, getattr(self.model, "device", "cpu"), image.shape
            )
            item.load_seconds = time.perf_counter() - t0
        return item

    # ------------------------------------------------------------------ the model
    def run(self, items: Sequence[LoadedImage]) -> list[list[dict[str, object]]]:
        """The rows of each item (in order): encode what the cache lacked, then run the tasks.

        A bad image (``item.error``) raises its DataError, or gives skipped rows with
        ``skip_bad`` (:func:`groups` puts a bad image in a group of its own, so the images
        before it are stored first, as in a one-at-a-time loop). Raises :class:`GpuMemoryError` when an image does not fit (see above).
        """
        if not self.config.skip_bad:
            bad = next((it for it in items if it.error is not None), None)
            if bad is not None and bad.error is not None:
                raise bad.error
        good = [it for it in items if it.error is None]
        embeddings, seconds = self._embed_all([it for it in good if it.embedding is None])
        out = self._run(items, embeddings, seconds)
        for it, rows in zip(items, out, strict=True):
            for r in rows:
                r["image_sha256"], r["label_sha256"] = it.image_sha256, it.label_sha256
        return out

    def _run(
        self,
        items: Sequence[LoadedImage],
        embeddings: dict[str, Embedding],
        seconds: dict[str, float],
    ) -> list[list[dict[str, object]]]:
        out: list[list[dict[str, object]]] = []
        for it in items:
            if it.error is not None:
                if not self.config.skip_bad:
                    raise it.error
                out.append(self._skipped(it, f"bad_input: {it.error}"))
                continue
            if it.embedding is not None:
                emb, secs, cached = (
                    round_embedding(it.embedding, self._dtype),
                    it.load_seconds,
                    True,
                )
            elif it.image_id in embeddings:
                emb, secs, cached = embeddings[it.image_id], seconds[it.image_id], False
            else:  # did not fit in GPU memory, reported as skipped (skip_bad)
                out.append(self._skipped(it, "out_of_memory: the image does not fit on the GPU"))
                continue
            try:
                out.append(self._rows(it, emb, secs, cached))
            except GpuMemoryError as e:
                if not self.config.skip_bad:
                    raise
                out.append(self._skipped(it, f"out_of_memory: {e}"))
        return out

    @property
    def _dtype(self) -> str:
        return getattr(self.config, "cache_dtype", "float32")

    def _skipped(self, it: LoadedImage, reason: str) -> list[dict[str, object]]:
        return skip_image(it.rows_df, self.model.name, self.config.strategies, reason)

    def _embed_all(
        self, items: Sequence[LoadedImage]
    ) -> tuple[dict[str, Embedding], dict[str, float]]:
        """Embeddings (and seconds per image) of ``items``, cached on the way; an image that
        does not fit even alone raises :class:`GpuMemoryError` (or is left out with skip_bad)."""
        embs: dict[str, Embedding] = {}
        secs: dict[str, float] = {}
        b = self.encoder_batch
        for s in range(0, len(items), b):
            self._embed_group(list(items[s : s + b]), embs, secs)
        return embs, secs

    def _embed_group(
        self, group: list[LoadedImage], embs: dict[str, Embedding], secs: dict[str, float]
    ) -> None:
        t0 = time.perf_counter()
        try:
            if len(group) == 1:
                out = [self.model.embed(group[0].image)]  # type: ignore[arg-type]
            else:
                out = self.model.embed_batch([it.image for it in group])  # type: ignore[attr-defined]
        except Exception as e:
            if not is_out_of_memory(e):
                raise
            _free_gpu_memory()
            if len(group) > 1:
                self.encoder_batch = max(1, len(group) // 2)  # kept for the rest of the run
                log.warning(
                    "GPU out of memory encoding %d images; retrying in batches of %d",
                    len(group),
                    self.encoder_batch,
                )
                start = 0
                while start < len(group):
                    size = self.encoder_batch  # may shrink again inside
                    self._embed_group(group[start : start + size], embs, secs)
                    start += size
                return
            msg = self._oom_message(group[0], "encoding it alone")
            if not self.config.skip_bad:
                raise GpuMemoryError(msg) from None
            log.warning("%s; recorded as skipped", msg)
            return
        each = (time.perf_counter() - t0) / len(group)
        for it, emb in zip(group, out, strict=True):
            emb = round_embedding(emb, self._dtype)
            if self.cache is not None:
                self.cache.store(it.cache_key, emb)
            embs[it.image_id], secs[it.image_id] = emb, each

    def _oom_message(self, it: LoadedImage, what: str) -> str:
        path = self.prepared / str(it.rows_df.iloc[0]["image_path"])
        dev = getattr(self.model, "device", "?")
        return (
            f"{path}: out of GPU memory on {dev} {what}; use a smaller model, fewer workers per "
            "GPU (--gpus-per-worker 1) or --device cpu"
        )

    def _rows(
        self, it: LoadedImage, emb: Embedding, secs: float, cached: bool
    ) -> list[dict[str, object]]:
        """Every task's rows of one image; decoding retried with a smaller ``decode_chunk``
        when the GPU runs out of memory."""
        assert it.image is not None
        ctx = ImageContext(
            image=it.image,
            objects=it.objects,
            embedding=emb,
            model=self.model,
            metric_config=replace(self.metric_config, spacing_mm=spacing_mm(it.rows_df.iloc[0])),
            multimask=self.multimask,
            embed_seconds=secs,
            embedding_cached=cached,
            roi=it.roi,
            label=it.label,
        )
        while True:
            try:
                rows: list[dict[str, object]] = []
                for task in self.tasks:
                    rows += task(ctx)
                break
            except Exception as e:
                if not is_out_of_memory(e):
                    raise
                _free_gpu_memory()
                chunk = getattr(self.model, "decode_chunk", None)
                if not isinstance(chunk, int) or chunk <= 1:
                    raise GpuMemoryError(self._oom_message(it, "decoding its prompts")) from None
                self.model.decode_chunk = max(1, chunk // 2)  # type: ignore[attr-defined]
                log.warning(
                    "GPU out of memory decoding %s; retrying with decode_chunk %d",
                    it.image_id,
                    self.model.decode_chunk,  # type: ignore[attr-defined]
                )
        for rec, reason in it.absent:
            obj = ObjectTarget(row=rec, mask=np.zeros(it.label_shape, bool))
            for s in self.config.strategies:
                rows += skipped_rows(ctx.base_row(obj), s, f"bad_input: {reason}")
        return rows
