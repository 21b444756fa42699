"""``interactive-3d``: the CVPR 2025 interactive 3D protocol, with 2D models through propagation.

The challenge's loop (:mod:`sambench.volumes.clicks3d`): an optional initial 3D box (step 0),
then ``config.steps`` (5) corrective clicks, each from the current 3D prediction by the
challenge's rule (largest 26-connected error component, EDT maximum, seeded tie-break). Every
model in sambench is a 2D promptable model, so each step is adapted to slices (the adaptation,
docs/volumes-interactive.md):

- State: the current SxHxW prediction (a :class:`~sambench.volumes.sparse.SparseMask`: only
  the slices predicted are held) and the clicks so far per slice (points (X, Y), labels 1/0).
- Streamed: the ground truth is read on the union crop of the object's bounding box and the
  prediction's (padded by 1 voxel), never whole; every voxel where the two differ lies in that
  crop, so the click rule (components, EDT on the component's own padded box, the C-order
  tie-break) and the challenge's scores are exactly those of the full volume (tested).
- Step 0 (``options["initial_box"]``, default True): the challenge's box (:func:`initial_box`,
  shift drawn from ``rng`` as ``randint(0, 6)``); its 2D box prompts the key slice ``z_mid``,
  then ``propagate``'s :func:`propagate_from` carries it outward (each slice prompted with the
  box of its neighbour's mask, and its logits when ``config.use_mask_prompt``), stopping when the
  mask vanishes or leaves the box's z range ``[z_min, z_max]``. With the box, nothing outside
  that z range is ever predicted (the box is the user's statement of the object's extent).
- Or a scribble / lasso start (``options["start"]``, ``--start-with``;
  :mod:`sambench.volumes.starts`): simulated on the key slice; a lasso prompts the key slice
  with its vertices' box, a scribble with its vertices as positive clicks; then propagation over
  the whole volume (no z range). Every row records ``start``.
- Click steps: the click's slice ``z`` is predicted again from all clicks on ``z`` and a box:
  the union of the box it was last prompted with and its current mask's box, grown to hold its
  positive clicks (clicks alone when the slice has neither); boxes never shrink, the points do
  the fine work (box-trained 2D models shrink badly when a box follows an under-segmentation);
  the correction then propagates outward from ``z`` by :func:`sweep` (propagate's rule, each
  slice also given its own clicks), and stops early on a slice whose new mask agrees with the
  old one
  (DSC >= ``options["agree_dsc"]``, default 0.9): the correction has died out and the rest of
  the prediction stands. A click after which the prediction is perfect gives no click (the
  challenge's ``None``) and the step repeats the prediction.
- Per step: the runner's 3D metrics, plus ``challenge_dsc`` / ``challenge_nsd`` (the challenge's
  DSC and surfel NSD at 2 mm, gated at DSC > 0.2), the click (``click_zyx``, ``click_label``),
  seconds (the model's: encoder passes included, slices encoded once per volume; the simulated
  click and the scoring not counted, as the challenge times only inference), the slices decoded
  and the encoder passes of the step.
  DSC_AUC / NSD_AUC / finals per object come from these rows
  (:func:`sambench.analysis.volumes.interactive_table`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np

from sambench.models.base import PromptableModel
from sambench.models.volume_base import is_volume_model
from sambench.prompts.types import Prompts
from sambench.volumes.clicks3d import (
    Box3D,
    box_shift,
    initial_box,
    next_click,
    step_scores,
)
from sambench.volumes.native import apply_time_cap, native_interactive_3d, time_cap
from sambench.volumes.protocols.propagate import propagate_from
from sambench.volumes.slices import SliceOutput, SlicePredictor, mask_box
from sambench.volumes.sparse import SparseMask, union_crop
from sambench.volumes.starts import check_start, simulate_start, start_extras, start_of
from sambench.volumes.types import (
    Object3D,
    ProtocolConfig,
    Rng,
    StepResult,
    Steps,
    Volume3D,
    register_protocol,
)

DEFAULT_AGREE_DSC = 0.9


def _dsc2(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int((a & b).sum()) / s


@dataclass
class InteractiveState:
    """The protocol's state for one object: ``pred`` SxHxW (sparse), ``clicks`` per slice (list of
    ((x, y), label)), ``boxes``: the largest box (XYXY) each slice has been prompted with, the z
    range predictions may reach (inclusive)."""

    pred: SparseMask
    z_lo: int
    z_hi: int
    clicks: dict[int, list[tuple[tuple[float, float], int]]] = field(default_factory=dict)
    boxes: dict[int, np.ndarray] = field(default_factory=dict)


def _click_arrays(
    clicks: list[tuple[tuple[float, float], int]],
) -> tuple[np.ndarray | None, np.ndarray | None]:
    if not clicks:
        return None, None
    pts = np.array([c[0] for c in clicks], dtype=np.float64).reshape(-1, 2)
    return pts, np.array([c[1] for c in clicks], dtype=np.int64)


def _prompts(state: InteractiveState, k: int, box: np.ndarray | None) -> Prompts | None:
    pts, lab = _click_arrays(state.clicks.get(k, []))
    if pts is None and box is None:
        return None
    return Prompts(points=pts, labels=lab, box=box)


def sweep(
    predictor: SlicePredictor,
    state: InteractiveState,
    start: int,
    start_out: SliceOutput,
    use_mask_prompt: bool,
    agree_dsc: float | None,
) -> int:
    """A correction's propagation outward from slice ``start`` (just predicted as
    ``start_out``), both ways, writing into ``state.pred``; returns the decodes.

    :func:`~sambench.volumes.protocols.propagate.propagate_from`'s rule (slice ``n`` gets the
    box of its neighbour's new mask and, when ``use_mask_prompt``, that neighbour's logits), plus
    ``n``'s own clicks; the box is united with the box ``n`` was prompted with before, so a
    correction never shrinks a slice's box (points do the fine work); and one more stop: a new mask that agrees with the old one (DSC >=
    ``agree_dsc``; None = never). An empty new mask replaces the old one and ends the direction."""
    decodes = 0
    for d in (1, -1):
        prev, n = start_out, start + d
        while state.z_lo <= n <= state.z_hi:
            box = union_box(mask_box(prev.mask), state.boxes.get(n))
            if box is None:
                break
            state.boxes[n] = box
            pts, lab = _click_arrays(state.clicks.get(n, []))
            logits = prev.logits if use_mask_prompt else None
            prompts = Prompts(points=pts, labels=lab, box=box, mask_logits=logits)
            old = state.pred[n].copy()
            cur = predictor.predict(n, prompts)
            decodes += 1
            state.pred[n] = cur.mask
            if not cur.mask.any():
                break
            if agree_dsc is not None and old.any() and _dsc2(old, cur.mask) >= agree_dsc:
                break
            prev, n = cur, n + d
    return decodes


def union_box(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """The smallest XYXY box holding boxes ``a`` and ``b`` (either may be None)."""
    if a is None or b is None:
        return b if a is None else a
    return np.array([min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])])


def _click_box(state: InteractiveState, k: int) -> np.ndarray | None:
    """The click slice's box: its earlier prompt box and current mask's box, grown to hold its
    positive clicks; None when the slice has neither (clicks alone)."""
    box = union_box(state.boxes.get(k), mask_box(state.pred[k]))
    pos = np.array([c[0] for c in state.clicks.get(k, []) if c[1] == 1], dtype=np.float64)
    if box is None or pos.size == 0:
        return box
    pos = pos.reshape(-1, 2)
    return union_box(box, np.concatenate([pos.min(axis=0), pos.max(axis=0)]))


Crop = tuple[np.ndarray, np.ndarray, tuple[int, int, int]]
"""(gt, pred, origin) of :func:`crops`."""


def crops(volume: Volume3D, obj: Object3D, pred: SparseMask) -> Crop:
    """(gt, pred, origin): the object's ground truth and ``pred`` (dense bool) on the union
    crop of the object's bounding box and the prediction's, padded by 1 voxel and clipped
    (:func:`~sambench.volumes.masks.union_crop`); ``origin`` (z, y, x) is its first voxel. Only
    the label slices of the crop are read."""
    box = union_crop(obj.bbox, pred.bbox(), volume.shape)
    gt = np.asarray(volume.label[box]) == obj.label_value
    return gt, pred.crop(box), (int(box[0].start), int(box[1].start), int(box[2].start))


def _option(config: ProtocolConfig, key: str, default: object) -> object:
    return config.options.get(key, default) if config.options else default


def _box_slice(volume: Volume3D, obj: Object3D, config: ProtocolConfig) -> list[int]:
    """The slice the initial box prompts first (the middle of the object's slices, as
    :func:`~sambench.volumes.clicks3d.initial_box`), when the box is used."""
    start = start_of(config)
    if start in ("scribble", "lasso"):
        return [obj.key_slice]
    if start != "box":
        return []
    zs = volume.object_slices(obj)
    return zs[len(zs) // 2 : len(zs) // 2 + 1]


@register_protocol(
    "interactive-3d",
    "CVPR 2025 interactive 3D: optional 3D box, then 5 error-centre clicks (2D models propagate)",
    slices=_box_slice,
)
def interactive_3d(model: PromptableModel, volume: Volume3D, obj: Object3D,
                   config: ProtocolConfig, rng: Rng) -> Steps:  # fmt: skip
    """Steps 0 (box, optional) and 1..``config.steps`` (clicks); see the module docstring. A
    native 3D model (:func:`~sambench.models.volume_base.is_volume_model`) takes the prompts
    directly (:func:`~sambench.volumes.native.native_interactive_3d`); ``--time-cap-s`` applies
    to both (:func:`~sambench.volumes.native.apply_time_cap`)."""
    cap = time_cap(config)
    start = start_of(config)
    check_start(model, config)  # a class start: VISTA3D only
    if is_volume_model(model):
        steps = native_interactive_3d(model, volume, obj, config, rng)  # type: ignore[arg-type]
    else:
        steps = _lifted_2d(model, volume, obj, config, rng)
    for st in steps:
        st.extras["start"] = start
    return apply_time_cap(steps, cap, volume.shape)


def _lifted_2d(model: PromptableModel, volume: Volume3D, obj: Object3D,
               config: ProtocolConfig, rng: Rng) -> Steps:  # fmt: skip
    """The 2D model's steps, adapted to slices (the module docstring)."""
    from sambench.errors import OptionError

    start = start_of(config)
    use_box = start == "box"
    agree = _option(config, "agree_dsc", DEFAULT_AGREE_DSC)
    if agree is not None and (
        isinstance(agree, bool) or not isinstance(agree, int | float) or not 0 < agree <= 1
    ):
        raise OptionError(
            "--protocol-option", f"agree_dsc: expected a number in (0, 1] or null, got {agree!r}"
        )
    agree_dsc = None if agree is None else float(agree)
    if config.steps < 1:
        raise OptionError("--steps", f"interactive-3d needs >= 1 click step, got {config.steps}")
    s = volume.shape[0]
    predictor = SlicePredictor(model, volume, multimask=config.multimask)
    state = InteractiveState(pred=SparseMask(volume.shape), z_lo=0, z_hi=s - 1)
    results: list[StepResult] = []

    encodes = [0]

    def finish(step: int, t0: float, decodes: int, extras: dict[str, object]) -> Crop:
        """Score and record the step; returns the crops of its prediction (the next click's)."""
        seconds = time.perf_counter() - t0  # the model's time: scoring is not counted
        view = crops(volume, obj, state.pred)
        dsc, nsd = step_scores(view[0], view[1], volume.spacing)
        extras.update(challenge_dsc=dsc, challenge_nsd=nsd)
        extras["encoder_passes"] = predictor.encodes - encodes[0]
        encodes[0] = predictor.encodes
        results.append(StepResult(step, state.pred.copy(), seconds, decodes, dict(extras)))
        return view

    view = crops(volume, obj, state.pred)  # no prediction yet: the object's own crop

    if use_box:
        shift = box_shift(rng)
        box3: Box3D = initial_box(view[0], shift, origin=view[2], image_hw=volume.shape[1:])
        t0 = time.perf_counter()  # the model's time (as the challenge: prompts not counted)
        state.z_lo, state.z_hi = box3.z_min, box3.z_max
        out = predictor.predict(box3.z_mid, Prompts(box=np.array(box3.box_xyxy, dtype=np.float64)))
        reached = propagate_from(
            predictor,
            box3.z_mid,
            out,
            use_mask_prompt=config.use_mask_prompt,
            limit=(box3.z_min, box3.z_max),
        )
        for k, m in reached.items():
            state.pred[k] = m
            # the box propagate_from prompted slice k with (its neighbour's mask box)
            nb = k - 1 if k > box3.z_mid else k + 1
            used = np.array(box3.box_xyxy, np.float64) if k == box3.z_mid else mask_box(reached[nb])
            if used is not None:
                state.boxes[k] = used
        decodes = predictor.decodes
        view = finish(
            0,
            t0,
            decodes,
            {"box_zyx": json.dumps([box3.z_min, box3.z_max, *box3.box_xyxy]), "box_shift": shift},
        )
    elif start in ("scribble", "lasso"):
        drawn = simulate_start(volume, obj, start, rng)
        t0 = time.perf_counter()
        k = drawn.z
        if drawn.closed:  # a lasso: its vertices' tight box
            lasso_box = drawn.bbox_xyxy(volume.shape[1:])
            state.boxes[k] = lasso_box
            first = Prompts(box=lasso_box)
        else:  # a scribble: its vertices as positive clicks (X, Y)
            for y, x in drawn.points_yx:
                state.clicks.setdefault(k, []).append(((float(x), float(y)), 1))
            pts, lab = _click_arrays(state.clicks[k])
            first = Prompts(points=pts, labels=lab)
        out = predictor.predict(k, first)
        reached = propagate_from(predictor, k, out, use_mask_prompt=config.use_mask_prompt)
        for kk, m in reached.items():
            state.pred[kk] = m
            if kk != k:  # the box propagate_from prompted slice kk with (its neighbour's)
                used = mask_box(reached[kk - 1 if kk > k else kk + 1])
                if used is not None:
                    state.boxes[kk] = used
        view = finish(0, t0, predictor.decodes, start_extras(drawn))
    for step in range(1, config.steps + 1):
        gt, pred, origin = view  # the last step's prediction, as it scored it
        click = next_click(gt, pred)
        t0 = time.perf_counter()  # the simulated user's click is not the model's time
        if click is None:
            view = finish(step, t0, 0, {"click_zyx": None, "click_label": None})
            continue
        z, y, x = (int(c) + int(o) for c, o in zip(click.zyx, origin, strict=True))
        label = 1 if click.positive else 0
        state.clicks.setdefault(z, []).append(((float(x), float(y)), label))
        decodes = 0
        if state.z_lo <= z <= state.z_hi:
            box = _click_box(state, z)
            if box is not None:
                state.boxes[z] = box
            prompts = _prompts(state, z, box)
            assert prompts is not None  # the click itself is a prompt
            out = predictor.predict(z, prompts)
            state.pred[z] = out.mask
            decodes = 1 + sweep(predictor, state, z, out, config.use_mask_prompt, agree_dsc)
        view = finish(step, t0, decodes, {"click_zyx": json.dumps([z, y, x]), "click_label": label})
    return results
