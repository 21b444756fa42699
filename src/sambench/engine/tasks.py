"""From a run configuration to the engine tasks that run on each image's one embedding."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sambench.engine.config import RunConfig
from sambench.engine.context import ImageTask
from sambench.engine.single_round import SingleRoundTask
from sambench.prompts.names import CONCEPT_STRATEGIES, EVERYTHING, INTERACTIVE
from sambench.prompts.names import STRATEGIES as SINGLE_ROUND


def build_tasks(config: RunConfig, run_dir: Path) -> list[ImageTask]:
    """The tasks of a run, in a fixed order: S1, single-round S2-S6, their shifts, interactive."""
    tasks: list[ImageTask] = []
    if EVERYTHING in config.strategies:
        from sambench.engine.everything import EverythingTask

        masks_s1 = (run_dir / "masks_s1") if config.save_masks else None
        tasks.append(EverythingTask(config.grid, config.amg_settings(), masks_dir=masks_s1))
    single = tuple(s for s in config.strategies if s in SINGLE_ROUND)
    replay = None
    if config.prompts_file is not None and single:
        from sambench.engine.prompt_file import ReplayPrompts

        replay = ReplayPrompts(config.prompts_file)
    if single:
        masks = (run_dir / "masks") if config.save_masks else None
        tasks.append(SingleRoundTask(single, config.prompt_rules, masks_dir=masks, replay=replay))
        if config.shift:
            from sambench.engine.shift_task import ShiftTask

            tasks.append(
                ShiftTask(
                    single,
                    repeats=config.shift_repeats,
                    seed=config.shift_seed,
                    prompt_rules=config.prompt_rules,
                    replay=replay,
                )
            )
    if INTERACTIVE in config.strategies:
        from sambench.engine.interactive import InteractiveTask

        tasks.append(
            InteractiveTask(
                max_clicks=config.max_clicks,
                prompt_rules=config.prompt_rules,
                start_with=config.start_with,
            )
        )
    concept = tuple(s for s in config.strategies if s in CONCEPT_STRATEGIES)
    if concept:
        tasks.append(concept_task(config, concept))
    return tasks


def concept_task(config: RunConfig, strategies: tuple[str, ...]) -> ImageTask:
    """The concept task of a run: the phrase table (``--phrases`` over the defaults), every
    dataset's targets from its manifest, and each target's phrase checked before any image
    (a target without one is an OptionError naming ``--phrases``)."""
    from sambench.data.manifest import load_manifest
    from sambench.engine.concept_task import ConceptTask
    from sambench.prompts.names import TEXT, TEXT_NEGATIVE, TEXT_PARAPHRASE
    from sambench.prompts.phrases import PhraseTable

    table = PhraseTable.load(config.phrases, with_modality=config.text_modality)
    manifest = load_manifest(Path(config.prepared), datasets=config.datasets)
    targets = dataset_targets(Path(config.prepared), manifest)
    replay = None
    if config.prompts_file is not None:
        from sambench.engine.concept_replay import ConceptReplay

        replay = ConceptReplay(config.prompts_file)
    elif set(strategies) & {TEXT, TEXT_PARAPHRASE, TEXT_NEGATIVE}:
        for names in targets.values():
            for name in names:
                table.entry(name)
    return ConceptTask(strategies, table, targets, concept_replay=replay)


def dataset_targets(prepared: Path, manifest: pd.DataFrame) -> dict[str, dict[str, int]]:
    """dataset -> {target name: label value}: the classes of each dataset's
    ``sambench-dataset.json`` (``info`` names, ``color`` values: every label the dataset has,
    also those absent from all its slices), then any other name of its manifest."""
    import json

    from sambench.data.records import DATASET_JSON_NAME

    targets: dict[str, dict[str, int]] = {}
    for dataset in sorted(map(str, manifest["dataset"].unique())):
        names = targets.setdefault(dataset, {})
        try:
            desc = json.loads((prepared / dataset / DATASET_JSON_NAME).read_text("utf-8"))
            info, color = desc.get("info", {}), desc.get("color", {})
            for key, name in info.items():
                if key in color:
                    names[str(name)] = int(color[key])
        except (OSError, ValueError, TypeError, AttributeError):
            pass  # no or an unreadable description: the manifest's names only
    cols = ["dataset", "object_name", "label_value"]
    for r in manifest[cols].drop_duplicates().itertuples(index=False):
        targets.setdefault(str(r.dataset), {}).setdefault(str(r.object_name), int(r.label_value))  # type: ignore[arg-type]
    return targets
