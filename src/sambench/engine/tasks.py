"""From a run configuration to the engine tasks that run on each image's one embedding."""

from __future__ import annotations

from pathlib import Path

from sambench.engine.config import RunConfig
from sambench.engine.context import ImageTask
from sambench.engine.single_round import SingleRoundTask
from sambench.prompts.names import EVERYTHING, INTERACTIVE
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
    return tasks
