"""The local executor: one model in this process, images read ahead by a reader thread."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from sambench.engine.config import RunConfig
from sambench.engine.context import ImageTask
from sambench.engine.executor import ExecutorOptions
from sambench.engine.image_work import ImageWork, groups, prefetch
from sambench.engine.plan import build_any_model, make_cache, model_identity, plan_run
from sambench.engine.results import ResultsStore, finish_run
from sambench.engine.tasks import build_tasks
from sambench.models.base import PromptableModel
from sambench.store.results_dataset import ResultsDataset


def evaluate_locked(
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
    for task in tasks:  # a task that needs more of the model (text prompts) says so now
        check = getattr(task, "check_model", None)
        if check is not None:
            check(model)
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
