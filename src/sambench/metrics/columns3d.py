"""The names of the 3D results columns (``results3d.parquet``), defined in one place.

2D and 3D results name the overlap alike: ``dice`` (the Dice similarity coefficient, DSC) and
``nsd`` (normalized surface distance at the run's tolerance), both in % (0-100), one decimal in
the report. The CVPR 2025 interactive-3D challenge's own scores of ``interactive-3d`` steps are
on its 0-1 scale and keep that scale in their own columns, named with a ``_01`` suffix:
``challenge_dsc_01`` and ``challenge_nsd_01`` (the challenge's DSC_AUC / NSD_AUC / DSC_Final /
NSD_Final are computed from them; see docs/results-columns.md).

Results written before this naming (``dsc``, ``challenge_dsc``, ``challenge_nsd``) still load:
:func:`upgrade_results3d` maps the old names on reading (a resumed run, ``sambench report`` of an
old folder), and :func:`rename_row3d` maps a freshly scored row (the metric functions of
:mod:`sambench.metrics.volume` and :mod:`sambench.volumes.clicks3d` keep their own key names).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

#: Dice (DSC) of the whole 3D object, in %.
DICE = "dice"
#: Normalized surface distance at the run's tolerance (``nsd_tolerance_mm``), in %.
NSD = "nsd"
#: The CVPR 2025 challenge's DSC of an interactive-3d step, 0-1.
CHALLENGE_DSC = "challenge_dsc_01"
#: The CVPR 2025 challenge's NSD (surfels at 2 mm, gated at DSC > 0.2) of a step, 0-1.
CHALLENGE_NSD = "challenge_nsd_01"
#: Former column name -> current one (results written by sambench before 2026-12-07).
LEGACY_NAMES: Mapping[str, str] = {
    "dsc": DICE,
    "challenge_dsc": CHALLENGE_DSC,
    "challenge_nsd": CHALLENGE_NSD,
}


def rename_row3d(row: Mapping[str, Any]) -> dict[str, Any]:
    """A 3D results row (metric keys as the scoring functions return them) with the current
    column names (:data:`LEGACY_NAMES` applied); order kept."""
    return {LEGACY_NAMES.get(k, k): v for k, v in row.items()}


def upgrade_results3d(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with former 3D column names mapped to the current ones (a copy when any changes).

    A table holding both names (parts of a run resumed across versions, concatenated) gets one
    column: the current one, filled from the former where it is missing."""
    old = [c for c in LEGACY_NAMES if c in df.columns]
    if not old:
        return df
    out = df.copy()
    for c in old:
        new = LEGACY_NAMES[c]
        out[new] = out[c] if new not in out.columns else out[new].fillna(out[c])
        out = out.drop(columns=c)
    return out
