"""``sam2-video`` returns the official SAM2VideoPredictor's masks (random-weight small Hiera-T,
``model.image_size=256``, loaded by the official ``build_sam2_video_predictor`` from a saved
checkpoint file, frames written by the test itself)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sam2", reason="the optional sam2 package is not installed")
from PIL import Image
from sam2.build_sam import build_sam2_video_predictor

from sam2_small import NAME, SMALL, small_sam2
from sambench.errors import OptionError
from sambench.models.sam2 import SAM2_CONFIGS, Sam2Adapter, build_sam2_model
from sambench.volumes.protocols.sam2_video import (
    checked_video_predictor,
    sam2_video,
    video_config,
    video_predictor,
)
from sambench.volumes.types import Object3D, ProtocolConfig, Volume3D


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Sam2Adapter, Path]:
    model = small_sam2()
    ckpt = tmp_path_factory.mktemp("sam2v") / "random_hiera_t_256.pt"
    torch.save({"model": model.state_dict()}, ckpt)
    return Sam2Adapter(NAME, model, device="cpu"), ckpt


def _volume() -> tuple[Volume3D, Object3D]:
    """A 7-slice 48x64 volume holding a bright ellipsoid (largest on slice 3)."""
    rng = np.random.default_rng(0)
    s, h, w = 7, 48, 64
    zz, yy, xx = np.indices((s, h, w))
    gt = ((zz - 3) / 3.2) ** 2 + ((yy - 24) / 14) ** 2 + ((xx - 30) / 20) ** 2 <= 1
    image = (rng.random((s, h, w)) * 50).astype(np.uint8)
    image[gt] += 160
    label = gt.astype(np.uint8)
    vol = Volume3D("v", "synthetic", "c", image, label, (3.0, 1.0, 1.0))
    zs, ys, xs = np.nonzero(gt)
    obj = Object3D(
        "v",
        1,
        "blob",
        int(gt.sum()),
        (int(zs.min()), int(ys.min()), int(xs.min()), int(zs.max()), int(ys.max()), int(xs.max())),
        key_slice=3,
        key_area=int(gt[3].sum()),
        n_slices=int(np.unique(zs).size),
    )
    return vol, obj


def _official_masks(
    ckpt: Path, image: np.ndarray, key: int, box: np.ndarray, tmp: Path
) -> np.ndarray:
    pred = build_sam2_video_predictor(
        SAM2_CONFIGS[NAME][0], ckpt_path=str(ckpt), device="cpu", hydra_overrides_extra=SMALL
    )
    for k in range(image.shape[0]):  # lossless frames (PIL decodes by content)
        Image.fromarray(np.stack([image[k]] * 3, axis=2)).save(tmp / f"{k}.jpg", format="PNG")
    out = np.zeros(image.shape, dtype=bool)
    with torch.inference_mode():
        state = pred.init_state(video_path=str(tmp))
        pred.add_new_points_or_box(state, frame_idx=key, obj_id=1, box=box)
        for idx, _, logits in pred.propagate_in_video(state, start_frame_idx=key):
            out[idx] = (logits[0, 0] > 0).numpy()
        for idx, _, logits in pred.propagate_in_video(state, start_frame_idx=key, reverse=True):
            out[idx] = (logits[0, 0] > 0).numpy()
    return out


@pytest.mark.slow
def test_sam2_video_equals_official_predictor(
    small: tuple[Sam2Adapter, Path], tmp_path: Path
) -> None:
    adapter, ckpt = small
    vol, obj = _volume()
    steps = sam2_video(adapter, vol, obj, ProtocolConfig(prompt="box"), np.random.default_rng(0))
    assert [s.step for s in steps] == [0]
    got = np.asarray(steps[0].mask)
    assert got.shape == vol.shape and got.dtype == bool
    assert steps[0].n_slices_predicted == 7 and steps[0].seconds > 0
    gt3 = vol.mask(obj)[3]
    rows, cols = np.nonzero(gt3)
    box = np.array([cols.min(), rows.min(), cols.max(), rows.max()], dtype=np.float32)
    want = _official_masks(ckpt, vol.image, 3, box, tmp_path)
    np.testing.assert_array_equal(got, want)
    # not vacuous: the random model paints some but not all voxels, differently per slice
    assert 0 < got.sum() < got.size
    assert len({got[k].tobytes() for k in range(7)}) > 1
    # a point prompt changes the result
    pt = sam2_video(adapter, vol, obj, ProtocolConfig(prompt="point"), np.random.default_rng(0))
    assert not np.array_equal(np.asarray(pt[0].mask), got)


def test_predictor_is_built_once_per_adapter(small: tuple[Sam2Adapter, Path]) -> None:
    adapter, _ = small
    assert video_predictor(adapter) is video_predictor(adapter)


def test_refuses_a_model_without_the_video_predictor() -> None:
    vol, obj = _volume()

    class NotSam2:
        name = "litemedsam"

    with pytest.raises(OptionError, match="sam2-video needs a SAM 2"):
        sam2_video(NotSam2(), vol, obj, ProtocolConfig(), np.random.default_rng(0))  # type: ignore[arg-type]


def test_medsam2_gets_the_hiera_t_video_predictor_at_its_size() -> None:
    from sambench.models.medsam2 import MedSam2Adapter

    torch.manual_seed(1)
    adapter = MedSam2Adapter("medsam2", build_sam2_model(NAME, SMALL), device="cpu")
    assert video_config(adapter) == (SAM2_CONFIGS[NAME][0], SMALL)
    pred = video_predictor(adapter)
    assert type(pred).__name__ == "SAM2VideoPredictor" and pred.image_size == 256
    for k, v in adapter.model.state_dict().items():  # the adapter's weights, every tensor
        assert torch.equal(pred.state_dict()[k], v), k


def test_weights_of_another_architecture_are_refused_naming_checkpoint(
    small: tuple[Sam2Adapter, Path],
) -> None:
    adapter, ckpt = small  # Hiera-T weights under the name of Hiera-S
    wrong = Sam2Adapter("sam2.1_hiera_s", adapter.model, device="cpu")
    with pytest.raises(OptionError) as e:
        checked_video_predictor(wrong, ckpt)
    text = str(e.value)
    assert e.value.option == "--checkpoint" and "\n" not in text
    assert str(ckpt) in text and "--model sam2.1_hiera_s" in text and "video" in text


class _ScriptedPredictor:
    """The calls :func:`iter_video_masks` makes of SAM2VideoPredictor, with scripted frames:
    frame i's logits are +1 (a full mask) when i is in ``painted``, else -1 (empty)."""

    def __init__(self, painted: set[int]) -> None:
        self.painted = painted
        self.calls: list[tuple[object, ...]] = []
        self.closed = 0

    def init_state(self, video_path: str) -> dict[str, int]:
        n = len(list(Path(video_path).iterdir()))
        self.calls.append(("init", n))
        return {"n": n}

    def add_new_mask(self, state: object, frame_idx: int, obj_id: int, mask: np.ndarray) -> None:
        self.calls.append(("mask", frame_idx, obj_id, int(mask.sum())))

    def propagate_in_video(self, state: dict[str, int], start_frame_idx: int, reverse: bool):  # type: ignore[no-untyped-def]
        order = range(start_frame_idx, -1, -1) if reverse else range(start_frame_idx, state["n"])
        try:
            for i in order:
                self.calls.append(("frame", i))
                yield i, [1], torch.full((1, 1, 4, 5), 1.0 if i in self.painted else -1.0)
        finally:
            self.closed += 1


def test_iter_video_masks_stops_each_direction_at_its_first_empty_mask() -> None:
    from sambench.volumes.protocols.sam2_video import iter_video_masks

    image = np.zeros((9, 4, 5), np.uint8)
    start = np.zeros((4, 5), bool)
    start[1:3, 1:4] = True
    pred = _ScriptedPredictor({0, 2, 3, 4, 5, 6, 8})  # empty on 1 and 7
    got = list(iter_video_masks(pred, image, 4, mask=start, stop_when_empty=True))
    assert [k for k, _ in got] == [4, 5, 6, 4, 3, 2]  # forward, then reverse, from the key
    assert all(m.all() and m.shape == (4, 5) for _, m in got)
    frames = [c[1] for c in pred.calls if c[0] == "frame"]
    assert frames == [4, 5, 6, 7, 4, 3, 2, 1]  # 7 and 1 end their direction; 8 and 0 unvisited
    assert pred.calls[:2] == [("init", 9), ("mask", 4, 1, 6)] and pred.closed == 2
    pred = _ScriptedPredictor({0, 2, 3, 4, 5, 6, 8})
    every = [k for k, _ in iter_video_masks(pred, image, 4, mask=start)]
    assert every == [4, 5, 6, 7, 8, 4, 3, 2, 1, 0]  # without the rule: every frame
    pred = _ScriptedPredictor({3, 4, 5})
    up = [k for k, _ in iter_video_masks(pred, image, 4, mask=start, directions=(1,),
                                         stop_when_empty=True)]  # fmt: skip
    assert up == [4, 5]
    with pytest.raises(ValueError, match="exactly one"):
        next(iter_video_masks(pred, image, 4))
