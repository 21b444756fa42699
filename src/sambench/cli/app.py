"""The ``sambench`` typer app: the root options and the registration of every command, each
command a thin function in its group's module (``cli/prepare.py``, ``cli/evaluate.py``,
``cli/demo.py``, ``cli/report.py`` ...) over library functions that return DataFrames; the
options several commands share are declared once in :mod:`sambench.cli.options`.

The console entry point is :func:`main`: it runs the typer app and turns a user error (a bad
option value, a missing file, a bad checkpoint, bad data, an invalid configuration, a full disk)
into two lines on stderr and exit status 2 (:mod:`sambench.cli.errors`); ``sambench --debug ...``
shows the traceback instead. Metavars are words (:func:`command` fills them in).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from sambench.cli.annotate import annotate
from sambench.cli.annotate_volume import annotate_volume
from sambench.cli.annotation_report import annotation_report
from sambench.cli.cosmos import cosmos
from sambench.cli.datasets import datasets
from sambench.cli.demo import demo
from sambench.cli.evaluate import evaluate
from sambench.cli.finetune import finetune, finetune_compare
from sambench.cli.prepare import prepare
from sambench.cli.report import report
from sambench.cli.volumes import evaluate_3d
from sambench.version import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Benchmark promptable segmentation models (SAM, MedSAM, LiteMedSAM) on medical images.",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"sambench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show the full traceback of an error (for bug reports)."),
    ] = False,
) -> None:
    """Benchmark promptable segmentation models (SAM, MedSAM, LiteMedSAM) on medical images."""


app.command("prepare")(prepare)
app.command("datasets")(datasets)
app.command("cosmos")(cosmos)
app.command("evaluate")(evaluate)
app.command("demo")(demo)
app.command("report")(report)
app.command("finetune")(finetune)
app.command("finetune-compare")(finetune_compare)
app.command("annotate")(annotate)
app.command("annotation-report")(annotation_report)
app.command("annotate-volume")(annotate_volume)
app.command("evaluate-3d")(evaluate_3d)


def command() -> Any:
    """The click command of :data:`app`, every option's metavar a word (PATH, N, FLOAT, VALUE)."""
    from sambench.cli.errors import word_metavars

    cmd = typer.main.get_command(app)
    word_metavars(cmd)
    return cmd


def _third_party_warnings_to_log(show: Any) -> Any:
    """A ``warnings.showwarning`` that logs (``sambench.warnings``, level DEBUG) the warnings
    raised outside sambench's own files (MONAI's deprecations, ...) and shows sambench's own."""
    import logging

    ours = str(Path(__file__).resolve().parents[1])
    log = logging.getLogger("sambench.warnings")

    def showwarning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if str(Path(filename).resolve()).startswith(ours):
            show(message, category, filename, lineno, file, line)
        else:
            log.debug("%s:%s: %s: %s", filename, lineno, category.__name__, message)

    return showwarning


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry: run the CLI; a user error is two lines on stderr and exit status 2.

    ``sambench --debug ...`` re-raises instead (full traceback). Third-party FutureWarnings from
    timm's deprecated import paths (used by LiteMedSAM's code) are silenced here, narrowly; other
    warnings raised outside sambench (MONAI's deprecations, ...) are logged at DEBUG level
    instead of printed, unless ``--debug`` (then every warning is shown).
    """
    import sys
    import warnings

    from sambench.cli.errors import run_reporting_errors

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:  # a root option, accepted anywhere on the line (`sambench evaluate ... --debug`)
        args = ["--debug", *(a for a in args if a != "--debug")]
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"timm(\.|$)")
    if debug:
        return run_reporting_errors(command(), args, debug=debug)
    with warnings.catch_warnings():
        warnings.showwarning = _third_party_warnings_to_log(warnings.showwarning)
        return run_reporting_errors(command(), args, debug=debug)


if __name__ == "__main__":
    raise SystemExit(main())
