"""The per-image work of both executors: the prefetching reader, encoder batches on a GPU with
out-of-memory retries (errors injected), the fp16 embedding cache, and the executor options."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sambench.engine.cache import EmbeddingCache, image_hash, round_embedding
from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate
from sambench.engine.executor import ExecutorOptions
from sambench.engine.image_work import GpuMemoryError, LoadedImage, groups, prefetch
from sambench.engine.ray_executor import WorkerStatus, worker_summary
from sambench.errors import DataError, OptionError
from sambench.models.base import Embedding, Prediction
from sambench.prompts.types import Prompts

from fakes import FakeModel, make_prepared

TIMING = ["embed_seconds", "decode_seconds", "embedding_cached"]


def oom() -> torch.cuda.OutOfMemoryError:
    return torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


class GpuFake(FakeModel):
    """FakeModel that claims a GPU, with ``embed_batch`` and ``decode_chunk``; out of memory is
    injected for encoder batches above ``max_batch`` and decoder chunks above ``max_chunk``."""

    device = "cuda"

    def __init__(self, max_batch: int = 99, max_chunk: int = 99, decode_chunk: int = 1) -> None:
        super().__init__()
        self.max_batch, self.max_chunk, self.decode_chunk = max_batch, max_chunk, decode_chunk
        self.batches: list[int] = []

    def embed(self, image: np.ndarray) -> Embedding:
        return self.embed_batch([image])[0]

    def embed_batch(self, images: Sequence[np.ndarray]) -> list[Embedding]:
        self.batches.append(len(images))
        if len(images) > self.max_batch:
            raise oom()
        return [FakeModel.embed(self, im) for im in images]

    def predict(
        self, embedding: Embedding, prompts: Sequence[Prompts], multimask_output: bool | None = None
    ) -> Prediction:
        if self.decode_chunk > self.max_chunk:
            raise oom()
        return super().predict(embedding, prompts, multimask_output)


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    return make_prepared(tmp_path / "prepared", n_images=5)


def run(prepared: Path, out: Path, model: FakeModel, **kw: object) -> pd.DataFrame:
    cfg = RunConfig(prepared=str(prepared), model="fake", progress=False, strategies=("S5", "S2"))
    opts = ExecutorOptions(**kw)  # type: ignore[arg-type]
    return evaluate(cfg, out, model=model, options=opts).drop(columns=TIMING)


def test_gpu_encoder_batches_equal_one_at_a_time(prepared: Path, tmp_path: Path) -> None:
    ref = run(prepared, tmp_path / "cpu", FakeModel())
    gpu = GpuFake()
    res = run(prepared, tmp_path / "gpu", gpu, encoder_batch=2)
    assert gpu.batches == [2, 2, 1]
    pd.testing.assert_frame_equal(res, ref)
    cpu = FakeModel()
    run(prepared, tmp_path / "cpu2", cpu, encoder_batch=4)  # no GPU: one image at a time
    assert cpu.embed_calls == 5


def test_encoder_out_of_memory_retries_smaller(
    prepared: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ref = run(prepared, tmp_path / "ref", FakeModel())
    gpu = GpuFake(max_batch=1)
    with caplog.at_level(logging.WARNING):
        res = run(prepared, tmp_path / "gpu", gpu, encoder_batch=4)
    pd.testing.assert_frame_equal(res, ref)
    # 4 -> 2 -> 1, then the smaller batch is kept for the rest of the run
    assert gpu.batches == [4, 2, 1, 1, 1, 1, 1]
    assert "GPU out of memory encoding 4 images; retrying in batches of 2" in caplog.text
    assert "encoding 2 images; retrying in batches of 1" in caplog.text


def test_out_of_memory_at_one_image_is_reported(prepared: Path, tmp_path: Path) -> None:
    with pytest.raises(GpuMemoryError, match=r"toy_c0_0.png: out of GPU memory on cuda"):
        run(prepared, tmp_path / "a", GpuFake(max_batch=0), encoder_batch=2)
    cfg = RunConfig(prepared=str(prepared), model="fake", progress=False, strategies=("S5",))
    res = evaluate(
        RunConfig(**{**cfg.__dict__, "skip_bad": True}), tmp_path / "b", model=GpuFake(max_batch=0)
    )
    assert (res["status"] == "skipped").all() and len(res) == 5 * 2 * 2
    assert res["skip_reason"].str.startswith("out_of_memory: ").all()


def test_decoder_out_of_memory_halves_the_chunk(prepared: Path, tmp_path: Path) -> None:
    ref = run(prepared, tmp_path / "ref", FakeModel())
    gpu = GpuFake(max_chunk=2, decode_chunk=8)
    pd.testing.assert_frame_equal(run(prepared, tmp_path / "gpu", gpu), ref)
    assert gpu.decode_chunk == 2
    with pytest.raises(GpuMemoryError, match="decoding its prompts"):
        run(prepared, tmp_path / "none", GpuFake(max_chunk=0, decode_chunk=4))


def test_prefetch_keeps_order_bounds_memory_and_raises_in_place() -> None:
    started: list[int] = []

    def load(i: int) -> int:
        started.append(i)
        if i == 7:
            raise ValueError("bad item 7")
        return i * 10

    it = prefetch(range(10), load, depth=2)
    assert next(it) == 0
    time.sleep(0.2)
    assert max(started) <= 3  # item 1, 2 queued, at most one more being loaded
    got = [0]
    with pytest.raises(ValueError, match="bad item 7"):
        for v in it:
            got.append(v)
    assert got == [0, 10, 20, 30, 40, 50, 60]
    # closing early stops the reader thread
    it2 = prefetch(range(1000), lambda i: i, depth=1)
    assert next(it2) == 0
    it2.close()
    readers = [t for t in threading.enumerate() if t.name == "sambench-prefetch"]
    for t in readers:  # a loaded machine may take a while to schedule the reader's exit
        t.join(timeout=30)
    assert not any(t.is_alive() for t in readers)
    assert list(prefetch(range(3), lambda i: -i, depth=0)) == [0, -1, -2]


def test_groups_isolate_a_bad_image() -> None:
    rows = pd.DataFrame()
    good = [LoadedImage(image_id=str(i), rows_df=rows) for i in range(5)]
    bad = LoadedImage(image_id="bad", rows_df=rows, error=DataError("x.png", "broken"))
    items = [*good[:3], bad, *good[3:]]
    assert [[g.image_id for g in grp] for grp in groups(items, 2)] == [
        ["0", "1"],
        ["2"],
        ["bad"],
        ["3", "4"],
    ]


def test_bad_image_stops_after_the_images_before_it(prepared: Path, tmp_path: Path) -> None:
    (prepared / "toy" / "images" / "toy_c2_2.png").write_bytes(b"not a png")
    out = tmp_path / "run"
    with pytest.raises(DataError, match=r"toy_c2_2\.png"):
        run(prepared, out, GpuFake(), encoder_batch=4)
    stored = pd.concat(pd.read_parquet(p) for p in (out / "parts").glob("part-*.parquet"))
    assert sorted(stored["image_id"].unique()) == ["toy_c0_0", "toy_c1_1"]


# ------------------------------------------------------------------ fp16 cache
def test_round_embedding_is_fp16_rounding() -> None:
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(1, 4, 8, 8, generator=g) * 30
    extra = torch.randn(1, 2, 16, 16, generator=g)
    emb = Embedding(features=feats, original_size=(8, 8), input_size=(8, 8), extras={"hr": extra})
    r = round_embedding(emb, "float16")
    assert r.features.dtype == torch.float32
    ref = torch.from_numpy(feats.numpy().astype(np.float16).astype(np.float32))  # numpy's rounding
    assert torch.equal(r.features, ref) and not torch.equal(r.features, feats)
    assert torch.equal(r.extras["hr"], torch.from_numpy(extra.numpy().astype(np.float16)).float())
    assert round_embedding(emb, "float32") is emb


def test_fp16_cache_stores_half_and_reads_float32(tmp_path: Path) -> None:
    from safetensors import safe_open

    feats = torch.linspace(-3, 3, 64).reshape(1, 1, 8, 8) / 7
    emb = Embedding(features=feats, original_size=(8, 8), input_size=(8, 8))
    c16 = EmbeddingCache(tmp_path, {"model": "m"}, dtype="float16")
    c32 = EmbeddingCache(tmp_path, {"model": "m"})
    assert c16.folder != c32.folder  # fp16 and fp32 entries never mix
    path = c16.store("k", emb)
    with safe_open(str(path), framework="pt") as f:
        assert f.get_tensor("features").dtype == torch.float16
    back = c16.load("k")
    assert back is not None and back.features.dtype == torch.float32
    assert torch.equal(back.features, round_embedding(emb, "float16").features)
    assert c32.load("k") is None
    with pytest.raises(ValueError, match="float32, float16"):
        EmbeddingCache(tmp_path, {"model": "m"}, dtype="bfloat8")


def test_fp16_run_gives_the_same_rows_from_a_miss_and_a_hit(prepared: Path, tmp_path: Path) -> None:
    cfg = RunConfig(
        prepared=str(prepared),
        model="fake",
        progress=False,
        strategies=("S5",),
        cache_dir=str(tmp_path / "cache"),
        cache_dtype="float16",
    )
    first = evaluate(cfg, tmp_path / "a", model=FakeModel())
    second = evaluate(cfg, tmp_path / "b", model=FakeModel())
    assert not first["embedding_cached"].any() and second["embedding_cached"].all()
    pd.testing.assert_frame_equal(first.drop(columns=TIMING), second.drop(columns=TIMING))
    with pytest.raises(OptionError, match="--cache-dtype: 'half' is not one of float32, float16"):
        RunConfig(prepared=str(prepared), cache_dtype="half").validate()
    key = image_hash(np.zeros((2, 2), np.uint8))
    assert len(key) == 64


# ------------------------------------------------------------------ options, progress
@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"executor": "dask"}, "--executor: 'dask' is not one of local, ray"),
        ({"executor": "ray", "workers": 0}, "--workers: expected an integer >= 1"),
        ({"executor": "ray", "gpus_per_worker": -1.0}, "--gpus-per-worker: expected a number"),
        ({"executor": "ray", "cpus_per_worker": 0.0}, "--cpus-per-worker: a worker needs"),
        ({"encoder_batch": 0}, "--encoder-batch: expected an integer >= 1"),
        ({"address": "auto"}, "--address: only applies with --executor ray"),
        ({"workers": 2}, "--workers: only applies with --executor ray"),
    ],
)
def test_bad_executor_options(
    kw: dict[str, object], match: str, prepared: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    with pytest.raises(OptionError, match=match):
        run(prepared, out, FakeModel(), **kw)
    assert not out.exists()


def test_worker_summary() -> None:
    a = WorkerStatus(images=12, seconds=6.0, pids={1})
    b = WorkerStatus(images=3, seconds=3.0, pids={2, 3}, restarts=1)
    assert worker_summary([a, b]) == "w0 12 img 2.00/s | w1 3 img 1.00/s restarted x1"
