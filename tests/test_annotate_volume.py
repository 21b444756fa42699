"""`sambench annotate-volume`: sources, views, edits, propagation, undo, exports, the HTTP API,
the 3D report. Everything here is fast: the model in the loop is the deterministic FakeModel
(box filled, picked candidate shifted 3 px right), so the voxels each step writes are known; the
real LiteMedSAM runs in the browser test and the benchmark.

Independent references: nibabel's ``as_closest_canonical`` for the orientation of exports (our
code uses the ITK direction via sambench.data.orientation), pydicom/highdicom for the DICOM-SEG,
SimpleITK for the DICOM series geometry, hand-computed voxel sets for every edit.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from annotate_volume_data import SCT, SCT_IMAGE, SCT_LABEL, make_dicom_series
from sambench.annotate import volume_store as VS
from sambench.annotate.views import VIEWS, canonical_index, view_array
from sambench.annotate.volume_report import volume_objects, volume_table
from sambench.annotate.volume_server import create_volume_app
from sambench.annotate.volume_source import VolumeItem, list_items, open_item
from sambench.annotate.volume_state import VolumeState
from sambench.cli import main
from sambench.errors import DataError, OptionError

from fakes import FakeModel


def _nib_canonical(path: Path) -> np.ndarray:
    """A NIfTI's voxels in RAS (z, y, x) order by nibabel alone (the independent reference)."""
    img = nib.as_closest_canonical(nib.load(str(path)))
    return np.asarray(img.dataobj).transpose(2, 1, 0)


def _state(
    tmp_path: Path, items: list[VolumeItem], model: object = None, **kw: object
) -> VolumeState:
    return VolumeState(
        items, tmp_path / "session", model=model,  # type: ignore[arg-type]
        model_name="none" if model is None else "fake", annotator="ann", source="src",
        prefetch=False, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture(scope="module")
def dicom_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("dcm") / "series"
    return folder, make_dicom_series(SCT_IMAGE, folder)


# ------------------------------------------------------------------------------------ views
@pytest.mark.parametrize("view", VIEWS)
def test_canonical_index_inverts_view_array(view: str) -> None:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 1000, size=(5, 6, 7))
    v = view_array(arr, view)
    k = 2
    rows, cols = np.nonzero(rng.random(v.shape[1:]) < 0.5)
    idx = canonical_index(arr.shape, view, k, rows, cols)
    np.testing.assert_array_equal(arr.reshape(-1)[idx], v[k][rows, cols])


def test_views_follow_the_radiological_convention() -> None:
    # canonical RAS (z, y, x): x grows to the patient's Right, y to Anterior, z to Superior
    arr = np.zeros((3, 4, 5), int)
    arr[2, 3, 4] = 1  # superior, anterior, right corner
    ax = view_array(arr, "axial")[2]
    assert ax[0, 0] == 1  # anterior at the top, patient's right on the screen's left
    cor = view_array(arr, "coronal")[3]
    assert cor[0, 0] == 1  # superior at the top, right on the left
    sag = view_array(arr, "sagittal")[4]
    assert sag[0, 0] == 1  # superior at the top, anterior on the left


# ------------------------------------------------------------------------------------ sources
def test_raw_dataset_folder_gives_the_volume_with_its_reference_and_class_names() -> None:
    (item,) = list_items(SCT)
    assert (item.kind, item.path, item.reference) == ("nifti", SCT_IMAGE, SCT_LABEL)
    assert item.names == {1: "SpinalCord"} and item.modality == "MRI"
    vol = open_item(item)
    assert vol.reference is not None
    np.testing.assert_array_equal(vol.reference, _nib_canonical(SCT_LABEL))
    np.testing.assert_allclose(vol.image, _nib_canonical(SCT_IMAGE))


def test_a_nifti_file_alone_has_no_reference() -> None:
    (item,) = list_items(SCT_IMAGE)
    assert item.reference is None and open_item(item).reference is None


def test_dicom_series_reads_as_the_nifti_it_was_made_from(dicom_dir: tuple[Path, str]) -> None:
    folder, uid = dicom_dir
    (item,) = list_items(folder, reference=SCT_LABEL)
    assert item.kind == "dicom" and item.series_uid == uid
    vol = open_item(item)
    assert len(vol.dicom_files) == 52
    np.testing.assert_array_equal(vol.image, _nib_canonical(SCT_IMAGE))
    # the NIfTI label is on a flipped grid of the same voxels (DICOM stacks along the normal)
    np.testing.assert_array_equal(vol.reference, _nib_canonical(SCT_LABEL))


def test_folder_with_two_series_needs_series(tmp_path: Path) -> None:
    a = make_dicom_series(SCT_IMAGE, tmp_path / "two", description="first", seed=3)
    b = make_dicom_series(SCT_IMAGE, tmp_path / "two", description="second", seed=4)
    with pytest.raises(OptionError) as e:
        list_items(tmp_path / "two")
    text = str(e.value)
    assert "--series" in text and a in text and b in text and "first" in text and "second" in text
    assert "\n" not in text
    (item,) = list_items(tmp_path / "two", series=b)
    assert open_item(item).shape == (55, 60, 52)
    with pytest.raises(OptionError, match="--series"):
        list_items(tmp_path / "two", series="1.2.3")


def test_too_large_a_volume_is_refused_with_its_size(tmp_path: Path) -> None:
    (item,) = list_items(SCT_IMAGE)
    with pytest.raises(DataError) as e:
        open_item(item, limit_bytes=100_000)
    text = str(e.value)
    assert "60x55x52 voxels" in text and "--max-memory-gb" in text and "crop" in text


def test_too_large_a_dicom_series_is_refused_before_reading(
    tmp_path: Path, dicom_dir: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sambench.annotate.volume_source as src

    def no_read(*a: object, **k: object) -> None:
        raise AssertionError("the series was read")

    monkeypatch.setattr(src, "_read_volume", no_read)
    (item,) = list_items(dicom_dir[0])
    with pytest.raises(DataError, match="60x55x52 voxels need about"):
        open_item(item, limit_bytes=1000)


def test_cli_refuses_two_series_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_dicom_series(SCT_IMAGE, tmp_path / "two", description="first", seed=5)
    make_dicom_series(SCT_IMAGE, tmp_path / "two", description="second", seed=6)
    code = main(["annotate-volume", str(tmp_path / "two"), "--out", str(tmp_path / "s"),
                 "--model", "none"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--series" in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()  # a refused command leaves nothing behind


# ------------------------------------------------------------------------------------ editing
def test_manual_edits_undo_and_the_nifti_export(tmp_path: Path) -> None:
    st = _state(tmp_path, list_items(SCT))
    st.interact("box", {"view": "axial", "slice": 30, "box": [[10, 12], [20, 18]]})
    expect = np.zeros(st.vol.shape, bool)  # type: ignore[union-attr]
    view_array(expect, "axial")[30, 12:19, 10:21] = True
    np.testing.assert_array_equal(st.labels_map == 1, expect)
    st.interact("brush", {"view": "sagittal", "slice": 20, "points": [[5, 5]], "radius": 0})
    assert (st.labels_map == 1).sum() == expect.sum() + 1
    st.undo()
    np.testing.assert_array_equal(st.labels_map == 1, expect)
    st.interact("erase", {"view": "axial", "slice": 30, "points": [[10, 12]], "radius": 0})
    view_array(expect, "axial")[30, 12, 10] = False
    np.testing.assert_array_equal(st.labels_map == 1, expect)
    paths = st.accept()
    out = Path(paths["nifti"])
    src = nib.load(str(SCT_IMAGE))
    got = nib.load(str(out))
    np.testing.assert_allclose(got.affine, src.affine, atol=1e-4)
    assert got.shape == src.shape
    np.testing.assert_array_equal(_nib_canonical(out) == 1, expect)
    slicer = Path(paths["slicer"])
    assert (slicer / "labels.ctbl").read_text().splitlines()[-1] == "1 SpinalCord 245 197 66 255"
    np.testing.assert_allclose(nib.load(str(slicer / "image.nii.gz")).affine, src.affine)
    (obj,) = VS.read_objects(st.session_dir)
    assert obj["made"] == "MANUAL" and obj["n_box"] == 1 and obj["n_undo"] == 1
    assert obj["voxels"] == expect.sum() and obj["hand_voxels_after_model"] == 0


def test_overlap_policy_overwrite_or_block(tmp_path: Path) -> None:
    st = _state(tmp_path, list_items(SCT_IMAGE))
    st.interact("box", {"view": "axial", "slice": 5, "box": [[0, 0], [9, 9]]})
    two = st.add_label("other")
    st.select_label(two)
    st.set_overlap("block")
    n = st.interact("box", {"view": "axial", "slice": 5, "box": [[5, 5], [14, 14]]})
    assert n["voxels_changed"] == 100 - 25  # the 5x5 overlap stays label 1
    st.undo()
    st.set_overlap("overwrite")
    assert (
        st.interact("box", {"view": "axial", "slice": 5, "box": [[5, 5], [14, 14]]})[
            "voxels_changed"
        ]
        == 100
    )
    assert (st.labels_map == 1).sum() == 100 - 25


def test_model_box_then_propagate_then_hand_fix(tmp_path: Path) -> None:
    model = FakeModel()
    model.checkpoint_sha256 = "ab" * 32  # type: ignore[attr-defined]
    st = _state(tmp_path, list_items(SCT_IMAGE), model=model)
    st.interact("box", {"view": "axial", "slice": 20, "box": [[10, 10], [19, 19]]})
    # FakeModel's kept candidate is the box shifted 3 px right (highest predicted IoU)
    m = view_array(st.labels_map, "axial")
    assert m[20].sum() == 100 and m[20][10:20, 13:23].all()
    r = st.interact("propagate", {"view": "axial", "slice": 20, "max_slices": 2})
    assert r["slices_reached"] == [18, 22] and r["n_slices"] == 4
    for k, x0 in ((21, 16), (22, 19), (19, 16), (18, 19)):  # +3 px per step outward
        assert m[k][10:20, x0 : x0 + 10].all() and m[k].sum() == 100, k
    assert not m[17].any() and not m[23].any()
    st.interact("brush", {"view": "axial", "slice": 20, "points": [[0, 0]], "radius": 0})
    st.undo()
    st.interact("erase", {"view": "axial", "slice": 20, "points": [[13, 10]], "radius": 0})
    st.undo()
    st.undo()  # the propagation
    assert view_array(st.labels_map, "axial")[[18, 19, 21, 22]].sum() == 0
    st.interact("propagate", {"view": "axial", "slice": 20, "max_slices": 1})
    st.interact("brush", {"view": "axial", "slice": 20, "points": [[0, 0], [1, 0]], "radius": 0})
    st.accept()
    (obj,) = VS.read_objects(st.session_dir)
    assert obj["made"] == "SEMIAUTOMATIC" and obj["n_propagate"] == 2 and obj["n_box"] == 1
    assert obj["hand_voxels_after_model"] == 2 and obj["voxels"] == 302
    events = [e for e in VS.read_events(st.session_dir) if e["type"] == "propagate"]
    assert events[0]["slices_reached"] == [18, 22] and events[0]["model"] == "fake"
    assert events[0]["model_sha256"] == "ab" * 32 and events[0]["latency_ms"] >= 0


def test_propagate_refuses_an_empty_slice_and_manual_mode(tmp_path: Path) -> None:
    from sambench.annotate.state import RequestError

    st = _state(tmp_path / "a", list_items(SCT_IMAGE), model=FakeModel())
    with pytest.raises(RequestError, match="empty on axial slice 3"):
        st.interact("propagate", {"view": "axial", "slice": 3})
    manual = _state(tmp_path / "b", list_items(SCT_IMAGE))
    with pytest.raises(RequestError, match="needs a model"):
        manual.interact("propagate", {"view": "axial", "slice": 3})


def test_images_only_2d_folder_end_to_end(tmp_path: Path) -> None:
    folder = tmp_path / "pngs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (30, 40), dtype=np.uint8)).save(folder / name)
    items = list_items(folder)
    assert [i.kind for i in items] == ["image2d", "image2d"] and items[0].reference is None
    st = _state(tmp_path, items)
    np.testing.assert_array_equal(
        st.image_slice("axial", 0), np.asarray(Image.open(folder / "a.png"))
    )
    st.interact("box", {"view": "axial", "slice": 0, "box": [[3, 4], [8, 6]]})
    paths = st.accept()
    png = np.asarray(Image.open(paths["png"]))
    expect = np.zeros((30, 40), np.uint8)
    expect[4:7, 3:9] = 1
    np.testing.assert_array_equal(png, expect)
    assert st.item.item_id == "b"  # the next volume opened


def test_dicom_seg_export_reads_back_with_highdicom(
    tmp_path: Path, dicom_dir: tuple[Path, str]
) -> None:
    import highdicom as hd
    import pydicom

    folder, uid = dicom_dir
    model = FakeModel()
    model.checkpoint_sha256 = "cd" * 32  # type: ignore[attr-defined]
    st = _state(tmp_path, list_items(folder, reference=SCT_LABEL), model=model,
                labels=[(1, "SpinalCord"), (2, "Hand drawn")])  # fmt: skip
    st.interact("box", {"view": "sagittal", "slice": 26, "box": [[20, 20], [29, 29]]})
    st.select_label(2)  # drawn by hand: MANUAL
    st.interact("brush", {"view": "axial", "slice": 10, "points": [[2, 2], [5, 2]], "radius": 1})
    paths = st.accept()
    seg = hd.seg.segread(paths["dicom_seg"])
    assert seg.number_of_segments == 2
    d1, d2 = (seg.get_segment_description(i) for i in (1, 2))
    assert (d1.segment_label, d2.segment_label) == ("SpinalCord", "Hand drawn")
    assert d1.algorithm_type.value == "SEMIAUTOMATIC" and d2.algorithm_type.value == "MANUAL"
    algo = d1.algorithm_identification[0]
    assert algo.AlgorithmName == "fake" and "sambench" in algo.AlgorithmVersion
    assert ("cd" * 32) in str(algo.AlgorithmParameters)
    assert seg.SeriesInstanceUID != uid
    ref_series = seg.ReferencedSeriesSequence[0]
    assert ref_series.SeriesInstanceUID == uid
    sources = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID: f
               for f in st.vol.dicom_files}  # type: ignore[union-attr]  # fmt: skip
    assert {i.ReferencedSOPInstanceUID for i in ref_series.ReferencedInstanceSequence} == set(
        sources
    )
    # every frame sits at its source image's position and holds the label's voxels there
    file_zyx = np.asarray(nib.load(paths["nifti"]).dataobj).transpose(2, 1, 0)
    order = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID: i
             for i, f in enumerate(st.vol.dicom_files)}  # type: ignore[union-attr]  # fmt: skip
    seen = {1: set(), 2: set()}
    for n, fg in enumerate(seg.PerFrameFunctionalGroupsSequence):
        src_uid = fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        number = fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber
        src = pydicom.dcmread(sources[src_uid], stop_before_pixels=True)
        pos = fg.PlanePositionSequence[0].ImagePositionPatient
        np.testing.assert_allclose(
            [float(v) for v in pos], [float(v) for v in src.ImagePositionPatient]
        )
        np.testing.assert_array_equal(seg.pixel_array[n] > 0, file_zyx[order[src_uid]] == number)
        seen[number].add(order[src_uid])
    for number in (1, 2):  # the frames are exactly the source slices holding the segment
        assert seen[number] == set(np.flatnonzero((file_zyx == number).any(axis=(1, 2))).tolist())


def test_resume_reopens_the_exported_labels(tmp_path: Path) -> None:
    st = _state(tmp_path, list_items(SCT_IMAGE))
    st.add_label("second", colour="#123456")
    st.interact("box", {"view": "coronal", "slice": 7, "box": [[1, 1], [3, 3]]})
    before = st.labels_map.copy()
    st.accept()
    st.close()
    again = _state(tmp_path, list_items(SCT_IMAGE))
    assert again.accepted == {"t2"}
    np.testing.assert_array_equal(again.labels_map, before)
    assert again.labels[2].colour == "#123456"


# ------------------------------------------------------------------------------------ HTTP
def _client(st: VolumeState) -> TestClient:
    app = create_volume_app(st)
    c = TestClient(app, base_url="http://127.0.0.1")
    c.headers.update({"X-Sambench-Token": app.state.token, "Origin": "http://127.0.0.1",
                      "X-Sambench-Tab": "t1"})  # fmt: skip
    return c


def test_http_api_slices_edits_and_refusals(tmp_path: Path) -> None:
    st = _state(tmp_path, list_items(SCT))
    c = _client(st)
    assert c.post("/api/claim").status_code == 200
    r = c.get("/api/slice", params={"view": "coronal", "k": 30})
    rows, cols = 55, 52
    img = np.frombuffer(r.content[: 4 * rows * cols], "<f4").reshape(rows, cols)
    np.testing.assert_array_equal(img, view_array(st.vol.image, "coronal")[30])  # type: ignore[union-attr]
    v = c.post("/api/interact", json={"kind": "box", "view": "coronal", "slice": 30,
                                      "box": [[1, 1], [4, 4]]}).json()  # fmt: skip
    assert v["voxels"] == {"1": 16} and v["can_undo"]
    r = c.get("/api/slice", params={"view": "coronal", "k": 30})
    assert np.frombuffer(r.content[4 * rows * cols :], np.uint8).sum() == 16
    assert c.get("/api/slice", params={"view": "oblique", "k": 1}).status_code == 400
    assert c.get("/api/slice", params={"view": "axial", "k": 999}).status_code == 400
    bad = c.post("/api/interact", json={"kind": "box", "view": "axial", "slice": 3,
                                        "box": [[-5, 1], [4, 4]]})  # fmt: skip
    assert bad.status_code == 400 and "outside" in bad.json()["error"]
    assert c.post("/api/open", json={"item_id": "../etc"}).status_code == 404
    assert c.post("/api/label", json={"name": "x", "colour": "red"}).status_code == 400
    # the 2D tool's guard: no token, another Host, another Origin, another tab
    assert c.get("/api/state", headers={"X-Sambench-Token": "wrong"}).status_code == 403
    assert c.get("/api/state", headers={"Host": "evil.example"}).status_code == 403
    assert (
        c.post("/api/undo", json={}, headers={"Origin": "http://evil.example"}).status_code == 403
    )
    assert c.get("/api/state", headers={"X-Sambench-Tab": "t2"}).status_code == 409
    page = c.get("/").text
    assert "http://" not in page.replace("http://127.0.0.1", "") and "https://" not in page


# ------------------------------------------------------------------------------------ report
def test_volume_report_dsc_against_the_reference(tmp_path: Path) -> None:
    ref = _nib_canonical(SCT_LABEL) == 1
    st = _state(tmp_path, list_items(SCT))
    # paint the reference itself on the axial slices, minus one slice: a known DSC
    ax = view_array(ref, "axial")
    ks = [k for k in range(ax.shape[0]) if ax[k].any()]
    strokes = 0
    for k in ks[1:]:
        for r in np.flatnonzero(ax[k].any(axis=1)):
            cols = np.flatnonzero(ax[k][r])
            # a stroke joins its points: one stroke per run of pixels in the row
            for run in np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1):
                pts = [[int(run[0]), int(r)], [int(run[-1]), int(r)]]
                st.interact("brush", {"view": "axial", "slice": k, "radius": 0, "points": pts})
                strokes += 1
    st.accept()
    objs = volume_objects([st.session_dir])
    missing = int(ax[ks[0]].sum())
    n = int(ref.sum())
    assert objs.loc[0, "dice"] == pytest.approx(100 * 2 * (n - missing) / (2 * n - missing))
    assert 0 < objs.loc[0, "nsd"] <= 100
    t = volume_table(objs)
    assert list(t["objects"]) == [1] and t.loc[0, "interactions_per_object"] == strokes
    out = tmp_path / "report"
    assert main(["annotation-report", str(st.session_dir), "--out", str(out)]) == 0
    csv = (out / "tables" / "annotation_3d.csv").read_text()
    assert "dice" in csv and "time_per_volume_s" in csv
    assert json.loads((st.session_dir / "session.json").read_text())["format"] == VS.FORMAT


def test_background_encoder_prepares_the_neighbours(tmp_path: Path) -> None:
    import time

    from sambench.annotate.volume_state import PREFETCH_RADIUS

    model = FakeModel()
    st = VolumeState(list_items(SCT_IMAGE), tmp_path / "s", model=model, model_name="fake",  # type: ignore[arg-type]
                     annotator="ann", source="src")  # fmt: skip
    try:
        st.hint("axial", 20)
        want = range(20 - PREFETCH_RADIUS, 20 + PREFETCH_RADIUS + 1)
        deadline = time.monotonic() + 30
        while not all(st.embedding_ready("axial", j) for j in want) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert all(st.embedding_ready("axial", j) for j in want)
        assert not st.embedding_ready("axial", 20 + PREFETCH_RADIUS + 1)
        calls = model.embed_calls
        assert calls == len(want)  # each slice encoded once
        st.interact("box", {"view": "axial", "slice": 23, "box": [[10, 10], [19, 19]]})
        st.interact("propagate", {"view": "axial", "slice": 23, "max_slices": 2})
        assert model.embed_calls == calls  # the decodes waited for no encoder
    finally:
        st.close()


def test_prepared_3d_form_opens_with_its_labels_and_names(tmp_path: Path) -> None:
    from sambench.data.prepare import prepare_dataset

    out = tmp_path / "prepared"
    prepare_dataset(SCT, out, config=SCT / "dataset.yaml", progress=False)
    (item,) = list_items(out)
    assert item.kind == "prepared" and item.names == {255: "SpinalCord"}  # prepared values
    vol = open_item(item)
    np.testing.assert_array_equal(vol.reference > 0, _nib_canonical(SCT_LABEL) > 0)
    # the prepared image keeps the source grid: an export overlays the source
    st = _state(tmp_path, [item])
    st.interact("box", {"view": "axial", "slice": 3, "box": [[1, 1], [2, 2]]})
    got = nib.load(st.accept()["nifti"])
    np.testing.assert_allclose(got.affine, nib.load(str(SCT_IMAGE)).affine, atol=1e-4)


def test_start_from_the_reference(tmp_path: Path) -> None:
    st = _state(tmp_path, list_items(SCT), start_from_reference=True)
    np.testing.assert_array_equal(st.labels_map, _nib_canonical(SCT_LABEL))
    assert [lab["name"] for lab in st.view()["labels"]] == ["SpinalCord"]
    opened = [e for e in VS.read_events(st.session_dir) if e["type"] == "volume_open"]
    assert opened[-1]["started_from_reference"] is True
    st.interact("erase", {"view": "axial", "slice": 30, "points": [[0, 0], [51, 59]], "radius": 30})
    assert (st.labels_map[30] == 0).all()


def test_undo_restores_the_model_prompt_and_voxel_counts_stay_exact(tmp_path: Path) -> None:
    st = _state(tmp_path, list_items(SCT_IMAGE), model=FakeModel())
    st.interact("box", {"view": "coronal", "slice": 9, "box": [[10, 10], [19, 19]]})
    st.interact("click_pos", {"view": "coronal", "slice": 9, "point": [30, 30]})
    assert st.prompts[(1, "coronal", 9)].clicks == [[30.0, 30.0, 1]]
    st.undo()
    assert st.prompts[(1, "coronal", 9)].clicks == [] and st.prompts[(1, "coronal", 9)].box
    st.add_label("b")
    st.select_label(2)
    st.interact("brush", {"view": "axial", "slice": 20, "points": [[5, 5], [30, 40]], "radius": 3})
    st.interact("propagate", {"view": "axial", "slice": 20, "max_slices": 1})
    st.undo()
    values, counts = np.unique(st.labels_map, return_counts=True)
    assert st.view()["voxels"] == {str(v): int(c) for v, c in zip(values, counts, strict=True) if v}


def test_cli_refusal_after_the_lock_leaves_no_folder(tmp_path: Path) -> None:
    # a session folder holding another session's files is refused; a new one is not left behind
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    assert main(["annotate-volume", str(SCT_IMAGE), "--out", str(other), "--model", "none",
                 "--port", "0"]) == 2  # fmt: skip
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
