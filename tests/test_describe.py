"""The dataset description: auto-detection, pairing, validation errors naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sambench.data.describe import (
    DESCRIPTION_KEYS,
    describe_source,
    file_stem,
    paper_case_slice,
    sanitize_case,
)
from sambench.data.pairs import find_pairs
from sambench.errors import DataError

from shared_data import SEED


def _png(path: Path, value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(path)


def _yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_auto_detect_images_and_masks(tmp_path: Path) -> None:
    src = tmp_path / "My_Data"
    for stem in ("b_1", "a_1"):
        _png(src / "images" / f"{stem}.png")
        _png(src / "masks" / f"{stem}.png")
    _png(src / "images" / "orphan.png")
    desc = describe_source(src, modality="US")
    assert (desc.name, desc.modality, desc.labels, desc.classes) == ("My_Data", "US", "masks", None)
    pairs, missing = find_pairs(desc)
    assert [p.case for p in pairs] == ["a-1", "b-1"]  # '_' not allowed inside a case id
    assert pairs[0].label == src.resolve() / "masks" / "a_1.png"
    assert [m[0].name for m in missing] == ["orphan.png"]
    assert "no label named 'orphan'" in missing[0][1]


def test_nnunet_pairing_by_suffix_and_regex(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for case in ("kid_001", "kid_002"):
        (src / "imagesTr").mkdir(parents=True, exist_ok=True)
        (src / "labelsTr").mkdir(parents=True, exist_ok=True)
        (src / "imagesTr" / f"{case}_0000.nii.gz").write_bytes(b"x")
        (src / "labelsTr" / f"{case}.nii.gz").write_bytes(b"x")
    for pairing in (
        "{image_suffix: _0000, label_suffix: ''}",
        "{regex: '^(.*)_0000$', replace: '\\1'}",
    ):
        cfg = _yaml(
            tmp_path / "d.yaml",
            f"name: KiTS\nmodality: CT\nimages: imagesTr\nlabels: labelsTr\npairing: {pairing}\n"
            "classes: {Kidney: 1, Tumor: 2}\n",
        )
        pairs, missing = find_pairs(describe_source(src, cfg))
        assert [(p.case, p.image.name, p.label.name) for p in pairs] == [
            ("kid-001", "kid_001_0000.nii.gz", "kid_001.nii.gz"),
            ("kid-002", "kid_002_0000.nii.gz", "kid_002.nii.gz"),
        ] and missing == []


def test_glob_images(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _png(src / "all" / "x_img.png")
    _png(src / "all" / "x_seg.png")
    cfg = _yaml(
        tmp_path / "d.yml",
        "modality: Dermoscopy\nimages: 'all/*_img.png'\nlabels: 'all/*_seg.png'\n"
        "pairing: {image_suffix: _img, label_suffix: _seg}\n",
    )
    pairs, _ = find_pairs(describe_source(src, cfg))
    assert [(p.case, p.image.name, p.label.name) for p in pairs] == [
        ("x-seg", "x_img.png", "x_seg.png")
    ]


def test_paper_layout_from_info_json() -> None:
    desc = describe_source(SEED / "22_Heart", modality="MRI")
    assert desc.paper_layout and desc.name == "22_Heart"
    assert desc.classes == {
        "LeftVentricle": 85,
        "LeftVentricularMyocardium": 170,
        "RightVentricle": 255,
    }
    pairs, missing = find_pairs(desc)
    # one pair per image file of the sample (14 in the full seed set, 4 in tests/data)
    assert len(pairs) == len(list((SEED / "22_Heart" / "images").glob("*.png"))) and not missing
    assert pairs[0].case == "22_Heart_2_10"  # the original stem is the image id
    assert paper_case_slice("6_Pancreas", "6_Pancreas_10_43_0") == ("10", "43_0", 43)
    assert paper_case_slice("22_Heart", "22_Heart_2_10") == ("2", "10", 10)
    assert paper_case_slice("22_Heart", "other_2_10") is None


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "modality: CT\nlabel: x\n",
            "unknown dataset description key.*'label'.*allowed: " + ", ".join(DESCRIPTION_KEYS),
        ),
        ("modality: CT\nfilters: {min_size: 3}\n", "unknown filters key.*min_object_size"),
        (
            "modality: CT\npairing: {suffix: a}\n",
            "unknown pairing key.*image_suffix, label_suffix, regex, replace",
        ),
        ("modality: CT\naxis: 3\n", "axis: expected 0, 1 or 2"),
        ("modality: CT\nclasses: {A: 0}\n", "classes.A: 0 is the background"),
        (
            "modality: CT\nclasses: {A: 1, B: 1}\n",
            r"label value\(s\) \[1\] given to several classes",
        ),
        ("modality: CT\nclasses: {A: 1}\ninstance: true\n", "either 'classes' or 'instance"),
        ("modality: CT\nreplace_nonfinite: .nan\n", "replace_nonfinite: expected a finite number"),
        ("modality: CT\nfilters: {max_dispersion: -1}\n", "max_dispersion: expected a positive"),
        ("modality: CT\npairing: {regex: '(', replace: x}\n", "invalid regular expression"),
        ("- a list\n", "expected a mapping"),
        ("modality: CT\nimages: [1]\n", "images/labels: expected a folder or glob"),
    ],
)
def test_bad_description_names_the_file_and_field(tmp_path: Path, text: str, match: str) -> None:
    src = tmp_path / "src"
    _png(src / "images" / "a.png")
    _png(src / "labels" / "a.png")
    cfg = _yaml(tmp_path / "bad.yaml", text)
    with pytest.raises(DataError, match=match) as e:
        describe_source(src, cfg)
    assert str(e.value).startswith(str(cfg))


def test_modality_precedence_and_missing(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _png(src / "images" / "a.png")
    _png(src / "labels" / "a.png")
    with pytest.raises(DataError, match="modality unknown; give it with --modality"):
        describe_source(src)
    cfg = _yaml(tmp_path / "d.json", json.dumps({"modality": "CT"}))
    assert describe_source(src, cfg).modality == "CT"
    assert describe_source(src, cfg, modality="PET").modality == "PET"
    (src / "info.json").write_text(
        json.dumps({"info": {"1": "A"}, "color": {"1": 9}, "modality": "X-ray"})
    )
    assert describe_source(src).modality == "X-ray"
    assert describe_source(src).classes == {"A": 9}


def test_bad_info_json_and_missing_folders(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _png(src / "images" / "a.png")
    with pytest.raises(DataError, match="no 'labels' given and no labels/ or masks/ folder"):
        describe_source(src, modality="CT")
    _png(src / "labels" / "a.png")
    (src / "info.json").write_text(json.dumps({"info": {"1": "A"}, "color": {"2": 9}}))
    with pytest.raises(DataError, match=r"info\.json: expected the paper layout"):
        describe_source(src, modality="CT")
    with pytest.raises(DataError, match="source is not a folder"):
        describe_source(tmp_path / "nope", modality="CT")


def test_sanitize_and_stem() -> None:
    assert sanitize_case("case_00012") == "case-00012"
    assert sanitize_case("a b__c.d") == "a-b-c-d"
    assert sanitize_case("___") == "case"
    assert file_stem(Path("x_0000.nii.gz")) == "x_0000"
    assert file_stem(Path("dicom_folder")) == "dicom_folder"
    assert file_stem(Path("y.mha")) == "y"
