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
            "--model", "-m", help="litemedsam, sam_vit_b, sam_vit_l, sam_vit_h, medsam_vit_b."
        ),
    ] = "litemedsam",
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="Checkpoint file (required for SAM/MedSAM).")
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
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Evaluate a model on a prepared dataset under prompt strategies; write results and tables."""
    from sambench.analysis.summary import paper_table, to_markdown, write_tables
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
        max_images=max_images,
        cache_dir=None if cache_dir is None else str(cache_dir),
        device=device,
        skip_bad=skip_bad,
        progress=progress,
    )
    results = run_evaluate(cfg, out)
    write_tables(results, out / "tables")
    typer.echo(f"{len(results)} rows -> {out / 'results.parquet'}; tables in {out / 'tables'}")
    typer.echo("DICE (%), mean (std), oracle selection:")
    typer.echo(to_markdown(paper_table(results, "dice")))


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Demo folder.")] = Path("sambench-demo"),
    max_images: Annotated[
        int, typer.Option("--max-images", help="Slices evaluated (evenly spaced).")
    ] = 24,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """The whole pipeline on bundled real data: MNI152 brain MRI (from nilearn) with LiteMedSAM."""
    from sambench.analysis.summary import paper_table, timing_table, to_markdown, write_tables
    from sambench.data.demo import prepare_demo
    from sambench.engine.config import RunConfig
    from sambench.engine.evaluate import evaluate as run_evaluate

    prepared = out / "prepared"
    report = prepare_demo(prepared)
    typer.echo(report.to_text())
    run_dir = out / "run-litemedsam"
    cfg = RunConfig(
        prepared=str(prepared), model="litemedsam", max_images=max_images, progress=progress
    )
    results = run_evaluate(cfg, run_dir)
    write_tables(results, run_dir / "tables")
    typer.echo(f"\nLiteMedSAM on {results['image_id'].nunique()} MNI152 slices; results: {run_dir}")
    typer.echo("DICE (%), mean (std), oracle selection:")
    typer.echo(to_markdown(paper_table(results, "dice")))
    typer.echo("\nHD (pixels), mean (std):")
    typer.echo(to_markdown(paper_table(results, "hd")))
    typer.echo("\nSeconds (embedding per image; decoding per object):")
    typer.echo(to_markdown(timing_table(results)))


def main() -> None:  # pragma: no cover - console entry
    app()
