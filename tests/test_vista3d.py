"""VISTA3D through sambench's adapter equals MONAI's own inference path, click for click.

The network is tiny and random (MONAI's own classes, built as ``vista3d132`` builds them, with a
small SegResNetDS2 encoder), saved as a state dict the adapter loads from a file. The reference
is ``monai.apps.vista3d.inferer.point_based_window_inferer`` called directly with hand-written
inputs: the CT window scaled by hand in numpy, the (Z, Y, X) array transposed by hand to (x, y,
z), the clicks written as (x, y, z) with labels 1/0, then MONAI's
``keep_components_with_positive_points`` (what ``VistaPostTransformd`` does for points-only
prompts) thresholded at 0. A wrong axis order, a flipped label, a lost click or a wrong window
changes a mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("monai.apps.vista3d.inferer")

from sambench.errors import OptionError
from sambench.models.checkpoints import CheckpointError
from sambench.models.vista3d import A_MAX, A_MIN, build_network, build_vista3d_adapter
from sambench.models.volume_base import (
    BoxInteraction,
    PointInteraction,
    ScribbleInteraction,
    VolumeImage,
    model_kind,
)
from sambench.models.volume_registry import build_volume_model

SHAPE = (24, 28, 32)  # (Z, Y, X), all different: an axis mix-up changes shapes or masks
PATCH = (16, 16, 16)  # smaller than the volume: windows around clicks, uncovered voxels


def make_tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    """A tiny random VISTA3D (encoder width 8, three levels of one block) saved as a state dict."""
    torch.manual_seed(seed)
    net = build_network(embed=8, in_channels=1, blocks_down=(1, 1, 1))
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("vista") / "tiny.pt")


def _volume(seed: int = 3) -> np.ndarray:
    """A seeded CT-like volume (HU): a bright blob in noise, partly outside the window."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    blob = ((zz - 12) ** 2 + (yy - 13) ** 2 + (xx - 17) ** 2) < 36
    return (rng.normal(-100, 400, SHAPE) + 300 * blob).astype(np.float32)


def _reference(net: torch.nn.Module, img: np.ndarray, clicks: list[tuple[int, int, int, int]]):
    """MONAI's own calls, by hand: the masks after each click ((z, y, x, label) each)."""
    from monai.apps.vista3d.inferer import point_based_window_inferer
    from monai.transforms.utils import keep_components_with_positive_points

    scaled = np.clip((img - A_MIN) / (A_MAX - A_MIN), 0.0, 1.0).astype(np.float32)
    inp = torch.from_numpy(np.ascontiguousarray(scaled.transpose(2, 1, 0)))[None, None]
    out = []
    for k in range(1, len(clicks) + 1):
        coords = torch.tensor([[[x, y, z] for z, y, x, _ in clicks[:k]]])
        labels = torch.tensor([[lab for *_, lab in clicks[:k]]])
        with torch.no_grad():
            logits = point_based_window_inferer(
                inp, PATCH, net, coords, labels, class_vector=None, prompt_class=None,
                prev_mask=None, center_only=True, transpose=True,
            )  # fmt: skip
            kept = keep_components_with_positive_points(logits, coords, labels)[0, 0]
        mask = torch.nan_to_num(torch.as_tensor(kept), nan=0.0).numpy() > 0
        out.append(mask.transpose(2, 1, 0))
    return out


CLICKS = [(12, 13, 17, 1), (3, 24, 4, 1), (12, 13, 14, 0)]  # +, + far away, -


def test_adapter_equals_point_based_window_inferer(ckpt: Path) -> None:
    img = _volume()
    model = build_vista3d_adapter(ckpt, device="cpu", patch_size=PATCH)
    assert model_kind(model) == "3d"
    model.open(VolumeImage(img, (1.5, 1.5, 1.5), volume_id="v"))
    model.reset(seed=1)
    ours = [model.apply(PointInteraction(z, y, x, bool(lab))) for z, y, x, lab in CLICKS]

    ref_net = build_network(embed=8, in_channels=1, blocks_down=(1, 1, 1))
    ref_net.load_state_dict(torch.load(ckpt, weights_only=True))
    theirs = _reference(ref_net.eval(), img, CLICKS)

    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.shape == SHAPE and a.dtype == bool
        assert np.array_equal(a, b), f"click {k} {CLICKS[k]} differs ({(a != b).sum()} voxels)"
    sizes = [int(m.sum()) for m in ours]
    assert all(0 < n < img.size for n in sizes), sizes  # neither empty nor everything
    assert len({m.tobytes() for m in ours}) >= 3, sizes  # the clicks change the mask
    # reset forgets every click: the first click again gives the first mask
    model.reset()
    assert not model.mask().any()
    assert np.array_equal(model.apply(PointInteraction(*CLICKS[0][:3], True)), ours[0])
    # a negative label is not a positive one: the first click as negative differs
    model.reset()
    neg = model.apply(PointInteraction(*CLICKS[0][:3], False))
    assert not np.array_equal(neg, ours[0])


def test_slice_axis_is_undone(ckpt: Path) -> None:
    """The same anatomy given sagittally (slice_axis 0) gives the same mask, moved back: the
    adapter puts every slice-major order back into RAS (x, y, z) before MONAI sees it."""
    img = _volume(5)  # axial: canonical (z, y, x)
    model = build_vista3d_adapter(ckpt, device="cpu", patch_size=PATCH)
    model.open(VolumeImage(img, (1.5, 1.5, 1.5), slice_axis=2))
    axial = model.apply(PointInteraction(12, 13, 17, True))
    sag = np.moveaxis(img, 2, 0)  # slice-major for slice_axis 0 (io.slice_major)
    model.open(VolumeImage(np.ascontiguousarray(sag), (1.5, 1.5, 1.5), slice_axis=0))
    got = model.apply(PointInteraction(17, 12, 13, True))  # (x, z, y) in sagittal slice-major
    assert got.shape == sag.shape
    assert axial.any()
    assert np.array_equal(np.moveaxis(got, 0, 2), axial)


def test_resampling_to_1_5_mm(ckpt: Path) -> None:
    """Anisotropic voxels are resampled to 1.5 mm: clicks land where the mm say, masks come
    back on the source grid."""
    model = build_vista3d_adapter(ckpt, device="cpu", patch_size=PATCH)
    img = _volume(7)
    model.open(VolumeImage(img, (3.0, 1.5, 0.75)))  # (z, y, x) mm
    inp = model._need_open()
    assert tuple(inp.shape[-3:]) == (16, 28, 47)  # MONAI: (n - 1) * mm / 1.5 + 1, floored
    assert model.grid_point(PointInteraction(4, 6, 10)) == (5, 6, 8)
    mask = model.apply(PointInteraction(12, 13, 17, True))
    assert mask.shape == SHAPE and mask.dtype == bool and mask.any()


def test_box_and_scribble_are_refused(ckpt: Path) -> None:
    model = build_volume_model("vista3d", ckpt, device="cpu")
    assert model.supports == frozenset({"point", "class"})
    model.open(VolumeImage(_volume(), (1.5, 1.5, 1.5)))
    for rec in (BoxInteraction(10, 5, 6, 10, 20, 22), BoxInteraction(8, 5, 6, 14, 20, 22),
                ScribbleInteraction(12, ((8, 10), (8, 20))), ):  # fmt: skip
        with pytest.raises(OptionError) as e:
            model.apply(rec)
        msg = str(e.value)
        assert msg.startswith("--model: vista3d takes 3D points only") and "\n" not in msg
        assert rec.kind in msg and "initial_box=false" in msg


def test_bad_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="--checkpoint"):
        build_volume_model("vista3d", None, device="cpu")
    text = tmp_path / "model.pt"
    text.write_text("not weights\n")
    other = tmp_path / "other.pt"
    torch.save({"encoder.weight": torch.zeros(3)}, other)
    wrong = tmp_path / "wrong.pt"
    sd = build_network(embed=8, in_channels=1, blocks_down=(1, 1, 1)).state_dict()
    sd.pop("point_head.mask_tokens.weight")
    torch.save(sd, wrong)
    for path, words in ((text, "text"), (other, "not a VISTA3D state dict"),
                        (wrong, "missing keys"), (tmp_path / "absent.pt", "not found")):  # fmt: skip
        with pytest.raises(CheckpointError) as e:
            build_volume_model("vista3d", path, device="cpu")
        msg = str(e.value)
        assert msg.startswith(f"--checkpoint {path}") and "\n" not in msg, msg
        assert words in msg, msg


def test_info_records_the_licence(ckpt: Path) -> None:
    model = build_volume_model("vista3d", ckpt, device="cpu")
    info = model.info()
    assert "NVIDIA License, non-commercial" in info["license"]
    assert info["architecture"] == {"embed": 8, "in_channels": 1, "blocks_down": [1, 1, 1],
                                    "n_classes": 512}  # fmt: skip
    assert info["package"].startswith("monai ") and info["checkpoint"] == str(ckpt)
    assert len(info["checkpoint_sha256"]) == 64
    assert info["patch_size"] == [128, 128, 128] and info["spacing_mm"] == [1.5, 1.5, 1.5]


def test_protocols_start_from_clicks_on_a_clicks_only_model() -> None:
    """interactive-3d and effort give a model without boxes (as VISTA3D) no box step: its
    first interaction is a click, and effort counts clicks as the interactions."""
    from sambench.volumes.protocols.effort import effort
    from sambench.volumes.protocols.interactive_3d import interactive_3d
    from sambench.volumes.types import ProtocolConfig
    from test_effort_3d import BallModel
    from test_interactive_3d import _synthetic

    class ClicksOnly(BallModel):
        supports = frozenset({"point"})

        def apply(self, i):  # type: ignore[no-untyped-def]
            assert isinstance(i, PointInteraction), i
            return super().apply(i)

    vol, obj = _synthetic()
    model = ClicksOnly()
    model.open(VolumeImage(np.asarray(vol.image, np.float32), vol.spacing))
    steps = interactive_3d(model, vol, obj, ProtocolConfig(steps=3), np.random.default_rng(5))
    assert [st.step for st in steps] == [1, 2, 3]
    assert all("box_kind" not in st.extras for st in steps)
    got = effort(model, vol, obj, ProtocolConfig(options={"budgets": [1, 3]}),
                 np.random.default_rng(5))  # fmt: skip
    assert [st.extras["interactions"] for st in got] == [1, 3]
    for st, k in zip(got, (1, 3), strict=True):  # budget k = the loop after k clicks
        np.testing.assert_array_equal(np.asarray(st.mask), np.asarray(steps[k - 1].mask))
    assert np.asarray(got[0].mask).any()
