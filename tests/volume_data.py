"""A synthetic NIfTI volume dataset with known objects, prepared with ``sambench prepare`` (shared
by the volumetric tests)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from sambench.data.prepare import prepare_dataset

CORD = Path(__file__).parent / "data" / "sct-spinalcord"
"""The spinal-cord MRI sample (NIfTI, stored P, S, R; its dataset.yaml)."""


def prepare_cord(root: Path) -> Path:
    """``sambench prepare`` (the CLI) on a copy of the spinal-cord sample under ``root``
    (``root/src``); returns the prepared folder ``root/prepared``."""
    import shutil

    from sambench.cli import main

    src = root / "src"
    shutil.copytree(CORD, src)
    out = root / "prepared"
    assert main(["prepare", str(src), "--out", str(out), "--config",
                 str(src / "dataset.yaml")]) == 0  # fmt: skip
    return out


DIRECTION = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # rotated in-plane


def _nifti(
    path: Path, xyz: np.ndarray, spacing: tuple[float, float, float], frame: bool = True
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.eye(4)
    affine[:3, :3] = DIRECTION @ np.diag(spacing)
    affine[:3, 3] = (10.0, -5.0, 2.5)
    img = nib.Nifti1Image(xyz, affine)
    if not frame:  # no coordinate system, no unit: a header without physical spacing
        img.set_qform(None, code=0)
        img.set_sform(None, code=0)
        img.header.set_xyzt_units(None, None)
    nib.save(img, path)


def _case(src: Path, spacing: tuple[float, float, float], frame: bool = True) -> np.ndarray:
    """x=30, y=36, z=7 volume with a Liver box (z 1..5, area peaks on z=3) and a one-slice Tumor."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 1000, size=(30, 36, 7)).astype(np.int16)
    lab = np.zeros(img.shape, np.uint8)
    for z, half in ((1, 3), (2, 5), (3, 8), (4, 5), (5, 2)):
        lab[15 - half : 15 + half, 18 - half : 18 + half, z] = 1
    lab[2:6, 2:5, 6] = 2  # Tumor: 12 voxels on z=6 only (kept in 3D, dropped in 2D: <= 50 px)
    _nifti(src / "images" / "c1.nii.gz", img, spacing, frame)
    _nifti(src / "labels" / "c1.nii.gz", lab, spacing, frame)
    (src / "d.yaml").write_text("name: Synth\nmodality: CT\nclasses: {Liver: 1, Tumor: 2}\n")
    return lab


def prepare_synthetic(
    tmp_path: Path,
    spacing: tuple[float, float, float] = (0.8, 0.7, 3.0),
    frame: bool = True,
    volume_format: str = "auto",
) -> tuple[Path, np.ndarray]:
    """Write the case under ``tmp_path/src``, prepare it into ``tmp_path/out``; (out, xyz label)."""
    src, out = tmp_path / "src", tmp_path / "out"
    lab = _case(src, spacing, frame)
    prepare_dataset(src, out, config=src / "d.yaml", progress=False, volume_format=volume_format)
    return out, lab
