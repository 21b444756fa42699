"""Numbers by unit, readable column names, estimates with their CIs in one cell, tables that fit
the page, and Table 2 / 3 as the paper prints them (issue 27, the report rebuilt for reading)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from sambench.report import html as H
from sambench.report.findings import compact_side_by_side
from sambench.report.format import column_label, column_unit, format_value, table_unit


@pytest.mark.parametrize(
    ("name", "table", "unit"),
    [
        ("dice", "plain", "percent"),
        ("mean DICE", "plain", "percent"),
        ("litemedsam S5", "percent", "percent"),  # silent name: the table's unit
        ("litemedsam S5", "px", "px"),
        ("hd95 median", "plain", "px"),
        ("hd95_mm", "plain", "mm"),
        ("p_value", "percent", "p"),
        ("p_holm", "percent", "p"),
        ("size_p", "ratio", "p"),
        ("n", "percent", "count"),
        ("NoF@85", "clicks", "count"),
        ("NoC@85", "plain", "clicks"),
        ("empty %", "px", "percent"),
        ("embedding", "plain", "s"),
        ("predicted_iou", "plain", "plain"),
    ],
)
def test_column_units(name: str, table: str, unit: str) -> None:
    assert column_unit(name, table) == unit


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (65.7649, "percent", "65.8"),
        (0.03684, "percent", "0.0"),
        (305.125, "px", "305.1"),
        (12.0, "count", "12"),
        (0.0312, "p", "0.031"),
        (3.2e-7, "p", "3.2e-07"),
        (1.0, "p", "1.000"),
        (0.0001143, "s", "1.1e-04"),
        (1.746, "s", "1.75"),
        (math.inf, "px", "∞"),
    ],
)
def test_values_formatted_by_unit(value: float, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_labels_are_for_readers() -> None:
    assert column_label("NoC@80_ci_low") == "NoC@80, 95 % CI low"
    assert column_label("NoF@90") == "NoF@90"
    assert column_label("intensity_diff_cell") == "intensity diff (cell)"
    assert column_label("hd95 median", "px") == "HD95 median (px)"
    assert column_label("p_holm") == "p (Holm)"
    assert column_label("litemedsam S5") == "litemedsam S5"  # already a reader's name
    assert table_unit("hd_by_target") == "px" and table_unit("dice_by_modality") == "percent"
    assert table_unit("timing_seconds") == "s"


def test_estimate_and_ci_in_one_cell() -> None:
    df = pd.DataFrame(
        {"model": ["a", "b"], "mean": [72.14, 9.8], "ci_lo": [60.3, math.nan], "ci_hi": [84.0, 1]}
    )
    merged, names = H.merge_ci_columns(df)
    assert names == {"mean"} and list(merged.columns) == ["model", "mean"]
    html = H.table_html(df, unit="percent")
    assert "<th>mean (95 % CI)</th>" in html
    assert "<td>72.1 (60.3 to 84.0)</td>" in html and "<td>9.8</td>" in html  # no CI: no range
    noc = pd.DataFrame({"NoC@85": [8.8], "NoC@85_ci_low": [7.5], "NoC@85_ci_high": [10.0]})
    assert "<td>8.8 (7.5 to 10.0)</td>" in H.table_html(noc, unit="clicks")
    # a CI's note (why it is missing) joins the estimate's cell
    rate = pd.DataFrame(
        {
            "FP rate %": [25.0, 40.0],
            "FP rate %_ci_low": [math.nan, 10.0],
            "FP rate %_ci_high": [math.nan, 70.0],
            "FP rate %_ci_note": ["n = 4 cases: too few", ""],
        }
    )
    merged, names = H.merge_ci_columns(rate)
    assert names == {"FP rate %"} and list(merged.columns) == ["FP rate %"]
    html = H.table_html(rate)
    assert "<td>25.0 (no CI: n = 4 cases: too few)</td>" in html
    assert "<td>40.0 (10.0 to 70.0)</td>" in html and "_ci_note" not in html


def test_wide_tables_are_stacked_with_their_keys_repeated() -> None:
    df = pd.DataFrame({"target": ["Liver-CT"], **{f"model{i} S5": [50.0 + i] for i in range(40)}})
    html = H.table_html(df, unit="percent")
    parts = html.count("<table>")
    assert parts > 1  # 40 value columns do not fit in one table at 1280 px
    assert html.count("<th>target</th>") == parts  # the key column starts every part
    assert all(f"<td>{50.0 + i:.1f}</td>" in html for i in range(40))  # every value once
    narrow = pd.DataFrame({"target": ["Liver-CT"], "S5": [1.0]})
    assert H.table_html(narrow).count("<table>") == 1
    # a wide table of text only (the run configuration) is one table, never none
    text = pd.DataFrame({"field": ["environment"], "value": ["x" * 400]})
    assert H.table_html(text).count("<table>") == 1 and "x" * 400 in H.table_html(text)


def test_table2_compact_matrix_as_the_paper_prints_it() -> None:
    long = pd.DataFrame(
        {
            "target-modality": ["Liver-CT", "Disc-MRI"],
            "paper row": ["Liver-CT", "no paper row"],
            "S1 fake": ["10.0", "20.0"],
            "S1 paper ViT-B": ["80.0", "no paper row"],
            "S5 fake": ["30.0", "not run"],
            "S5 paper ViT-B": ["90.0", "no paper row"],
        }
    )
    c = compact_side_by_side(long)
    assert list(c.columns) == ["target-modality", "source", "paper row", "S1", "S5"]
    # Liver: ours then the paper; Disc: ours only (the paper has no such row)
    assert c[["target-modality", "source"]].values.tolist() == [
        ["Liver-CT", "fake"],
        ["Liver-CT", "paper ViT-B"],
        ["Disc-MRI", "fake"],
    ]
    assert c["S5"].tolist() == ["30.0", "90.0", "not run"]
    assert c["paper row"].tolist() == ["Liver-CT", "", "no paper row"]


def test_fig6_tells_not_run_from_zero_and_marks_convention_distances() -> None:
    """A missing bar says "not run", a measured zero "0"; an HD bar that holds empty predictions
    (their distance is the run's empty-mask convention) says which share: "50% E"."""
    from sambench.report.figures import mean_ci_figure

    dice = pd.DataFrame(
        {
            "model": ["a", "a", "b"],
            "strategy": ["S1", "S5", "S5"],
            "mean": [0.0, 70.0, 60.0],
            "ci_lo": [0.0, 60.0, 50.0],
            "ci_hi": [0.0, 80.0, 70.0],
        }
    )
    hd = dice.assign(mean=[300.0, 20.0, 30.0], ci_lo=[300.0, 10, 20], ci_hi=[300.0, 30, 40])
    hd["empty %"] = [50.0, 0.0, 0.0]
    fig = mean_ci_figure(dice, hd)
    left, right = (sorted(t.get_text() for t in ax.texts) for ax in fig.axes[:2])
    assert left == ["0", "not run"]  # b has no S1 row; a's S1 is a measured 0
    assert right == ["50% E", "not run"]
