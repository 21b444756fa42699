"""`sambench annotate-volume --model sam2... --checkpoint FILE`: SAM 2 in the annotation loop.

The model is a small random-weight SAM 2.1 Hiera-T at ``image_size`` 256 (as
tests/test_sam2_video.py) saved as a checkpoint file. References, independent of the annotator:
the official ``SAM2ImagePredictor`` (box and click on a slice) and ``SAM2VideoPredictor``
(propagation: ``add_new_mask`` with the slice's label, ``propagate_in_video`` forward then in
reverse, each direction stopped at its first empty mask), each built by ``sam2.build_sam`` from
the checkpoint file; the slices they see are read with nibabel and normalized here (SPEC 2.3
min-max), the axial view's flips written out by hand.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

pytest.importorskip("sam2", reason="the optional sam2 package is not installed")
import uvicorn
from PIL import Image
from sam2.build_sam import build_sam2, build_sam2_video_predictor
from sam2.sam2_image_predictor import SAM2ImagePredictor

from sam2_small import NAME, SMALL, small_sam2
from sambench.annotate import volume_store as VS
from sambench.annotate.state import RequestError
from sambench.annotate.volume_source import list_items
from sambench.annotate.volume_state import VolumeState
from sambench.cli import main
from sambench.models.checkpoints import load_checkpoint
from sambench.models.sam2 import SAM2_CONFIGS, Sam2Adapter, build_sam2_model

SHAPE = (7, 48, 64)  # canonical (z, y, x)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = small_sam2()
    path = tmp_path_factory.mktemp("sam2") / "random_hiera_t.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


def _adapter(ckpt: Path) -> Sam2Adapter:
    """The registry's loading (weights_only, strict, SHA-256), at image_size 256."""
    model, sha = load_checkpoint(lambda: build_sam2_model(NAME, SMALL), ckpt, model_name=NAME)
    return Sam2Adapter(NAME, model, device="cpu", checkpoint_sha256=sha)


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 7-slice 48x64 NIfTI (identity directions, 3 mm slices) holding a bright ellipsoid."""
    rng = np.random.default_rng(0)
    zz, yy, xx = np.indices(SHAPE)
    gt = ((zz - 3) / 3.2) ** 2 + ((yy - 24) / 14) ** 2 + ((xx - 30) / 20) ** 2 <= 1
    image = (rng.random(SHAPE) * 50).astype(np.float32)
    image[gt] += 160
    path = tmp_path_factory.mktemp("vol") / "blob.nii.gz"
    nib.save(nib.Nifti1Image(image.transpose(2, 1, 0), np.diag([1.0, 1.0, 3.0, 1.0])), path)
    return path


def _axial_uint8(path: Path) -> np.ndarray:
    """The axial view's slices as the model sees them: nibabel's RAS voxels, anterior at the top
    and the patient's right on the left (rows and columns flipped), each slice min-max to uint8."""
    img = nib.as_closest_canonical(nib.load(str(path)))
    zyx = np.asarray(img.dataobj, dtype=np.float64).transpose(2, 1, 0)
    out = []
    for sl in zyx[:, ::-1, ::-1]:
        out.append(np.rint(255.0 * (sl - sl.min()) / (sl.max() - sl.min())).astype(np.uint8))
    return np.stack(out)


def _state(tmp: Path, volume: Path, adapter: Sam2Adapter, **kw: object) -> VolumeState:
    return VolumeState(
        list_items(volume), tmp / "session", model=adapter, model_name=NAME, annotator="ann",
        source=str(volume), prefetch=False, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def _official_video(
    ckpt: Path, frames: np.ndarray, key: int, mask: np.ndarray, tmp: Path
) -> dict[int, np.ndarray]:
    """The official video predictor from the file: mask on ``key``, forward then reverse, each
    direction ending at its first empty mask (not kept)."""
    pred = build_sam2_video_predictor(
        SAM2_CONFIGS[NAME][0], ckpt_path=str(ckpt), device="cpu", hydra_overrides_extra=SMALL
    )
    tmp.mkdir()
    for k in range(frames.shape[0]):  # lossless frames (PIL decodes by content)
        Image.fromarray(np.stack([frames[k]] * 3, axis=2)).save(tmp / f"{k}.jpg", format="PNG")
    out: dict[int, np.ndarray] = {}
    with torch.inference_mode():
        state = pred.init_state(video_path=str(tmp))
        pred.add_new_mask(state, frame_idx=key, obj_id=1, mask=mask)
        for reverse in (False, True):
            for idx, _, logits in pred.propagate_in_video(
                state, start_frame_idx=key, reverse=reverse
            ):
                m = (logits[0, 0] > 0).numpy()
                if idx != key and not m.any():
                    break
                out[idx] = m
    return out


@pytest.mark.slow
def test_sam2_box_click_and_video_propagation_equal_the_official_predictors(
    tmp_path: Path, ckpt: Path, volume: Path
) -> None:
    adapter = _adapter(ckpt)
    st = _state(tmp_path, volume, adapter)
    assert st.view()["propagation"] == "sam2-video"
    slices = _axial_uint8(volume)
    # a box, then a click, on axial slice 3: SAM2ImagePredictor from the file, called directly
    image_model = build_sam2(SAM2_CONFIGS[NAME][0], ckpt_path=str(ckpt), device="cpu",
                             hydra_overrides_extra=SMALL)  # fmt: skip
    ip = SAM2ImagePredictor(image_model)
    ip._bb_feat_sizes = [(256 // d, 256 // d) for d in (4, 8, 16)]
    ip.set_image(np.stack([slices[3]] * 3, axis=2))
    box = np.array([14, 10, 50, 38], np.float32)
    masks, scores, low = ip.predict(box=box, multimask_output=True)
    best = int(np.argmax(scores))
    st.interact("box", {"view": "axial", "slice": 3, "box": [[14, 10], [50, 38]]})
    lab = st.labels_map[:, ::-1, ::-1]  # the axial view, by hand
    np.testing.assert_array_equal(lab[3] == 1, masks[best] > 0)
    masks2, _, _ = ip.predict(
        point_coords=np.array([[30, 24]], np.float32), point_labels=np.array([1]), box=box,
        mask_input=low[best][None], multimask_output=False,
    )  # fmt: skip
    st.interact("click_pos", {"view": "axial", "slice": 3, "point": [30, 24]})
    np.testing.assert_array_equal(lab[3] == 1, masks2[0] > 0)
    assert (lab[3] == 1).any() and not (lab[[0, 1, 2, 4, 5, 6]] == 1).any()
    before = st.labels_map.copy()

    # propagate with a reach of 2: the video predictor sees axial slices 1..5 (slice 3 = frame 2)
    r = st.interact("propagate", {"view": "axial", "slice": 3, "max_slices": 2})
    want = _official_video(ckpt, slices[1:6], 2, before[:, ::-1, ::-1][3] == 1, tmp_path / "f")
    reached = sorted(1 + j for j in want if j != 2)
    assert reached, "the random model reached no slice: the comparison would be vacuous"
    assert r["method"] == "sam2-video" and r["n_slices"] == len(reached)
    assert r["frames"] == [1, 5] and r["prompt"] == "mask"
    for k in range(7):
        if k in reached:
            np.testing.assert_array_equal(lab[k] == 1, want[k - 1], err_msg=f"slice {k}")
        else:  # the start slice and the slices out of reach (or past the object's end) kept
            np.testing.assert_array_equal(lab[k], before[:, ::-1, ::-1][k], err_msg=f"slice {k}")
    assert len({(lab[k] == 1).tobytes() for k in reached}) > 1 or len(reached) == 1

    events = [e for e in VS.read_events(st.session_dir) if e["type"] == "propagate"]
    (ev,) = events
    sha = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert ev["method"] == "sam2-video" and ev["model"] == NAME and ev["model_sha256"] == sha
    assert ev["latency_ms"] > 0 and ev["slices_reached"] == [min([*reached, 3]),
                                                              max([*reached, 3])]  # fmt: skip
    st.undo()
    np.testing.assert_array_equal(st.labels_map, before)
    assert st.algorithm_parameters()["propagation"].startswith("SAM 2 video predictor")
    st.close()


def test_video_propagation_refused_over_the_memory_limit(
    tmp_path: Path, ckpt: Path, volume: Path
) -> None:
    # 7 frames x 3x256x256 float32 = 5.5 MB; a 3 MB limit fits 3 frames: a reach of 1
    st = _state(tmp_path, volume, _adapter(ckpt), limit_bytes=3_000_000)
    st.interact("brush", {"view": "axial", "slice": 3, "points": [[30, 24]], "radius": 4})
    with pytest.raises(RequestError) as e:
        st.interact("propagate", {"view": "axial", "slice": 3})
    assert "7 slices need 0.01 GB" in str(e.value) and "reach of at most 1 slices" in str(e.value)
    assert [x for x in VS.read_events(st.session_dir) if x["type"] == "propagate"] == []
    st.close()


@pytest.fixture()
def served(monkeypatch: pytest.MonkeyPatch) -> list[VolumeState]:
    """The states uvicorn would have served; nothing listens (the command's own path up to
    uvicorn's loop, as tests/test_annotate_handoff.py)."""
    seen: list[VolumeState] = []

    def run(self: uvicorn.Server, sockets: object = None) -> None:
        for s in sockets or []:  # type: ignore[attr-defined]
            s.close()

    close = VolumeState.close

    def record(self: VolumeState) -> None:
        seen.append(self)
        close(self)

    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.setattr(VolumeState, "close", record)
    return seen


def test_cli_starts_with_a_sam2_checkpoint(
    tmp_path: Path, ckpt: Path, volume: Path, served: list[VolumeState]
) -> None:
    out = tmp_path / "s"
    assert main(["annotate-volume", str(volume), "--out", str(out), "--model", NAME,
                 "--checkpoint", str(ckpt), "--port", "0"]) == 0  # fmt: skip
    (st,) = served
    assert isinstance(st.model, Sam2Adapter) and st.model.name == NAME
    assert st.propagation == "sam2-video" and st.view()["model_kind"] == "2d"
    info = json.loads((out / "session.json").read_text())
    assert info["model"] == NAME
    assert info["model_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()


def test_cli_refuses_weights_that_do_not_make_the_video_predictor(
    tmp_path: Path, ckpt: Path, volume: Path, served: list[VolumeState],
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
) -> None:  # fmt: skip
    from sambench.volumes.protocols import sam2_video

    # the video predictor of another architecture (Hiera-S) for the Hiera-T weights
    monkeypatch.setitem(sam2_video.VIDEO_CONFIG_OF, NAME, "sam2.1_hiera_s")
    out = tmp_path / "s"
    rc = main(["annotate-volume", str(volume), "--out", str(out), "--model", NAME,
               "--checkpoint", str(ckpt), "--port", "0"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "Traceback" not in err, err
    line = err.splitlines()[0]  # (the second: the standard --debug hint)
    assert "--checkpoint: " in line and str(ckpt) in line and "--model sam2.1_hiera_t" in line
    assert "SAM2VideoPredictor of sam2.1_hiera_s: missing" in line and len(line) < 600, line
    assert not out.exists() and served == []


def test_encoding_leaves_the_decoding_predictor_alone(ckpt: Path) -> None:
    # the annotator's background thread encodes while the foreground decodes: embed must not
    # touch the image state the decoder's predictor holds (before: one shared predictor)
    adapter = _adapter(ckpt)
    rng = np.random.default_rng(1)
    a, b = (rng.integers(0, 255, (48, 64), dtype=np.uint8) for _ in range(2))
    emb_b = adapter.embed(b)
    adapter._set(emb_b)  # the decoder's predictor points at b, as mid-decode
    emb_a = adapter.embed(a)
    held = adapter.predictor._features
    assert held is not None and torch.equal(held["image_embed"], emb_b.features)
    assert not torch.equal(emb_a.features, emb_b.features)
    again = adapter.embed(a)  # and the encoder's results do not depend on that state
    assert torch.equal(again.features, emb_a.features)
    for k in emb_a.extras:
        assert torch.equal(again.extras[k], emb_a.extras[k])
