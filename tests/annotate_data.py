"""A small prepared folder for the annotator's tests: two real heart MRI slices of the seed
samples (the two smallest, 196x240 and 320x320; three objects each), through `prepare_dataset`."""

from __future__ import annotations

import shutil
from pathlib import Path

from sambench.data.prepare import prepare_dataset

from shared_data import SEED

IMAGES = ("22_Heart_4_5.png", "22_Heart_3_2.png")


def make_annotation_prepared(root: Path) -> Path:
    """``root/prep``, prepared from a copy of two ``22_Heart`` pairs; returns its path."""
    src = root / "src" / "22_Heart"
    (src / "images").mkdir(parents=True)
    (src / "labels").mkdir()
    shutil.copy(SEED / "22_Heart" / "info.json", src)
    for name in IMAGES:
        shutil.copy(SEED / "22_Heart" / "images" / name, src / "images")
        shutil.copy(SEED / "22_Heart" / "labels" / name, src / "labels")
    prepare_dataset(src, root / "prep", modality="MRI", progress=False)
    return root / "prep"
