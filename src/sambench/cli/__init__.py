"""The ``sambench`` command line: one module per command group over the library's functions.

The console entry point is :func:`sambench.cli.app.main`; :data:`app` is the typer app.
"""

from sambench.cli.app import app, command, main

__all__ = ["app", "command", "main"]
