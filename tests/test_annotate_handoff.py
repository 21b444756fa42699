"""`sambench annotate SOURCE` opens volumes: one detection function decides between the 2D tool
(a `sambench prepare` output folder, unchanged) and the volume annotator (NIfTI, DICOM series,
prepared 3D form, 2D images). The hand-off runs the real `annotate-volume` path up to the
server's loop (uvicorn's ``Server.run`` is replaced by one that records and returns), so the
session folder, its events and the model choice are the volume annotator's own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from PIL import Image

from annotate_data import make_annotation_prepared
from annotate_volume_data import SCT, SCT_IMAGE, make_dicom_series
from sambench.annotate.volume_source import is_volume_source
from sambench.cli import main


@pytest.fixture()
def served(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The apps uvicorn would have served (their titles); nothing listens."""
    seen: list[str] = []

    def run(self: uvicorn.Server, sockets: object = None) -> None:
        seen.append(self.config.app.title)  # type: ignore[union-attr]
        for s in sockets or []:  # type: ignore[attr-defined]
            s.close()

    monkeypatch.setattr(uvicorn.Server, "run", run)
    return seen


def test_detection_volume_sources_and_the_2d_prepared_folder(tmp_path: Path) -> None:
    dicom = tmp_path / "series"
    make_dicom_series(SCT_IMAGE, dicom)
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(pngs / "a.png")
    prepared2d = make_annotation_prepared(tmp_path / "p2d")
    from sambench.data.prepare import prepare_dataset

    prep = tmp_path / "prepared"
    prepare_dataset(SCT, prep, config=SCT / "dataset.yaml", progress=False)
    (form3d,) = [p.parent for p in prep.glob("*/volumes3d.parquet")]
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    assert is_volume_source(SCT_IMAGE)  # a NIfTI file
    assert is_volume_source(SCT)  # a raw dataset folder (images/ of NIfTI)
    assert is_volume_source(dicom)  # a DICOM series folder (files without a suffix)
    assert is_volume_source(form3d)  # the prepared 3D form of one dataset
    assert is_volume_source(pngs) and is_volume_source(pngs / "a.png")  # 2D images
    assert not is_volume_source(prepared2d)  # a prepare output folder: the 2D tool, as before
    assert not is_volume_source(prep)  # (also one that holds 3D forms beside its 2D slices)
    assert not is_volume_source(tmp_path / "empty")
    assert not is_volume_source(tmp_path / "notes.txt")
    assert not is_volume_source(tmp_path / "missing")


def test_annotate_a_nifti_opens_the_volume_annotator(
    tmp_path: Path, served: list[str], capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "s"
    rc = main(["annotate", str(SCT_IMAGE), "--out", str(out), "--model", "none", "--port", "0",
               "--annotator", "ann"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0 and served == ["sambench annotate-volume"], err
    assert "opened in the volume annotator" in err
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    opened = [e for e in events if e["type"] == "volume_open"]
    assert opened and opened[0]["item_id"] == "t2" and opened[0]["shape_zyx"] == [55, 60, 52]


def test_annotate_a_prepared_2d_folder_is_unchanged(tmp_path: Path, served: list[str]) -> None:
    prepared = make_annotation_prepared(tmp_path / "p2d")
    assert main(["annotate", str(prepared), "--out", str(tmp_path / "s"), "--model", "none",
                 "--port", "0"]) == 0  # fmt: skip
    assert served == ["sambench annotate"]


def test_hand_off_errors_say_to_use_annotate_volume(
    tmp_path: Path, served: list[str], capsys: pytest.CaptureFixture
) -> None:
    two = tmp_path / "two"
    make_dicom_series(SCT_IMAGE, two, description="first", seed=5)
    make_dicom_series(SCT_IMAGE, two, description="second", seed=6)
    rc = main(["annotate", str(two), "--out", str(tmp_path / "s"), "--model", "none"])
    err = capsys.readouterr().err
    assert rc == 2 and "--series" in err and "sambench annotate-volume" in err
    assert "Traceback" not in err and not (tmp_path / "s").exists() and served == []
    rc = main(["annotate", str(SCT_IMAGE), "--out", str(tmp_path / "s"), "--model",
               "nninteractive"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "--model" in err and "sambench annotate-volume" in err
    assert not (tmp_path / "s").exists() and served == []
