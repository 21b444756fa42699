"""What a run evaluates, the same for every executor: the model, the images, the resume point.

:func:`plan_run` checks a run's config against its folder, saves it and finds the images left to
do; :func:`build_any_model`, :func:`model_identity`, :func:`make_cache` and
:func:`embedding_signature` build what both executors (:mod:`sambench.engine.local_executor`,
:mod:`sambench.engine.ray_executor`) share. :mod:`sambench.engine.evaluate` dispatches to them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sambench.data.manifest import load_manifest
from sambench.engine.cache import EmbeddingCache
from sambench.engine.config import RunConfig, check_compatible
from sambench.engine.context import ImageTask
from sambench.engine.decoder_split import keep_test_cases
from sambench.engine.image_work import check_unchanged_inputs, records
from sambench.engine.results import PARTS_DIR, ResultsStore
from sambench.errors import OptionError
from sambench.models.base import PromptableModel
from sambench.store.provenance import environment, environment_differences

log = logging.getLogger(__name__)


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


def filter_images(
    manifest: pd.DataFrame, images: Sequence[str] | None, prepared: Path
) -> pd.DataFrame:
    """Keep the rows of the given image ids (``RunConfig.images``); unknown ids are an error."""
    if images is None:
        return manifest
    unknown = sorted(set(images) - set(manifest["image_id"].astype(str)))
    if unknown:
        raise OptionError(
            "images", f"{unknown[:5]} not found in {prepared} (expected the manifests' image_id)"
        )
    return manifest[manifest["image_id"].astype(str).isin(set(images))]


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
    ``config.images`` keeps only those image ids, before ``max_images``.
    Resume detection: the image ids already found in ``out/parts`` are skipped. With a
    fine-tuned decoder, only the test cases of its split are scored unless ``config.all_cases``
    (:func:`sambench.engine.decoder_split.keep_test_cases`).
    """
    prepared = Path(config.prepared)
    manifest = filter_cases(
        load_manifest(prepared, datasets=config.datasets), config.cases, prepared
    )
    if config.decoder is not None and not config.all_cases:
        manifest = keep_test_cases(manifest, config.decoder, config.cases)
    manifest = filter_images(manifest, config.images, prepared)
    from sambench.models.registry import default_device  # lazy: imports torch

    config = replace(
        config,
        checkpoint_sha256=identity.get("checkpoint_sha256"),
        decoder_sha256=identity.get("decoder_sha256"),
        model_config_sha256=identity.get("model_config_sha256"),
        environment=environment(config.device or default_device()),
    )
    image_ids = select_images(manifest, config.max_images)
    by_image = {str(k): g for k, g in manifest.groupby("image_id", sort=False)}
    _check_replay_covers(tasks, image_ids, by_image)  # before the folder is touched
    out.mkdir(parents=True, exist_ok=True)
    if (out / "config.json").exists():
        saved = RunConfig.load(out)
        check_compatible(saved, config, out)
        diffs = environment_differences(saved.environment, config.environment)
        if diffs and saved.environment:
            log.warning(
                "%s: resuming in another environment (rows before and after may differ): %s",
                out,
                "; ".join(diffs),
            )
    config.save(out)
    done = ResultsStore(out).done_image_ids()
    if done:
        check_unchanged_inputs(prepared, out / PARTS_DIR, by_image, done)
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


def _check_replay_covers(
    tasks: Sequence[ImageTask], image_ids: Sequence[str], by_image: dict[Any, pd.DataFrame]
) -> None:
    """With ``--prompts``: every object x single-round strategy of the run must be in the file,
    inside its image (checked before the run folder is touched: a refused run writes nothing; the
    error names the file, the line or the first missing key)."""
    for task in tasks:
        replay = getattr(task, "replay", None)
        if replay is None:
            continue
        strategies = getattr(task, "strategies", ())
        for i in image_ids:
            for r in records(by_image[i]):
                replay.prompts_for(r, strategies)
        return
