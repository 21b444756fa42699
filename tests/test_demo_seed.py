"""The demo's seed samples: shipped byte for byte, written as the source folders, prepared with the
patient as the case, so the report's CI by case resamples patients (8 pancreas, 4 heart)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sambench.analysis.stats import case_bootstrap, mean_with_ci
from sambench.data.manifest import load_manifest
from sambench.demo.run import DemoConfig, demo_images
from sambench.demo.seed import SEED_DATASETS, seed_files, seed_root, write_seed_source
from sambench.demo.source import BRAIN_NAME, DEMO_NAME, prepare_demo, write_demo_source
from sambench.engine.plan import select_images

from shared_data import SEED, TEST_DATA

PATIENTS = {"22_Heart": {"2", "3", "4", "5"}, "6_Pancreas": {"10", "12", "13", "15", "17", "18", "20", "21"}}  # fmt: skip


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_seed_source_writes_the_shipped_files(tmp_path: Path) -> None:
    folders = write_seed_source(tmp_path)
    assert folders == [tmp_path / "22_Heart", tmp_path / "6_Pancreas"]
    shipped = Path(str(seed_root()))  # a folder in a source checkout or an unpacked wheel
    assert _files(tmp_path) == sorted(seed_files())
    assert [f for f in _files(shipped) if f != "README.md"] == sorted(seed_files())
    for rel in _files(tmp_path):
        assert (tmp_path / rel).read_bytes() == (shipped / rel).read_bytes(), rel
    # 30 pairs, the same names in images/ and labels/
    for ds, n in (("22_Heart", 14), ("6_Pancreas", 16)):
        images = sorted(p.name for p in (tmp_path / ds / "images").iterdir())
        assert len(images) == n
        assert images == sorted(p.name for p in (tmp_path / ds / "labels").iterdir())
    # the copies the tests use (tests/data, or the project's shared folder) are the same bytes
    for ref in {TEST_DATA / "seed-samples", SEED}:
        for rel in _files(ref):
            assert (tmp_path / rel).read_bytes() == (ref / rel).read_bytes(), (ref, rel)
    # a second call rewrites what differs or is missing and leaves the rest alone
    changed = tmp_path / "6_Pancreas" / "labels" / "6_Pancreas_18_55_0.png"
    changed.write_bytes(b"not a png")
    missing = tmp_path / "22_Heart" / "images" / "22_Heart_3_2.png"
    missing.unlink()
    same = tmp_path / "22_Heart" / "info.json"
    os.utime(same, ns=(10**9, 10**9))
    write_seed_source(tmp_path)
    for path in (changed, missing):
        assert path.read_bytes() == (shipped / path.relative_to(tmp_path)).read_bytes()
    assert same.stat().st_mtime_ns == 10**9
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]


@pytest.fixture(scope="module")
def demo_prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """prepare_demo on a 10-slice MNI152 crop (z 80..89) and the 30 shipped seed slices."""
    root = tmp_path_factory.mktemp("demo")
    write_demo_source(root / "src", crop=(slice(None), slice(None), slice(80, 90)))
    reports = prepare_demo(root / "prepared", progress=False, source_dir=root / "src")
    return root / "prepared", reports


def test_prepare_demo_makes_the_seed_cases_patients(demo_prepared: tuple[Path, list]) -> None:
    prepared, reports = demo_prepared
    assert [r.dataset for r in reports] == [DEMO_NAME, BRAIN_NAME, *SEED_DATASETS]
    man = load_manifest(prepared)
    seed = man[man["dataset"].isin(list(SEED_DATASETS))]
    assert seed.groupby("dataset")["image_id"].nunique().to_dict() == {
        "22_Heart": 14,
        "6_Pancreas": 16,
    }
    assert {ds: set(g["case"]) for ds, g in seed.groupby("dataset")} == PATIENTS
    # the case is the number after the dataset name in the file name: 6_Pancreas_18_55_0 -> 18
    stems = seed["source_image"].map(lambda p: Path(p).stem)
    assert (stems.str.split("_").str[2] == seed["case"]).all()
    assert set(seed["modality"]) == {"MRI", "CT"}
    assert (seed.groupby("dataset")["modality"].first() == pd.Series(SEED_DATASETS)).all()


def test_seed_ci_by_patient_shown_from_five_cases(demo_prepared: tuple[Path, list]) -> None:
    """By target: the pancreatic mass (8 patients, 16 slices) gets a numeric CI equal to the
    cluster bootstrap over patients; each heart target (4 patients) says "n = 4 cases: too few"."""
    prepared, _ = demo_prepared
    man = load_manifest(prepared, datasets=tuple(SEED_DATASETS))
    rows = man.assign(
        model="m",
        strategy="S5",
        selection="oracle",
        status="ok",
        dice=np.random.default_rng(0).uniform(20, 90, len(man)),
    )
    out = mean_with_ci(rows, by=("dataset", "object_name"), rng=np.random.default_rng(1))
    out = out.set_index("object_name")
    mass = out.loc["PancreaticMass"]
    assert (mass["n"], mass["n_cases"], mass["ci_note"]) == (16, 8, "")
    g = rows[rows["object_name"] == "PancreaticMass"]
    ref = case_bootstrap(g["dice"], g["case"], g["dataset"], rng=np.random.default_rng(1))
    assert (mass["ci_lo"], mass["ci_hi"]) == (ref.low, ref.high)
    assert mass["ci_lo"] < mass["mean"] < mass["ci_hi"]
    by_slice = case_bootstrap(g["dice"], g["image_id"], g["dataset"], rng=np.random.default_rng(1))
    assert by_slice.n_cases == 16 and (by_slice.low, by_slice.high) != (ref.low, ref.high)
    heart = out[out["dataset"] == "22_Heart"]
    assert len(heart) == 3 and (heart["n_cases"] == 4).all()
    assert heart["ci_lo"].isna().all() and (heart["ci_note"] == "n = 4 cases: too few").all()


def test_demo_images_mni_subset_and_seed_slices(demo_prepared: tuple[Path, list]) -> None:
    prepared, _ = demo_prepared
    mni = load_manifest(prepared, datasets=(DEMO_NAME, BRAIN_NAME))
    seed_ids = sorted(load_manifest(prepared, datasets=tuple(SEED_DATASETS))["image_id"].unique())
    default = demo_images(prepared, DemoConfig(max_images=4))
    assert list(default) == sorted(default)
    assert sorted(set(default) - set(seed_ids)) == select_images(mni, 4)  # as before the seed data
    # default: the first slice (in id order) of each of the 4 heart and 8 pancreas patients
    seed = load_manifest(prepared, datasets=tuple(SEED_DATASETS))
    firsts = {c: min(g["image_id"]) for c, g in seed.groupby(["dataset", "case"])}
    assert sorted(set(default) & set(seed_ids)) == sorted(firsts.values())
    assert len(firsts) == 12
    every = demo_images(prepared, DemoConfig(max_images=4, seed_images=30))
    assert len(every) == 4 + 30
    some = demo_images(prepared, DemoConfig(max_images=2, seed_images=6))
    picked = [i for i in some if i in seed_ids]
    assert picked == [seed_ids[i] for i in (0, 6, 12, 17, 23, 29)]  # evenly spaced of 30
