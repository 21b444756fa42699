"""Prepared volumes as zarr stores: written and read one slice at a time (large volumes).

``sambench prepare --volume-format auto|nifti|zarr`` (default ``auto``: zarr when one volume's
uint8 size, voxels x 1 byte, exceeds ``--zarr-above-mb``, default 256 MB = 256e6 bytes) writes the
3D form of a volume as two zarr v3 array stores instead of NIfTI::

    volumes/images/<volume_id>.zarr   uint8 (S, H, W) slice-major: store[k] = the prepared PNG of
                                      slice k (not the file's (z, y, x) order NIfTI keeps)
    volumes/labels/<volume_id>.zarr   uint8 (S, H, W) label map, same layout

Each is chunked one slice per chunk (``chunks = (1, H, W)``, zstd then a CRC-32C checksum per
chunk), so a reader decodes only the slices it touches. Every chunk is written, all-zero slices
too (attribute ``every_chunk = true``), so a missing chunk file is damage, not an empty slice: a
flipped byte, a truncated or a missing chunk is a :class:`~sambench.errors.DataError` naming the
store and the chunk (``c/<k>/0/0``, slice k), never zeros or a decoder traceback. The attributes (``zarr.json``) hold the geometry: ``spacing`` and ``origin``
(the source file's x, y, z, mm), ``direction`` (3x3 ITK cosines, row-major), ``slice_axis``
(0/1/2 = the canonical RAS x/y/z axis that axis 0 is, :mod:`sambench.data.orientation`),
``plane`` (its name), ``orientation`` (the source file's axis codes), ``size`` (the file's x, y, z
voxels) and ``layout = "SHW"``. Each store is written into a temporary folder beside it and renamed when
complete (:func:`sambench.store.atomic.temp_dir_beside`, :func:`~sambench.store.atomic.commit_dir`): a killed prepare leaves no half store.

This module has no knowledge of :mod:`sambench.volumes`; :class:`SliceArray` is the lazy array the
volumetric stage reads through (``arr[k]`` -> HxW numpy, ``arr[a:b, y0:y1, x0:x1]`` -> a crop).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sambench.errors import DataError, OptionError
from sambench.store.atomic import commit_dir, temp_dir_beside

ZARR_SUFFIX = ".zarr"
VOLUME_FORMATS = ("auto", "nifti", "zarr")
DEFAULT_ZARR_ABOVE_MB = 256.0
LAYOUT = "SHW"


def check_volume_format(volume_format: str, zarr_above_mb: float) -> None:
    """``--volume-format`` one of :data:`VOLUME_FORMATS`; ``--zarr-above-mb`` finite, >= 0."""
    if volume_format not in VOLUME_FORMATS:
        raise OptionError(
            "--volume-format", f"expected one of {', '.join(VOLUME_FORMATS)}, got {volume_format!r}"
        )
    mb = zarr_above_mb
    if (
        isinstance(mb, bool)
        or not isinstance(mb, int | float)
        or not (math.isfinite(mb) and mb >= 0)
    ):
        raise OptionError("--zarr-above-mb", f"expected a number >= 0 (MB), got {mb!r}")


def choose_format(volume_format: str, n_voxels: int, zarr_above_mb: float) -> str:
    """``"nifti"`` or ``"zarr"`` for a volume of ``n_voxels`` (its uint8 size in bytes)."""
    if volume_format != "auto":
        return volume_format
    return "zarr" if n_voxels > zarr_above_mb * 1e6 else "nifti"


def is_zarr_path(path: Path | str) -> bool:
    return str(path).endswith(ZARR_SUFFIX)


def store_complete(path: Path) -> bool:
    """True for a finished store (its ``zarr.json`` is written with the array's creation)."""
    return path.is_dir() and (path / "zarr.json").is_file()


def geometry_attrs(
    size_xyz: tuple[int, ...],
    spacing_xyz: tuple[float, ...],
    origin_xyz: tuple[float, ...],
    direction: np.ndarray,
    slice_axis: int,
) -> dict[str, Any]:
    """The attributes of a prepared volume store (see the module docstring); a non-finite
    spacing is stored as 1.0, as the NIfTI writer does (``spacing_known`` says so)."""
    return {
        "sambench": "prepared volume",
        "layout": LAYOUT,
        "slice_axis": int(slice_axis),
        "size": [int(v) for v in size_xyz[:3]],
        "spacing": [float(v) if math.isfinite(v) else 1.0 for v in spacing_xyz[:3]],
        "origin": [float(v) for v in origin_xyz[:3]],
        "direction": [float(v) for v in np.asarray(direction, dtype=float).ravel()],
    }


class ZarrSliceWriter:
    """Write an (S, H, W) uint8 volume slice by slice into a new store, atomically.

    ``write(k, arr)`` stores slice ``k``; ``commit()`` writes zeros into the slices never
    written (every chunk exists, with its checksum) and renames the finished store onto ``path``
    (replacing an old one); ``abort()`` removes the temporary folder.
    """

    def __init__(self, path: Path, shape: tuple[int, int, int], attrs: dict[str, Any]) -> None:
        import zarr
        from zarr.codecs import Crc32cCodec, ZstdCodec

        self.path = Path(path)
        self.shape = shape
        self._written: set[int] = set()
        self._tmp: Path | None = temp_dir_beside(self.path, ZARR_SUFFIX)
        try:
            self._arr = zarr.create_array(
                store=str(self._tmp),
                shape=shape,
                chunks=(1, shape[1], shape[2]),
                dtype="uint8",
                fill_value=0,
                compressors=(ZstdCodec(), Crc32cCodec()),
                attributes={**attrs, "every_chunk": True},
                zarr_format=3,
                config={"write_empty_chunks": True},
            )
        except BaseException:
            self.abort()
            raise

    def write(self, k: int, arr: np.ndarray) -> None:
        if arr.shape != self.shape[1:]:
            raise ValueError(f"{self.path}: slice {k} shape {arr.shape}, expected {self.shape[1:]}")
        self._arr[k] = np.asarray(arr, dtype=np.uint8)
        self._written.add(int(k))

    def commit(self) -> Path:
        assert self._tmp is not None, "committed or aborted already"
        zero = np.zeros(self.shape[1:], np.uint8)
        for k in range(self.shape[0]):
            if k not in self._written:
                self.write(k, zero)
        tmp, self._tmp = self._tmp, None
        try:
            commit_dir(tmp, self.path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.path

    def abort(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


class SliceArray:
    """A read-only (S, H, W) uint8 array on a zarr store, decoded one slice (chunk) at a time.

    Indexing returns numpy (``arr[k]`` HxW, ``arr[a:b, y0:y1, x0:x1]`` a crop reading only slices
    a..b-1); ``np.asarray(arr)`` reads the whole volume (what a full-volume step needs).

    A damaged chunk (checksum mismatch, truncated, undecodable) or, in a store written with
    every chunk (``every_chunk``), a missing one raises :class:`~sambench.errors.DataError`
    naming the store and the chunk.
    """

    def __init__(self, arr: Any, path: Path, every_chunk: bool = False) -> None:
        self._arr = arr
        self.path = path
        self.shape: tuple[int, int, int] = tuple(int(v) for v in arr.shape)  # type: ignore[assignment]
        self.dtype = np.dtype(arr.dtype)
        self.ndim = 3
        self.every_chunk = every_chunk

    def _slices(self, key: Any) -> range:
        """The slice indices (axis 0) that ``key`` reads."""
        first = key[0] if isinstance(key, tuple) and key else key
        if isinstance(first, int | np.integer):
            return range(int(first) % self.shape[0], int(first) % self.shape[0] + 1)
        if isinstance(first, slice):
            return range(*first.indices(self.shape[0]))
        return range(self.shape[0])  # Ellipsis, arrays: every slice

    def _chunk(self, k: int) -> Path:
        return self.path / "c" / str(k) / "0" / "0"

    def _read(self, key: Any) -> np.ndarray:
        ks = self._slices(key)
        if self.every_chunk:
            for k in ks:
                if not self._chunk(k).is_file():
                    raise DataError(
                        self.path,
                        f"chunk {self._chunk(k).relative_to(self.path)} (slice {k}) is missing; "
                        "run prepare again into a new --out",
                    )
        try:
            return np.asarray(self._arr[key])
        except Exception:
            pass
        for k in ks:  # find the damaged chunk
            try:
                self._arr[k]
            except Exception as e:
                msg = str(e).splitlines()[0][:120] if str(e) else ""
                raise DataError(
                    self.path,
                    f"chunk c/{k}/0/0 (slice {k}) is damaged ({type(e).__name__}: {msg}); "
                    "run prepare again into a new --out",
                ) from None
        raise DataError(self.path, f"cannot read {key!r} from the store")

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, int | np.integer):
            k = int(key)
            if not -self.shape[0] <= k < self.shape[0]:
                raise IndexError(f"slice {k} outside 0..{self.shape[0] - 1} of {self.path}")
        return self._read(key)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self._read(...)
        return a if dtype is None else a.astype(dtype)

    def __repr__(self) -> str:
        return f"SliceArray({self.path}, shape={self.shape}, dtype={self.dtype})"


@dataclass(frozen=True)
class ZarrGrid:
    """The geometry of a prepared store, in the fields :func:`sambench.data.geometry.
    geometry_difference` compares (``size``/``spacing``/``origin`` in the file's x, y, z)."""

    path: Path
    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    slice_axis: int
    frames: None = None


def open_volume_store(path: Path) -> tuple[ZarrGrid, SliceArray]:
    """The geometry and the lazy array of one prepared store; DataError naming it when it is
    missing, unreadable or not a prepared volume."""
    if not store_complete(path):
        raise DataError(path, "zarr store is missing or incomplete (no zarr.json)")
    import zarr

    try:
        arr = zarr.open_array(str(path), mode="r")
        a: dict[str, Any] = dict(arr.attrs)
        grid = ZarrGrid(
            path=path,
            size=(int(a["size"][0]), int(a["size"][1]), int(a["size"][2])),
            spacing=(float(a["spacing"][0]), float(a["spacing"][1]), float(a["spacing"][2])),
            origin=(float(a["origin"][0]), float(a["origin"][1]), float(a["origin"][2])),
            direction=np.asarray(a["direction"], dtype=float).reshape(3, 3),
            slice_axis=int(a["slice_axis"]),
        )
        layout = a.get("layout")
        every_chunk = a.get("every_chunk") is True
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise DataError(path, f"is not a sambench prepared volume store ({e})") from None
    except Exception as e:  # zarr's own errors: a damaged store
        raise DataError(path, f"cannot be read as a zarr array ({type(e).__name__}: {e})") from None
    if layout != LAYOUT or arr.ndim != 3:
        raise DataError(path, f"expected an (S, H, W) {LAYOUT} store, got layout {layout!r}")
    return grid, SliceArray(arr, path, every_chunk)
