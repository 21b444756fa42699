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
    source: Annotated[Path, typer.Argument(help="Dataset folder (images/ + labels/, volumes, DICOM).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Prepared output root (shared by datasets).")],
    config: Annotated[
        Path | None, typer.Option("--config", help="Dataset description YAML/JSON.")
    ] = None,
    modality: Annotated[str | None, typer.Option("--modality", help="Modality name, e.g. CT, MRI.")] = None,
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


def main() -> None:  # pragma: no cover - console entry
    app()
