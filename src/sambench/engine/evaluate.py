"""``sambench evaluate``: run a model over a prepared dataset, encode once, prompt many.

For each image: read it, get its embedding (from the cache or one encoder pass), then run every
task (single-round strategies S2-S6, ...) from that one embedding, and store the rows of the whole
image at once. Memory is bounded by one image plus a small buffer of rows; a killed run resumes
where it stopped (see :mod:`sambench.engine.results`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from sambench.data.manifest import load_manifest
from sambench.data.results_dataset import ResultsDataset
from sambench.engine.cache import EmbeddingCache
from sambench.engine.config import RunConfig, check_compatible
from sambench.engine.context import ImageTask
from sambench.engine.executor import ExecutorOptions
from sambench.engine.image_work import ImageWork, groups, prefetch, read_png, records
from sambench.engine.results import ResultsStore, finish_run
from sambench.engine.runfolder import ensure_run_folder
from sambench.engine.runlock import RunLock
from sambench.engine.tasks import build_tasks
from sambench.errors import OptionError
from sambench.models.base import PromptableModel

__all__ = ["RunPlan", "evaluate", "evaluate_dataset", "plan_run", "read_png"]

log = logging.getLogger(__name__)


def validate_config(cfg: RunConfig) -> None:
    """Reject every invalid value before anything is written (:meth:`RunConfig.validate`)."""
    cfg.validate()


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
        model_config=config.model_config,
        precision=config.precision,
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


def select_images(manifest: pd.DataFrame, max_images: int | None) -> list[str]:
    """Sorted image ids, or an evenly spaced subset of ``max_images`` of them."""
    ids = sorted(manifest["image_id"].unique())
    if max_images is None or max_images >= len(ids):
        return ids
    picks = np.unique(np.linspace(0, len(ids) - 1, max_images).round().astype(int))
    return [ids[i] for i in picks]


def evaluate(
    config: RunConfig,
    out: Path | str,
    *,
    model: PromptableModel | None = None,
    tasks: Sequence[ImageTask] | None = None,
    flush_every: int = 16,
    wait_lock: bool = False,
    options: ExecutorOptions | None = None,
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

    ``options``: the executor (:class:`ExecutorOptions`: ``local`` by default; ``ray`` runs
    one model replica per Ray actor, :mod:`sambench.engine.ray_executor`), encoder batch and
    read-ahead. Both executors plan, resume and write parts the same way.
    ``options.single_file=False`` is :func:`evaluate_dataset`'s (this function refuses it).
    """
    options = options or ExecutorOptions()
    if not options.single_file:
        raise OptionError("--no-single-file", "returns a lazy dataset: call evaluate_dataset")
    res = _execute(config, out, model, tasks, flush_every, wait_lock, options)
    assert isinstance(res, pd.DataFrame)
    return res


def evaluate_dataset(
    config: RunConfig,
    out: Path | str,
    *,
    model: PromptableModel | None = None,
    tasks: Sequence[ImageTask] | None = None,
    flush_every: int = 16,
    wait_lock: bool = False,
    options: ExecutorOptions | None = None,
) -> ResultsDataset:
    """:func:`evaluate` without the single per-protocol files (``--no-single-file``): the run
    ends with its parts, their manifest and ``prompts.jsonl`` only, and the rows are never
    materialised. Returns the run's lazy dataset (:func:`~sambench.data.results_dataset.
    scan_results`; close it when done). ``options.single_file`` is ignored (taken as False).
    """
    options = replace(options or ExecutorOptions(), single_file=False)
    res = _execute(config, out, model, tasks, flush_every, wait_lock, options)
    assert isinstance(res, ResultsDataset)
    return res


def _execute(
    config: RunConfig,
    out: Path | str,
    model: PromptableModel | None,
    tasks: Sequence[ImageTask] | None,
    flush_every: int,
    wait_lock: bool,
    options: ExecutorOptions,
) -> pd.DataFrame | ResultsDataset:
    validate_config(config)
    options.validate()
    if options.executor == "ray":
        from sambench.engine.ray_executor import evaluate_on_ray

        return evaluate_on_ray(
            config, out, model=model, tasks=tasks, options=options, wait_lock=wait_lock
        )
    out = ensure_run_folder(out, "evaluate")
    with RunLock(out, "evaluate", wait=wait_lock):
        return _evaluate_locked(
            config, out, model=model, tasks=tasks, flush_every=flush_every, options=options
        )


@dataclass
class RunPlan:
    """What a run evaluates, the same for every executor: the run's config (weights' hashes
    filled in, saved as ``config.json``), every selected image id, those not yet in the parts
    (``todo``, in order) and the manifest rows of each image."""

    config: RunConfig
    image_ids: list[str]
    todo: list[str]
    by_image: dict[str, pd.DataFrame]


def plan_run(
    config: RunConfig,
    out: Path,
    identity: dict[str, str | None],
    tasks: Sequence[ImageTask],
) -> RunPlan:
    """Check ``config`` against the run folder's, save it, and find the images left to do.

    ``identity``: the model's ``checkpoint_sha256`` and ``decoder_sha256`` (None when absent).
    Resume detection: the image ids already found in ``out/parts`` are skipped.
    """
    prepared = Path(config.prepared)
    manifest = filter_cases(
        load_manifest(prepared, datasets=config.datasets), config.cases, prepared
    )
    config = replace(
        config,
        checkpoint_sha256=identity.get("checkpoint_sha256"),
        decoder_sha256=identity.get("decoder_sha256"),
        model_config_sha256=identity.get("model_config_sha256"),
    )
    out.mkdir(parents=True, exist_ok=True)
    if (out / "config.json").exists():
        check_compatible(RunConfig.load(out), config, out)
    config.save(out)
    done = ResultsStore(out).done_image_ids()
    image_ids = select_images(manifest, config.max_images)
    by_image = {str(k): g for k, g in manifest.groupby("image_id", sort=False)}
    _check_replay_covers(tasks, image_ids, by_image)
    todo = [i for i in image_ids if i not in done]
    log.info("%d images (%d already done)", len(image_ids), len(image_ids) - len(todo))
    return RunPlan(config=config, image_ids=image_ids, todo=todo, by_image=by_image)


def model_identity(model: PromptableModel) -> dict[str, str | None]:
    """The weights' hashes a run records (``config.json``) and checks on resume."""
    return {
        "checkpoint_sha256": getattr(model, "checkpoint_sha256", None),
        "decoder_sha256": getattr(model, "decoder_sha256", None),
        "model_config_sha256": getattr(model, "model_config_sha256", None),
    }


def make_cache(config: RunConfig, model: PromptableModel) -> EmbeddingCache | None:
    """The run's embedding cache (``--cache-dir``, ``--cache-dtype``) or None."""
    if not config.cache_dir:
        return None
    return EmbeddingCache(config.cache_dir, embedding_signature(model), dtype=config.cache_dtype)


def _evaluate_locked(
    config: RunConfig,
    out: Path,
    *,
    model: PromptableModel | None,
    tasks: Sequence[ImageTask] | None,
    flush_every: int,
    options: ExecutorOptions,
) -> pd.DataFrame | ResultsDataset:
    """:func:`evaluate`'s local body, run while holding the folder's lock: one model, images
    read ahead by a reader thread (:func:`prefetch`), encoder batches on a GPU."""
    if model is None:
        model = build_any_model(config)
    if tasks is None:
        tasks = build_tasks(config, out)
    plan = plan_run(config, out, model_identity(model), tasks)
    work = ImageWork(
        plan.config,
        model,
        tasks,
        make_cache(plan.config, model),
        encoder_batch=options.resolved_encoder_batch(model),
    )
    store = ResultsStore(out, flush_every=flush_every)
    loaded = prefetch(plan.todo, lambda i: work.load(i, plan.by_image[i]), depth=options.prefetch)
    bar = tqdm(
        total=len(plan.todo),
        desc=f"evaluate {model.name}",
        unit="img",
        disable=not config.progress,
    )
    try:
        for group in groups(loaded, work.encoder_batch):
            for rows in work.run(group):
                store.add_image(rows)
            bar.update(len(group))
    finally:
        bar.close()
        store.flush()
    return finish_run(store, options.single_file)


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
            for r in records(by_image[i])
            for s in strategies
        )
        return
