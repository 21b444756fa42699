"""``sambench cosmos``: prepare every recipe's release found under a folder and write the coverage
report (a thin layer over :mod:`sambench.data.cosmos` and :mod:`sambench.report.coverage`).
Registered in :mod:`sambench.cli.app`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sambench.cli import options as O


def cosmos(
    root: Annotated[
        Path,
        typer.Argument(
            help="Folder holding downloaded releases, one folder each (see sambench datasets)."
        ),
    ],
    out: Annotated[Path, O.out("Prepared output root; coverage.html and coverage.csv go here.")],
    workers: Annotated[
        int, O.workers("Parallel worker processes per dataset (>= 1).", "-j", at_least=1)
    ] = 1,
) -> None:
    """Prepare every release under ROOT with its recipe; write a coverage report (COSMOS 1050K)."""
    from sambench.data.cosmos import prepare_cosmos, totals
    from sambench.report.coverage import write_coverage

    df = prepare_cosmos(root, out, workers=workers, echo=typer.echo)
    csv, page = write_coverage(df, out, str(root))
    tot = totals(df)
    for r in df[df["status"] == "broken"].itertuples():
        typer.echo(f"broken: {r.dataset} ({r.source}): {r.reason}")
    typer.echo(
        f"prepared {tot['datasets']} dataset(s): {tot['images']:,} images, {tot['masks']:,} masks, "
        f"{tot['targets']} targets, {tot['target_modality_pairs']} target-modality pairs "
        f"(COSMOS 1050K: 1,050,311 images, 6,033,198 masks, 84 targets, 125 pairs)"
    )
    typer.echo(f"coverage: {page} and {csv}")
