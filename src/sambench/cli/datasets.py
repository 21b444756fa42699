"""``sambench datasets``: the dataset recipes (a thin layer over :mod:`sambench.data.recipe`).
Registered in :mod:`sambench.cli.app`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def datasets(
    name: Annotated[
        str | None, typer.Argument(help="A recipe name: show it in full (default: list all).")
    ] = None,
    config: Annotated[
        bool,
        typer.Option(
            "--config",
            help="With NAME: print the prepare config the recipe compiles to (YAML), to edit "
            "for another layout and pass to prepare --config.",
        ),
    ] = False,
    csv: Annotated[
        Path | None, typer.Option("--csv", metavar="FILE", help="Also write the table as CSV.")
    ] = None,
) -> None:
    """List the dataset recipes: name, modality, targets, terms, link, download, expected counts."""
    from sambench.data.recipe import config_yaml, describe_recipe, get_recipe, recipes_table
    from sambench.errors import OptionError

    if name is not None:
        recipe = get_recipe(name)
        typer.echo(config_yaml(recipe) if config else describe_recipe(recipe))
        return
    if config:
        raise OptionError("--config", "give a recipe NAME with --config")
    table = recipes_table()
    if csv is not None:
        from sambench.store.atomic import write_text_atomic

        write_text_atomic(csv, table.to_csv(index=False))
    from rich.console import Console
    from rich.table import Table

    out = Table(title=f"{len(table)} dataset recipes (sambench prepare SOURCE --recipe NAME)")
    for col in ("name", "modality", "targets", "excluded", "terms", "homepage", "expected"):
        out.add_column(col, overflow="fold")
    for row in table.itertuples():
        out.add_row(
            row.name, row.modality, row.targets, row.excluded, row.terms, row.homepage, row.expected
        )
    Console(width=200).print(out)
