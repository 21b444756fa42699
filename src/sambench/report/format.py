"""Numbers and column names as a reader sees them in the report's tables (the CSVs keep both raw).

Each column gets a unit (:func:`column_unit`) from its name, or from the table's unit when its
name says nothing (a column ``litemedsam S5`` of a DICE table is a DICE in %). A unit fixes the
format: DICE, IoU and NSD in % with one decimal; distances with one decimal and their unit in the
header; seconds to three significant digits; counts as integers; p-values with three decimals, or
in scientific form when below 0.001. :func:`column_label` turns raw names such as
``NoC@80_ci_low`` into ``NoC@80, 95 % CI low``.
"""

from __future__ import annotations

import math
import re

#: unit -> what a header shows after a column name whose unit it does not state already
UNIT_SUFFIX = {"px": " (px)", "mm": " (mm)", "s": " (s)"}
UNITS = ("percent", "px", "mm", "s", "count", "p", "clicks", "ratio", "fraction", "plain")
#: Columns on the CVPR 2025 challenge's 0-1 scale (AUCs over 5 clicks: 0-4), not in %.
_FRACTION_NAMES = frozenset({"dsc_auc", "nsd_auc", "dsc_final", "nsd_final"})

_COUNT_NAMES = frozenset(
    {
        "n",
        "n_objects",
        "n_skipped",
        "n_slices",
        "n_cases",
        "images",
        "objects",
        "cases",
        "rows",
        "max_clicks",
        "click_index",
        "label_value",
        "repeat",
        "shift_repeat",
        "tp",
        "fp",
        "fn",
        "empty",
        "step",
        "volumes",
        "cpu_count",
    }
)
_LABELS = {
    "target_modality": "target-modality",
    "object_name": "target",
    "n_objects": "objects",
    "n_skipped": "skipped",
    "n_slices": "slices",
    "max_clicks": "clicks allowed",
    "click_index": "click",
    "ci_lo": "95 % CI low",
    "ci_hi": "95 % CI high",
    "ci_low": "95 % CI low",
    "ci_high": "95 % CI high",
    "p_value": "p",
    "p_holm": "p (Holm)",
    "median_diff": "median difference",
    "mean_a": "mean A",
    "mean_b": "mean B",
    "base_mean": "unshifted mean",
    "shifted_mean": "shifted mean",
    "drop": "drop",
    "shift_px": "shift (px)",
    "shift_range": "shift (px)",
    "shift_repeat": "repeat",
    "volume_dice": "volume DICE",
    "mean_slice_dice": "mean slice DICE",
    "slice_dice": "slice DICE",
    "paper_vit_b": "paper ViT-B",
    "paper_vit_h": "paper ViT-H",
    "diff_vit_b": "ours - ViT-B",
    "diff_vit_h": "ours - ViT-H",
    "paper_target": "paper row",
    "predicted_iou": "predicted IoU",
    "std": "SD",
    "challenge_dsc_01": "challenge DSC (0-1)",
    "challenge_nsd_01": "challenge NSD (0-1)",
}
_WORDS = {
    "dice": "DICE",
    "dsc": "DSC",
    "nsd": "NSD",
    "hd": "HD",
    "hd95": "HD95",
    "assd": "ASSD",
    "hce": "HCE",
    "iou": "IoU",
    "jaccard": "IoU",
    "std": "SD",
    "fp": "FP",
    "fn": "FN",
    "tp": "TP",
    "ci": "CI",
    "vit": "ViT",
    "mm": "(mm)",
}


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[\s_]+", name.lower()) if t]


def column_unit(name: object, table_unit: str = "plain") -> str:
    """The unit of column ``name`` (one of :data:`UNITS`); ``table_unit`` when the name is silent.

    Known from the name: counts (``n``, ``objects``, ``NoF@t`` ...), p-values (``p_value``,
    ``p_holm``, ``*_p``), percentages (names with %, DICE, IoU, NSD), distances (HD, HD95, ASSD:
    pixels, or mm with ``_mm``), seconds, clicks (``NoC@t``), correlations (rho, ``*_cell``-less
    attribute columns of a correlation table keep ``table_unit``).
    """
    raw = str(name)
    low = raw.lower()
    toks = _tokens(raw)
    if low in _COUNT_NAMES or low.startswith("nof@") or (low.endswith(" %") and "empty" in low):
        return "count" if "%" not in low else "percent"
    if low in ("p", "p_value", "p_holm", "p value") or low.endswith("_p") or low.startswith("p_"):
        return "p"
    if low.startswith("noc@"):
        return "clicks"
    if low.endswith("_01") or low in _FRACTION_NAMES:
        return "fraction"  # the challenge's 0-1 scores (metrics/columns3d.py)
    if "%" in low:
        return "percent"
    if any(t in ("dice", "dsc", "jaccard", "nsd") for t in toks) and "predicted" not in toks:
        return "percent"
    if any(t in ("hd", "hd95", "assd") for t in toks):
        return "mm" if "mm" in toks else "px"
    if any(t in ("seconds", "embedding") for t in toks):
        return "s"
    if low in ("statistic", "rho", "spearman"):
        return "ratio" if low != "statistic" else "plain"
    return table_unit


def format_value(value: float, unit: str) -> str:
    """``value`` as text in ``unit`` (NaN is the caller's blank)."""
    if isinstance(value, bool):
        return str(value)
    v = float(value)
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    if unit == "count":
        return f"{v:,.0f}" if v == round(v) else f"{v:,.1f}"
    if unit in ("percent", "px", "mm", "clicks"):
        return f"{v:,.1f}"
    if unit == "p":
        if v == 0:
            return "0"
        return f"{v:.3f}" if v >= 0.001 else f"{v:.1e}"
    if unit == "ratio":
        return f"{v:.2f}"
    if unit == "fraction":
        return f"{v:.3f}"
    if unit == "s":
        if v == 0:
            return "0"
        return f"{v:.3g}" if abs(v) >= 1e-3 else f"{v:.1e}"
    return f"{v:.4g}"


def column_label(name: object, unit: str | None = None) -> str:
    """A reader's header for the raw column ``name``; the unit is added for distances and
    seconds (``hd mean`` -> ``HD mean (px)``) when the name does not state it."""
    raw = str(name)
    low = raw.lower()
    m = re.fullmatch(r"(noc|nof)@([\d.]+)(?:_ci_(low|high))?", low)
    if m:
        kind = "NoC" if m.group(1) == "noc" else "NoF"
        return f"{kind}@{m.group(2)}" + (f", 95 % CI {m.group(3)}" if m.group(3) else "")
    if low in _LABELS:
        label = _LABELS[low]
    elif raw != low or "%" in raw or ("-" in raw and "_" not in raw):
        label = raw  # already a reader's name (e.g. "litemedsam S5", "paper ViT-B")
    else:
        words = [_WORDS.get(t, t) for t in _tokens(raw)]
        if words and words[-1] == "cell":
            words = [*words[:-1], "(cell)"]
        label = " ".join(words)
    if unit in UNIT_SUFFIX and UNIT_SUFFIX[unit].strip(" ()") not in label:
        label += UNIT_SUFFIX[unit]
    return label


def table_unit(name: str) -> str:
    """The default unit of the report table ``name`` (its file stem): DICE/IoU/NSD tables in %,
    HD tables in pixels, timing in seconds, HCE in mouse operations, NoC in clicks."""
    low = name.lower()
    if "timing" in low or "seconds" in low:
        return "s"
    if low.startswith(("hd", "distances")) or "_hd" in low:
        return "px"
    if "noc" in low:
        return "clicks"
    if "hce" in low:
        return "clicks"
    if any(k in low for k in ("dice", "dsc", "iou", "nsd", "table8", "shift", "summary_best")):
        return "percent"
    return "plain"
