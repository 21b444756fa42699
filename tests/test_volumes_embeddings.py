"""Encode once per volume (issue 33): the shared slice-embedding store (LRU by bytes, disk cache,
batched prefetch) and evaluate-3d with it, compared with the per-object encode path
(``embedding_budget_mb=0``, no cache): identical results, passes = distinct slices touched with a
cold cache, 0 with a warm ``--cache-dir``; on a multi-object synthetic volume and on the shipped
spinal-cord volume."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sambench.data.prepare import prepare_dataset
from sambench.engine.cache import EmbeddingCache, image_hash
from sambench.errors import OptionError
from sambench.models.base import Embedding
from sambench.volumes import Volume3D, load_protocols
from sambench.volumes.embeddings import MIB, SliceEmbeddings, embedding_nbytes, sharing
from sambench.volumes.evaluate import (
    VOLUME_ENCODER_COLUMNS,
    Run3DConfig,
    encoder_summary,
    evaluate_3d,
)
from sambench.volumes.slices import SlicePredictor
from sambench.volumes.types import ProtocolConfig
from threshold_model import ThresholdModel
from volume_data import _nifti

SPINALCORD = Path(__file__).parent / "data" / "sct-spinalcord"
PROTOCOLS = ("slicewise-gt", "propagate", "interactive-3d")
# columns that say how the numbers were made, not what they are
TIMING = ("seconds", "cumulative_seconds", "encoder_passes", *VOLUME_ENCODER_COLUMNS)


class CountingModel(ThresholdModel):
    """:class:`ThresholdModel` counting its encoder passes and the distinct slices it encoded
    (by content hash); ``embed_batch`` too when ``batch`` (its device then says cuda, so the
    runner batches; nothing here uses a GPU)."""

    def __init__(self, batch: bool = False) -> None:
        self.embeds = 0
        self.hashes: set[str] = set()
        self.batches: list[int] = []
        if batch:
            self.device = "cuda"

    def signature(self) -> dict[str, str]:
        return {"model": self.name}

    def embed(self, image: np.ndarray) -> Embedding:
        self.embeds += 1
        self.hashes.add(image_hash(image))
        return super().embed(image)

    def embed_batch(self, images: Sequence[np.ndarray]) -> list[Embedding]:
        if getattr(self, "device", "cpu") != "cuda":
            raise AssertionError("embed_batch called on a CPU model")
        self.batches.append(len(images))
        self.embeds += len(images)
        self.hashes.update(image_hash(im) for im in images)
        return [ThresholdModel.embed(self, im) for im in images]


def _volume(depth: int = 8, hw: int = 16) -> Volume3D:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (depth, hw, hw)).astype(np.uint8)
    return Volume3D("v", "d", "c", img, np.zeros_like(img), (1.0, 1.0, 1.0))


def test_store_keeps_embeddings_within_the_budget_lru_by_slice() -> None:
    vol = _volume()
    model = CountingModel()
    unit = embedding_nbytes(model.embed(vol.image[0]))
    model.embeds = 0
    assert unit == 16 * 16 * 4  # 1x1x16x16 float32
    store = SliceEmbeddings(model, vol, budget_bytes=2 * unit)
    passes = [store.get(k)[1] for k in (0, 1, 0, 2, 1, 0, 0)]
    # 0, 1 encoded; 0 held; 2 evicts 1 (least recently used); 1 again evicts 0; 0 again
    assert passes == [1, 1, 0, 1, 1, 1, 0]
    assert store.encodes == model.embeds == 5 and store.slices == {0, 1, 2}
    assert store.held_bytes == store.peak_bytes == 2 * unit
    # the embedding is the model's, unchanged
    emb, _ = store.get(0)
    assert torch.equal(emb.features, model.embed(vol.image[0]).features)
    with pytest.raises(ValueError, match="budget_bytes"):
        SliceEmbeddings(model, vol, budget_bytes=-1)


def test_budget_zero_shares_nothing_and_predictors_keep_their_own_cache() -> None:
    vol = _volume()
    model = CountingModel()
    store = SliceEmbeddings(model, vol, budget_bytes=0)
    assert not store.shares and store.prefetch(range(8)) == 0 and model.embeds == 0
    assert [store.get(3)[1], store.get(3)[1]] == [1, 1] and store.held_bytes == 0
    with sharing(store):
        sp = SlicePredictor(model, vol, max_cached=2)
        assert sp.store is store
        for k in (4, 4, 5, 4):
            sp.embedding(k)
    assert sp.encodes == 2  # its own LRU of 2, as before the store
    # a store of another volume or model is not used
    with sharing(store):
        assert SlicePredictor(CountingModel(), vol).store is None
        assert SlicePredictor(model, _volume()).store is None


def test_prefetch_fills_the_budget_only_and_batches_on_a_gpu_model() -> None:
    vol = _volume()
    model = CountingModel()
    unit = 16 * 16 * 4
    store = SliceEmbeddings(model, vol, budget_bytes=3 * unit)
    # the union does not fit: only the first (in the order given), which told the size
    assert store.prefetch([5, 1, 3, 7, 6, 5]) == 1
    assert {k for k in range(8) if k in store} == {5} and store.slices == {5}
    assert store.prefetch([1, 3]) == 2  # these two fit beside it
    assert [store.get(k)[1] for k in (1, 3, 5, 7)] == [0, 0, 0, 1]

    gpu = CountingModel(batch=True)
    store = SliceEmbeddings(gpu, vol, budget_bytes=100 * unit, encoder_batch=4)
    assert store.prefetch(range(8)) == 8
    assert gpu.batches == [4, 3]  # the first alone (its size sizes the rest), then batches of 4
    for k in range(8):
        emb, passes = store.get(k)
        assert passes == 0 and torch.equal(emb.features, gpu.embed(vol.image[k]).features)


def test_a_gpu_out_of_memory_in_a_batch_encodes_one_slice_at_a_time() -> None:
    class Oom(CountingModel):
        def embed_batch(self, images: Sequence[np.ndarray]) -> list[Embedding]:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    vol = _volume()
    model = Oom(batch=True)
    store = SliceEmbeddings(model, vol, budget_bytes=MIB, encoder_batch=4)
    assert store.prefetch(range(6)) == 6 and model.embeds == 6 and store.encoder_batch == 1
    for k in range(6):
        assert torch.equal(store.get(k)[0].features, model.embed(vol.image[k]).features)

    class Broken(CountingModel):
        def embed_batch(self, images: Sequence[np.ndarray]) -> list[Embedding]:
            raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        SliceEmbeddings(Broken(batch=True), vol, budget_bytes=MIB, encoder_batch=4).prefetch(
            range(6)
        )


def test_disk_cache_makes_a_second_store_encode_nothing(tmp_path: Path) -> None:
    vol = _volume()
    model = CountingModel()
    cache = EmbeddingCache(tmp_path / "cache", model.signature())
    cold = SliceEmbeddings(model, vol, budget_bytes=0, cache=cache)
    assert cold.shares and cold.prefetch([0, 2]) == 2 and cold.get(4)[1] == 1
    assert cold.get(0)[1] == 0 and cold.disk_hits == 1  # budget 0: read back from the disk
    assert model.embeds == 3 and len(list((tmp_path / "cache").rglob("*.safetensors"))) == 3
    warm = SliceEmbeddings(model, vol, budget_bytes=MIB, cache=cache)
    assert warm.prefetch([0, 2, 4]) == 0 and model.embeds == 3 and warm.disk_hits == 3
    emb, passes = warm.get(2)
    assert passes == 0 and torch.equal(emb.features, model.embed(vol.image[2]).features)


# ---------------------------------------------------------------------------- evaluate-3d
def _four_objects(src: Path) -> None:
    """x=40, y=44, z=12: four bright objects overlapping in z (and touching in plane), on
    darker noise; objects of 1..4 spanning z 1-9, 3-7, 2-6 and 5-10."""
    rng = np.random.default_rng(3)
    img = rng.integers(0, 300, size=(40, 44, 12)).astype(np.int16)
    lab = np.zeros(img.shape, np.uint8)
    xx, yy = np.mgrid[:40, :44]
    for value, (cx, cy, r, z0, z1) in enumerate(
        [(20, 22, 10, 1, 9), (14, 18, 4, 3, 7), (27, 27, 5, 2, 6), (12, 32, 6, 5, 10)], start=1
    ):
        for z in range(z0, z1 + 1):
            rz = r * (1 - 0.5 * abs(z - (z0 + z1) / 2) / max(1, (z1 - z0) / 2))
            lab[:, :, z][(xx - cx) ** 2 + (yy - cy) ** 2 <= rz**2] = value
    img[lab > 0] = rng.integers(700, 1000, size=int((lab > 0).sum()))
    _nifti(src / "images" / "c1.nii.gz", img, (0.8, 0.7, 3.0))
    _nifti(src / "labels" / "c1.nii.gz", lab, (0.8, 0.7, 3.0))
    (src / "d.yaml").write_text(
        "name: Four\nmodality: MR\nclasses: {Core: 1, Necrosis: 2, Edema: 3, Enhancing: 4}\n"
    )


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("four")
    _four_objects(tmp / "src")
    prepare_dataset(tmp / "src", tmp / "out", config=tmp / "src" / "d.yaml", progress=False)
    return tmp / "out"


def _cfg(prepared: Path, **kw: object) -> Run3DConfig:
    return Run3DConfig(
        prepared=str(prepared),
        protocols=PROTOCOLS,
        protocol=ProtocolConfig(steps=3, shift_range=(0.0, 4.0)),
        save_masks=True,
        **kw,  # type: ignore[arg-type]
    )


def _same_results(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Every metric of every step equal; only the timing and pass columns may differ."""
    keep = [c for c in a.columns if c not in TIMING]
    assert sorted(keep) == sorted(c for c in b.columns if c not in TIMING)
    pd.testing.assert_frame_equal(a[keep], b[keep], check_exact=True)


def _masks(run: Path) -> dict[str, bytes]:
    import nibabel as nib

    return {
        str(p.relative_to(run)): np.asarray(nib.load(p).dataobj).tobytes()
        for p in sorted((run / "masks").rglob("*.nii.gz"))
    }


def test_shared_embeddings_give_the_per_object_results_with_one_pass_per_slice(
    four: Path, tmp_path: Path
) -> None:
    load_protocols()
    old_model = CountingModel()
    old = evaluate_3d(_cfg(four, embedding_budget_mb=0), tmp_path / "old", model=old_model)
    new_model = CountingModel()
    new = evaluate_3d(_cfg(four), tmp_path / "new", model=new_model)
    assert (old["status"] == "ok").all() and len(old) == 4 * (1 + 1 + 4)
    assert old["label_value"].nunique() == 4
    _same_results(old, new)
    assert _masks(tmp_path / "old") == _masks(tmp_path / "new")
    # the per-object path encodes slices again (objects overlap); its columns say so truthfully
    touched = len(old_model.hashes)
    assert old_model.embeds > 2 * touched
    assert old["encoder_passes"].sum() == old_model.embeds
    assert (old["volume_encoder_passes"] == old_model.embeds).all()
    assert (old["volume_slices"] == touched).all()
    # shared: one pass per distinct slice touched, the same slices
    assert new_model.hashes == old_model.hashes
    assert new_model.embeds == touched
    assert (new["volume_encoder_passes"] == touched).all()
    assert (new["volume_slices"] == touched).all()
    # rows count only the passes run while they were made (the rest were prefetched)
    assert new["encoder_passes"].sum() <= touched
    assert (new["volume_embedding_peak_mb"] <= 1024).all()
    summary = encoder_summary(new)
    assert summary.to_dict("records")[0]["encoder_passes"] == touched


def test_a_small_budget_and_a_gpu_batch_change_no_number(four: Path, tmp_path: Path) -> None:
    load_protocols()
    ref = evaluate_3d(_cfg(four, embedding_budget_mb=0), tmp_path / "ref", model=CountingModel())
    unit_mb = 40 * 44 * 4 / MIB  # one 1x1x44x40 float32 embedding (prepared slices are y x x)
    small = CountingModel()
    df = evaluate_3d(_cfg(four, embedding_budget_mb=3 * unit_mb), tmp_path / "s", model=small)
    _same_results(ref, df)
    assert (df["volume_embedding_peak_mb"] <= 3 * unit_mb + 1e-9).all()
    assert small.embeds == df["volume_encoder_passes"].iloc[0] > len(small.hashes)  # evictions
    gpu = CountingModel(batch=True)
    df = evaluate_3d(_cfg(four), tmp_path / "g", model=gpu)
    _same_results(ref, df)
    assert gpu.batches and max(gpu.batches) == 4 and gpu.embeds == len(gpu.hashes)


def test_warm_cache_dir_encodes_nothing_and_resume_accepts_another_budget(
    four: Path, tmp_path: Path
) -> None:
    load_protocols()
    cache = str(tmp_path / "cache")
    cold_model = CountingModel()
    cold = evaluate_3d(_cfg(four, cache_dir=cache), tmp_path / "cold", model=cold_model)
    assert cold_model.embeds == len(cold_model.hashes) == cold["volume_encoder_passes"].iloc[0]
    warm_model = CountingModel()
    warm = evaluate_3d(
        _cfg(four, cache_dir=cache, embedding_budget_mb=0), tmp_path / "warm", model=warm_model
    )
    assert warm_model.embeds == 0
    assert (warm["volume_encoder_passes"] == 0).all() and (warm["encoder_passes"] == 0).all()
    assert (warm["volume_slices"] == len(cold_model.hashes)).all()
    _same_results(cold, warm)
    # the budget and the cache change no number: a resume with others is accepted and recorded
    again = evaluate_3d(_cfg(four, embedding_budget_mb=5), tmp_path / "warm", model=warm_model)
    pd.testing.assert_frame_equal(again, warm)
    import json

    saved = json.loads((tmp_path / "warm" / "config-3d.json").read_text())
    assert saved["embedding_budget_mb"] == 5 and saved["cache_dir"] is None


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_a_bad_budget_is_refused_naming_the_option(four: Path, tmp_path: Path, bad: float) -> None:
    with pytest.raises(OptionError, match="--embed-budget-mb"):
        evaluate_3d(_cfg(four, embedding_budget_mb=bad), tmp_path / "r", model=CountingModel())
    assert not (tmp_path / "r").exists()


def test_a_cache_dir_that_is_a_file_is_refused(four: Path, tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OptionError, match="--cache-dir"):
        evaluate_3d(_cfg(four, cache_dir=str(f)), tmp_path / "r", model=CountingModel())
    assert not (tmp_path / "r").exists()


def test_cli_prints_passes_and_slices_per_volume(
    four: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sambench.cli import main
    from sambench.models import registry

    model = CountingModel()
    monkeypatch.setattr(registry, "build_any", lambda *a, **k: model)
    args = ["evaluate-3d", str(four), "--out", str(tmp_path / "r"), "--protocol",
            "slicewise-gt,propagate", "--cache-dir", str(tmp_path / "c")]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    head = next(line for line in out.splitlines() if "encoder_passes" in line)
    assert head.split() == ["volume_id", "slices", "encoder_passes", "embed_seconds"]
    row = out.splitlines()[out.splitlines().index(head) + 1].split()
    assert row[1] == row[2] == str(model.embeds)
    assert main([*args[:-4], "--embed-budget-mb", "-3"]) == 2
    assert "--embed-budget-mb" in capsys.readouterr().err


def _spinalcord(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(SPINALCORD, src)
    prepared = tmp_path / "prepared"
    prepare_dataset(src, prepared, config=src / "dataset.yaml", progress=False)
    return prepared


def test_spinal_cord_identical_before_and_after_with_a_stand_in(tmp_path: Path) -> None:
    load_protocols()
    prepared = _spinalcord(tmp_path)
    old_model, new_model = CountingModel(), CountingModel()
    old = evaluate_3d(_cfg(prepared, embedding_budget_mb=0), tmp_path / "old", model=old_model)
    new = evaluate_3d(_cfg(prepared), tmp_path / "new", model=new_model)
    assert (old["status"] == "ok").all() and len(old) == 1 + 1 + 4
    _same_results(old, new)
    assert _masks(tmp_path / "old") == _masks(tmp_path / "new")
    assert new_model.embeds == len(old_model.hashes) == new["volume_slices"].iloc[0]
    assert old_model.embeds > new_model.embeds


@pytest.mark.slow
def test_spinal_cord_identical_before_and_after_with_litemedsam(tmp_path: Path) -> None:
    from sambench.models.registry import build_any

    load_protocols()
    prepared = _spinalcord(tmp_path)
    model = build_any("litemedsam", None, device="cpu")
    cfg = {"protocols": PROTOCOLS, "protocol": ProtocolConfig(steps=1), "save_masks": True}
    old_cfg = Run3DConfig(str(prepared), embedding_budget_mb=0, **cfg)  # type: ignore[arg-type]
    old = evaluate_3d(old_cfg, tmp_path / "old", model=model)
    new_cfg = Run3DConfig(str(prepared), cache_dir=str(tmp_path / "c"), **cfg)  # type: ignore[arg-type]
    new = evaluate_3d(new_cfg, tmp_path / "new", model=model)
    _same_results(old, new)
    assert _masks(tmp_path / "old") == _masks(tmp_path / "new")
    slices = int(new["volume_slices"].iloc[0])
    assert int(new["volume_encoder_passes"].iloc[0]) == slices
    assert int(old["volume_encoder_passes"].iloc[0]) > slices
