"""nnInteractive through sambench's adapter equals the package's own session, call for call.

The model folder is tiny and random (tests/nninteractive_tiny.py: built with the package's own
network builder from nnU-Net plans); the reference is ``nnInteractiveInferenceSession`` called
directly with hand-written arguments (the scribble and lasso images drawn by hand, not by
sambench's rasterizer), so a wrong axis order, an off-by-one box bound, a sign or a lost
interaction in the adapter changes a mask.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("nnInteractive.inference.inference_session")

from nninteractive_tiny import make_tiny_folder
from sambench.errors import DataError, OptionError
from sambench.models.checkpoints import CheckpointError
from sambench.models.volume_base import (
    BoxInteraction,
    InitialMaskInteraction,
    LassoInteraction,
    PointInteraction,
    ScribbleInteraction,
    VolumeImage,
    model_kind,
)
from sambench.models.volume_registry import build_volume_model

SHAPE = (32, 32, 32)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_folder(tmp_path_factory.mktemp("nnint") / "m", license_text="CC BY-NC-SA 4.0")


def _volume(seed: int = 3) -> np.ndarray:
    """A seeded CT-like volume (HU-ish floats): a bright blob in noise."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    blob = ((zz - 15) ** 2 + (yy - 14) ** 2 + (xx - 17) ** 2) < 49
    return (rng.normal(-100, 40, SHAPE) + 300 * blob).astype(np.float32)


def _reference_session(folder: Path):
    """The authors' session, made and loaded exactly as their docs say (their own load)."""
    from nnInteractive.inference.inference_session import nnInteractiveInferenceSession

    s = nnInteractiveInferenceSession(
        device=torch.device("cpu"),
        use_torch_compile=False,
        verbose=False,
        torch_n_threads=torch.get_num_threads(),
        do_autozoom=True,
        enable_undo=False,
    )
    s.initialize_from_trained_model_folder(str(folder))
    return s


def test_adapter_equals_session_call_for_call(folder: Path) -> None:
    img = _volume()
    init = np.zeros(SHAPE, bool)
    init[12:18, 10:20, 12:22] = True
    scribble = np.zeros(SHAPE, np.uint8)
    scribble[12, 8, 10:21] = 1  # the polyline (8, 10) -> (8, 20) on slice 12, 1 px wide
    lasso = np.zeros(SHAPE, np.uint8)
    lasso[14, 8:21, 8:21] = 1  # the closed square (8, 8) (8, 20) (20, 20) (20, 8), filled
    coronal = np.zeros(SHAPE, np.uint8)
    coronal[10, 14, 8:16] = 1  # on the plane y = 14: (z, x) = (10, 8) -> (10, 15), 1 px wide
    sagittal = np.zeros(SHAPE, np.uint8)
    sagittal[9:18, 10:19, 12] = 1  # on the plane x = 12: the (z, y) square (9, 10)..(17, 18)
    steps = [  # (sambench's record, the same call on the session)
        (PointInteraction(15, 14, 17, True),
         lambda s: s.add_point_interaction((15, 14, 17), include_interaction=True)),
        (BoxInteraction(10, 5, 6, 10, 20, 22),
         lambda s: s.add_bbox_interaction([[10, 11], [5, 21], [6, 23]], include_interaction=True)),
        (ScribbleInteraction(12, ((8, 10), (8, 20)), positive=False, thickness=1),
         lambda s: s.add_scribble_interaction(scribble, include_interaction=False)),
        (LassoInteraction(14, ((8, 8), (8, 20), (20, 20), (20, 8))),
         lambda s: s.add_lasso_interaction(lasso, include_interaction=True)),
        (ScribbleInteraction(14, ((10, 8), (10, 15)), thickness=1, axis=1),
         lambda s: s.add_scribble_interaction(coronal, include_interaction=True)),
        (LassoInteraction(12, ((9, 10), (9, 18), (17, 18), (17, 10)), positive=False, axis=2),
         lambda s: s.add_lasso_interaction(sagittal, include_interaction=False)),
        (BoxInteraction(8, 9, 10, 22, 19, 24),
         lambda s: s.add_bbox_interaction([[8, 23], [9, 20], [10, 25]], include_interaction=True)),
        (InitialMaskInteraction(init, refine=True),
         lambda s: s.add_initial_seg_interaction(init.astype(np.uint8), run_prediction=True)),
    ]  # fmt: skip
    model = build_volume_model("nninteractive", folder, device="cpu")
    assert model_kind(model) == "3d"
    model.open(VolumeImage(img, (1.0, 1.0, 1.0), volume_id="v"))
    model.reset(seed=7)
    ours = [model.apply(rec) for rec, _ in steps]

    ref = _reference_session(folder)
    ref.set_image(img[None])
    target = torch.zeros(SHAPE, dtype=torch.uint8)
    ref.set_target_buffer(target)
    np.random.seed(7)  # noqa: NPY002 (the session's refinement draws from it)
    ref.reset_interactions()
    theirs = []
    for _, call in steps:
        call(ref)
        theirs.append(target.numpy() > 0)

    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.shape == SHAPE and a.dtype == bool
        assert np.array_equal(a, b), f"step {k} ({steps[k][0].kind}) differs"
    # the masks are neither trivial nor all alike: the comparison can fail
    sizes = [int(m.sum()) for m in ours]
    assert all(0 < n < img.size for n in sizes), sizes
    assert len({m.tobytes() for m in ours}) >= 4
    # reset forgets every interaction: the first call again gives the first mask
    model.reset(seed=7)
    assert not model.mask().any()
    assert np.array_equal(model.apply(steps[0][0]), ours[0])


def test_scribble_width_is_the_planes_preferred_thickness(folder: Path) -> None:
    """A scribble normal to axis a is as wide as the larger preferred thickness of the other two
    axes (the weights declare it per (z, y, x) axis)."""
    from types import SimpleNamespace

    from sambench.models.nninteractive import NnInteractiveAdapter

    session = SimpleNamespace(supported_interactions={"scribble": True},
                              supports_initial_label=False,
                              preferred_scribble_thickness=[1, 2, 4])  # fmt: skip
    adapter = NnInteractiveAdapter(session, folder, "cpu")
    assert adapter.scribble_thicknesses == (4, 4, 2) and adapter.scribble_thickness == 4
    assert build_volume_model("nninteractive", folder).scribble_thicknesses == (2, 2, 2)  # type: ignore[attr-defined]


def test_licence_and_info(folder: Path, tmp_path: Path) -> None:
    model = build_volume_model("nninteractive", folder, device="cpu")
    info = model.info()
    assert info["license"] == "CC BY-NC-SA 4.0"
    assert info["model_kind"] == "3d" and info["patch_size"] == [64, 64, 64]
    assert {"point", "box2d", "box3d", "scribble", "lasso", "initial_mask"} <= model.supports
    bare = make_tiny_folder(tmp_path / "nolicence", bbox3d=False)
    m2 = build_volume_model("nninteractive", bare, device="cpu")
    assert m2.info()["license"] == "!!MISSING!!"  # the session's marker for an unknown licence
    assert "box3d" not in m2.supports
    m2.open(VolumeImage(_volume(), (1.0, 1.0, 1.0)))
    m2.reset(seed=0)
    with pytest.raises(OptionError, match="box3d"):
        m2.apply(BoxInteraction(8, 9, 10, 22, 19, 24))


@pytest.mark.parametrize(
    ("remove", "expect"),
    [
        ("plans.json", "lacks plans.json"),
        ("inference_info.json", "lacks inference_info.json"),
        ("fold_0/checkpoint_final.pth", "lacks fold_<k>/checkpoint_final.pth"),
    ],
)
def test_bad_folder_names_the_layout(tmp_path: Path, remove: str, expect: str) -> None:
    f = make_tiny_folder(tmp_path / "m")
    (f / remove).unlink()
    with pytest.raises(DataError, match="expected an nnInteractive model folder") as e:
        build_volume_model("nninteractive", f, device="cpu")
    assert expect in str(e.value) and str(f) in str(e.value)
    assert "\n" not in str(e.value)


def test_not_a_folder_and_no_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is not a folder"):
        build_volume_model("nninteractive", tmp_path / "missing", device="cpu")
    with pytest.raises(OptionError, match="--checkpoint"):
        build_volume_model("nninteractive", None, device="cpu")
    with pytest.raises(OptionError, match="unknown 3D model"):
        build_volume_model("nnint", tmp_path, device="cpu")


def test_checkpoint_loads_weights_only(tmp_path: Path) -> None:
    """The session asks torch.load for weights_only=False; sambench forces True: numpy scalars
    of the training log load, any other object is refused, naming the file."""
    from fractions import Fraction

    f = make_tiny_folder(tmp_path / "m", extra={"payload": Fraction(1, 3)})
    ckpt = f / "fold_0" / "checkpoint_final.pth"
    assert isinstance(torch.load(ckpt, weights_only=False)["payload"], Fraction)  # plain load
    with pytest.raises(CheckpointError, match=r"fractions\.Fraction") as e:
        build_volume_model("nninteractive", f, device="cpu")
    assert str(ckpt) in str(e.value)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt, weights_only=True)
