"""SAM-Med3D through sambench's adapter equals medim's model called as the authors' inference
script calls it, click for click.

The checkpoint is tiny and random (tests/sam_med3d_tiny.py: medim's own builder, a small ViT,
the authors' 128^3 input). The reference follows ``utils/infer_utils.py::sam_model_infer`` of
uni-medical/SAM-Med3D (commit f3de1fa) by hand: the volume in torchio's RAS (x, y, z) order, a
128^3 crop centred on the first click (zero padding outside the volume), z-score over voxels
> 0, ``image_encoder`` once, then per click ``prompt_encoder(points=[all points, labels],
masks=previous low-res logits)`` and ``mask_decoder``, trilinear upsampling, sigmoid > 0.5,
pasted back. The volume is at 1.5 mm already, so no resampling enters the reference; the
resampling and paste-back geometry is tested separately on shapes with known answers.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("medim")

from sam_med3d_tiny import TINY, make_tiny_checkpoint, tiny_network
from sambench.errors import OptionError
from sambench.models.checkpoints import CheckpointError
from sambench.models.sam_med3d import (
    Crop,
    config_from_state,
    crop_around,
    crop_image,
    model_axes,
    paste_back,
    to_crop_voxel,
    zscore_positive,
)
from sambench.models.volume_base import (
    BoxInteraction,
    PointInteraction,
    ScribbleInteraction,
    VolumeImage,
    model_kind,
)
from sambench.models.volume_registry import build_volume_model
from sambench.volumes.io import slice_major

SHAPE = (40, 90, 150)  # (Z, Y, X): smaller than the crop along z and y, larger along x


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("smd") / "tiny.pth")


def _volume(seed: int = 3) -> np.ndarray:
    """A seeded CT-like (Z, Y, X) volume: a bright blob in noise, some voxels <= 0."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    blob = ((zz - 20) ** 2 + (yy - 40) ** 2 + (xx - 100) ** 2) < 100
    return (rng.normal(50, 60, SHAPE) + 300 * blob).astype(np.float32)


def _reference(net: torch.nn.Module, img_zyx: np.ndarray, clicks: list[tuple]) -> list[np.ndarray]:
    """The authors' recipe by hand (see the module docstring); clicks are (z, y, x, positive)."""
    vol = img_zyx.transpose(2, 1, 0)  # torchio ToCanonical: (x, y, z)
    first = np.array(clicks[0][:3][::-1])
    start = first - 64
    crop = np.zeros((128, 128, 128), np.float32)
    src = tuple(slice(max(0, s), min(n, s + 128)) for s, n in zip(start, vol.shape, strict=True))
    dst = tuple(slice(sl.start - s, sl.stop - s) for sl, s in zip(src, start, strict=True))
    crop[dst] = vol[src]
    t = torch.from_numpy(crop)
    m = t > 0
    t = (t - t[m].mean()) / t[m].std()  # torchio ZNormalization(masking_method=x > 0)
    out = []
    with torch.no_grad():
        emb = net.image_encoder(t[None, None])
        coords, labels = torch.zeros(1, 0, 3), torch.zeros(1, 0)
        low = torch.zeros(1, 1, 32, 32, 32)
        for z, y, x, pos in clicks:
            p = torch.tensor([[[x - start[0], y - start[1], z - start[2]]]], dtype=torch.float32)
            coords = torch.cat([coords, p], dim=1)
            labels = torch.cat([labels, torch.tensor([[int(pos)]])], dim=1)
            sparse, dense = net.prompt_encoder(points=[coords, labels], boxes=None, masks=low)
            low, _ = net.mask_decoder(
                image_embeddings=emb,
                image_pe=net.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
            )
            hr = F.interpolate(low, size=(128, 128, 128), mode="trilinear", align_corners=False)
            seg = torch.sigmoid(hr).numpy().squeeze() > 0.5
            full = np.zeros(vol.shape, bool)
            full[src] = seg[dst]
            out.append(full.transpose(2, 1, 0))
    return out


def test_adapter_equals_authors_recipe_click_for_click(ckpt: Path) -> None:
    img = _volume()
    clicks = [(20, 40, 100, True), (24, 50, 110, False), (18, 38, 95, True)]
    model = build_volume_model("sam_med3d", ckpt, device="cpu")
    assert model_kind(model) == "3d"
    model.open(VolumeImage(img, (1.5, 1.5, 1.5), volume_id="v"))
    model.reset(seed=0)
    ours = [model.apply(PointInteraction(z, y, x, p)) for z, y, x, p in clicks]
    theirs = _reference(tiny_network(), img, clicks)
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.shape == SHAPE and a.dtype == bool
        assert np.array_equal(a, b), f"click {k} differs ({int((a != b).sum())} voxels)"
    sizes = [int(m.sum()) for m in ours]  # neither empty nor full, and the clicks change it
    assert all(0 < n < img.size for n in sizes), sizes
    assert len({m.tobytes() for m in ours}) == 3
    # outside the crop (x < 36 here) the mask is background
    assert not ours[0][:, :, :36].any()
    # reset forgets the crop, the clicks and the previous mask
    model.reset(seed=1)
    assert not model.mask().any()
    assert np.array_equal(model.apply(PointInteraction(*clicks[0])), ours[0])


def test_box_is_its_centre_click_and_others_refused(ckpt: Path) -> None:
    img = _volume()
    model = build_volume_model("sam_med3d", ckpt, device="cpu")
    model.open(VolumeImage(img, (1.5, 1.5, 1.5)))
    model.reset()
    by_box = model.apply(BoxInteraction(16, 34, 94, 24, 47, 107))
    model.reset()
    assert np.array_equal(by_box, model.apply(PointInteraction(20, 40, 100, True)))
    with pytest.raises(OptionError, match="scribble"):
        model.apply(ScribbleInteraction(20, ((30, 90), (40, 100))))
    info = model.info()
    assert info["license"].startswith("code Apache-2.0") and info["crop"] == [128] * 3
    assert info["package"].startswith("medim ")


def test_click_outside_the_crop_leaves_the_mask(ckpt: Path) -> None:
    img = np.zeros((10, 10, 300), np.float32) + np.arange(300, dtype=np.float32)
    model = build_volume_model("sam_med3d", ckpt, device="cpu")
    model.open(VolumeImage(img, (1.5, 1.5, 1.5)))
    model.reset()
    first = model.apply(PointInteraction(5, 5, 20, True))
    assert np.array_equal(model.apply(PointInteraction(5, 5, 250, True)), first)
    assert model.clicks_outside_crop == 1


def test_config_inferred_from_the_tensors() -> None:
    state = tiny_network().state_dict()
    cfg = config_from_state(state)
    assert cfg == {**TINY, "image_size": 128, "vit_patch_size": 16}


# --- geometry: known answers ------------------------------------------------------------------


@pytest.mark.parametrize("slice_axis", [0, 1, 2])
def test_model_axes_give_torchio_ras_order(slice_axis: int) -> None:
    canonical_zyx = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    arr = slice_major(canonical_zyx, slice_axis)
    assert np.array_equal(arr.transpose(model_axes(slice_axis)), canonical_zyx.transpose(2, 1, 0))


def test_crop_resamples_a_ramp_exactly_and_pads_with_zeros() -> None:
    shape, spacing = (40, 30, 20), (0.75, 3.0, 1.5)  # model order
    f = np.array([1.5 / s for s in spacing])  # source voxels per 1.5 mm voxel: 2, 0.5, 1
    idx = np.mgrid[: shape[0], : shape[1], : shape[2]].astype(np.float32)
    ramp = 1.0 + 2.0 * idx[0] + 3.0 * idx[1] + 5.0 * idx[2]  # linear: interpolation is exact
    crop = crop_around((20, 10, 10), shape, spacing, size=16)
    assert crop.start == (10 - 8, 20 - 8, 10 - 8)
    out = crop_image(ramp, crop)
    grid = crop.grid_shape()
    assert grid == (20, 59, 20)  # floor((n - 1) / f) + 1
    for j in np.ndindex(out.shape):
        k = np.array(j) + np.array(crop.start)
        if all(0 <= k[a] < grid[a] for a in range(3)):
            x = k * f
            assert out[j] == pytest.approx(1 + 2 * x[0] + 3 * x[1] + 5 * x[2], rel=1e-5)
        else:
            assert out[j] == 0.0
    assert to_crop_voxel((20, 10, 10), crop) == (8, 8, 8)
    assert to_crop_voxel((39, 0, 0), crop) is None  # 1.5 mm voxel 20 > crop end 17 on axis 0


def test_paste_back_is_nearest_neighbour() -> None:
    crop = Crop(start=(-2, 3, 0), factor=(2.0, 0.5, 1.0), size=4, source_shape=(9, 5, 6))
    mask = np.zeros((4, 4, 4), bool)
    mask[2, 1, 3] = True  # grid voxel (0, 4, 3): source voxels v with round(v / f) == k
    out = paste_back(mask, crop)
    expect = np.zeros((9, 5, 6), bool)
    expect[0, 2, 3] = True  # z: round(0/2)=0 only (1/2 rounds to 1); y: v=2 -> 4; x: 3
    assert np.array_equal(out, expect)
    full = paste_back(np.ones((4, 4, 4), bool), crop)
    # z: grid 0..1 -> v in {0, 1, 2} (v/2 + .5 floored < 2); y: grid 3..6 -> v in {2, 3}; x: 0..3
    assert np.array_equal(np.argwhere(full.any((1, 2))).ravel(), [0, 1, 2])
    assert np.array_equal(np.argwhere(full.any((0, 2))).ravel(), [2, 3])
    assert np.array_equal(np.argwhere(full.any((0, 1))).ravel(), [0, 1, 2, 3])


def test_zscore_over_positive_voxels() -> None:
    x = np.array([[[0.0, -5.0], [2.0, 4.0]]], np.float32)
    out = zscore_positive(x)
    mean, std = 3.0, np.std([2.0, 4.0], ddof=1)
    assert np.allclose(out, (x - mean) / std)


# --- bad files: one line each -----------------------------------------------------------------


def test_bad_checkpoints_give_one_line(tmp_path: Path, ckpt: Path) -> None:
    from fractions import Fraction

    cases = {
        "missing.pth": None,
        "text.pth": b"not a checkpoint\n",
        "other.pth": {"model_state_dict": {"encoder.weight": torch.zeros(2)}},
    }
    msgs = {}
    for name, content in cases.items():
        p = tmp_path / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        elif content is not None:
            torch.save(content, p)
        with pytest.raises(CheckpointError) as e:
            build_volume_model("sam_med3d", p, device="cpu")
        msgs[name] = str(e.value)
        assert str(p) in msgs[name] and "\n" not in msgs[name] and "--checkpoint" in msgs[name]
    assert "not found" in msgs["missing.pth"]
    assert "a text file" in msgs["text.pth"]
    assert "no SAM-Med3D state dict" in msgs["other.pth"]
    # a state dict of another size is refused strictly (medim itself would load it partially)
    state = torch.load(ckpt, weights_only=False, map_location="cpu")["model_state_dict"]  # ours
    state = {k: v for k, v in state.items() if not k.startswith("mask_decoder.")}
    p = tmp_path / "partial.pth"
    torch.save({"model_state_dict": state}, p)
    with pytest.raises(CheckpointError, match="missing keys") as e:
        build_volume_model("sam_med3d", p, device="cpu")
    assert "\n" not in str(e.value)
    # weights-only: an object beyond tensors, numpy scalars and the training args is refused
    bad = make_tiny_checkpoint(tmp_path / "payload.pth", extra={"payload": Fraction(1, 3)})
    with pytest.raises(CheckpointError, match=r"fractions\.Fraction"):
        build_volume_model("sam_med3d", bad, device="cpu")
    with pytest.raises(pickle.UnpicklingError):
        torch.load(bad, weights_only=True)
    with pytest.raises(OptionError, match="--checkpoint"):
        build_volume_model("sam_med3d", None, device="cpu")


# --- end to end through the CLI ---------------------------------------------------------------


@pytest.mark.slow  # about 30 s on a shared CPU: prepare, interactive-3d and effort, the report
def test_cli_sam_med3d_interactive_3d_on_the_cord(ckpt: Path, tmp_path: Path) -> None:
    """``evaluate-3d --model sam_med3d`` on the spinal-cord MRI (stored P, S, R, not 1.5 mm):
    rows, model_kind, the licence in the config and the report; the saved NIfTI masks equal the
    adapter's when the recorded prompts are replayed (the box as its centre click)."""
    import json

    import nibabel as nib
    import pandas as pd

    from sambench.cli import main
    from sambench.volumes.io import load_volume_table, read_source_intensities, read_volume
    from volume_data import prepare_cord

    prepared = prepare_cord(tmp_path)
    run = tmp_path / "run"
    args = ["evaluate-3d", str(prepared), "--out", str(run), "--model", "sam_med3d",
            "--checkpoint", str(ckpt), "--protocol", "interactive-3d,effort", "--steps", "2",
            "--save-masks", "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    every = pd.read_parquet(run / "results3d.parquet")
    assert (every["model_kind"] == "3d").all() and (every["status"] == "ok").all()
    effort = every[every["protocol"] == "effort"]
    assert sorted(effort["step"]) == [1, 3, 5, 10]  # the default budgets (interactions)
    df = every[every["protocol"] == "interactive-3d"].sort_values("step")
    assert list(df["step"]) == [0, 1, 2]
    assert (df["model_kind"] == "3d").all() and (df["model"] == "sam_med3d").all()
    assert df["box_kind"].iloc[0] == "box3d"
    cfg = json.loads((run / "config-3d.json").read_text())
    assert cfg["model_info"]["license"].startswith("code Apache-2.0")
    assert cfg["model_info"]["checkpoint_sha256"]

    row = load_volume_table(prepared).iloc[0].to_dict()
    vol = read_volume(row, Path(row["_root"]))
    assert vol.spacing != (1.5, 1.5, 1.5)  # the resampling path runs
    model = build_volume_model("sam_med3d", ckpt, device="cpu")
    model.open(VolumeImage(read_source_intensities(vol), vol.spacing))
    model.reset()
    z0, z1, x0, y0, x1, y1 = json.loads(df["box_zyx"].iloc[0])
    masks = [model.apply(PointInteraction((z0 + z1) // 2, (y0 + y1) // 2, (x0 + x1) // 2))]
    for click, label in zip(df["click_zyx"].iloc[1:], df["click_label"].iloc[1:], strict=True):
        if click is None:
            masks.append(masks[-1])
            continue
        z, y, x = json.loads(click)
        masks.append(model.apply(PointInteraction(z, y, x, bool(label))))
    for (_, r), mask in zip(df.iterrows(), masks, strict=True):
        saved = np.asanyarray(nib.load(run / r["mask_path"]).dataobj).astype(bool)
        np.testing.assert_array_equal(saved.transpose(2, 1, 0), vol.to_file_zyx(mask))
    assert 0 < masks[0].sum()

    assert main(["report", str(run), "--no-overlays"]) == 0
    html = next((run / "report").glob("*.html")).read_text()
    assert "Native 3D model sam_med3d" in html and "Apache-2.0" in html
