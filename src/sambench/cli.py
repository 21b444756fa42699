"""The ``sambench`` command line: a thin layer over library functions that return DataFrames."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Benchmark promptable segmentation models (SAM, MedSAM, LiteMedSAM) on medical images.",
)


@app.callback()
def _root() -> None:
    """Benchmark promptable segmentation models (SAM, MedSAM, LiteMedSAM) on medical images."""


@app.command()
def prepare(
    source: Annotated[
        Path, typer.Argument(help="Dataset folder (images/ + labels/, volumes, DICOM).")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Prepared output root (shared by datasets).")
    ],
    config: Annotated[
        Path | None, typer.Option("--config", help="Dataset description YAML/JSON.")
    ] = None,
    modality: Annotated[
        str | None, typer.Option("--modality", help="Modality name, e.g. CT, MRI.")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", help="Parallel worker processes.")] = 1,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Record bad cases as skipped instead of stopping.")
    ] = False,
) -> None:
    """Standardize a dataset into 2D PNG image/label pairs plus a manifest (SPEC section 2)."""
    from sambench.data.prepare import prepare_dataset

    report = prepare_dataset(
        source, out, config=config, modality=modality, workers=workers, skip_bad=skip_bad
    )
    typer.echo(report.to_text())


def _split(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip())


@app.command()
def evaluate(
    prepared: Annotated[Path, typer.Argument(help="A `sambench prepare` output folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder for results and tables.")],
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="litemedsam, sam_vit_b/l/h, medsam_vit_b, sam2.1_hiera_t/s/b+/l, sam2_hiera_t/s/b+/l;"
            " baselines random_walker, grabcut.",
        ),
    ] = "litemedsam",
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="Checkpoint file (required for SAM/MedSAM/SAM 2)."),
    ] = None,
    decoder: Annotated[
        Path | None, typer.Option("--decoder", help="Fine-tuned mask decoder (.safetensors).")
    ] = None,
    strategies: Annotated[
        str, typer.Option("--strategies", "-s", help="Comma list of S2..S6.")
    ] = "S2,S3,S4,S5,S6",
    prompt_rules: Annotated[
        str, typer.Option("--prompt-rules", help="paper (default) or authors-code.")
    ] = "paper",
    multimask: Annotated[
        str, typer.Option("--multimask", help="auto (model default), on (3 candidates), off.")
    ] = "auto",
    nsd_tolerance: Annotated[
        float, typer.Option("--nsd-tolerance", help="NSD tolerance, pixels.")
    ] = 2.0,
    empty: Annotated[
        str,
        typer.Option("--empty", help="Distances of empty predictions: worst (diagonal) or nan."),
    ] = "worst",
    datasets: Annotated[
        str | None, typer.Option("--datasets", help="Comma list of datasets (default: all).")
    ] = None,
    max_images: Annotated[
        int | None, typer.Option("--max-images", help="Evaluate an evenly spaced subset.")
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="On-disk embedding cache folder.")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1 ...")] = None,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Record unreadable images as skipped rows.")
    ] = False,
    grid: Annotated[
        str, typer.Option("--grid", help="S1 grid sizes (points per side), e.g. 8,16,32,64.")
    ] = "32",
    points_per_batch: Annotated[int, typer.Option("--points-per-batch", help="S1 batch.")] = 64,
    save_masks: Annotated[
        bool,
        typer.Option(
            "--save-masks",
            help="Save the selected S2-S6 masks as PNG (masks/) and S1's masks as RLE JSON.",
        ),
    ] = False,
    shift: Annotated[
        bool, typer.Option("--shift", help="Add prompt-shift robustness repeats (SPEC 6).")
    ] = False,
    shift_repeats: Annotated[int, typer.Option("--shift-repeats")] = 3,
    shift_seed: Annotated[int, typer.Option("--shift-seed")] = 0,
    max_clicks: Annotated[
        int, typer.Option("--max-clicks", help="Clicks per object for 'interactive'.")
    ] = 20,
    cases: Annotated[
        str | None, typer.Option("--cases", help="Comma list of <dataset>/<case> to evaluate.")
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Evaluate a model on a prepared dataset under prompt strategies; write results and tables."""
    from sambench.analysis.summary import main_rows, paper_table, to_markdown, write_tables
    from sambench.engine.config import RunConfig
    from sambench.engine.evaluate import evaluate as run_evaluate

    cfg = RunConfig(
        prepared=str(prepared),
        model=model,
        checkpoint=None if checkpoint is None else str(checkpoint),
        decoder=None if decoder is None else str(decoder),
        strategies=_split(strategies) or (),
        prompt_rules=prompt_rules,
        multimask=multimask,
        nsd_tolerance=nsd_tolerance,
        empty=empty,
        datasets=_split(datasets),
        cases=_split(cases),
        max_images=max_images,
        grid=tuple(int(g) for g in (_split(grid) or ())),
        points_per_batch=points_per_batch,
        save_masks=save_masks,
        shift=shift,
        shift_repeats=shift_repeats,
        shift_seed=shift_seed,
        max_clicks=max_clicks,
        cache_dir=None if cache_dir is None else str(cache_dir),
        device=device,
        skip_bad=skip_bad,
        progress=progress,
    )
    results = run_evaluate(cfg, out)
    write_tables(results, out / "tables")
    typer.echo(f"{len(results)} rows -> {out / 'results.parquet'}; tables in {out / 'tables'}")
    typer.echo("DICE (%), mean (std), oracle selection:")
    typer.echo(to_markdown(paper_table(main_rows(results), "dice")))


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Demo folder.")] = Path("sambench-demo"),
    max_images: Annotated[
        int, typer.Option("--max-images", help="Slices evaluated (evenly spaced).")
    ] = 16,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """The whole pipeline on bundled real data: MNI152 brain MRI (from nilearn), LiteMedSAM vs
    GrabCut and the random walker, S1-S6, prompt shift, interactive clicks, and the HTML report."""
    import pandas as pd

    from sambench.analysis.summary import main_rows, paper_table, timing_table, to_markdown
    from sambench.demo import NOC_SHOWN, DemoConfig, interactive_summary, run_demo

    result = run_demo(out, DemoConfig(max_images=max_images, progress=progress))
    for rep in result.prepare_reports:
        typer.echo(rep.to_text())
    every = pd.concat(list(result.results.values()), ignore_index=True)
    main = main_rows(every)
    typer.echo(
        f"\nLiteMedSAM, GrabCut, random walker on {main['image_id'].nunique()} MNI152 slices"
    )
    typer.echo("DICE (%), mean (std), oracle selection:")
    typer.echo(to_markdown(paper_table(main, "dice")))
    typer.echo(f"\nInteractive: NoC@{NOC_SHOWN} and DICE after 1, 5 and the last click:")
    typer.echo(to_markdown(interactive_summary(every)))
    typer.echo("\nSeconds (embedding per image; decoding per object, per click for interactive):")
    typer.echo(to_markdown(timing_table(every)))
    typer.echo("\nresults: " + ", ".join(str(p) for p in result.runs.values()))
    typer.echo(f"report:  {result.report}")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A `sambench evaluate` run folder.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Report folder (default RUN_DIR/report).")
    ] = None,
    prepared: Annotated[
        Path | None,
        typer.Option("--prepared", help="Prepared data folder (default: the run's config)."),
    ] = None,
    overlays: Annotated[
        bool, typer.Option("--overlays/--no-overlays", help="Draw best/worst cases (Fig. 9).")
    ] = True,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap CIs.")] = 0,
    compare_with: Annotated[
        list[Path] | None,
        typer.Option("--compare-with", help="Another run folder (other model); repeatable."),
    ] = None,
) -> None:
    """Build the HTML report (tables, figures, statistics) of an evaluation run."""
    from sambench.report.build import build_report

    html = build_report(
        run_dir,
        out,
        prepared=prepared,
        overlays=overlays,
        rng_seed=seed,
        compare_with=tuple(compare_with or ()),
    )
    typer.echo(f"report -> {html}")


@app.command()
def finetune(
    prepared: Annotated[Path, typer.Argument(help="A `sambench prepare` output folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Fine-tuning run folder.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Base model (registry name).")] = (
        "litemedsam"
    ),
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="Checkpoint file (SAM/MedSAM).")
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs")] = 20,
    lr: Annotated[float, typer.Option("--lr")] = 1e-4,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 2,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = 0.0,
    box_jitter: Annotated[
        int, typer.Option("--box-jitter", help="Random outward box shift, 0..N px (0 = off).")
    ] = 0,
    train_fraction: Annotated[float, typer.Option("--train-fraction")] = 0.6,
    val_fraction: Annotated[float, typer.Option("--val-fraction")] = 0.2,
    test_fraction: Annotated[float, typer.Option("--test-fraction")] = 0.2,
    split_seed: Annotated[int, typer.Option("--split-seed")] = 0,
    patience: Annotated[
        int | None, typer.Option("--patience", help="Early stopping patience (epochs).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    datasets: Annotated[
        str | None, typer.Option("--datasets", help="Comma list of datasets (default: all).")
    ] = None,
    max_objects: Annotated[
        int | None, typer.Option("--max-objects", help="At most N objects per split.")
    ] = None,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir")] = None,
    device: Annotated[str | None, typer.Option("--device")] = None,
    compare: Annotated[
        bool,
        typer.Option("--compare/--no-compare", help="Then compare base vs fine-tuned on test."),
    ] = True,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Fine-tune the mask decoder with box prompts (SPEC 8); resumable; then compare on test cases."""
    from sambench.analysis.summary import to_markdown
    from sambench.finetune.compare import compare_before_after
    from sambench.finetune.config import FinetuneConfig
    from sambench.finetune.train import finetune as run_finetune

    cfg = FinetuneConfig(
        prepared=str(prepared),
        model=model,
        checkpoint=None if checkpoint is None else str(checkpoint),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        weight_decay=weight_decay,
        box_jitter=box_jitter,
        train_fraction=train_fraction,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        patience=patience,
        seed=seed,
        datasets=_split(datasets),
        max_objects=max_objects,
        cache_dir=None if cache_dir is None else str(cache_dir),
        device=device,
        progress=progress,
    )
    log = run_finetune(cfg, out)
    typer.echo(to_markdown(log))
    typer.echo(f"decoder -> {out / 'decoder.safetensors'}")
    if compare:
        table = compare_before_after(out, device=device, progress=progress)
        typer.echo(to_markdown(table))


@app.command("finetune-compare")
def finetune_compare(
    run_dir: Annotated[Path, typer.Argument(help="A `sambench finetune` run folder.")],
    strategies: Annotated[str, typer.Option("--strategies", "-s", help="Comma list.")] = "S5",
    max_images: Annotated[int | None, typer.Option("--max-images")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    device: Annotated[str | None, typer.Option("--device")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Compare base and fine-tuned decoder on the held-out test cases (paper Fig. 18)."""
    from sambench.analysis.summary import to_markdown
    from sambench.finetune.compare import compare_before_after

    table = compare_before_after(
        run_dir,
        strategies=_split(strategies) or ("S5",),
        max_images=max_images,
        seed=seed,
        device=device,
        progress=progress,
    )
    typer.echo(to_markdown(table))


def main() -> None:  # pragma: no cover - console entry
    app()
