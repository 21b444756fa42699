"""Every dataset recipe prepared from a replica of its release (tests/recipe_replicas.py): target
names, label values, slicing plane, the paper's exclusions and the counts; plus the recipe format's
validation and the layout-mismatch error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from recipe_replicas import BUILDERS, build
from sambench.data.recipe import (
    builtin_recipes,
    check_layout,
    compile_recipe,
    get_recipe,
    parse_recipe,
    prepare_recipe,
    recipes_table,
)
from sambench.errors import DataError

RECIPES = builtin_recipes()


def test_every_recipe_has_a_replica_and_at_least_25():
    assert len(RECIPES) >= 25
    assert sorted(BUILDERS) == sorted(RECIPES)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_on_its_release_replica(tmp_path: Path, name: str):
    recipe = RECIPES[name]
    rep = build(recipe, tmp_path / "src")
    out = tmp_path / "out"
    report = prepare_recipe(rep.source, out, recipe, progress=False)
    m = pd.read_parquet(out / recipe.name / "manifest.parquet")
    excluded_values = {e.value for e in recipe.exclude}
    kept_values = [v for v in rep.values if v not in excluded_values]
    per_case = {
        "MnMs": 2,  # two labelled frames of the 4D cine each
    }.get(name, 1)
    # counts: every labelled case, each of its slices, every kept structure in each slice
    n_units = rep.cases * per_case * (2 if name == "MSD-Prostate" else 1)
    assert report.cases_seen == rep.cases * (2 if name == "MSD-Prostate" else 1)
    assert not report.bad_cases
    assert m["image_id"].nunique() == n_units * rep.slices
    assert len(m) == n_units * rep.slices * len(kept_values)
    # target names and label values
    if recipe.labels:
        assert set(m["object_name"]) == {recipe.labels[v] for v in kept_values}
        # distinct source values stay distinct pixel values (left/right kidney)
        assert m.groupby("object_name")["label_value"].nunique().eq(1).all()
        assert m["label_value"].nunique() == len(kept_values)
        info = json.loads((out / recipe.name / "sambench-dataset.json").read_text())["info"]
        assert set(info.values()) >= set(m["object_name"])
        # every object's pixel value is in its label PNG with the area the manifest says
        row = m.iloc[0]
        lab = np.array(Image.open(out / row["label_path"]))
        assert (
            int((lab == row["label_value"]).sum())
            == row["area"]
            == rep.extra.get("area", 64 if rep.plane else 320)
        )
    else:  # instance releases: one object per instance
        assert set(m["object_name"]) == {recipe.layout["instance_name"]}
    # modality
    if recipe.modality_from_channels:
        assert set(m["modality"]) == {"T2", "ADC"}
    else:
        assert set(m["modality"]) == {recipe.modality}
    # plane: the recipe's, or (acquisition) the coarsest axis, written as sagittal here
    assert set(m["plane"]) == {rep.plane}
    # the paper's exclusions, counted per structure in each slice where it would be an object
    for e in recipe.exclude:
        assert report.objects_excluded[e.name] == n_units * rep.slices
    assert set(report.objects_excluded) == {e.name for e in recipe.exclude}
    rec = json.loads((out / recipe.name / "recipe.json").read_text())
    assert rec["recipe"] == recipe.name and rec["version"] == recipe.version


def test_layout_mismatch_names_recipe_expected_found_and_override(tmp_path: Path):
    recipe = RECIPES["KiTS19"]
    build(recipe, tmp_path / "src")
    src = tmp_path / "src" / "kits19"
    (src / "data").rename(src / "cases")  # a renamed folder
    with pytest.raises(DataError) as e:
        prepare_recipe(src, tmp_path / "out", recipe, progress=False)
    msg = str(e.value)
    assert "recipe KiTS19 v1" in msg
    assert "expected images at 'data/case_*/imaging.nii.gz'" in msg
    assert "found cases/" in msg
    assert "sambench datasets KiTS19 --config" in msg and "--config" in msg
    assert not (tmp_path / "out").exists()  # a refused command leaves nothing behind


def test_compiled_config_is_a_prepare_config(tmp_path: Path):
    from sambench.data.describe import DESCRIPTION_KEYS

    for r in RECIPES.values():
        cfg = compile_recipe(r)
        assert set(cfg) - {"_where"} <= set(DESCRIPTION_KEYS)
    cfg = compile_recipe(RECIPES["WORD"])
    assert cfg["classes"]["Left Kidney"] == 3 and cfg["exclude"]["Colon"] == 10
    assert cfg["plane"] == "axial"
    assert "plane" not in compile_recipe(RECIPES["ACDC"])  # acquisition: prepare's own rule


def test_recipe_validation_names_the_field():
    good = {
        k: "x"
        for k in (
            "paper_name",
            "release",
            "written_for",
            "homepage",
            "terms",
            "citation",
            "download",
            "layout_source",
        )
    }
    good |= {"format": 1, "name": "X", "version": 1, "modality": "CT", "plane": "axial"}
    good |= {"layout": {"images": "i", "labels": "l"}, "labels": {1: "Liver"}}
    assert parse_recipe(good, "r.yaml").labels == {1: "Liver"}
    with pytest.raises(DataError, match="plane: expected one of axial"):
        parse_recipe(good | {"plane": "oblique"}, "r.yaml")
    with pytest.raises(DataError, match=r"criterion: expected 1, 2 or 3"):
        parse_recipe(good | {"exclude": [{"value": 2, "name": "Ureter", "criterion": 4}]}, "r.yaml")
    with pytest.raises(DataError, match="unknown key"):
        parse_recipe(good | {"colour": 1}, "r.yaml")
    with pytest.raises(DataError, match="format"):
        parse_recipe(good | {"format": 2}, "r.yaml")
    with pytest.raises(DataError, match="no recipe 'nope'; known: ACDC"):
        get_recipe("nope")


def test_recipes_table_lists_every_recipe():
    t = recipes_table()
    assert list(t["name"]) == sorted(RECIPES)
    row = t.set_index("name").loc["WORD"]
    assert "Colon (criterion 2)" in row["excluded"] and "Kidney" in row["targets"]
    assert row["homepage"].startswith("https://")


def test_check_layout_counts(tmp_path: Path):
    rep = build(RECIPES["DRIVE"], tmp_path)
    assert check_layout(RECIPES["DRIVE"], rep.source) == (2, 2)
