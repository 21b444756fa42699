"""``sambench prepare``: standardize a dataset (a thin layer over
:func:`sambench.data.prepare.prepare_dataset`). Registered in :mod:`sambench.cli.app`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sambench.cli import options as O


def prepare(
    source: Annotated[
        Path, typer.Argument(help="Dataset folder (images/ + labels/, volumes, DICOM).")
    ],
    out: Annotated[Path, O.out("Prepared output root (shared by datasets).")],
    config: Annotated[
        Path | None, typer.Option("--config", help="Dataset description YAML/JSON.")
    ] = None,
    modality: Annotated[
        str | None, typer.Option("--modality", help="Modality name, e.g. CT, MRI.")
    ] = None,
    recipe: Annotated[
        str | None,
        typer.Option(
            "--recipe",
            metavar="NAME",
            help="A dataset recipe (see sambench datasets) or a recipe YAML file, instead of "
            "--config.",
        ),
    ] = None,
    workers: Annotated[int, O.workers("Parallel worker processes (>= 1).", "-j", at_least=1)] = 1,
    skip_bad: Annotated[
        bool, O.skip_bad("Record bad cases as skipped instead of stopping.")
    ] = False,
    window: Annotated[
        str | None,
        typer.Option(
            "--window",
            metavar="LEVEL,WIDTH|PRESET",
            help="CT window instead of min-max: LEVEL,WIDTH (e.g. 40,400) or abdomen, liver, "
            "mediastinum, lung, bone, brain.",
        ),
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option(
            "--channel",
            metavar="CHANNEL",
            help="Channel of multi-channel cases (MSD / nnU-Net): index, name, or all "
            "(each channel a separate image of the same case). Default: the first.",
        ),
    ] = None,
    roi_dir: Annotated[
        Path | None,
        typer.Option(
            "--roi-dir",
            metavar="FOLDER",
            help="Region-of-interest masks (e.g. field of view), relative to SOURCE or absolute.",
        ),
    ] = None,
    resample_labels: Annotated[
        bool,
        typer.Option(
            "--resample-labels",
            help="Resample a 3D label on another grid onto its image (nearest neighbour) "
            "instead of refusing it.",
        ),
    ] = False,
    max_image_pixels: Annotated[
        int,
        typer.Option(
            "--max-image-pixels",
            metavar="N",
            min=1,
            help="Largest 2D image accepted, in pixels (guard against decompression bombs).",
        ),
    ] = 89_478_485,
    volume_format: Annotated[
        str,
        typer.Option(
            "--volume-format",
            metavar="FORMAT",
            help="Storage of the 3D form (volumes/): nifti, zarr (chunked by slice, streamed "
            "by evaluate-3d) or auto (zarr for a volume over --zarr-above-mb).",
        ),
    ] = "auto",
    zarr_above_mb: Annotated[
        float,
        typer.Option(
            "--zarr-above-mb",
            metavar="MB",
            help="With --volume-format auto: zarr for a volume whose uint8 size exceeds MB "
            "(1 MB = 1e6 bytes).",
        ),
    ] = 256.0,
    allow_slice_gaps: Annotated[
        bool,
        typer.Option(
            "--allow-slice-gaps",
            help="Accept a DICOM series with a missing or unreadable slice (uneven slice "
            "positions; read at the average spacing) with a warning instead of refusing it.",
        ),
    ] = False,
) -> None:
    """Standardize a dataset into 2D PNG image/label pairs plus a manifest (SPEC section 2)."""
    from sambench.data.prepare import prepare_dataset
    from sambench.errors import OptionError

    if recipe is not None and config is not None:
        raise OptionError("--recipe", "give --recipe or --config, not both")
    kwargs: dict[str, Any] = dict(
        modality=modality,
        workers=workers,
        skip_bad=skip_bad,
        window=window,
        channel=channel,
        roi_dir=roi_dir,
        resample_labels=resample_labels,
        max_image_pixels=max_image_pixels,
        volume_format=volume_format,
        zarr_above_mb=zarr_above_mb,
        allow_slice_gaps=allow_slice_gaps,
    )
    if recipe is not None:
        from sambench.data.recipe import prepare_recipe

        report = prepare_recipe(source, out, recipe, **kwargs)
    else:
        report = prepare_dataset(source, out, config=config, **kwargs)
    typer.echo(report.to_text())
