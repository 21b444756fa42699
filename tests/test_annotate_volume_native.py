"""`sambench annotate-volume --model nninteractive`: a native 3D model in the annotation loop.

The model is the tiny random nnInteractive folder (tests/nninteractive_tiny.py) run through the
authors' session. The reference is a second adapter over the same folder called directly with
interaction records written here by hand from the page's coordinates (the radiological view
convention of sambench.annotate.views, worked out per view), on intensities read by nibabel
(``as_closest_canonical``), so a wrong axis, flip, voxel order, intensity source, seed or a lost
interaction in the annotator changes a mask.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from sambench.models.registry import MODEL_NAMES
from sambench.models.volume_registry import VOLUME_MODEL_NAMES

pytest.importorskip("nnInteractive.inference.inference_session")

from annotate_volume_data import write_tiny_ct
from nninteractive_tiny import make_tiny_folder
from sambench.annotate import volume_store as VS
from sambench.annotate.state import RequestError
from sambench.annotate.volume_source import list_items
from sambench.annotate.volume_state import NATIVE_SEED, VolumeState
from sambench.cli import main
from sambench.models.volume_base import (
    BoxInteraction,
    InitialMaskInteraction,
    LassoInteraction,
    PointInteraction,
    ScribbleInteraction,
    VolumeImage,
)
from sambench.models.volume_registry import build_volume_model


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_folder(tmp_path_factory.mktemp("nnint") / "m")


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CT-like NIfTI (canonical RAS flips its x and y axes: what the test must get
    right)."""
    return write_tiny_ct(tmp_path_factory.mktemp("vol") / "ct.nii.gz")


def _nib_canonical(path: Path) -> np.ndarray:
    img = nib.as_closest_canonical(nib.load(str(path)))
    return np.asarray(img.dataobj, dtype=np.float32).transpose(2, 1, 0)


def _state(tmp: Path, source: Path, folder: Path, **kw: object) -> VolumeState:
    model = build_volume_model("nninteractive", folder, device="cpu")
    return VolumeState(
        list_items(source), tmp / "session", model=model, model_name="nninteractive",
        annotator="ann", source=str(source), prefetch=False, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def _direct(folder: Path, volume: Path) -> object:
    model = build_volume_model("nninteractive", folder, device="cpu")
    model.open(VolumeImage(_nib_canonical(volume), (2.0, 0.9, 0.8), volume_id="ct"))
    model.reset(seed=NATIVE_SEED)  # type: ignore[call-arg]
    return model


def _events(tmp: Path) -> list[dict]:
    text = (tmp / "session" / "events.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_box_and_click_equal_the_adapter_called_directly(
    tmp_path: Path, folder: Path, volume: Path
) -> None:
    st = _state(tmp_path, volume, folder)
    nz, ny, nx = 26, 28, 30
    # the model sees the source intensities in canonical (z, y, x) order (nibabel's RAS)
    np.testing.assert_array_equal(st.vol.image, _nib_canonical(volume))  # type: ignore[union-attr]
    # axial slice 12, page pixel (col, row) -> canonical (z=12, y=ny-1-row, x=nx-1-col)
    st.interact("box", {"view": "axial", "slice": 12, "box": [[6, 13], [15, 22]]})
    after_box = st.labels_map == 1
    # coronal slice 10, page pixel (col=11, row=13) -> (z=nz-1-13, y=10, x=nx-1-11)
    st.interact("click_pos", {"view": "coronal", "slice": 10, "point": [11, 13]})
    after_click = st.labels_map == 1

    ref = _direct(folder, volume)
    box = BoxInteraction(12, ny - 1 - 22, nx - 1 - 15, 12, ny - 1 - 13, nx - 1 - 6)
    m_box = ref.apply(box)  # type: ignore[attr-defined]
    m_click = ref.apply(PointInteraction(nz - 1 - 13, 10, nx - 1 - 11, True))  # type: ignore[attr-defined]
    assert m_box.any() and not m_box.all() and not np.array_equal(m_box, m_click)
    np.testing.assert_array_equal(after_box, m_box)
    np.testing.assert_array_equal(after_click, m_click)

    ev = [e for e in _events(tmp_path) if e["type"] in ("box", "click_pos")]
    assert [e["interaction"]["kind"] for e in ev] == ["box2d", "point"]
    assert ev[0]["interaction"] == {"kind": "box2d", "z_min": 12, "y_min": 5, "x_min": 14,
                                    "z_max": 12, "y_max": 14, "x_max": 23, "positive": True}  # fmt: skip
    assert ev[1]["interaction"] == {"kind": "point", "z": 12, "y": 10, "x": 18, "positive": True}
    assert (ev[0]["slice"], ev[0]["view"], ev[1]["coords"]) == (12, "axial", [11.0, 13.0])
    sha = hashlib.sha256((folder / "fold_0" / "checkpoint_final.pth").read_bytes()).hexdigest()
    for e in ev:
        assert e["model"] == "nninteractive" and e["model_kind"] == "3d"
        assert e["model_sha256"] == sha and e["latency_ms"] > 0
    st.close()


def test_undo_and_hand_edits_resync_the_model(tmp_path: Path, folder: Path, volume: Path) -> None:
    st = _state(tmp_path, volume, folder)
    st.interact("box", {"view": "axial", "slice": 12, "box": [[6, 13], [15, 22]]})
    after_box = (st.labels_map == 1).copy()
    st.interact("click_neg", {"view": "axial", "slice": 12, "point": [10, 17]})
    st.undo()  # the label map is the box's again; the model still holds the click
    np.testing.assert_array_equal(st.labels_map == 1, after_box)
    st.interact("brush", {"view": "axial", "slice": 3, "points": [[2, 2], [6, 2]], "radius": 1})
    edited = (st.labels_map == 1).copy()
    assert edited.sum() > after_box.sum()
    st.interact("click_pos", {"view": "axial", "slice": 14, "point": [12, 15]})
    # the model was reset and given the label as edited by hand, then the click
    ref = _direct(folder, volume)
    ref.apply(InitialMaskInteraction(edited, refine=False))  # type: ignore[attr-defined]
    expect = ref.apply(PointInteraction(14, 28 - 1 - 15, 30 - 1 - 12, True))  # type: ignore[attr-defined]
    np.testing.assert_array_equal(st.labels_map == 1, expect)
    syncs = [e.get("sync") for e in _events(tmp_path) if e["type"] in ("box", "click_pos",
                                                                        "click_neg")]  # fmt: skip
    assert syncs == ["reset", None, "initial_mask"]
    # undo crosses model and hand edits: back to the box, then to nothing
    for _ in range(3):
        st.undo()
    assert not st.labels_map.any()
    st.close()


# a scribble on coronal slice 17 and a lasso on sagittal slice 10 (through the blob at canonical
# (12, 17, 10)); page pixels [col, row]
SCRIBBLE = {"view": "coronal", "slice": 17, "points": [[16, 13], [19, 12], [19, 12], [22, 14]]}
LASSO = {"view": "sagittal", "slice": 10, "points": [[7, 9], [14, 9], [14, 17], [7, 17]],
         "positive": False}  # fmt: skip


def test_scribble_and_lasso_equal_the_adapter_called_directly(
    tmp_path: Path, folder: Path, volume: Path
) -> None:
    st = _state(tmp_path, volume, folder)
    nz, ny, nx = 26, 28, 30
    assert st.view()["native_prompts"] == ["lasso", "scribble"]
    st.interact("scribble", SCRIBBLE)
    after_scribble = (st.labels_map == 1).copy()
    st.interact("lasso", LASSO)
    after_lasso = (st.labels_map == 1).copy()

    # by hand: coronal slice k is the plane y = k, pixel (col, row) -> (z=nz-1-row, x=nx-1-col);
    # sagittal slice k is the plane x = k, pixel (col, row) -> (z=nz-1-row, y=ny-1-col)
    scribble = ScribbleInteraction(
        17, tuple((nz - 1 - r, nx - 1 - c) for c, r in ((16, 13), (19, 12), (22, 14))), axis=1
    )
    lasso = LassoInteraction(
        10, tuple((nz - 1 - r, ny - 1 - c) for c, r in ((7, 9), (14, 9), (14, 17), (7, 17))),
        positive=False, axis=2,
    )  # fmt: skip
    ref = _direct(folder, volume)
    m_scribble = ref.apply(scribble)  # type: ignore[attr-defined]
    m_lasso = ref.apply(lasso)  # type: ignore[attr-defined]
    assert 0 < m_scribble.sum() < m_scribble.size and not np.array_equal(m_scribble, m_lasso)
    np.testing.assert_array_equal(after_scribble, m_scribble)
    np.testing.assert_array_equal(after_lasso, m_lasso)

    ev = [e for e in _events(tmp_path) if e["type"] in ("scribble", "lasso")]
    assert [e["type"] for e in ev] == ["scribble", "lasso"]
    assert ev[0]["interaction"] == {"kind": "scribble", "z": 17, "axis": 1, "positive": True,
                                    "thickness": None,
                                    "points_yx": [[12, 13], [13, 10], [11, 7]]}  # fmt: skip
    assert ev[1]["interaction"] == {"kind": "lasso", "z": 10, "axis": 2, "positive": False,
                                    "polygon_yx": [[16, 20], [16, 13], [8, 13], [8, 20]]}  # fmt: skip
    assert ev[0]["coords"] == {"points": [[16, 13], [19, 12], [22, 14]], "positive": True}
    assert (ev[1]["view"], ev[1]["slice"], ev[1]["sync"]) == ("sagittal", 10, None)
    sha = hashlib.sha256((folder / "fold_0" / "checkpoint_final.pth").read_bytes()).hexdigest()
    for e in ev:
        assert e["model"] == "nninteractive" and e["model_kind"] == "3d"
        assert e["model_sha256"] == sha and e["latency_ms"] > 0
    counts = st.labels[1].counts
    assert (counts["scribble"], counts["lasso"]) == (1, 1) and st.labels[1].model_used

    # undo restores the voxels step by step
    st.undo()
    np.testing.assert_array_equal(st.labels_map == 1, after_scribble)
    st.undo()
    assert not st.labels_map.any()
    # the report's counters count them as model interactions
    st.interact("scribble", SCRIBBLE)
    st.accept()
    (obj,) = VS.read_objects(tmp_path / "session")
    assert (obj["n_scribble"], obj["n_lasso"], obj["n_undo"]) == (2, 1, 2)
    assert obj["made"] == "SEMIAUTOMATIC" and obj["n_interactions"] == 5
    assert obj["hand_voxels_after_model"] == 0
    st.close()


def test_scribble_and_lasso_input_is_checked_at_the_edge(
    tmp_path: Path, folder: Path, volume: Path
) -> None:
    st = _state(tmp_path, volume, folder)
    bad = [
        ({**LASSO, "points": [[7, 9], [14, 9], [7, 9]]}, "a lasso needs at least 3 distinct"),
        ({**LASSO, "points": [[7, 9], [14, 9], [14, 40]]}, "outside the 28x26 slice"),
        ({**SCRIBBLE, "points": [[1, 1]] * 10_001}, "at most 10000 points"),
        ({**SCRIBBLE, "points": "x"}, "expected a list of [x, y] pairs"),
        ({**SCRIBBLE, "positive": "yes"}, "positive: expected true or false"),
        ({**SCRIBBLE, "slice": 28}, "slice: expected an integer 0..27"),
    ]
    for body, expect in bad:
        kind = "lasso" if body["view"] == "sagittal" else "scribble"
        with pytest.raises(RequestError) as e:
            st.interact(kind, body)
        assert e.value.status == 400 and expect in str(e.value) and "\n" not in str(e.value)
    st.model.supports = frozenset({"point", "box2d"})  # type: ignore[union-attr,misc]
    with pytest.raises(RequestError, match="does not take a lasso interaction"):
        st.interact("lasso", LASSO)
    assert st.view()["native_prompts"] == []
    assert not st.labels_map.any() and not st.history
    st.close()


def test_scribble_and_lasso_refused_without_a_native_model(tmp_path: Path, volume: Path) -> None:
    from fastapi.testclient import TestClient

    from sambench.annotate.volume_server import create_volume_app

    from fakes import FakeModel

    for model, name, what in ((FakeModel(), "fake", "2D model fake"), (None, "none",
                                                                        "--model none")):  # fmt: skip
        st = VolumeState(list_items(volume), tmp_path / name, model=model, model_name=name,  # type: ignore[arg-type]
                         annotator="ann", source=str(volume), prefetch=False)  # fmt: skip
        assert st.view()["native_prompts"] == []
        app = create_volume_app(st)
        c = TestClient(app, base_url="http://127.0.0.1")
        c.headers.update({"X-Sambench-Token": app.state.token, "Origin": "http://127.0.0.1",
                          "X-Sambench-Tab": "t1"})  # fmt: skip
        assert c.post("/api/claim").status_code == 200
        for kind, body in (("scribble", SCRIBBLE), ("lasso", LASSO)):
            r = c.post("/api/interact", json={"kind": kind, **body})
            err = r.json()["error"]
            assert r.status_code == 400 and "\n" not in err, err
            assert err == (f"{kind}: needs a native 3D model that takes {kind}s (e.g. --model "
                           f"nninteractive); this session runs {what}")  # fmt: skip
        assert not st.labels_map.any() and not st.history
        st.close()


def test_propagate_and_unsupported_interactions_are_one_line_refusals(
    tmp_path: Path, folder: Path, volume: Path
) -> None:
    st = _state(tmp_path, volume, folder)
    st.interact("box", {"view": "axial", "slice": 12, "box": [[6, 13], [15, 22]]})
    with pytest.raises(RequestError, match=r"propagate: not needed with native 3D model"):
        st.interact("propagate", {"view": "axial", "slice": 12})
    st.model.supports = frozenset({"point"})  # type: ignore[union-attr,misc]
    with pytest.raises(RequestError) as e:
        st.interact("box", {"view": "axial", "slice": 12, "box": [[6, 13], [15, 22]]})
    assert "does not take a box2d interaction (its weights take point)" in str(e.value)
    assert "\n" not in str(e.value)
    st.close()


def test_dicom_seg_names_the_model_and_its_checkpoint(
    tmp_path: Path, folder: Path, volume: Path
) -> None:
    import highdicom as hd

    from annotate_volume_data import make_dicom_series

    series = tmp_path / "series"
    make_dicom_series(volume, series, description="CT tiny")
    st = _state(tmp_path, series, folder, labels=[(1, "Blob"), (2, "By hand")])
    st.interact("box", {"view": "axial", "slice": 12, "box": [[6, 13], [15, 22]]})
    st.select_label(2)
    st.interact("brush", {"view": "axial", "slice": 3, "points": [[2, 2], [6, 2]], "radius": 1})
    paths = st.accept()
    seg = hd.seg.segread(paths["dicom_seg"])
    d1, d2 = (seg.get_segment_description(i) for i in (1, 2))
    assert d1.algorithm_type.value == "SEMIAUTOMATIC" and d2.algorithm_type.value == "MANUAL"
    algo = d1.algorithm_identification[0]
    sha = hashlib.sha256((folder / "fold_0" / "checkpoint_final.pth").read_bytes()).hexdigest()
    params = str(algo.AlgorithmParameters)
    assert algo.AlgorithmName == "nninteractive"
    assert sha in params and "nninteractive" in params and "native 3D" in params
    assert "propagate" not in params
    st.close()


@pytest.mark.parametrize(
    ("extra", "expect"),
    [
        (["--model", "nninteractive"], "--checkpoint"),
        (["--model", "none", "--checkpoint", "x"], "--checkpoint: --model none uses no weights"),
        (["--model", "sam2.1_hiera_t"], "--checkpoint: --model sam2.1_hiera_t needs its weights"),
        (
            ["--model", "sam9"],
            "--model: expected one of "
            + ", ".join((*MODEL_NAMES, *VOLUME_MODEL_NAMES))
            + ", none, got 'sam9'",  # every 2D registry name and registered native 3D model
        ),
    ],
)
def test_cli_model_options_refused_in_one_line(
    tmp_path: Path, volume: Path, extra: list[str], expect: str,
    capsys: pytest.CaptureFixture,
) -> None:  # fmt: skip
    out = tmp_path / "s"
    rc = main(["annotate-volume", str(volume), "--out", str(out), "--port", "0", *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and expect in err.splitlines()[0] and "Traceback" not in err, err
    assert not out.exists()


def test_cli_native_model_refuses_2d_images(
    tmp_path: Path, folder: Path, capsys: pytest.CaptureFixture
) -> None:
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    rc = main(["annotate-volume", str(tmp_path / "a.png"), "--out", str(tmp_path / "s"),
               "--model", "nninteractive", "--checkpoint", str(folder), "--port", "0"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()[0]
    assert rc == 2 and "native 3D model" in err and "2D images" in err, err
    assert not (tmp_path / "s").exists()
