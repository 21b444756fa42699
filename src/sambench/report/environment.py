"""The report header's environment line, and the warnings when compared runs ran elsewhere.

Each run's ``config.json`` records where it ran (:func:`sambench.store.provenance.environment`).
Runs compared with ``--compare-with`` whose package versions, device or CPU differ from the main
run's are named with the differences, so a reader knows that a difference between two models
may come from two installs instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sambench.engine.config import RunConfig
from sambench.store.provenance import environment_differences, environment_summary


def _environment(run_dir: Path) -> dict[str, object] | None:
    try:
        return RunConfig.load(run_dir).environment
    except FileNotFoundError:
        return None


def environment_notes(config: RunConfig | None, others: Sequence[Path]) -> tuple[str, list[str]]:
    """(the main run's environment in one line, one warning per compared run that differs)."""
    env = None if config is None else config.environment
    warnings = []
    for other in others:
        diffs = environment_differences(env, _environment(Path(other)))
        if diffs:
            warnings.append(
                f"--compare-with {other}: ran in another environment than this run "
                f"({'; '.join(diffs)}); differences between the models may come from it"
            )
    return environment_summary(env), warnings
