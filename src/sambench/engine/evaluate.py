"""``sambench evaluate``: run a model over a prepared dataset, encode once, prompt many.

For each image: read it, get its embedding (from the cache or one encoder pass), then run every
task (single-round strategies S2-S6, ...) from that one embedding, and store the rows of the whole
image at once. Memory is bounded by one image plus a small buffer of rows; a killed run resumes
where it stopped (see :mod:`sambench.engine.results`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from sambench.data.errors import DataError
from sambench.data.manifest import load_manifest
from sambench.data.roi import read_roi
from sambench.engine.cache import EmbeddingCache, image_hash
from sambench.engine.config import RunConfig, check_compatible
from sambench.engine.context import ImageContext, ImageTask, ObjectTarget
from sambench.engine.results import ResultsStore
from sambench.engine.runfolder import ensure_run_folder
from sambench.engine.runlock import RunLock
from sambench.engine.single_round import skipped_rows
from sambench.engine.tasks import build_tasks
from sambench.errors import OptionError
from sambench.metrics import MetricConfig
from sambench.models.base import PromptableModel

log = logging.getLogger(__name__)


def validate_config(cfg: RunConfig) -> None:
    """Reject every invalid value before anything is written (:meth:`RunConfig.validate`)."""
    cfg.validate()


def read_png(path: Path) -> np.ndarray:
    """A prepared PNG as HxW or HxWx3 uint8; a clear DataError when missing or unreadable."""
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


def build_any_model(config: RunConfig) -> PromptableModel:
    """A registry model, a classical baseline or a user's ``module:builder`` (by name)."""
    from sambench.models.registry import build_any
    from sambench.models.runtime.export import default_export_dir

    return build_any(
        config.model,
        config.checkpoint,
        device=config.device,
        decoder=config.decoder,
        runtime=config.runtime,
        export_dir=default_export_dir(config.cache_dir),
    )


def filter_cases(
    manifest: pd.DataFrame, cases: Sequence[str] | None, prepared: Path
) -> pd.DataFrame:
    """Keep the rows of the given ``"<dataset>/<case>"`` cases; unknown cases are an error."""
    if cases is None:
        return manifest
    keys = manifest["dataset"].astype(str) + "/" + manifest["case"].astype(str)
    unknown = sorted(set(cases) - set(keys))
    if unknown:
        raise OptionError(
            "--cases", f"{unknown[:5]} not found in {prepared} (expected '<dataset>/<case>' values)"
        )
    return manifest[keys.isin(set(cases))]


def embedding_signature(model: PromptableModel) -> dict[str, str]:
    """The cache key of a model's embeddings: its signature without the decoder (the image
    encoder alone makes the embedding, so a fine-tuned decoder reuses the cached embeddings)."""
    sig = model.signature() if hasattr(model, "signature") else {"model": model.name}
    return {k: v for k, v in sig.items() if k != "decoder_sha256"}


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in df.to_dict("records")]


def select_images(manifest: pd.DataFrame, max_images: int | None) -> list[str]:
    """Sorted image ids, or an evenly spaced subset of ``max_images`` of them."""
    ids = sorted(manifest["image_id"].unique())
    if max_images is None or max_images >= len(ids):
        return ids
    picks = np.unique(np.linspace(0, len(ids) - 1, max_images).round().astype(int))
    return [ids[i] for i in picks]


def _load_objects(
    rows: pd.DataFrame, prepared: Path, label: np.ndarray
) -> tuple[list[ObjectTarget], list[tuple[dict[str, object], str]]]:
    """Ground-truth masks per manifest row; rows whose value is absent come back with a reason."""
    objects, absent = [], []
    for rec in _records(rows):
        mask = label == int(rec["label_value"])  # manifest column, int
        if not mask.any():
            absent.append(
                (
                    rec,
                    f"label value {rec['label_value']} absent from {prepared / rec['label_path']}",
                )
            )
        else:
            objects.append(ObjectTarget(row=rec, mask=mask))
    return objects, absent


def evaluate(
    config: RunConfig,
    out: Path | str,
    *,
    model: PromptableModel | None = None,
    tasks: Sequence[ImageTask] | None = None,
    flush_every: int = 16,
    wait_lock: bool = False,
) -> pd.DataFrame:
    """Evaluate ``config.model`` on the prepared dataset ``config.prepared``; write ``out``.

    Returns the full results table, every protocol (written to ``out`` as one table per protocol,
    :mod:`sambench.data.run_files`: ``results.parquet`` = S2-S6 oracle, ...): one row per
    (image, object, model, strategy, selection, ...) with the manifest's columns, metrics,
    predicted IoU, timings and status. ``model`` overrides building ``config.model`` (e.g. a custom adapter);
    ``tasks`` overrides the default single-round task for ``config.strategies``.

    ``out`` must be new, empty or a run folder of ours (:func:`ensure_run_folder`); the run holds
    its lock (:class:`RunLock`) throughout: a second run on ``out`` refuses, or waits with
    ``wait_lock``.
    """
    validate_config(config)
    out = ensure_run_folder(out, "evaluate")
    with RunLock(out, "evaluate", wait=wait_lock):
        return _evaluate_locked(config, out, model=model, tasks=tasks, flush_every=flush_every)


def _evaluate_locked(
    config: RunConfig,
    out: Path,
    *,
    model: PromptableModel | None,
    tasks: Sequence[ImageTask] | None,
    flush_every: int,
) -> pd.DataFrame:
    """:func:`evaluate`'s body, run while holding the folder's lock."""
    prepared = Path(config.prepared)
    manifest = filter_cases(
        load_manifest(prepared, datasets=config.datasets), config.cases, prepared
    )

    if model is None:
        model = build_any_model(config)
    config = replace(
        config,
        checkpoint_sha256=getattr(model, "checkpoint_sha256", None),
        decoder_sha256=getattr(model, "decoder_sha256", None),
    )

    out.mkdir(parents=True, exist_ok=True)
    if (out / "config.json").exists():
        check_compatible(RunConfig.load(out), config, out)
    config.save(out)

    if tasks is None:
        tasks = build_tasks(config, out)
    metric_config = MetricConfig(nsd_tolerance=config.nsd_tolerance, empty=config.empty)  # type: ignore[arg-type]
    multimask = {"auto": None, "on": True, "off": False}[config.multimask]
    cache = None
    if config.cache_dir:
        cache = EmbeddingCache(config.cache_dir, embedding_signature(model))

    store = ResultsStore(out, flush_every=flush_every)
    done = store.done_image_ids()
    image_ids = select_images(manifest, config.max_images)
    todo = [i for i in image_ids if i not in done]
    by_image = {k: g for k, g in manifest.groupby("image_id", sort=False)}
    _check_replay_covers(tasks, image_ids, by_image)
    log.info("%d images (%d already done)", len(image_ids), len(image_ids) - len(todo))

    try:
        for image_id in tqdm(
            todo, desc=f"evaluate {model.name}", unit="img", disable=not config.progress
        ):
            rows_df = by_image[image_id]
            first = rows_df.iloc[0]
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
                roi = read_roi(prepared / roi_rel) if roi_rel else None
                objects, absent = _load_objects(rows_df, prepared, label)
                if absent and not config.skip_bad:
                    raise DataError(prepared / str(first["label_path"]), absent[0][1])
            except DataError as e:
                if not config.skip_bad:
                    raise
                store.add_image(
                    _skip_image(rows_df, model.name, config.strategies, f"bad_input: {e}")
                )
                continue

            t0 = time.perf_counter()
            key = image_hash(image) if cache is not None else ""
            embedding = (
                cache.load(key, getattr(model, "device", "cpu")) if cache is not None else None
            )
            cached = embedding is not None
            if embedding is None:
                embedding = model.embed(image)
                if cache is not None:
                    cache.store(key, embedding)
            embed_seconds = time.perf_counter() - t0

            ctx = ImageContext(
                image=image,
                objects=objects,
                embedding=embedding,
                model=model,
                metric_config=metric_config,
                multimask=multimask,
                embed_seconds=embed_seconds,
                embedding_cached=cached,
                roi=roi,
            )
            rows: list[dict[str, object]] = []
            for task in tasks:
                rows += task(ctx)
            for rec, reason in absent:
                obj = ObjectTarget(row=rec, mask=np.zeros(label.shape, bool))
                for s in config.strategies:
                    rows += skipped_rows(ctx.base_row(obj), s, f"bad_input: {reason}")
            store.add_image(rows)
    finally:
        store.flush()
    return store.finalize()


def _check_replay_covers(
    tasks: Sequence[ImageTask], image_ids: Sequence[str], by_image: dict[Any, pd.DataFrame]
) -> None:
    """With ``--prompts``: every object x single-round strategy of the run must be in the file
    (checked before any image is evaluated; the error names the file and the first missing key)."""
    for task in tasks:
        replay = getattr(task, "replay", None)
        if replay is None:
            continue
        strategies = getattr(task, "strategies", ())
        replay.check_covers(
            (str(r["dataset"]), str(r["image_id"]), int(r["label_value"]), s)
            for i in image_ids
            for r in _records(by_image[i])
            for s in strategies
        )
        return


def _skip_image(
    rows_df: pd.DataFrame, model_name: str, strategies: Sequence[str], reason: str
) -> list[dict[str, object]]:
    """Skipped rows for every object x strategy x selection of an unreadable image."""
    rows = []
    for rec in _records(rows_df):
        base = dict(rec, model=model_name, embed_seconds=float("nan"), embedding_cached=False)
        for s in strategies:
            rows += skipped_rows(base, s, reason)
    return rows
