"""``sambench evaluate``: run a model over a prepared dataset, encode once, prompt many.

For each image: read it, get its embedding (from the cache or one encoder pass), then run every
task (single-round strategies S2-S6, ...) from that one embedding, and store the rows of the whole
image at once. Memory is bounded by one image plus a small buffer of rows; a killed run resumes
where it stopped (see :mod:`sambench.engine.results`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from sambench.engine.config import RunConfig
from sambench.engine.context import ImageTask
from sambench.engine.executor import ExecutorOptions
from sambench.engine.local_executor import evaluate_locked
from sambench.errors import OptionError
from sambench.models.base import PromptableModel
from sambench.store.results_dataset import ResultsDataset
from sambench.store.runfolder import ensure_run_folder, remove_if_unused
from sambench.store.runlock import RunLock

__all__ = ["evaluate", "evaluate_dataset"]

log = logging.getLogger(__name__)


def validate_config(cfg: RunConfig) -> None:
    """Reject every invalid value before anything is written (:meth:`RunConfig.validate`)."""
    cfg.validate()


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
    :mod:`sambench.store.run_files`: ``results.parquet`` = S2-S6 oracle, ...): one row per
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
    materialised. Returns the run's lazy dataset (:func:`~sambench.store.results_dataset.
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
    created = not out.exists()
    try:
        with RunLock(out, "evaluate", wait=wait_lock):
            return evaluate_locked(
                config, out, model=model, tasks=tasks, flush_every=flush_every, options=options
            )
    except BaseException:
        if created:  # refused before writing anything (bad data, model or checkpoint)
            remove_if_unused(out)
        raise
