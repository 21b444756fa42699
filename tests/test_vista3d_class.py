"""VISTA3D class prompts through sambench's adapter equal MONAI's own calls, step for step.

The network is the tiny random VISTA3D of ``test_vista3d`` (MONAI's own classes). The reference
is written by hand from the bundle's ``scripts/inferer.py`` / ``scripts/evaluator.py`` (model-zoo
``models/vista3d``, bundle 0.5.7): the CT window scaled in numpy, the (Z, Y, X) array transposed
by hand to (x, y, z), then

- class only: ``SlidingWindowInfererAdapt(roi_size, sw_batch_size=1, with_coord=True,
  padding_mode="replicate")`` called with ``class_vector = prompt_class = [[label]]`` and
  ``transpose=True``; the mask is the logits > 0 (``VistaPostTransformd`` with a
  ``label_prompt`` thresholds at 0 and writes the label);
- class + clicks: ``point_based_window_inferer`` with every click so far as (x, y, z), labels
  1/0 (3/2 for a class of the bundle pre-transform's ``special_index``, converted here by hand),
  ``class_vector = prompt_class = [[label]]`` and ``prev_mask`` = the class-only logits.

A wrong axis order, a lost click, a wrong special label, a missing ``prev_mask`` or the wrong
head changes a mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("monai.apps.vista3d.inferer")

from sambench.errors import OptionError
from sambench.models.vista3d import A_MAX, A_MIN, build_network, build_vista3d_adapter
from sambench.models.vista3d_labels import CLASS_PROMPT_LABELS, DEFAULT_CLASS_MAP
from sambench.models.volume_base import ClassInteraction, PointInteraction, VolumeImage
from test_vista3d import SHAPE, _volume, make_tiny_checkpoint

PATCH = (24, 24, 16)  # (x, y, z) voxels: 8 sliding windows over the (32, 28, 24) volume, and
# each click's window leaves voxels uncovered (there the class-only logits stand)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("vista_class") / "tiny.pt")


def _net(ckpt: Path) -> torch.nn.Module:
    net = build_network(embed=8, in_channels=1, blocks_down=(1, 1, 1))
    net.load_state_dict(torch.load(ckpt, weights_only=True))
    return net.eval()


def _input(img: np.ndarray) -> torch.Tensor:
    scaled = np.clip((img - A_MIN) / (A_MAX - A_MIN), 0.0, 1.0).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(scaled.transpose(2, 1, 0)))[None, None]


def _class_logits(net: torch.nn.Module, inp: torch.Tensor, label: int) -> torch.Tensor:
    from monai.inferers import SlidingWindowInfererAdapt

    cv = torch.tensor([[label]])
    sw = SlidingWindowInfererAdapt(roi_size=PATCH, sw_batch_size=1, with_coord=True,
                                   padding_mode="replicate")  # fmt: skip
    with torch.no_grad():
        out = sw(inp, net, transpose=True, point_coords=None, point_labels=None,
                 class_vector=cv, prompt_class=cv, prev_mask=None, labels=None,
                 label_set=None)  # fmt: skip
    return torch.as_tensor(out)


def _zyx(logits: torch.Tensor) -> np.ndarray:
    """[1, 1, x, y, z] logits -> the (Z, Y, X) mask of logits > 0."""
    return (torch.as_tensor(logits)[0, 0].numpy() > 0).transpose(2, 1, 0)


def _with_clicks(net: torch.nn.Module, inp: torch.Tensor, auto: torch.Tensor, label: int,
                 clicks: list[tuple[int, int, int, int]], special: bool) -> np.ndarray:  # fmt: skip
    """The mask after the class prompt and ``clicks`` ((z, y, x, label) each)."""
    from monai.apps.vista3d.inferer import point_based_window_inferer

    cv = torch.tensor([[label]])
    coords = torch.tensor([[[x, y, z] for z, y, x, _ in clicks]])
    labels = torch.tensor([[lab + 2 if special else lab for *_, lab in clicks]])
    with torch.no_grad():
        logits = point_based_window_inferer(
            inp, PATCH, net, coords, labels, class_vector=cv, prompt_class=cv,
            prev_mask=auto.clone(), center_only=True, transpose=True,
        )  # fmt: skip
    return _zyx(logits)


CLICKS = [(12, 13, 17, 1), (3, 24, 4, 0)]  # +, - far away


@pytest.mark.parametrize(("label", "special"), [(3, False), (25, True)])  # spleen, hepatic vessel
def test_class_then_clicks_equal_monai(ckpt: Path, label: int, special: bool) -> None:
    img = _volume()
    model = build_vista3d_adapter(ckpt, device="cpu", patch_size=PATCH)
    model.open(VolumeImage(img, (1.5, 1.5, 1.5), volume_id="v"))
    model.reset(seed=1)
    ours = [model.apply(ClassInteraction(label))]
    ours += [model.apply(PointInteraction(z, y, x, bool(lab))) for z, y, x, lab in CLICKS]
    net, inp = _net(ckpt), _input(img)
    auto = _class_logits(net, inp, label)
    theirs = [_zyx(auto)]
    theirs += [_with_clicks(net, inp, auto, label, CLICKS[:k], special) for k in (1, 2)]
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.shape == SHAPE and a.dtype == bool
        assert np.array_equal(a, b), f"step {k} of class {label} differs ({(a != b).sum()} voxels)"
    sizes = [int(m.sum()) for m in ours]
    assert all(0 < n < img.size for n in sizes), sizes  # neither empty nor everything
    assert len({m.tobytes() for m in ours}) == len(ours), sizes  # every click changes the mask
    # the class prompt is not a points-only request: the first click alone differs
    model.reset()
    alone = model.apply(PointInteraction(*CLICKS[0][:3], True))
    assert not np.array_equal(alone, ours[1])
    # a special class's clicks are 3/2 (the bundle's VistaPreTransformd), not 1/0
    if special:
        wrong = _with_clicks(net, inp, auto, label, CLICKS[:1], special=False)
        assert not np.array_equal(wrong, ours[1])


@pytest.mark.slow  # 20 to 45 s on the shared CPU: four class-only sliding windows
def test_the_class_matters_and_reset_forgets_it(ckpt: Path) -> None:
    img = _volume(4)
    model = build_vista3d_adapter(ckpt, device="cpu", patch_size=PATCH)
    model.open(VolumeImage(img, (1.5, 1.5, 1.5)))
    liver = model.apply(ClassInteraction(1))
    spleen = model.apply(ClassInteraction(3))  # a second class prompt replaces the first
    assert not np.array_equal(liver, spleen)
    model.reset()
    assert not model.mask().any()
    # clicks given before the class are kept: the class then runs with them
    model.apply(PointInteraction(*CLICKS[0][:3], True))
    after = model.apply(ClassInteraction(3))
    model.reset()
    model.apply(ClassInteraction(3))
    assert np.array_equal(after, model.apply(PointInteraction(*CLICKS[0][:3], True)))


def test_class_prompt_on_an_anisotropic_volume(ckpt: Path) -> None:
    """The class mask comes back on the source grid from MONAI's 1.5 mm grid."""
    model = build_vista3d_adapter(ckpt, device="cpu", patch_size=(16, 16, 16))
    model.open(VolumeImage(_volume(7), (3.0, 1.5, 0.75)))
    mask = model.apply(ClassInteraction(3))
    assert mask.shape == SHAPE and mask.dtype == bool and 0 < mask.sum() < mask.size


@pytest.mark.parametrize(
    ("label", "words"),
    [(2, "group the bundle splits into its parts (14, 5)"), (20, "(28, 29, 30, 31, 32)"),
     (16, "not one it segments by class prompt"), (131, "except 2, 16, 18, 20, 21, 129"),
     (133, "expected 1..132")],
)  # fmt: skip
def test_labels_vista3d_does_not_take_are_refused(ckpt: Path, label: int, words: str) -> None:
    model = build_vista3d_adapter(ckpt, device="cpu", patch_size=PATCH)
    model.open(VolumeImage(_volume(), (1.5, 1.5, 1.5)))
    with pytest.raises(OptionError) as e:
        model.apply(ClassInteraction(label))
    msg = str(e.value)
    assert msg.startswith(f"--class-map: VISTA3D class {label} ") and "\n" not in msg, msg
    assert words in msg, msg
    with pytest.raises(ValueError, match=r"class\.label: expected an integer >= 1"):
        model.apply(ClassInteraction(0))


def test_default_map_names_classes_vista3d_takes() -> None:
    assert len(CLASS_PROMPT_LABELS) == 124  # 132 less 5 unsupported, less 3 groups
    assert set(DEFAULT_CLASS_MAP.values()) <= CLASS_PROMPT_LABELS
    assert len(set(DEFAULT_CLASS_MAP.values())) == len(DEFAULT_CLASS_MAP)
    assert all(k == " ".join(k.lower().split()) for k in DEFAULT_CLASS_MAP)
    # a few indices checked by hand against the bundle's label dictionary
    assert (DEFAULT_CLASS_MAP["liver"], DEFAULT_CLASS_MAP["spleen"],
            DEFAULT_CLASS_MAP["left kidney"], DEFAULT_CLASS_MAP["hepatic tumor"]) == (1, 3, 14, 26)  # fmt: skip


@pytest.mark.parametrize("name", ["sam_med3d", "nninteractive"])
def test_other_native_models_refuse_a_class_prompt(tmp_path: Path, name: str) -> None:
    """Only VISTA3D lists ``class`` in ``supports``; the others refuse it in one line."""
    from sambench.models.volume_registry import build_volume_model

    if name == "sam_med3d":
        pytest.importorskip("medim")
        from sam_med3d_tiny import make_tiny_checkpoint as make_smd

        path = make_smd(tmp_path / "tiny.pth")
    else:
        pytest.importorskip("nnInteractive")
        from nninteractive_tiny import make_tiny_folder

        path = make_tiny_folder(tmp_path / "m")
    model = build_volume_model(name, path, device="cpu")
    assert "class" not in model.supports
    model.open(VolumeImage(_volume(), (1.5, 1.5, 1.5)))
    model.reset()
    with pytest.raises(OptionError) as e:
        model.apply(ClassInteraction(3))
    msg = str(e.value)
    assert msg.startswith(f"--model: {name}") and "class" in msg and "\n" not in msg, msg
