"""The phrase table: defaults for the paper's targets, a user file over them, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sambench.errors import DataError, OptionError
from sambench.prompts.phrases import PhraseTable, camel_to_words, norm

REFERENCE = Path(__file__).resolve().parents[1] / "src/sambench/report/reference"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("LeftVentricle", "left ventricle"),
        ("LeftVentricularMyocardium", "left ventricular myocardium"),
        ("GallBladder", "gall bladder"),
        ("kidney_tumor", "kidney tumor"),
        ("MRIScan", "mri scan"),
    ],
)
def test_camel_to_words(name: str, words: str) -> None:
    assert camel_to_words(name) == words


def test_every_paper_target_has_a_phrase() -> None:
    table = PhraseTable.load()
    paper = pd.read_csv(REFERENCE / "paper-table2-dice.csv", comment="#")
    for target in sorted(set(paper["target"])):
        assert table.has(target), target
        assert table.phrase(target)
    assert table.phrase("LeftVentricle") == "left ventricle"
    assert table.phrase("GallBladder") == "gallbladder"  # an override, not "gall bladder"
    assert table.phrases("LeftVentricularMyocardium")[1:] == ("myocardium", "heart muscle")
    assert table.is_instance_type("Polyp") and not table.is_instance_type("Liver")


def test_modality_suffix() -> None:
    t = PhraseTable.load(with_modality=True)
    assert t.phrase("LeftVentricle", "MRI") == "left ventricle in MRI"
    assert PhraseTable.load().phrase("LeftVentricle", "MRI") == "left ventricle"
    assert PhraseTable.load().paraphrases("RightVentricle", "MRI") == (
        "right ventricle",
        "right ventricular cavity",
        "right ventricle in MRI",
    )
    assert t.paraphrases("Liver", "CT") == ("liver in CT", "liver")
    assert t.paraphrases("Liver", None) == ("liver",)


def test_user_file_replaces_and_extends(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text(
        "# mine\ntarget,phrase,instances\nLeft Ventricle,LV cavity,no\nBox,square,yes\n"
        "Box,rectangle,yes\n"
    )
    t = PhraseTable.load(f)
    assert t.phrases("LeftVentricle") == ("LV cavity",)  # the user's rows replace the defaults
    assert t.phrases("box") == ("square", "rectangle") and t.is_instance_type("Box")
    assert t.phrase("Liver") == "liver"  # the defaults stay for the rest
    assert norm("left_ventricle") == norm("LeftVentricle")


def test_unknown_target_is_one_line_option_error() -> None:
    with pytest.raises(OptionError, match=r"--phrases.*no phrase for target 'Lbl3'") as e:
        PhraseTable.load().phrase("Lbl3")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("target,phrase,instances\n", "has no rows"),
        ("# only a comment\n", "missing column"),
        ("target,phrase\nLiver,\n", "row 2: target 'Liver' has an empty phrase"),
        ("target,phrase,instances\nLiver,liver,maybe\n", "instances 'maybe'; expected yes or no"),
        ("name,text\nLiver,liver\n", "missing column"),
    ],
)
def test_bad_files_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(DataError, match=message) as e:
        PhraseTable.load(f)
    assert str(f) in str(e.value) and "\n" not in str(e.value)
