"""The embedding cache checks every entry: checksum of the tensor bytes, tensor names, dtypes and
shapes, readability. A bad entry is a miss with a warning naming the file, and is rewritten."""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from sambench.engine.cache import EmbeddingCache, image_hash, read_entry
from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate
from sambench.models.base import Embedding, Prediction
from sambench.prompts.types import Prompts

from fakes import FakeModel, make_prepared

KEY = ["image_id", "label_value", "strategy", "selection"]
METRICS = ["dice", "jaccard", "hd", "nsd"]


class FeatureModel(FakeModel):
    """A fake whose masks depend on the embedding: candidate 0 is the box restricted to pixels
    whose feature is > 0, so damaged (zeroed) features change the DICE."""

    name = "featfake"

    def predict(
        self, embedding: Embedding, prompts: Sequence[Prompts], multimask_output: bool | None = None
    ) -> Prediction:
        pred = super().predict(embedding, prompts, multimask_output)
        on = embedding.features[0, 0].cpu().numpy() > 0
        return Prediction(
            masks=pred.masks & on[None, None],
            scores=pred.scores,
            low_res_logits=pred.low_res_logits,
        )


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    return make_prepared(tmp_path / "prepared", n_images=2)


def run(prepared: Path, out: Path, model: FakeModel, cache: Path) -> pd.DataFrame:
    cfg = RunConfig(
        prepared=str(prepared), model=model.name, progress=False, strategies=("S5",),
        cache_dir=str(cache),
    )  # fmt: skip
    return evaluate(cfg, out, model=model, flush_every=1)


def metrics(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(KEY)[METRICS].reset_index(drop=True)


def entries(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*.safetensors"))


def zero_data(path: Path, fraction: float = 0.4) -> None:
    """Zero the first ``fraction`` of the tensor data, leaving the header intact."""
    raw = bytearray(path.read_bytes())
    header = 8 + struct.unpack("<Q", raw[:8])[0]
    n = int((len(raw) - header) * fraction)
    raw[header : header + n] = bytes(n)
    path.write_bytes(bytes(raw))


def rewrite(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Replace the tensors of an entry, keeping its metadata (a malformed but readable file)."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    save_file(tensors, str(path), metadata=meta)


def test_zeroed_tensor_data_is_a_miss_warned_and_rewritten(
    prepared: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    uncached = run(prepared, tmp_path / "a", FeatureModel(), cache)
    files = entries(cache)
    assert len(files) == 2
    zero_data(files[0])
    model = FeatureModel()
    with caplog.at_level(logging.WARNING, logger="sambench.engine.cache"):
        res = run(prepared, tmp_path / "b", model, cache)
    assert model.embed_calls == 1  # the damaged entry only
    assert res["embedding_cached"].sum() == len(res) / 2
    assert any(
        str(files[0]) in r.getMessage() and "checksum" in r.getMessage() for r in caplog.records
    )
    pd.testing.assert_frame_equal(metrics(res), metrics(uncached))
    # rewritten: the next run uses both entries again, with no warning
    caplog.clear()
    third = FeatureModel()
    with caplog.at_level(logging.WARNING, logger="sambench.engine.cache"):
        res3 = run(prepared, tmp_path / "c", third, cache)
    assert third.embed_calls == 0 and res3["embedding_cached"].all()
    assert not caplog.records
    pd.testing.assert_frame_equal(metrics(res3), metrics(uncached))


def test_renamed_tensor_and_wrong_shape_are_misses_naming_the_file(
    prepared: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    uncached = run(prepared, tmp_path / "a", FeatureModel(), cache)
    a, b = entries(cache)
    feats = read_entry(a, json.dumps(FeatureModel().signature(), sort_keys=True), a.stem)[0]
    rewrite(a, {"feature": feats["features"]})  # renamed: KeyError 'features' before
    rewrite(b, {"features": torch.zeros(1, 1, 8, 8)})  # wrong shape: size mismatch before
    model = FeatureModel()
    with caplog.at_level(logging.WARNING, logger="sambench.engine.cache"):
        res = run(prepared, tmp_path / "b", model, cache)
    assert model.embed_calls == 2 and not res["embedding_cached"].any()
    msgs = [r.getMessage() for r in caplog.records]
    assert any(str(a) in m and "renamed or missing" in m for m in msgs), msgs
    assert any(str(b) in m and "[1, 1, 8, 8]" in m for m in msgs), msgs
    pd.testing.assert_frame_equal(metrics(res), metrics(uncached))
    again = FeatureModel()
    run(prepared, tmp_path / "c", again, cache)
    assert again.embed_calls == 0


def test_unreadable_and_old_format_entries_are_misses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sig = {"model": "x"}
    cache = EmbeddingCache(tmp_path, sig)
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    key = image_hash(img)
    emb = Embedding(features=torch.rand(1, 2, 3, 4), original_size=(3, 4), input_size=(3, 4))
    path = cache.store(key, emb)
    got = cache.load(key)
    assert got is not None and torch.equal(got.features, emb.features)
    assert got.original_size == (3, 4) and got.input_size == (3, 4)

    path.write_bytes(path.read_bytes()[:50])  # truncated
    with caplog.at_level(logging.WARNING, logger="sambench.engine.cache"):
        assert cache.load(key) is None
    assert str(path) in caplog.text and "unreadable" in caplog.text

    # an entry of the previous format (features only, no checksum) is not trusted
    meta = {"signature": json.dumps(sig, sort_keys=True), "image_hash": key,
            "original_size": "[3, 4]", "input_size": "[3, 4]"}  # fmt: skip
    save_file({"features": emb.features}, str(path), metadata=meta)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sambench.engine.cache"):
        assert cache.load(key) is None
    assert "no checksum" in caplog.text
    assert cache.bad == 2 and cache.hits == 1


def test_dtype_change_is_caught(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, {"model": "x"})
    emb = Embedding(features=torch.rand(1, 2, 3, 4), original_size=(3, 4), input_size=(3, 4))
    path = cache.store("k", emb)
    rewrite(path, {"features": emb.features.to(torch.float64)})
    assert cache.load("k") is None and cache.bad == 1


def test_several_feature_maps_round_trip_and_are_all_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation is generic over every tensor of the entry (e.g. SAM 2's high-res maps)."""
    import dataclasses

    from sambench.engine import cache as cache_mod

    @dataclasses.dataclass
    class MultiEmbedding:
        features: torch.Tensor
        original_size: tuple[int, int]
        input_size: tuple[int, int]
        high_res: tuple[torch.Tensor, ...] = ()

    monkeypatch.setattr(cache_mod, "Embedding", MultiEmbedding)
    cache = EmbeddingCache(tmp_path, {"model": "x"})
    emb = MultiEmbedding(torch.rand(1, 2, 4, 4), (4, 4), (4, 4), (torch.rand(1, 2, 8, 8),
                         torch.rand(1, 2, 16, 16)))  # fmt: skip
    path = cache.store("k", emb)  # type: ignore[arg-type]
    got = cache.load("k")
    assert got is not None and len(got.high_res) == 2  # type: ignore[attr-defined]
    assert torch.equal(got.high_res[1], emb.high_res[1])  # type: ignore[attr-defined]
    with safe_open(str(path), framework="pt") as f:
        t = {k: f.get_tensor(k) for k in f.keys()}
    t["high_res.1"] = torch.zeros_like(t["high_res.1"])
    rewrite(path, t)
    assert cache.load("k") is None and cache.bad == 1


# --- keyed checksum over every field, validated sizes, regular files only, full disk (issue 28)


@pytest.fixture(autouse=True)
def cache_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test of this file uses its own cache key, outside its cache folders."""
    path = tmp_path / "config" / "cache-key"
    monkeypatch.setenv("SAMBENCH_CACHE_KEY", str(path))
    return path


def meta_and_tensors(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}


def forge(
    path: Path, edit: dict[str, object], key: bytes | None = None, **tensors: torch.Tensor
) -> None:
    """Rewrite an entry with ``edit`` applied to its ``fields`` (and ``tensors`` replaced), then
    recompute its checksum: the unkeyed SHA-256 a forger can compute (``key`` None), or the
    keyed one with ``key``."""
    from sambench.engine.cache import entry_checksum, tensor_checksum

    meta, t = meta_and_tensors(path)
    fields = json.loads(meta["fields"])
    fields.update(edit)
    meta["fields"] = json.dumps(fields)
    t.update(tensors)
    meta["checksum"] = tensor_checksum(t) if key is None else entry_checksum(key, meta, t)
    save_file(t, str(path), metadata=meta)


def test_edited_input_size_with_a_rewritten_checksum_is_a_miss(
    prepared: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: ``fields`` was outside the checksum (editing input_size gave DICE 0, exit 0) and
    the checksum an unkeyed SHA-256 a forger could rewrite."""
    cache = tmp_path / "cache"
    uncached = run(prepared, tmp_path / "a", FeatureModel(), cache)
    a, b = entries(cache)
    forge(a, {"input_size": [2, 3]})  # fields edited, tensors' checksum still right
    nan = torch.full_like(meta_and_tensors(b)[1]["features"], float("nan"))
    forge(b, {}, features=nan)  # all-NaN features, checksum rewritten
    model = FeatureModel()
    with caplog.at_level(logging.WARNING, logger="sambench.engine.cache"):
        res = run(prepared, tmp_path / "b", model, cache)
    assert model.embed_calls == 2 and not res["embedding_cached"].any()
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 2, msgs  # one line per entry
    for p in (a, b):
        assert any(str(p) in m and "keyed checksum" in m for m in msgs), msgs
    pd.testing.assert_frame_equal(metrics(res), metrics(uncached))


def test_sizes_and_finiteness_are_checked_even_under_a_valid_key(
    tmp_path: Path, cache_key: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A writer with the key (a bug, an old adapter) still cannot make a huge allocation or
    hand NaN features to the model."""
    from sambench.engine.cache import load_key

    cache = EmbeddingCache(tmp_path / "c", {"model": "x"})
    key = load_key()
    emb = Embedding(features=torch.rand(1, 2, 3, 4), original_size=(3, 4), input_size=(3, 4))
    cases = [
        ({"input_size": [10**9, 10**9]}, {}, "input_size"),
        ({"original_size": [0, 4]}, {}, "original_size"),
        ({"original_size": [3.5, 4]}, {}, "original_size"),
        ({"original_size": [30, 40]}, {}, "not the image's [3, 4]"),
        ({}, {"features": torch.full((1, 2, 3, 4), float("inf"))}, "NaN or infinite"),
    ]
    for edit, tensors, why in cases:
        path = cache.store("k", emb)
        assert cache.load("k", image_shape=(3, 4)) is not None
        forge(path, edit, key, **tensors)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="sambench.engine.cache"):
            assert cache.load("k", image_shape=(3, 4)) is None, edit
        assert why in caplog.text and str(path) in caplog.text


def test_the_key_is_made_once_0600_outside_the_cache_and_another_key_is_a_miss(
    tmp_path: Path, cache_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sambench.engine.cache import key_path, load_key

    assert not cache_key.exists()
    cache = EmbeddingCache(tmp_path / "c", {"model": "x"})
    assert key_path() == cache_key and cache_key.stat().st_mode & 0o777 == 0o600
    assert len(bytes.fromhex(cache_key.read_text())) == 32
    assert load_key() == load_key()  # made once, then read
    emb = Embedding(features=torch.rand(1, 2, 3, 4), original_size=(3, 4), input_size=(3, 4))
    cache.store("k", emb)
    assert EmbeddingCache(tmp_path / "c", {"model": "x"}).load("k") is not None
    # default place: $XDG_CONFIG_HOME/sambench/cache-key
    monkeypatch.delenv("SAMBENCH_CACHE_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert key_path() == tmp_path / "xdg" / "sambench" / "cache-key"
    other = EmbeddingCache(tmp_path / "c", {"model": "x"})  # another user's key
    assert other.load("k") is None and other.bad == 1


def test_a_fifo_in_the_cache_is_not_opened(tmp_path: Path) -> None:
    """Before: opening a FIFO entry blocked the run forever (safetensors holds the GIL while it
    waits in open(), so the check runs in a child process with a timeout)."""
    import os
    import subprocess
    import sys

    cache = EmbeddingCache(tmp_path / "c", {"model": "x"})
    path = cache.path_for("k")
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    code = (
        "import logging, sys; logging.basicConfig(stream=sys.stdout);"
        "from sambench.engine.cache import EmbeddingCache;"
        f"c = EmbeddingCache({str(tmp_path / 'c')!r}, {{'model': 'x'}});"
        "print('result', c.load('k'), c.bad)"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    except subprocess.TimeoutExpired:
        pytest.fail("load() blocked on a FIFO")
    assert "result None 1" in out and str(path) in out and "not a regular file" in out, out
    emb = Embedding(features=torch.rand(1, 2, 3, 4), original_size=(3, 4), input_size=(3, 4))
    cache.store("k", emb)  # replaces the FIFO
    assert cache.load("k") is not None


def test_a_full_cache_disk_names_the_folder(
    prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: ``SafetensorError ... No space left on device`` naming no folder."""
    from safetensors import SafetensorError

    from sambench.engine import cache as cache_mod
    from sambench.errors import DataError

    def full(*a: object, **k: object) -> None:
        raise SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No '
            'space left on device" })'
        )

    monkeypatch.setattr(cache_mod, "save_file", full)
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as e:
        run(prepared, tmp_path / "a", FeatureModel(), cache)
    assert str(e.value.path).startswith(str(cache)) and "no space left" in e.value.problem
    assert "without --cache-dir" in e.value.problem
    # as documented: the same run without --cache-dir resumes and finishes
    cfg = RunConfig(prepared=str(prepared), model="featfake", progress=False, strategies=("S5",))
    res = evaluate(cfg, tmp_path / "a", model=FeatureModel(), flush_every=1)
    assert len(res) > 0 and not res["embedding_cached"].any()
