"""sambench: benchmark, analyse and fine-tune promptable segmentation models on medical images.

Pipeline stages, one package each, highest first; a stage imports only those below it
(the contract in ``pyproject.toml``, checked by ``lint-imports``; docs/architecture.md):

- ``sambench.cli``: the ``sambench`` command line, one module per command group.
- ``sambench.demo``: the demo on bundled real data (MNI152), the whole pipeline.
- ``sambench.report``: figures and the HTML report.
- ``sambench.volumes``: 3D protocols on volumes (``sambench evaluate-3d``).
- ``sambench.finetune``: mask-decoder fine-tuning (``sambench finetune``).
- ``sambench.annotate``: the web annotator with a model in the loop (``sambench annotate``).
- ``sambench.analysis``: tables in the paper's layout and statistics.
- ``sambench.engine``: encode once, prompt many; result rows (``sambench evaluate``).
- ``sambench.models``: model adapters behind one protocol, the registry, checkpoints, runtimes.
- ``sambench.data``: standardize datasets into 2D PNG pairs, 3D forms and a manifest.
- ``sambench.store``: run storage: atomic writes, run folders and locks, results datasets.
- ``sambench.metrics`` | ``sambench.prompts``: per-object metrics; prompt strategies S1-S6.
- ``sambench.errors`` | ``sambench.version``: the user-facing errors; the version.

The top-level functions :func:`prepare`, :func:`evaluate` and :func:`report` are the Python
counterparts of the three main commands; they import their stage on first call, so ``import
sambench`` stays cheap (no torch, no model)::

    import sambench
    sambench.prepare("my_dataset", "prepared")
    results = sambench.evaluate("prepared", "runs/litemedsam", strategies=("S5",))
    sambench.report("runs/litemedsam")
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from sambench.data.prepare import PrepareReport

from sambench.version import __version__

__all__ = ["__version__", "evaluate", "prepare", "report"]


def prepare(source: str | Path, out: str | Path, **options: Any) -> PrepareReport:
    """Standardize the dataset folder ``source`` into ``out`` (``sambench prepare``).

    ``options`` are those of :func:`sambench.data.prepare.prepare_dataset` (``config``,
    ``modality``, ``workers``, ``skip_bad``, ...). Returns its report (``.to_text()``).
    """
    from sambench.data.prepare import prepare_dataset

    return prepare_dataset(Path(source), Path(out), **options)


def evaluate(
    prepared: str | Path, out: str | Path, *, model: Any = None, **options: Any
) -> pd.DataFrame:
    """Evaluate a model on the prepared folder ``prepared``; write the run to ``out``.

    ``options`` are the fields of :class:`sambench.engine.config.RunConfig` (``strategies``
    as a tuple such as ``("S2", "S5")``, ``model`` as a name or ``"package.module:builder"``,
    ``checkpoint``, ``device``, ``grid``, ``nsd_tolerance``, ...); a list is taken as a tuple.
    ``model`` may also be an adapter instance (a :class:`~sambench.models.PromptableModel`),
    used as is. ``executor`` (``"local"``/``"ray"``), ``address``, ``workers``, ... are the
    fields of :class:`sambench.engine.executor.ExecutorOptions` (docs/distributed.md).
    Every value is validated (:meth:`RunConfig.validate`) before ``out`` is touched.
    Returns the results table (one row per image x object x strategy x selection).
    """
    from dataclasses import fields

    from sambench.engine.config import RunConfig
    from sambench.engine.evaluate import evaluate as run_evaluate
    from sambench.engine.executor import ExecutorOptions

    kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    ex = {f.name: kw.pop(f.name) for f in fields(ExecutorOptions) if f.name in kw}
    adapter = None
    if model is not None and not isinstance(model, str):
        adapter = model
        kw.setdefault("model", str(getattr(model, "name", type(model).__name__)))
    elif model is not None:
        kw["model"] = model
    cfg = RunConfig(prepared=str(prepared), **kw)
    cfg.validate()
    return run_evaluate(cfg, Path(out), model=adapter, options=ExecutorOptions(**ex))


def report(run_dir: str | Path, out: str | Path | None = None, **options: Any) -> Path:
    """Build the HTML report of the run in ``run_dir`` (``sambench report``); return its path.

    ``options`` are those of :func:`sambench.report.build.build_report` (``prepared``,
    ``overlays``, ``rng_seed``, ``compare_with``, ...).
    """
    from sambench.report.build import build_report

    return build_report(Path(run_dir), None if out is None else Path(out), **options)
