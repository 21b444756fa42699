"""The paper's published tables, read from package data (a leaf of the report stage).

The CSV files under ``sambench/report/reference/`` are copies of the paper's Tables 2-8 (SAM ViT-B
and ViT-H on COSMOS 1050K). They are read with :mod:`importlib.resources`, so they work from an
installed wheel. Their comparison with a run is :mod:`sambench.report.reference`.
"""

from __future__ import annotations

import io
from importlib import resources

import pandas as pd

#: Paper table name -> package-data file name.
PAPER_TABLES: dict[str, str] = {
    "table2_dice": "paper-table2-dice.csv",
    "table3_hd": "paper-table3-hd.csv",
    "table4_timing": "paper-table4-timing-seconds.csv",
    "table5_grid": "paper-table5-everything-grid.csv",
    "table6_spearman": "paper-table6-spearman-partial.csv",
    "table7_annotation": "paper-table7-annotation.csv",
    "table8_shift": "paper-table8-prompt-shift-dice-drop.csv",
}
#: The paper's models, as they appear in the column prefixes of Tables 2 and 3.
PAPER_MODELS = ("vit_b", "vit_h")


def paper_table(name: str) -> pd.DataFrame:
    """One of the paper's tables (:data:`PAPER_TABLES` keys) as a DataFrame."""
    if name not in PAPER_TABLES:
        raise ValueError(
            f"paper table: unknown name {name!r}; expected one of {list(PAPER_TABLES)}"
        )
    text = (
        resources.files("sambench.report")
        .joinpath("reference", PAPER_TABLES[name])
        .read_text(encoding="utf-8")
    )
    return pd.read_csv(io.StringIO(text))
