"""The ``sambench annotation-report`` command (registered in :mod:`sambench.cli.app`): a thin layer
over :func:`sambench.report.annotation_report.build_annotation_report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sambench.cli import options as O


def annotation_report(
    sessions: Annotated[
        list[Path], typer.Argument(help="`sambench annotate` session folders (one or more).")
    ],
    out: Annotated[Path, O.out("Report folder (new or empty).")],
) -> None:
    """The paper's Table 7 from annotation sessions: time and HCE with and without the model."""
    from sambench.annotate.volume_store import is_volume_session

    volume = [is_volume_session(s) for s in sessions]
    if any(volume):
        from sambench.errors import OptionError
        from sambench.report.annotation_volumes import build_volume_annotation_report

        if not all(volume):
            raise OptionError(
                "SESSIONS",
                "mixes volume (annotate-volume) and 2D (annotate) sessions; report them separately",
            )
        html = build_volume_annotation_report(sessions, out)
        typer.echo(f"annotation report -> {html}")
        typer.echo(f"3D table: {out / 'tables' / 'annotation_3d.csv'}")
        return
    from sambench.report.annotation_report import build_annotation_report

    html = build_annotation_report(sessions, out)
    typer.echo(f"annotation report -> {html}")
    typer.echo(f"Table 7:  {out / 'tables' / 'table7_annotation.csv'}")
