"""The demo datasets: the MNI152 T1 brain MRI shipped inside nilearn's wheel, as a user's NIfTI
dataset, beside the seed samples shipped in sambench (:mod:`sambench.demo.seed`).

``write_demo_source(dest)`` writes two datasets the way a user would lay out their data::

    dest/MNI152/images/mni152.nii.gz       T1 volume, 197x233x189 voxels, 1 mm isotropic (uint8)
    dest/MNI152/labels/mni152.nii.gz       uint8: 0 background, 1 GreyMatter, 2 WhiteMatter
    dest/MNI152/dataset.yaml               the dataset description (name, modality MRI, classes)
    dest/MNI152Brain/images/mni152.nii.gz  the same T1 volume
    dest/MNI152Brain/labels/mni152.nii.gz  uint8: 0 background, 1 WholeBrain (GM or WM)
    dest/MNI152Brain/dataset.yaml

Labels come from nilearn's grey- and white-matter probability maps: a voxel is grey matter when
its GM probability is above half the GM map's maximum, white matter likewise; where both hold,
white matter wins (one value per voxel). The whole brain overlaps both tissues and a label map holds
one value per voxel, so it is a second dataset over the same image (as the paper's datasets with
overlapping structures are). Nothing is downloaded.
"""

from __future__ import annotations

from functools import partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sambench.store.atomic import write_atomic, write_text_atomic

if TYPE_CHECKING:
    from sambench.data.prepare import PrepareReport

DEMO_NAME = "MNI152"
BRAIN_NAME = "MNI152Brain"
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
BRAIN_YAML = f"""\
# The sambench demo's whole-brain dataset: MNI152 T1 with grey or white matter as one class.
name: {BRAIN_NAME}
modality: MRI
images: images
labels: labels
classes:
  WholeBrain: 1
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
    """Write the demo source folders ``dest/MNI152`` and ``dest/MNI152Brain`` (see the module
    docstring); returns the first.

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
    brain = (label > 0).astype(np.uint8)
    for folder, lab, yaml in (
        (src, label, DEMO_YAML),
        (Path(dest) / BRAIN_NAME, brain, BRAIN_YAML),
    ):
        for sub, arr in (("images", image), ("labels", lab)):
            out = nib.Nifti1Image(np.ascontiguousarray(arr), t1.affine)
            out.header.set_zooms(t1.header.get_zooms()[:3])
            write_atomic(folder / sub / "mni152.nii.gz", partial(nib.save, out), suffix=".nii.gz")
        write_text_atomic(folder / "dataset.yaml", yaml)
    return src


def prepare_demo(
    out: Path, workers: int = 1, progress: bool = True, source_dir: Path | None = None
) -> list[PrepareReport]:
    """Write the demo sources (default ``out/.demo-source``) and prepare them into ``out``
    through the normal :func:`~sambench.data.prepare.prepare_dataset` path; returns their
    reports, in this order: ``MNI152`` and ``MNI152Brain`` (modality MRI; written once), then the
    shipped seed samples ``22_Heart`` (MRI) and ``6_Pancreas`` (CT) of
    :mod:`sambench.demo.seed` (written again where a file is missing or differs)."""
    from sambench.data.prepare import prepare_dataset
    from sambench.demo.seed import SEED_DATASETS, write_seed_source

    out = Path(out)
    src = Path(source_dir) if source_dir is not None else out / ".demo-source"
    if not all((src / n / "dataset.yaml").is_file() for n in (DEMO_NAME, BRAIN_NAME)):
        write_demo_source(src)
    reports = [
        prepare_dataset(
            src / name,
            out,
            config=src / name / "dataset.yaml",
            modality="MRI",
            workers=workers,
            progress=progress,
        )
        for name in (DEMO_NAME, BRAIN_NAME)
    ]
    for folder, modality in zip(write_seed_source(src), SEED_DATASETS.values(), strict=True):
        reports.append(
            prepare_dataset(folder, out, modality=modality, workers=workers, progress=progress)
        )
    return reports
