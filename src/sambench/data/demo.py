"""The demo dataset: the MNI152 T1 brain MRI shipped inside nilearn's wheel, as a user's NIfTI dataset.

``write_demo_source(dest)`` writes ``dest/MNI152/`` the way a user would lay out their data::

    images/mni152.nii.gz    T1 volume, 197x233x189 voxels, 1 mm isotropic (uint8 as shipped)
    labels/mni152.nii.gz    uint8: 0 background, 1 GreyMatter, 2 WhiteMatter
    dataset.yaml            the dataset description (name, modality MRI, classes)

Labels come from nilearn's grey- and white-matter probability maps: a voxel is grey matter when
its GM probability is above half the GM map's maximum, white matter likewise; where both hold,
white matter wins (one value per voxel). A whole-brain class is not included: it would overlap
both, and one label map holds one value per voxel. Nothing is downloaded.
"""

from __future__ import annotations

from functools import partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sambench.data.atomic import write_atomic, write_text_atomic

if TYPE_CHECKING:
    from sambench.data.prepare import PrepareReport

DEMO_NAME = "MNI152"
_FILE = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
DEMO_YAML = f"""\
# The sambench demo dataset: MNI152 2009a symmetric T1 with grey/white matter from nilearn.
name: {DEMO_NAME}
modality: MRI
images: images
labels: labels
classes:
  GreyMatter: 1
  WhiteMatter: 2
"""


def _nilearn_file(kind: str) -> Path:
    path = Path(str(resources.files("nilearn.datasets") / "data" / _FILE.format(kind)))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; the demo needs nilearn's bundled MNI152 files")
    return path


def demo_label(gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """uint8 label from probability maps (same shape): 1 where gm > max(gm)/2, then 2 where
    wm > max(wm)/2 (white matter wins where both hold), else 0."""
    label = np.zeros(gm.shape, np.uint8)
    label[gm > gm.max() / 2] = 1
    label[wm > wm.max() / 2] = 2
    return label


def _load(nib: Any, kind: str) -> Any:
    return nib.load(_nilearn_file(kind))


def write_demo_source(dest: Path, crop: tuple[slice, slice, slice] | None = None) -> Path:
    """Write the demo source folder ``dest/MNI152`` (see the module docstring); returns it.

    ``crop``: optional (x, y, z) voxel slices to write a smaller volume (tests); the affine is
    kept (the origin shift of a crop does not matter to ``prepare``).
    """
    import nibabel as nib

    src = Path(dest) / DEMO_NAME
    t1: Any = nib.load(_nilearn_file("t1"))
    volumes = {k: np.asanyarray(_load(nib, k).dataobj) for k in ("gm", "wm")}
    image = np.asanyarray(t1.dataobj)
    label = demo_label(volumes["gm"], volumes["wm"])
    if crop is not None:
        image, label = image[crop], label[crop]
    for sub, arr in (("images", image), ("labels", label)):
        out = nib.Nifti1Image(np.ascontiguousarray(arr), t1.affine)
        out.header.set_zooms(t1.header.get_zooms()[:3])
        write_atomic(src / sub / "mni152.nii.gz", partial(nib.save, out), suffix=".nii.gz")
    write_text_atomic(src / "dataset.yaml", DEMO_YAML)
    return src


def prepare_demo(
    out: Path, workers: int = 1, progress: bool = True, source_dir: Path | None = None
) -> PrepareReport:
    """Write the demo source (default ``out/.demo-source``, once) and prepare it into ``out``
    (dataset ``MNI152``, modality MRI) through the normal
    :func:`~sambench.data.prepare.prepare_dataset` path; returns its report."""
    from sambench.data.prepare import prepare_dataset

    out = Path(out)
    src = Path(source_dir) if source_dir is not None else out / ".demo-source"
    source = src / DEMO_NAME
    if not (source / "dataset.yaml").is_file():
        write_demo_source(src)
    return prepare_dataset(
        source,
        out,
        config=source / "dataset.yaml",
        modality="MRI",
        workers=workers,
        progress=progress,
    )
