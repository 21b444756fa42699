"""The first interaction of ``interactive-3d`` and ``effort``: box, none, scribble, lasso or class.

``options["start"]`` (the CLI's ``--start-with``) picks it; absent, ``options["initial_box"]``
(default true) gives ``box`` or ``none`` as before. ``scribble`` / ``lasso`` are simulated from
the ground truth on the object's key slice (``obj.key_slice``, the slice of largest area) by
:mod:`sambench.prompts.scribbles` with the object's generator; then the protocol's clicks follow.

- Native 3D models receive the :class:`~sambench.models.volume_base.ScribbleInteraction` /
  :class:`~sambench.models.volume_base.LassoInteraction` itself (thickness: the model's default);
  a model whose weights do not list the kind in ``supports`` is refused with one line naming
  ``--start-with`` (:func:`check_start`, before any row is written).
- 2D models lifted by propagation: a lasso becomes its vertices' tight box (XYXY, clipped to
  the slice) on the key slice, a scribble its vertices as positive clicks (no box) on the key
  slice; the key slice is predicted and propagated outward over the whole volume (no z range
  is known from a one-slice prompt), and the click steps follow as after a box.
- ``class`` (VISTA3D): the model's class prompt for the object's target
  (:class:`~sambench.models.volume_base.ClassInteraction`, the index from
  :mod:`sambench.volumes.class_prompts`), then the clicks refine it. Only a model listing
  ``"class"`` in ``supports`` takes it; any other (every 2D model) is refused by
  :func:`check_start` in one line naming ``--start-with``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from sambench.errors import OptionError
from sambench.models.volume_base import LassoInteraction, ScribbleInteraction
from sambench.prompts.scribbles import SlicePolyline, simulate
from sambench.volumes.types import Object3D, ProtocolConfig, Volume3D

START_KINDS = ("box", "none", "scribble", "lasso", "class")
START_OPTION = "start"


def start_problem(value: Any) -> str | None:
    """None when ``value`` is a valid start, else what was expected."""
    return None if value in START_KINDS else f"expected one of {', '.join(START_KINDS)}"


def start_of(config: ProtocolConfig) -> str:
    """The run's start: ``options["start"]``, else ``box``/``none`` from ``initial_box``;
    OptionError for an unknown start or ``initial_box`` given with a scribble/lasso start."""
    opts = config.options or {}
    start = opts.get(START_OPTION)
    box = opts.get("initial_box", True)
    if not isinstance(box, bool):
        raise OptionError("--protocol-option", f"initial_box: expected true or false, got {box!r}")
    if start is None:
        return "box" if box else "none"
    problem = start_problem(start)
    if problem is not None:
        raise OptionError("--start-with", f"{problem}, got {start!r}")
    if "initial_box" in opts and (start == "box") != box and start in ("box", "none"):
        raise OptionError("--start-with", f"{start} contradicts initial_box={str(box).lower()}")
    if "initial_box" in opts and start in ("scribble", "lasso", "class") and box is False:
        raise OptionError("--start-with", f"{start} contradicts initial_box=false")
    return str(start)


def check_start(model: object, config: ProtocolConfig) -> None:
    """OptionError naming ``--start-with`` when the model cannot take the start (a native
    model without the kind in ``supports``; any model but one taking class prompts for
    ``class``)."""
    start = start_of(config)
    supports = getattr(model, "supports", None)
    if start == "class" and "class" not in (supports or ()):
        name = getattr(model, "name", "the model")
        raise OptionError(
            "--start-with",
            f"class prompts are VISTA3D's (--model vista3d); {name} takes no class prompt",
        )
    if start in ("scribble", "lasso") and supports is not None and start not in supports:
        name = getattr(model, "name", "the model")
        raise OptionError(
            "--start-with",
            f"{name} cannot take a {start} (it takes: {', '.join(sorted(supports))})",
        )


def simulate_start(
    volume: Volume3D, obj: Object3D, kind: str, rng: np.random.Generator
) -> SlicePolyline:
    """The simulated scribble or lasso of ``obj`` on its key slice (reads that slice only)."""
    z = int(obj.key_slice)
    plane = volume.slice_mask(obj, z)
    p = simulate(kind, plane[None], rng)
    return SlicePolyline(z, p.points_yx, p.closed)


def to_interaction(p: SlicePolyline) -> ScribbleInteraction | LassoInteraction:
    """The native model's record of a simulated prompt."""
    if p.closed:
        return LassoInteraction(p.z, p.points_yx)
    return ScribbleInteraction(p.z, p.points_yx)


def start_extras(p: SlicePolyline) -> dict[str, Any]:
    """The row columns of a scribble/lasso start: ``start_z`` and ``start_points_yx`` (JSON)."""
    return {"start_z": p.z, "start_points_yx": json.dumps([list(v) for v in p.points_yx])}
