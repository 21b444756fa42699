"""``sambench demo``: the whole pipeline on bundled real data (a thin layer over
:func:`sambench.demo.run.run_demo`). Registered in :mod:`sambench.cli.app`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sambench.cli import options as O


def demo(
    out: Annotated[Path, O.out("Demo folder.")] = Path("sambench-demo"),
    max_images: Annotated[
        int, O.max_images("MNI152 slices evaluated (evenly spaced).", at_least=1)
    ] = 16,
    seed_images: Annotated[
        int | None,
        typer.Option(
            "--seed-images",
            min=1,
            metavar="N",
            help="Seed-sample slices evaluated (evenly spaced of 30; default one per patient: 12).",
        ),
    ] = None,
    progress: O.Progress = True,
    runtime: O.Runtime = "torch",
    precision: O.Precision = "fp32",
) -> None:
    """The whole pipeline on bundled real data: MNI152 brain MRI and the paper's seed samples.

    LiteMedSAM vs GrabCut and the random walker on MNI152 slices (from nilearn) and 30 seed slices
    shipped in sambench (cardiac MRI, 4 patients; pancreas CT, 8 patients): S1-S6, prompt shift,
    interactive clicks, and the HTML report with CIs by patient (docs/demo.md)."""
    import pandas as pd

    from sambench.analysis.summary import main_rows, paper_table, timing_table, to_markdown
    from sambench.demo.run import NOC_SHOWN, DemoConfig, interactive_summary, run_demo

    result = run_demo(
        out,
        DemoConfig(
            max_images=max_images,
            seed_images=seed_images,
            progress=progress,
            runtime=runtime,
            precision=precision,
        ),
    )
    for rep in result.prepare_reports:
        typer.echo(rep.to_text())
    every = pd.concat(list(result.results.values()), ignore_index=True)
    main = main_rows(every)
    per = main.groupby("dataset")["image_id"].nunique()
    where = ", ".join(f"{n} {ds}" for ds, n in per.items())
    typer.echo(
        f"\nLiteMedSAM, GrabCut, random walker on {main['image_id'].nunique()} slices ({where})"
    )
    typer.echo("DICE (%), mean (std), oracle selection:")
    typer.echo(to_markdown(paper_table(main, "dice")))
    typer.echo(f"\nInteractive: NoC@{NOC_SHOWN} and DICE after 1, 5 and the last click:")
    typer.echo(to_markdown(interactive_summary(every)))
    typer.echo("\nSeconds (embedding per image; decoding per object, per click for interactive):")
    typer.echo(to_markdown(timing_table(every)))
    typer.echo("\nresults: " + ", ".join(str(p) for p in result.runs.values()))
    typer.echo(f"report:  {result.report}")
