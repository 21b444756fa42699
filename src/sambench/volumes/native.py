"""Native 3D models in the 3D protocols: open the source volume once, run the CVPR 2025 loop.

A native model (:class:`~sambench.models.volume_base.VolumeModel`: nnInteractive ...) takes the
whole volume and returns whole 3D masks, so no slice strategy is needed: the protocol's prompts
go to it directly.

- :func:`open_volume`: the runner calls it once per volume; the model receives the SOURCE
  intensities (:func:`~sambench.volumes.io.read_source_intensities`: raw HU for CT), on the
  prepared grid and voxel order, with the (z, y, x) spacing.
- :func:`native_interactive_3d`: the ``interactive-3d`` protocol on a native model. Step 0: the
  challenge's initial box (:func:`~sambench.volumes.clicks3d.initial_box`, the same shift as
  for 2D models), given as a 3D box ``[z_min, z_max] x`` the key slice's box when the weights
  accept 3D boxes, else as the 2D box on the key slice ``z_mid`` (``box_kind`` says which);
  then ``config.steps`` clicks, each from the current prediction by the challenge's rule
  (:func:`~sambench.volumes.clicks3d.next_click`), added to the model's running session (the
  model keeps its previous prediction and every interaction, as in the authors' GUIs).
  ``options["initial_box"] = false`` (or ``options["start"] = "none"``) starts with the first
  click instead; ``options["start"]`` ``"scribble"`` / ``"lasso"`` (``--start-with``) starts
  with a scribble or lasso simulated on the key slice (:mod:`sambench.volumes.starts`);
  ``"class"`` (VISTA3D) with the model's class prompt for the object's target (the index from
  :mod:`sambench.volumes.class_prompts`; step 0 records it as ``class_label``), which the
  clicks then refine. Every step records ``start``.
  A model that takes no box at all (VISTA3D: :attr:`supports` without ``box2d``/``box3d``)
  starts from the first click under the default ``box`` start.
- :func:`apply_time_cap`: ``--time-cap-s`` (the challenge's 90 s per class; default off), for
  2D and native models alike: once the model's cumulative seconds for an object pass the cap,
  that step and every later one are scored as an empty prediction (``over_time_cap`` True).
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from sambench.errors import OptionError
from sambench.models.volume_base import (
    BoxInteraction,
    ClassInteraction,
    Interaction,
    PointInteraction,
    VolumeImage,
    VolumeModel,
)
from sambench.volumes.class_prompts import class_label, missing_target
from sambench.volumes.clicks3d import box_shift, initial_box, next_click, step_scores
from sambench.volumes.io import read_source_intensities
from sambench.volumes.sparse import SparseMask, union_crop
from sambench.volumes.starts import (
    check_start,
    simulate_start,
    start_extras,
    start_of,
    to_interaction,
)
from sambench.volumes.types import Object3D, ProtocolConfig, Rng, StepResult, Steps, Volume3D

TIME_CAP_OPTION = "time_cap_s"


def volume_image(volume: Volume3D) -> VolumeImage:
    """The :class:`VolumeImage` of ``volume``: its source intensities, spacing, slice axis."""
    return VolumeImage(
        intensities=read_source_intensities(volume),
        spacing=volume.spacing,
        slice_axis=volume.slice_axis,
        volume_id=volume.volume_id,
        source=volume.source_image,
    )


def check_shape(
    model: VolumeModel, volume_id: str, source: str, shape: tuple[int, int, int]
) -> None:
    """OptionError naming ``--model`` when a (Z, Y, X) ``shape`` volume is larger than the
    model's crop (``max_shape``, None: any size)."""
    limit = getattr(model, "max_shape", None)
    if limit is not None and any(s > m for s, m in zip(shape, limit, strict=True)):
        raise OptionError(
            "--model",
            f"{model.name} takes volumes up to {tuple(limit)} voxels (Z, Y, X) whole; "
            f"{volume_id} ({source}) is {tuple(shape)}; crop it or use a model that slides "
            "its window",
        )


def check_fits(model: VolumeModel, volume: Volume3D) -> None:
    """:func:`check_shape` of a read volume."""
    check_shape(model, volume.volume_id, volume.source_image, volume.shape)


def open_volume(model: VolumeModel, volume: Volume3D) -> None:
    """Check the size, then ``model.open`` the volume's source intensities."""
    check_fits(model, volume)
    model.open(volume_image(volume))


def _dense_to_sparse(mask: np.ndarray) -> SparseMask:
    out = SparseMask(tuple(int(v) for v in mask.shape))  # type: ignore[arg-type]
    for k in np.nonzero(mask.any(axis=(1, 2)))[0]:
        out[int(k)] = mask[k]
    return out


def _crops(
    volume: Volume3D, obj: Object3D, pred: SparseMask
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    box = union_crop(obj.bbox, pred.bbox(), volume.shape)
    gt = np.asarray(volume.label[box]) == obj.label_value
    return gt, pred.crop(box), (int(box[0].start), int(box[1].start), int(box[2].start))


def takes_box(model: object) -> bool:
    """False for a native model that accepts no box at all (VISTA3D: clicks only), else True
    (every 2D model takes a box; a native model with ``box2d`` or ``box3d``)."""
    supports = getattr(model, "supports", None)
    return supports is None or bool({"box2d", "box3d"} & set(supports))


def _option(config: ProtocolConfig, key: str, default: object) -> object:
    return config.options.get(key, default) if config.options else default


def native_interactive_3d(
    model: VolumeModel, volume: Volume3D, obj: Object3D, config: ProtocolConfig, rng: Rng
) -> Steps:
    """The ``interactive-3d`` steps of ``obj`` on a native model already opened on ``volume``
    (see the module docstring); the step's ``seconds`` are the model's call only."""
    start = start_of(config)
    check_start(model, config)
    if config.steps < 1:
        raise OptionError("--steps", f"interactive-3d needs >= 1 click step, got {config.steps}")
    if start == "box" and not takes_box(model):
        start = "none"  # a clicks-only model (VISTA3D): the protocol starts from the clicks
    model.reset(seed=int(rng.integers(2**32)))  # type: ignore[call-arg]
    results: list[StepResult] = []
    pred = SparseMask(volume.shape)

    def run(interaction: Interaction) -> tuple[SparseMask, float]:
        t0 = time.perf_counter()
        mask = model.apply(interaction)
        return _dense_to_sparse(mask), time.perf_counter() - t0

    def finish(step: int, seconds: float, extras: dict[str, Any]) -> None:
        gt, p, _ = _crops(volume, obj, pred)
        dsc, nsd = step_scores(gt, p, volume.spacing)
        extras.update(challenge_dsc=dsc, challenge_nsd=nsd, encoder_passes=0)
        n = sum(1 for _ in pred.slices())
        results.append(StepResult(step, pred.copy(), seconds, n, extras))

    if start in ("scribble", "lasso"):
        drawn = simulate_start(volume, obj, start, rng)
        pred, seconds = run(to_interaction(drawn))
        finish(0, seconds, start_extras(drawn))
    elif start == "class":
        label = class_label(obj.object_name, config.options)
        if label is None:
            raise missing_target(obj.object_name)
        pred, seconds = run(ClassInteraction(label))
        finish(0, seconds, {"class_label": label})
    elif start == "box":
        gt, _, origin = _crops(volume, obj, pred)
        shift = box_shift(rng)
        b = initial_box(gt, shift, origin=origin, image_hw=volume.shape[1:])
        if "box3d" in model.supports:
            box = BoxInteraction(b.z_min, b.y_min, b.x_min, b.z_max, b.y_max, b.x_max)
        else:
            box = BoxInteraction(b.z_mid, b.y_min, b.x_min, b.z_mid, b.y_max, b.x_max)
        pred, seconds = run(box)
        finish(0, seconds, {"box_zyx": json.dumps([b.z_min, b.z_max, *b.box_xyxy]),
                            "box_shift": shift, "box_kind": box.kind})  # fmt: skip
    for step in range(1, config.steps + 1):
        gt, p, origin = _crops(volume, obj, pred)
        click = next_click(gt, p)
        if click is None:  # perfect: the challenge gives no click; the prediction stands
            finish(step, 0.0, {"click_zyx": None, "click_label": None})
            continue
        z, y, x = (int(c) + int(o) for c, o in zip(click.zyx, origin, strict=True))
        pred, seconds = run(PointInteraction(z, y, x, click.positive))
        finish(step, seconds, {"click_zyx": json.dumps([z, y, x]),
                               "click_label": int(click.positive)})  # fmt: skip
    return results


def time_cap(config: ProtocolConfig) -> float | None:
    """``options["time_cap_s"]`` (seconds > 0), or None (off)."""
    cap = _option(config, TIME_CAP_OPTION, None)
    if cap is None:
        return None
    if isinstance(cap, bool) or not isinstance(cap, int | float) or not cap > 0:
        raise OptionError("--time-cap-s", f"expected seconds > 0, got {cap!r}")
    return float(cap)


def apply_time_cap(steps: Steps, cap: float | None, shape: tuple[int, int, int]) -> Steps:
    """The steps with every step from the one whose cumulative ``seconds`` pass ``cap`` on
    replaced by an empty prediction (``over_time_cap`` True; its seconds kept); unchanged when
    ``cap`` is None. Every step gets ``cumulative_seconds``."""
    total, over = 0.0, False
    out: Steps = []
    for st in steps:
        total += float(st.seconds)
        over = over or (cap is not None and total > cap)
        extras = {**st.extras, "cumulative_seconds": total, "over_time_cap": over}
        mask = SparseMask(shape) if over else st.mask
        if over:
            extras.update(challenge_dsc=0.0, challenge_nsd=0.0)
        out.append(StepResult(st.step, mask, st.seconds, st.n_slices_predicted, extras))
    return out
