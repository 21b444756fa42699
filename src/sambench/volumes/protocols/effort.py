"""``effort``: RadioActive-style equal effort, the same interaction budget for 2D and 3D models.

RadioActive (MIC-DKFZ; formerly IntRaBench) compares 2D and 3D interactive models at the same
number of user interactions, with prompts derived from the same ground truth. Here an
interaction is one prompt a user gives: the challenge's initial box (one 2D box on the key slice
with its z extent: one interaction) or one click. The loop is ``interactive-3d``'s
(:mod:`sambench.volumes.protocols.interactive_3d`) run to the largest budget, and the
prediction is recorded after ``budgets`` interactions (default 1, 3, 5, 10):

- 2D models (lifted by propagation): each click lands on the slice of the largest error
  component's distance-transform maximum (the CVPR 2025 rule, :func:`~sambench.volumes.clicks3d.
  next_click`), that slice is predicted again and the correction propagates; this is the stated
  rule by which the 2D model's prompts are placed on slices;
- native 3D models take the same box and the same click rule directly.

Rows: one per budget, ``step`` = ``interactions`` = the budget. DSC_AUC / NSD_AUC over the
budgets use the CVPR 2025 script's formula (:func:`sambench.analysis.volumes.interactive_table`
with ``protocol="effort"``: trapezoids over unit steps of the budget points, from
``challenge_dsc`` / ``challenge_nsd``). Options: ``budgets`` (a list of increasing integers >=
1), and ``initial_box``, ``agree_dsc``, ``time_cap_s``, ``start``, ``class_map`` as
``interactive-3d`` (a scribble, lasso or class start, :mod:`sambench.volumes.starts`, is
interaction 1 like the box).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

from sambench.errors import OptionError
from sambench.models.base import PromptableModel
from sambench.volumes.native import takes_box
from sambench.volumes.protocols.interactive_3d import _box_slice, interactive_3d
from sambench.volumes.starts import start_of
from sambench.volumes.types import (
    Object3D,
    ProtocolConfig,
    Rng,
    StepResult,
    Steps,
    Volume3D,
    register_protocol,
)

DEFAULT_BUDGETS = (1, 3, 5, 10)


def budgets_problem(value: Any) -> str | None:
    """None when ``value`` is a valid ``budgets`` option, else what was expected."""
    ok = (
        isinstance(value, list | tuple)
        and len(value) > 0
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
        and all(a < b for a, b in itertools.pairwise(value))
    )
    return None if ok else "expected increasing integers >= 1, e.g. [1,3,5,10]"


def budgets_of(config: ProtocolConfig) -> tuple[int, ...]:
    value = (config.options or {}).get("budgets", list(DEFAULT_BUDGETS))
    problem = budgets_problem(value)
    if problem is not None:
        raise OptionError("--protocol-option", f"budgets: {problem}, got {value!r}")
    return tuple(int(v) for v in value)


@register_protocol(
    "effort",
    "RadioActive-style equal effort: DSC/NSD after 1, 3, 5, 10 interactions (box + clicks)",
    slices=_box_slice,
)
def effort(model: PromptableModel, volume: Volume3D, obj: Object3D,
           config: ProtocolConfig, rng: Rng) -> Steps:  # fmt: skip
    """One step per budget (``step`` = interactions); see the module docstring."""
    budgets = budgets_of(config)
    # a box, scribble, lasso or class start is interaction 1; a model that takes no box (VISTA3D)
    # starts from the clicks under the default box start, as interactive-3d does
    start = start_of(config)
    use_box = start != "none" and (start != "box" or takes_box(model))
    clicks = budgets[-1] - 1 if use_box else budgets[-1]
    if clicks < 1:  # interactive-3d needs a click: run one more and keep the box's row only
        clicks = 1
    steps = interactive_3d(model, volume, obj, replace(config, steps=clicks), rng)
    out: Steps = []
    for st in steps:
        n = st.step + 1 if use_box else st.step  # interactions given so far
        if n in budgets:
            extras = {**st.extras, "interactions": n}
            out.append(StepResult(n, st.mask, st.seconds, st.n_slices_predicted, extras))
    return out
