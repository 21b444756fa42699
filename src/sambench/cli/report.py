"""``sambench report``: the HTML report of an evaluation run (2D or ``evaluate-3d``), in memory
or out of core, with optional annotation sessions (Table 7). Registered in
:mod:`sambench.cli.app`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sambench.cli import executor as X
from sambench.cli import options as O
from sambench.errors import OptionError


def report(
    run_dir: Annotated[
        Path, typer.Argument(help="A `sambench evaluate` or `evaluate-3d` run folder.")
    ],
    out: Annotated[Path | None, O.out("Report folder (default RUN_DIR/report).")] = None,
    prepared: Annotated[
        Path | None,
        typer.Option("--prepared", help="Prepared data folder (default: the run's config)."),
    ] = None,
    overlays: Annotated[
        bool, typer.Option("--overlays/--no-overlays", help="Draw best/worst cases (Fig. 9).")
    ] = True,
    seed: Annotated[int, O.seed("Seed of the bootstrap CIs.")] = 0,
    compare_with: Annotated[
        list[Path] | None,
        typer.Option("--compare-with", help="Another run folder (other model); repeatable."),
    ] = None,
    aliases: Annotated[
        Path | None,
        typer.Option(
            "--aliases",
            metavar="FILE",
            help="CSV (ours,paper) or YAML of extra target/modality names -> the paper's.",
        ),
    ] = None,
    annotation_sessions: Annotated[
        list[str] | None,
        typer.Option(help="`sambench annotate` session folder(s) (Table 7); repeatable, or a,b."),
    ] = None,
    out_of_core: Annotated[
        bool, typer.Option("--out-of-core", help="Tables only, from the parts (docs/scale.md).")
    ] = False,
    ci_unit: Annotated[
        str,
        typer.Option(
            "--ci-unit",
            metavar="UNIT",
            help="Unit of CIs and paired tests: case (default) or object (for comparison).",
        ),
    ] = "case",
    ledger: Annotated[
        Path | None,
        typer.Option(
            "--ledger",
            metavar="FILE",
            help="Training-data ledger (YAML) extending the package's: results on data the model "
            "was trained on are flagged.",
        ),
    ] = None,
) -> None:
    """Build the HTML report (tables, figures, statistics) of an evaluation run."""
    from sambench.report.build import build_report
    from sambench.report.lazy_report import build_report_lazy
    from sambench.report.validate import check_finished

    check_finished(run_dir)  # an unfinished run is refused, never reported as final
    if ci_unit not in ("case", "object"):
        raise OptionError("--ci-unit", f"expected case or object, got {ci_unit!r}")
    if X.report_out_of_core(run_dir, out_of_core):
        page = build_report_lazy(run_dir, out, rng_seed=seed, ci_unit=ci_unit, ledger=ledger)
        typer.echo(f"report -> {page}")
        return
    html = build_report(
        run_dir,
        out,
        prepared=prepared,
        overlays=overlays,
        rng_seed=seed,
        compare_with=tuple(compare_with or ()),
        aliases=aliases,
        annotation_sessions=[
            Path(s) for v in annotation_sessions or () for s in O.comma_list(v) or ()
        ],
        ci_unit=ci_unit,
        ledger=ledger,
    )
    typer.echo(f"report -> {html}")
