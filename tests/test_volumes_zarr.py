"""zarr storage of the 3D form (prepare --volume-format) and streamed evaluation: the round trip
against the NIfTI path, evaluate-3d giving the same table from both, the cropped scoring against
the full-volume metrics (known answers, MONAI), atomic and resumable writes, bad options."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sambench.cli import main
from sambench.data import zarr_volumes
from sambench.data.prepare import prepare_dataset
from sambench.data.zarr_volumes import SliceArray
from sambench.errors import OptionError
from sambench.metrics.volume import volume_metrics
from sambench.models.base import Embedding, Prediction
from sambench.prompts.types import Prompts
from sambench.volumes import Object3D, Volume3D
from sambench.volumes.evaluate import Run3DConfig, evaluate_3d
from sambench.volumes.io import load_volume_table, read_volume
from sambench.volumes.masks import score_object
from sambench.volumes.sparse import SparseMask
from volume_data import _case


class BoxModel:
    """The prompt's box filled (clicks alone: nothing)."""

    name = "boxfill"

    def embed(self, image: np.ndarray) -> Embedding:
        return Embedding(torch.zeros(1, 1, 1, 1), image.shape[:2], image.shape[:2])

    def predict(
        self, embedding: Embedding, prompts: Sequence[Prompts], multimask_output: bool | None = None
    ) -> Prediction:
        h, w = embedding.original_size
        masks = np.zeros((len(prompts), 1, h, w), bool)
        for i, p in enumerate(prompts):
            if p.box is not None:
                x0, y0, x1, y1 = (round(v) for v in p.box)
                masks[i, 0, y0 : y1 + 1, x0 : x1 + 1] = True
        n = len(prompts)
        return Prediction(masks, np.ones((n, 1), np.float32), np.zeros((n, 1, 4, 4), np.float32))


def _prepare(tmp_path: Path, fmt: str, name: str, **kw: object) -> Path:
    src = tmp_path / "src"
    if not src.is_dir():
        _case(src, (0.8, 0.7, 3.0))
    out = tmp_path / name
    prepare_dataset(src, out, config=src / "d.yaml", progress=False, volume_format=fmt, **kw)  # type: ignore[arg-type]
    return out


def _table(out: Path) -> pd.DataFrame:
    return load_volume_table(out).drop(columns=["_root"])


def test_zarr_round_trip_equals_the_nifti_path(tmp_path: Path) -> None:
    nii, zr = _prepare(tmp_path, "nifti", "nii"), _prepare(tmp_path, "zarr", "zarr")
    tn, tz = _table(nii), _table(zr)
    assert tz["image_path"].str.endswith(".zarr").all()
    assert tz["image_path"].tolist() == tn["image_path"].str.replace(".nii.gz", ".zarr").tolist()
    pd.testing.assert_frame_equal(
        tn.drop(columns=["image_path", "label_path"]), tz.drop(columns=["image_path", "label_path"])
    )
    row_n, row_z = tn.iloc[0].to_dict(), tz.iloc[0].to_dict()
    vn, vz = read_volume(row_n, nii), read_volume(row_z, zr)
    assert isinstance(vz.image, SliceArray) and isinstance(vz.label, SliceArray)
    # the source's voxel x runs A, y runs L (volume_data.DIRECTION): sliced in RAS since issue 27,
    # rows = A-P = the file's 30 x voxels, columns = R-L = its 36 y voxels (before: (7, 36, 30))
    assert vz.shape == vn.shape == (7, 30, 36)
    assert np.array_equal(np.asarray(vz.image), vn.image)
    assert np.array_equal(np.asarray(vz.label), vn.label)
    assert np.array_equal(vz.image[3], vn.image[3]) and vz.image[3].shape == (30, 36)
    assert vz.spacing == vn.spacing and vz.slice_axis == vn.slice_axis == 2
    assert vz.origin == pytest.approx(vn.origin)
    assert np.allclose(vz.direction, vn.direction)
    import zarr

    store = zarr.open_array(str(zr / row_z["image_path"]), mode="r")
    assert store.chunks == (1, 30, 36) and store.dtype == np.uint8
    attrs = dict(store.attrs)
    assert attrs["spacing"] == pytest.approx([0.8, 0.7, 3.0]) and attrs["slice_axis"] == 2
    assert attrs["origin"] == pytest.approx([-10.0, 5.0, 2.5])  # ITK (LPS) of the RAS affine
    assert attrs["origin"] == pytest.approx(vn.origin) and attrs["layout"] == "SHW"
    assert (attrs["plane"], attrs["orientation"]) == ("axial", "ALS")


def test_auto_picks_zarr_above_the_threshold_only(tmp_path: Path) -> None:
    small = _prepare(tmp_path, "auto", "a")  # 7.6 kB < 256 MB
    assert _table(small)["image_path"].str.endswith(".nii.gz").all()
    big = _prepare(tmp_path, "auto", "b", zarr_above_mb=0.005)  # 7560 bytes > 5000
    assert _table(big)["image_path"].str.endswith(".zarr").all()


def test_evaluate_3d_on_zarr_equals_nifti(tmp_path: Path) -> None:
    nii, zr = _prepare(tmp_path, "nifti", "nii"), _prepare(tmp_path, "zarr", "zarr")
    protocols = ("slicewise-gt", "propagate", "interactive-3d")
    frames = []
    for prep in (nii, zr):
        cfg = Run3DConfig(prepared=str(prep), protocols=protocols, save_masks=True)
        frames.append(evaluate_3d(cfg, tmp_path / f"run-{prep.name}", model=BoxModel()))
    a, b = (
        f.drop(columns=["seconds", "cumulative_seconds", "volume_embed_seconds"]) for f in frames
    )  # timings
    assert len(a) == 2 * (1 + 1 + 6)
    pd.testing.assert_frame_equal(a, b)
    import SimpleITK as sitk

    for rel in a["mask_path"]:
        m1 = sitk.ReadImage(str(tmp_path / "run-nii" / rel))
        m2 = sitk.ReadImage(str(tmp_path / "run-zarr" / rel))
        assert np.array_equal(sitk.GetArrayFromImage(m1), sitk.GetArrayFromImage(m2))
        assert m1.GetOrigin() == m2.GetOrigin() and m1.GetDirection() == m2.GetDirection()
        assert m1.GetSpacing() == pytest.approx(m2.GetSpacing())


def _cube_case() -> tuple[Volume3D, Object3D]:
    lab = np.zeros((12, 20, 20), np.uint8)
    lab[2:6, 5:9, 5:9] = 3  # a 4x4x4 cube, slices 2..5
    vol = Volume3D("v", "d", "c", lab.copy(), lab, (2.0, 0.5, 0.5))
    return vol, Object3D("v", 3, "cube", 64, (2, 5, 5, 5, 8, 8), key_slice=2, n_slices=4)


def _full(pred: np.ndarray, vol: Volume3D) -> dict[str, float | int | bool]:
    return volume_metrics(pred, np.asarray(vol.label) == 3, vol.spacing)


def _same(a: dict[str, float | int | bool], b: dict[str, float | int | bool]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == b[k] or (math.isnan(float(a[k])) and math.isnan(float(b[k]))), k


def test_cropped_score_equals_full_volume_with_prediction_off_the_gt_slices() -> None:
    vol, obj = _cube_case()
    dense = np.asarray(vol.label) == 3
    dense[10, 6, 6] = True  # a false positive on a slice without ground truth
    sparse = SparseMask(vol.shape)
    for k in range(vol.shape[0]):
        sparse[k] = dense[k]
    assert sorted(k for k, _ in sparse.slices()) == [2, 3, 4, 5, 10]
    full = _full(dense, vol)
    _same(score_object(sparse, vol, obj), full)
    _same(score_object(dense, vol, obj), full)
    assert full["dsc"] == pytest.approx(100 * 2 * 64 / (65 + 64))
    assert full["hd"] == pytest.approx(5 * 2.0)  # slice 10 to the cube's top face (slice 5)
    assert full["volume_error"] == pytest.approx(100 / 64) and full["pred_voxels"] == 65
    from monai.metrics import compute_hausdorff_distance

    hd = compute_hausdorff_distance(
        torch.from_numpy(dense)[None, None], torch.from_numpy(np.asarray(vol.label) == 3)[None, None],
        spacing=vol.spacing,
    )  # fmt: skip
    assert float(hd) == pytest.approx(full["hd"])


def test_cropped_score_known_answers_shift_edge_and_empty() -> None:
    vol, obj = _cube_case()
    shifted = np.zeros(vol.shape, bool)
    shifted[3:7, 5:9, 5:9] = True  # one slice up: DSC 75 %, HD = one slice = 2 mm
    got = score_object(shifted, vol, obj)
    _same(got, _full(shifted, vol))
    assert got["dsc"] == pytest.approx(75.0) and got["hd"] == pytest.approx(2.0)
    edge = np.zeros(vol.shape, bool)
    edge[0:6, 0:9, 5:20] = True  # touches the volume's borders: the crop is clipped there
    _same(score_object(edge, vol, obj), _full(edge, vol))
    empty = score_object(SparseMask(vol.shape), vol, obj)
    _same(empty, _full(np.zeros(vol.shape, bool), vol))
    assert empty["hd"] == pytest.approx(math.sqrt(24**2 + 10**2 + 10**2))  # the whole diagonal


def test_cropped_score_on_random_shapes_equals_full() -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        lab = np.zeros((10, 16, 18), np.uint8)
        z0, y0 = int(rng.integers(0, 8)), int(rng.integers(0, 11))
        lab[z0 : z0 + 3, y0 : y0 + 6, 4:11] = 1
        box = (z0, y0, 4, min(z0 + 2, 9), y0 + 5, 10)
        obj = Object3D("v", 1, "o", int(lab.sum()), box, z0)
        vol = Volume3D("v", "d", "c", lab, lab, (1.5, 0.7, 0.9))
        pred = rng.random(lab.shape) > 0.97
        _same(score_object(pred, vol, obj), volume_metrics(pred, lab == 1, vol.spacing))


def test_interrupted_zarr_write_leaves_no_store_and_resume_rewrites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = [0]
    real = zarr_volumes.ZarrSliceWriter.write

    def failing(self: zarr_volumes.ZarrSliceWriter, k: int, arr: np.ndarray) -> None:
        calls[0] += 1
        if calls[0] == 9:
            raise OSError(28, "No space left on device")
        real(self, k, arr)

    monkeypatch.setattr(zarr_volumes.ZarrSliceWriter, "write", failing)
    with pytest.raises(OSError):
        _prepare(tmp_path, "zarr", "out")
    vols = tmp_path / "out" / "Synth" / "volumes"
    assert not [p for p in vols.rglob("*") if p.name.endswith(".zarr")]  # no store, no temp
    monkeypatch.setattr(zarr_volumes.ZarrSliceWriter, "write", real)
    # a killed run's temporary store (never renamed) is removed on the next start
    stale = vols / "images" / ".Synth_c1.zarr.abcd1234.tmp.zarr"
    (stale / "c").mkdir(parents=True)
    (stale / "zarr.json").write_text("{}")
    _prepare(tmp_path, "zarr", "out")
    assert not stale.exists()
    row = _table(tmp_path / "out").iloc[0].to_dict()
    vz = read_volume(row, tmp_path / "out")
    vn = read_volume(_table(_prepare(tmp_path, "nifti", "nii")).iloc[0].to_dict(), tmp_path / "nii")
    assert np.array_equal(np.asarray(vz.label), vn.label)
    # a store removed after prepare: resume redoes the case
    import shutil

    shutil.rmtree(tmp_path / "out" / row["label_path"])
    rep = prepare_dataset(
        tmp_path / "src", tmp_path / "out", config=tmp_path / "src" / "d.yaml", progress=False,
        volume_format="zarr",
    )  # fmt: skip
    assert rep.cases_resumed == 0 and rep.cases_done == 1
    assert np.array_equal(np.asarray(read_volume(row, tmp_path / "out").label), vn.label)


def test_zarr_store_follows_the_umask(tmp_path: Path) -> None:
    import os

    from sambench.store.atomic import reset_umask_cache

    old = os.umask(0o027)
    reset_umask_cache()
    try:
        out = _prepare(tmp_path, "zarr", "out")
    finally:
        os.umask(old)
        reset_umask_cache()
    store = out / _table(out).iloc[0]["image_path"]
    assert store.stat().st_mode & 0o777 == 0o750
    assert (store / "zarr.json").stat().st_mode & 0o777 == 0o640


def test_bad_volume_format_is_one_line_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _case(tmp_path / "src", (0.8, 0.7, 3.0))
    with pytest.raises(OptionError, match="--volume-format"):
        prepare_dataset(tmp_path / "src", tmp_path / "o", volume_format="tiff", progress=False)
    with pytest.raises(OptionError, match="--zarr-above-mb"):
        prepare_dataset(tmp_path / "src", tmp_path / "o", zarr_above_mb=-1, progress=False)
    code = main(["prepare", str(tmp_path / "src"), "--out", str(tmp_path / "o"),
                 "--volume-format", "tiff"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) <= 2 and "--volume-format" in err[0] and "tiff" in err[0]
    assert not (tmp_path / "o").exists()


def test_streamed_protocols_never_read_a_zarr_volume_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zr = _prepare(tmp_path, "zarr", "zarr")

    def whole(self: SliceArray, dtype: object = None, copy: object = None) -> np.ndarray:
        raise AssertionError(f"{self.path} read whole")

    monkeypatch.setattr(SliceArray, "__array__", whole)
    protocols = ("slicewise-gt", "propagate", "interactive-3d")
    cfg = Run3DConfig(prepared=str(zr), protocols=protocols)
    df = evaluate_3d(cfg, tmp_path / "run", model=BoxModel())
    assert set(df["protocol"]) == set(protocols) and (df["status"] == "ok").all()
    assert len(df[df["protocol"] == "interactive-3d"]) == 2 * 6  # 2 objects, box + 5 clicks


def test_missing_or_damaged_store_names_it(tmp_path: Path) -> None:
    import shutil

    from sambench.errors import DataError

    zr = _prepare(tmp_path, "zarr", "zarr")
    row = _table(zr).iloc[0].to_dict()
    (zr / row["label_path"] / "zarr.json").write_text("{not json")
    with pytest.raises(DataError, match=r"labels/Synth_c1\.zarr"):
        read_volume(row, zr)
    shutil.rmtree(zr / row["label_path"])
    with pytest.raises(DataError, match=r"labels/Synth_c1\.zarr.*missing"):
        read_volume(row, zr)


def test_cli_prepare_volume_format_zarr(tmp_path: Path) -> None:
    _case(tmp_path / "src", (0.8, 0.7, 3.0))
    out = tmp_path / "o"
    args = ["prepare", str(tmp_path / "src"), "--out", str(out), "--config"]
    assert main([*args, str(tmp_path / "src" / "d.yaml"), "--volume-format", "zarr"]) == 0
    assert _table(out)["label_path"].str.endswith(".zarr").all()
    out2 = tmp_path / "o2"
    args2 = ["prepare", str(tmp_path / "src"), "--out", str(out2), "--config"]
    assert main([*args2, str(tmp_path / "src" / "d.yaml"), "--zarr-above-mb", "0.001"]) == 0
    assert _table(out2)["label_path"].str.endswith(".zarr").all()  # auto, above 1000 bytes


def test_flipped_truncated_or_missing_chunk_is_an_error_naming_store_and_chunk(
    tmp_path: Path,
) -> None:
    """Before: stores had no checksum (a flipped byte changed DSC silently), a deleted chunk
    read as zeros and a truncated one gave a long zstd traceback naming no file."""
    import json

    from sambench.errors import DataError

    zr = _prepare(tmp_path, "zarr", "zarr")
    row = _table(zr).iloc[0].to_dict()
    store = zr / row["image_path"]
    codecs = json.loads((store / "zarr.json").read_text())["codecs"]
    assert "crc32c" in [c["name"] for c in codecs]
    depth = read_volume(row, zr).image.shape[0]
    assert all((store / "c" / str(k) / "0" / "0").is_file() for k in range(depth))
    whole = np.asarray(read_volume(row, zr).image)

    chunk = store / "c" / "1" / "0" / "0"
    good = chunk.read_bytes()
    raw = bytearray(good)
    raw[len(raw) // 2] ^= 0x01  # one flipped bit
    chunk.write_bytes(bytes(raw))
    vol = read_volume(row, zr)
    assert np.array_equal(vol.image[0], whole[0])  # other slices still read
    for read in (
        lambda: vol.image[1],
        lambda: vol.image[0:3, 0:2, 0:2],
        lambda: np.asarray(vol.image),
    ):
        with pytest.raises(
            DataError, match=r"Synth_c1\.zarr: chunk c/1/0/0 \(slice 1\) is damaged"
        ):
            read()
    chunk.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(DataError, match=r"chunk c/1/0/0 \(slice 1\) is damaged") as e:
        read_volume(row, zr).image[1]
    assert len(str(e.value).splitlines()) == 1
    chunk.unlink()  # missing: not zeros
    with pytest.raises(DataError, match=r"chunk c/1/0/0 \(slice 1\) is missing"):
        read_volume(row, zr).image[1]
    chunk.write_bytes(good)
    assert np.array_equal(np.asarray(read_volume(row, zr).image), whole)
