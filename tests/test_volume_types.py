"""The volumetric records, the protocol registry and the slice predictor's encode-once cache."""

from __future__ import annotations

import numpy as np
import pytest

from sambench.errors import OptionError
from sambench.models.base import Embedding, Prediction
from sambench.prompts.types import Prompts
from sambench.volumes import Object3D, StepResult, Volume3D, get_protocol, register_protocol
from sambench.volumes.slices import SlicePredictor, mask_box


def _volume(axis: int = 2) -> Volume3D:
    lab = np.zeros((3, 8, 10), np.uint8)
    lab[1, 2:5, 3:7] = 85
    return Volume3D(
        "v", "d", "c", (lab * 2).astype(np.uint8), lab, (3.0, 1.0, 0.5), slice_axis=axis
    )


def test_records_and_file_order() -> None:
    vol = _volume(axis=1)
    obj = Object3D("v", 85, "liver", 12, (1, 2, 3, 1, 4, 6), key_slice=1, key_area=12, n_slices=1)
    assert vol.mask(obj).sum() == 12 and obj.one_slice
    # axis 0 is the file's y axis: back in (z, y, x) the slice axis moves to position 1
    assert vol.to_file_zyx(vol.label).shape == (8, 3, 10)
    assert mask_box(vol.mask(obj)[1]).tolist() == [3, 2, 6, 4]
    assert mask_box(np.zeros((4, 4), bool)) is None


def test_registry_lists_names_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from sambench.volumes import types

    monkeypatch.setattr(types, "_REGISTRY", dict(types._REGISTRY))  # leave the real one as is

    @register_protocol("test-only", "a protocol for this test")
    def fn(model, volume, obj, config, rng):  # type: ignore[no-untyped-def]
        return [StepResult(0, volume.mask(obj), 0.0, 0)]

    assert get_protocol("test-only").fn is fn
    with pytest.raises(OptionError, match=r"--protocol.*test-only"):
        get_protocol("nope")


class _CountingModel:
    name = "counting"

    def __init__(self) -> None:
        self.embeds = 0

    def embed(self, image: np.ndarray) -> Embedding:
        import torch

        self.embeds += 1
        return Embedding(torch.zeros(1, 1, 1, 1), image.shape[:2], image.shape[:2])

    def predict(self, embedding, prompts, multimask_output=None):  # type: ignore[no-untyped-def]
        h, w = embedding.original_size
        masks = np.zeros((1, 2, h, w), bool)
        masks[0, 1, :2, :2] = True
        return Prediction(
            masks, np.array([[0.1, 0.9]], np.float32), np.zeros((1, 2, 4, 4), np.float32)
        )


def test_slice_predictor_encodes_each_slice_once_and_keeps_best_score() -> None:
    model = _CountingModel()
    sp = SlicePredictor(model, _volume(), max_cached=2)
    box = Prompts(box=np.array([0.0, 0.0, 3.0, 3.0]))
    out = sp.predict(1, box)
    sp.predict(1, box)
    assert model.embeds == 1 and sp.decodes == 2
    assert out.mask.sum() == 4 and out.score == pytest.approx(0.9) and out.logits.shape == (1, 4, 4)
    sp.predict(0, box)
    sp.predict(2, box)  # evicts slice 1 (LRU of 2)
    sp.predict(1, box)
    assert model.embeds == 4
    with pytest.raises(IndexError):
        sp.embedding(3)
