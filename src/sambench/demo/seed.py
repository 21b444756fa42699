"""The demo's patients: the paper authors' 30 seed slices shipped in the package, as a user's folders.

``seed_samples/`` (package data) holds two datasets in the layout of the paper's code, byte-for-byte
copies of files in the authors' repository (source, citations and terms in its ``README.md``)::

    22_Heart/info.json, images/22_Heart_<case>_<slice>.png, labels/...   cine MRI, 14 slices
                                                                           of 4 cases (2, 3, 4, 5)
    6_Pancreas/info.json, images/6_Pancreas_<case>_<slice>_<n>.png, ...   CT, 16 slices of 8 cases
                                                                           (10, 12, 13, 15, 17, 18,
                                                                           20, 21)

The case (patient) is the number after the dataset name (``sambench.data.describe.paper_case_slice``),
so the cluster bootstrap of the report resamples patients, not slices. The MNI152 template
(:mod:`sambench.demo.source`) is one case; these give the demo's report enough cases for a CI by
case (``sambench.analysis.stats.MIN_CASES``: 6_Pancreas has 8; 22_Heart's 4 show "too few").
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from sambench.store.atomic import write_bytes_atomic

#: The shipped datasets and their modality (the paper's: cine MRI; CT).
SEED_DATASETS = {"22_Heart": "MRI", "6_Pancreas": "CT"}
SEED_PACKAGE_DIR = "seed_samples"


def seed_root() -> Traversable:
    """The package's ``seed_samples`` folder (a Traversable: it may live inside a zip)."""
    return resources.files("sambench.demo") / SEED_PACKAGE_DIR


def seed_files() -> dict[str, Traversable]:
    """Every shipped file of :data:`SEED_DATASETS`, by its path under ``seed_samples`` (POSIX,
    sorted): ``<dataset>/info.json``, ``<dataset>/images/*.png``, ``<dataset>/labels/*.png``."""
    root = seed_root()
    files: dict[str, Traversable] = {}
    for name in SEED_DATASETS:
        ds = root / name
        if not ds.is_dir():
            raise FileNotFoundError(f"{ds}: not found; the demo needs sambench's seed samples")
        files[f"{name}/info.json"] = ds / "info.json"
        for sub in ("images", "labels"):
            for f in (ds / sub).iterdir():
                if f.name.endswith(".png"):
                    files[f"{name}/{sub}/{f.name}"] = f
    return dict(sorted(files.items()))


def write_seed_source(dest: Path) -> list[Path]:
    """Write the shipped seed datasets into ``dest/<dataset>/`` (same names, same bytes); returns
    the dataset folders in :data:`SEED_DATASETS` order. A file already there with the same bytes
    is left alone; a missing or different one is (re)written atomically."""
    dest = Path(dest)
    for rel, src in seed_files().items():
        data = src.read_bytes()
        path = dest / rel
        if not (path.is_file() and path.read_bytes() == data):
            write_bytes_atomic(path, data)
    return [dest / name for name in SEED_DATASETS]
