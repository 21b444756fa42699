"""``interactive-3d``: the CVPR 2025 loop driving 2D models through propagation.

Fast tests use an image-driven stand-in (thresholds the slice it is shown, never sees the ground
truth); the slow test runs LiteMedSAM on a few axial slices of nilearn's MNI152 brain."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from sambench.volumes import clicks3d
from sambench.volumes.protocols.interactive_3d import interactive_3d
from sambench.volumes.types import Object3D, ProtocolConfig, Volume3D
from threshold_model import ThresholdModel


def _object(volume_id: str, gt: np.ndarray) -> Object3D:
    zs, ys, xs = np.nonzero(gt)
    areas = gt.sum(axis=(1, 2))
    return Object3D(
        volume_id,
        1,
        "obj",
        int(gt.sum()),
        (int(zs.min()), int(ys.min()), int(xs.min()), int(zs.max()), int(ys.max()), int(xs.max())),
        key_slice=int(np.argmax(areas)),
        key_area=int(areas.max()),
        n_slices=int((areas > 0).sum()),
    )


def _synthetic() -> tuple[Volume3D, Object3D]:
    """An ellipsoid object (bright) and a bright distractor bar touching its box on some slices,
    plus a dark notch in the object the threshold model misses (an under-segmentation)."""
    s, h, w = 9, 40, 48
    zz, yy, xx = np.indices((s, h, w))
    gt = ((zz - 4) / 3.5) ** 2 + ((yy - 20) / 12) ** 2 + ((xx - 22) / 14) ** 2 <= 1
    image = np.full((s, h, w), 40, np.uint8)
    image[gt] = 200
    image[2:7, 8:32, 38:42] = 200  # distractor right of the object, inside the grown box
    image[3:6, 17:23, 18:26] = 90  # a dark notch inside the object
    vol = Volume3D("syn", "synthetic", "c", image, gt.astype(np.uint8), (2.0, 1.0, 1.0))
    return vol, _object("syn", gt)


def test_steps_follow_the_challenge_rule() -> None:
    vol, obj = _synthetic()
    gt = vol.mask(obj)
    steps = interactive_3d(ThresholdModel(), vol, obj, ProtocolConfig(), np.random.default_rng(0))
    assert [s.step for s in steps] == [0, 1, 2, 3, 4, 5]
    box = clicks3d.initial_box(gt, steps[0].extras["box_shift"])
    assert json.loads(steps[0].extras["box_zyx"]) == [box.z_min, box.z_max, *box.box_xyxy]
    for prev, cur in itertools.pairwise(steps):
        want = clicks3d.next_click(gt, prev.mask)
        if want is None:
            assert cur.extras["click_zyx"] is None
            continue
        assert json.loads(cur.extras["click_zyx"]) == list(want.zyx)
        assert cur.extras["click_label"] == int(want.positive)
        assert cur.n_slices_predicted >= 1
    for s in steps:
        assert s.mask.shape == vol.shape and s.mask.dtype == bool
        assert (s.extras["challenge_dsc"], s.extras["challenge_nsd"]) == pytest.approx(
            clicks3d.step_scores(gt, s.mask, vol.spacing)
        )
        # with the box, nothing is predicted outside its z range
        assert not s.mask[: box.z_min].any() and not s.mask[box.z_max + 1 :].any()
    dscs = [s.extras["challenge_dsc"] for s in steps]
    # the box step paints the distractor and misses the notch; the clicks repair it
    assert dscs[0] < 0.95 and dscs[-1] > dscs[0]
    kinds = {s.extras["click_label"] for s in steps[1:]}
    assert kinds == {0, 1}  # both an over- and an under-segmentation were corrected


def test_without_initial_box_the_first_click_is_positive_at_the_object_centre() -> None:
    vol, obj = _synthetic()
    gt = vol.mask(obj)
    cfg = ProtocolConfig(steps=3, options={"initial_box": False})
    steps = interactive_3d(ThresholdModel(), vol, obj, cfg, np.random.default_rng(0))
    assert [s.step for s in steps] == [1, 2, 3]
    first = clicks3d.next_click(gt, np.zeros_like(gt))
    assert first is not None and first.positive
    assert json.loads(steps[0].extras["click_zyx"]) == list(first.zyx)
    assert steps[0].mask.any()
    # propagation from the click's slice reached other slices
    assert np.asarray(steps[0].mask).any(axis=(1, 2)).sum() > 1


class _CropOnlyLabel:
    """A label map that serves slices and crops (recorded) and refuses to be read whole."""

    def __init__(self, arr: np.ndarray) -> None:
        self.arr, self.shape, self.dtype = arr, arr.shape, arr.dtype
        self.reads: list[tuple[int, ...]] = []

    def __getitem__(self, k: object) -> np.ndarray:
        out = self.arr[k]  # type: ignore[index]
        self.reads.append(tuple(np.shape(out)))
        return np.asarray(out)

    def __array__(self, *args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("the label was read whole")


@pytest.mark.parametrize("initial_box", [True, False])
def test_streamed_on_crops_equal_to_the_full_volume_rule(initial_box: bool) -> None:
    """A small object in a corner of a larger volume, bridged to a bright distractor far from
    it on the same slices (the stand-in's masks spread to it: over-segmentations the crop must
    hold): the clicks and scores equal the challenge rule on the full arrays, and the label is
    only ever read on crops smaller than the volume."""
    s, h, w = 12, 64, 72
    zz, yy, xx = np.indices((s, h, w))
    gt = ((zz - 4) / 2.5) ** 2 + ((yy - 12) / 7) ** 2 + ((xx - 14) / 8) ** 2 <= 1
    image = np.full((s, h, w), 30, np.uint8)
    image[gt] = 200
    image[3:6, 44:58, 50:66] = 210  # far distractor
    image[4, 10:13, 12:15] = 60  # a notch the threshold misses
    image[3:6, 12:15, 20:52] = 205  # a bright bridge to the distractor: clicks spread to it
    label = _CropOnlyLabel(gt.astype(np.uint8))
    vol = Volume3D("big", "synthetic", "c", image, label, (3.0, 0.8, 0.8))  # type: ignore[arg-type]
    obj = _object("big", gt)
    cfg = ProtocolConfig(options={"initial_box": initial_box})
    steps = interactive_3d(ThresholdModel(), vol, obj, cfg, np.random.default_rng(1))
    assert label.reads and max(np.prod(r) for r in label.reads) < gt.size
    if initial_box:
        box = clicks3d.initial_box(gt, steps[0].extras["box_shift"])
        assert json.loads(steps[0].extras["box_zyx"]) == [box.z_min, box.z_max, *box.box_xyxy]
    prev_masks = [np.zeros_like(gt)] if not initial_box else []
    prev_masks += [np.asarray(st.mask) for st in steps]
    clicked = 0
    for before, cur in zip(prev_masks, steps[1:] if initial_box else steps, strict=False):
        want = clicks3d.next_click(gt, before)
        got = cur.extras["click_zyx"]
        assert (None if got is None else json.loads(got)) == (
            None if want is None else list(want.zyx)
        )
        clicked += want is not None
    assert clicked >= 3
    for st in steps:
        assert (st.extras["challenge_dsc"], st.extras["challenge_nsd"]) == pytest.approx(
            clicks3d.step_scores(gt, np.asarray(st.mask), vol.spacing), nan_ok=True
        )


def test_initial_box_on_a_crop_equals_the_full_volume_box() -> None:
    gt = np.zeros((10, 50, 60), bool)
    gt[3:7, 40:49, 2:9] = True  # touching the bottom edge and near the left edge
    for shift in range(6):
        full = clicks3d.initial_box(gt, shift)
        crop = clicks3d.initial_box(
            gt[2:8, 39:50, 1:10], shift, origin=(2, 39, 1), image_hw=(50, 60)
        )
        assert crop == full


def test_agreement_stop_limits_the_correction_sweep() -> None:
    vol, obj = _synthetic()
    rng = np.random.default_rng(0)
    local = interactive_3d(ThresholdModel(), vol, obj, ProtocolConfig(steps=2), rng)
    rng = np.random.default_rng(0)
    full = interactive_3d(
        ThresholdModel(), vol, obj, ProtocolConfig(steps=2, options={"agree_dsc": None}), rng
    )
    assert sum(s.n_slices_predicted for s in local[1:]) <= sum(
        s.n_slices_predicted for s in full[1:]
    )


def _mni_slices(n: int = 5) -> tuple[Volume3D, Object3D]:
    """``n`` axial slices of nilearn's MNI152 T1 (1 mm) with the whole-brain label of the demo."""
    import nibabel as nib

    from sambench.demo.source import _nilearn_file, demo_label

    t1 = np.asanyarray(nib.load(_nilearn_file("t1")).dataobj)
    gm = np.asanyarray(nib.load(_nilearn_file("gm")).dataobj)
    wm = np.asanyarray(nib.load(_nilearn_file("wm")).dataobj)
    brain = demo_label(gm, wm) > 0
    z0 = 80
    img = np.transpose(t1[:, :, z0 : z0 + n], (2, 1, 0))
    lab = np.transpose(brain[:, :, z0 : z0 + n], (2, 1, 0)).astype(np.uint8)
    img = np.clip(img.astype(np.float64) / max(float(img.max()), 1.0) * 255, 0, 255).astype(
        np.uint8
    )
    vol = Volume3D("mni", "MNI152Brain", "mni152", img, lab, (1.0, 1.0, 1.0))
    return vol, _object("mni", lab.astype(bool))


@pytest.mark.slow
def test_litemedsam_on_mni152_slices() -> None:
    from sambench.models import build_model

    model = build_model("litemedsam")
    vol, obj = _mni_slices()
    gt = vol.mask(obj)
    steps = interactive_3d(model, vol, obj, ProtocolConfig(), np.random.default_rng(0))
    assert [s.step for s in steps] == [0, 1, 2, 3, 4, 5]
    dscs = [s.extras["challenge_dsc"] for s in steps]
    # a box on the brain (grey + white matter, CSF holes): LiteMedSAM gets about half of it
    # (0.53 measured), the five clicks raise it (0.69 measured)
    assert dscs[0] > 0.4 and dscs[-1] > dscs[0], dscs
    for prev, cur in itertools.pairwise(steps):
        want = clicks3d.next_click(gt, prev.mask)
        assert want is not None
        assert json.loads(cur.extras["click_zyx"]) == list(want.zyx)
    summary = clicks3d.interactive_summary(dscs, [s.extras["challenge_nsd"] for s in steps])
    assert 0 < summary["DSC_AUC"] <= 4.0
    assert all(s.seconds > 0 for s in steps)


@pytest.mark.parametrize(
    ("options", "match"),
    [({"initial_box": "yes"}, "initial_box"), ({"agree_dsc": 1.5}, "agree_dsc")],
)
def test_bad_protocol_options(options: dict[str, object], match: str) -> None:
    from sambench.errors import OptionError

    vol, obj = _synthetic()
    with pytest.raises(OptionError, match=match):
        interactive_3d(
            ThresholdModel(), vol, obj, ProtocolConfig(options=options), np.random.default_rng(0)
        )
