"""User errors of the command line: two lines on stderr and exit status 2, no traceback.

A *user error* is something the user can fix from the message alone: a bad option value
(:class:`~sambench.errors.OptionError`, click's usage errors), bad input data
(:class:`~sambench.errors.DataError`), a bad checkpoint
(:class:`~sambench.models.checkpoints.CheckpointError`), an invalid or mismatching configuration
(the project's other ``ValueError`` subclasses and plain ``ValueError`` messages), a missing or
unreadable file, a full disk (``ENOSPC``, naming the file being written) and a read-only file
system (``EROFS``, naming the file or folder). The first line is
``sambench <command>: error: <message>``; the second says how to see the traceback (or, for a
usage error, where the help is). Anything else is a bug and keeps its traceback.

:func:`word_metavars` gives every option a word as its metavar (N, FLOAT, PATH, VALUE).
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

EXIT_USER_ERROR = 2
_DISK_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}
_FILE_ERRORS = (
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    FileExistsError,
)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def describe_user_error(exc: BaseException) -> str | None:
    """The one-line message of a user error, or None when ``exc`` is not one (a bug)."""
    if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
        where = exc.filename or "an output file (name unknown)"
        return (
            f"{where}: {_DISK_ERRNOS[exc.errno]} while writing it; free space or use another --out"
        )
    if isinstance(exc, OSError) and exc.errno == errno.EROFS:
        where = exc.filename or "an output file (name unknown)"
        return (
            f"{where}: read-only file system; give a folder you can write to (--out, --cache-dir)"
        )
    if isinstance(exc, _FILE_ERRORS):
        if exc.filename is not None and exc.strerror:
            return _one_line(f"{exc.filename}: {exc.strerror.lower()}")
        return _one_line(str(exc))
    if isinstance(exc, ValueError):  # OptionError, DataError, CheckpointError, config errors
        return _one_line(str(exc)) or type(exc).__name__
    return None


def _command_path(args: Sequence[str], group: Any) -> str:
    """``sambench <subcommand>`` from the raw arguments (the first word naming a subcommand)."""
    commands = getattr(group, "commands", {})
    for a in args:
        if a in commands:
            return f"sambench {a}"
    return "sambench"


def _is_click_error(exc: BaseException) -> bool:
    """A click-style usage error (click's own or typer's bundled copy): has an exit code and
    formats its own message."""
    return hasattr(exc, "format_message") and hasattr(exc, "exit_code")


def run_reporting_errors(cmd: Any, args: Sequence[str], *, debug: bool) -> int:
    """Run the click command ``cmd`` on ``args``; return the exit status (0, 2 for a user error).

    With ``debug`` a user error is re-raised (the full traceback). Click's own errors (bad
    option value, missing argument, unknown option) are reported in the same two-line form.
    """
    where = _command_path(args, cmd)
    try:
        rv = cmd.main(args=list(args), prog_name="sambench", standalone_mode=False)
    except typer.Exit as e:
        return int(e.exit_code)
    except typer.Abort:
        typer.echo(f"{where}: aborted", err=True)
        return 1
    except Exception as e:
        ctx = getattr(e, "ctx", None)
        if type(e).__name__ == "NoArgsIsHelpError" and ctx is not None:  # bare `sambench`
            typer.echo(ctx.get_help())
            return 0
        if _is_click_error(e):
            if debug:
                raise
            typer.echo(f"{where}: error: {_one_line(e.format_message())}", err=True)  # type: ignore[attr-defined]
            if ctx is not None:
                typer.echo(f"Try '{ctx.command_path} --help' for the options.", err=True)
            return int(e.exit_code) or EXIT_USER_ERROR  # type: ignore[attr-defined]
        message = describe_user_error(e)
        if debug or message is None:
            raise
        typer.echo(f"{where}: error: {message}", err=True)
        typer.echo("(run with `sambench --debug ...` to see the traceback)", err=True)
        return EXIT_USER_ERROR
    return rv if isinstance(rv, int) else 0


_METAVAR_WORDS: dict[Any, str] = {int: "N", float: "FLOAT", str: "VALUE", Path: "PATH"}


def word_metavars(cmd: Any) -> None:
    """Give every option without an explicit metavar a word (N, FLOAT, PATH, VALUE) instead of
    its Python type's name. Duck-typed: typer >= 0.20 ships its own copy of click's classes."""
    for param in cmd.params:
        if param.param_type_name == "argument" and param.metavar is None:
            param.metavar = str(param.name).upper()  # PREPARED, SOURCE, RUN_DIR
        if param.param_type_name != "option" or param.metavar is not None:
            continue
        if getattr(param, "is_flag", False) or getattr(param, "is_bool_flag", False):
            # an on/off switch takes no value: no "<bool>" beside it in --help (typer >= 0.20
            # shows the type of every option there; an instance attribute hides it for flags)
            if hasattr(param, "display_type_rich"):
                param.display_type_rich = lambda ctx: None
            continue
        td = getattr(param, "type_descriptor", None)
        annotation = getattr(td, "annotation", None)
        args = [a for a in getattr(annotation, "__args__", (annotation,)) if a is not type(None)]
        param.metavar = _METAVAR_WORDS.get(args[0] if args else annotation, "VALUE")
    help_option = getattr(cmd, "get_help_option", None)
    if help_option is not None:  # --help is a flag too (made on first use, then cached)
        from typer._click import Context

        opt = help_option(Context(cmd))
        if opt is not None and hasattr(opt, "display_type_rich"):
            opt.display_type_rich = lambda ctx: None
    for sub in getattr(cmd, "commands", {}).values():
        word_metavars(sub)
