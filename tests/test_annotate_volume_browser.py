"""The volume annotator in a real browser: headless Chromium (Debian's ``/usr/bin/chromium``)
driven by Playwright against a real uvicorn server.

- manual (fast): the spinal-cord MRI NIfTI (tests/data/sct-spinalcord): scroll with the wheel and
  the arrow keys, change the window (a preset, then a right-button drag), draw a box, fix it with
  the brush, accept; the exported NIfTI re-reads (nibabel) with the source's affine and shape and
  holds exactly the voxels drawn.
- with LiteMedSAM (slow): a DICOM series written from the same volume with pydicom: a box around
  the cord on an axial slice, propagate 3 slices each way, a brush fix, accept; the DICOM-SEG
  re-reads with highdicom (one segment, its label, SEMIAUTOMATIC, every frame at its source
  image's position) and its NIfTI on the series' grid.
- ``annotation-report`` over a manual and a model session gives the 3D table (the model session
  is the slow test's, else a one-box LiteMedSAM session made in-process).
- nnInteractive (the tiny random folder) from the page: a box and a click; a scribble on a
  coronal slice, a freehand negative lasso on a sagittal slice and a lasso clicked corner by
  corner on an axial slice, each equal to the adapter called directly with the logged records.

Screenshots go to the test's temporary folder, or to ``docs/img/`` with
``SAMBENCH_SCREENSHOTS=1``. Skipped when Chromium or Playwright is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from annotate_volume_data import SCT, SCT_IMAGE, SCT_LABEL, make_dicom_series
from sambench.annotate import volume_store as VS
from sambench.annotate.views import view_array
from sambench.annotate.volume_server import make_volume_server
from sambench.annotate.volume_source import list_items
from sambench.annotate.volume_state import VolumeState
from sambench.cli import main

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} missing"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="playwright missing"),
]

SESSIONS: dict[str, Path] = {}


def _shots(tmp_path: Path) -> Path:
    return DOCS_IMG if os.environ.get("SAMBENCH_SCREENSHOTS") == "1" else tmp_path


def _serve(state: VolumeState) -> Iterator[str]:
    server, sock = make_volume_server(state, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(10)
        state.close()


def _xy(page: Any, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of pixel (x, y) of the slice on screen."""
    r = page.evaluate(
        "(() => { const c = document.getElementById('view'); const r = c.getBoundingClientRect();"
        " const t = JSON.parse(document.body.dataset.transform);"
        " return [r.left, r.top, r.width / c.width, r.height / c.height, t.ox, t.oy, t.sx, t.sy];"
        " })()"
    )
    left, top, kx, ky, ox, oy, sx, sy = r
    return left + (ox + (x + 0.5) * sx) * kx, top + (oy + (y + 0.5) * sy) * ky


def _drag(page: Any, points: list[tuple[float, float]], button: str = "left") -> None:
    page.mouse.move(*_xy(page, *points[0]))
    page.mouse.down(button=button)
    for p in points[1:]:
        page.mouse.move(*_xy(page, *p), steps=4)
    page.mouse.up(button=button)


def _idle(page: Any, timeout: float = 60000) -> None:
    page.wait_for_function("document.body.dataset.busy === '0'", timeout=timeout)


def _slice(page: Any) -> str:
    return str(page.evaluate("document.body.dataset.slice"))


def _open(p: Any, url: str) -> Any:
    browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
    page = browser.new_page(viewport={"width": 1200, "height": 820})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function(
        "document.body.dataset.state === 'ready' && !!document.body.dataset.slice", timeout=30000
    )
    _idle(page)
    return browser, page, errors


def _cord_box(ref_axial: np.ndarray, margin: int = 2) -> list[int]:
    rows, cols = np.nonzero(ref_axial)
    return [int(cols.min()) - margin, int(rows.min()) - margin,
            int(cols.max()) + margin, int(rows.max()) + margin]  # fmt: skip


def test_volume_manual_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    items = list_items(SCT)
    state = VolumeState(items, tmp_path / "manual", model=None, model_name="none",
                        annotator="browser", source=str(SCT))  # fmt: skip
    served = _serve(state)
    url = next(served)
    try:
        with sync_playwright() as p:
            browser, page, errors = _open(p, url)
            try:
                depth = state.depth("axial")
                assert _slice(page) == f"axial:{depth // 2}"
                for native in ("scribble", "lasso"):  # only for a native 3D model that takes them
                    assert not page.is_visible(f"input[value={native}]")
                assert not page.is_visible("#negative")
                page.mouse.move(*_xy(page, 10, 10))
                for _ in range(3):
                    page.mouse.wheel(0, 120)
                    time.sleep(0.15)
                page.wait_for_function(f"document.body.dataset.slice === 'axial:{depth // 2 + 3}'")
                page.keyboard.press("ArrowDown")
                page.wait_for_function(f"document.body.dataset.slice === 'axial:{depth // 2 + 2}'")
                k = depth // 2 + 2
                before = page.evaluate("document.body.dataset.window")
                page.select_option("#preset", "full")
                full = page.evaluate("document.body.dataset.window")
                assert full != before and full == f"{628.5}/{1257}"
                _drag(page, [(20, 20), (40, 25)], button="right")  # window/level drag
                assert page.evaluate("document.body.dataset.window") != full
                # box around the cord on this slice (the reference tells where it is)
                ref = view_array(state.vol.reference, "axial")[k]  # type: ignore[union-attr]
                x0, y0, x1, y1 = _cord_box(ref)
                _drag(page, [(x0, y0), (x1, y1)])
                _idle(page)
                box = (x1 - x0 + 1) * (y1 - y0 + 1)
                assert json.loads(page.evaluate("document.body.dataset.voxels")) == {"1": box}
                page.check("input[value=brush]")
                _drag(page, [(x1 + 3, y0), (x1 + 3, y0 + 2)])  # a 3-pixel brush fix
                _idle(page)
                assert page.input_value("#preset") == "custom"  # the drag left the presets
                page.select_option("#preset", "auto")
                page.screenshot(path=str(_shots(tmp_path) / "annotate-3d-slice.png"))
                drawn = state.labels_map.copy()
                assert (drawn == 1).sum() > box
                page.click("#accept")
                page.wait_for_function("document.body.dataset.accepted === '1'")
                assert errors == []
            finally:
                browser.close()
    finally:
        next(served, None)
    out = tmp_path / "manual" / "export" / "t2" / "labels.nii.gz"
    src, got = nib.load(str(SCT_IMAGE)), nib.load(str(out))
    np.testing.assert_allclose(got.affine, src.affine, atol=1e-4)
    assert got.shape == src.shape
    canon = np.asarray(nib.as_closest_canonical(got).dataobj).transpose(2, 1, 0)
    np.testing.assert_array_equal(canon, drawn)
    SESSIONS["manual"] = tmp_path / "manual"


@pytest.mark.slow
def test_volume_litemedsam_dicom_in_chromium(tmp_path: Path) -> None:
    import highdicom as hd
    import pydicom
    from playwright.sync_api import sync_playwright

    from sambench.models.registry import build_model

    folder = tmp_path / "dicom"
    uid = make_dicom_series(SCT_IMAGE, folder)
    items = list_items(folder, reference=SCT_LABEL)
    state = VolumeState(items, tmp_path / "model", model=build_model("litemedsam", device="cpu"),
                        model_name="litemedsam", annotator="browser", source=str(folder),
                        labels=[(1, "SpinalCord")])  # fmt: skip
    served = _serve(state)
    url = next(served)
    try:
        with sync_playwright() as p:
            browser, page, errors = _open(p, url)
            try:
                k = state.depth("axial") // 2
                assert page.is_visible("input[value=click_pos]")  # a 2D model: clicks, but no
                assert not page.is_visible("input[value=scribble]")  # scribble or lasso
                assert not page.is_visible("input[value=lasso]")
                ref = view_array(state.vol.reference, "axial")[k]  # type: ignore[union-attr]
                x0, y0, x1, y1 = _cord_box(ref)
                _drag(page, [(x0, y0), (x1, y1)])
                _idle(page, 120000)
                on_slice = int(page.evaluate("document.body.dataset.sliceLabelled"))
                assert on_slice > 0
                page.fill("#reach", "3")
                page.click("#propagate")
                _idle(page, 300000)
                status = page.inner_text("#status")
                assert "slices" in status, status
                page.check("input[value=sagittal]")
                page.wait_for_function("document.body.dataset.slice.startsWith('sagittal')")
                page.screenshot(path=str(_shots(tmp_path) / "annotate-3d-propagated.png"))
                page.check("input[value=axial]")
                page.wait_for_function("document.body.dataset.slice.startsWith('axial')")
                page.check("input[value=brush]")
                _drag(page, [(x0, y0), (x0 + 1, y0)])
                _idle(page)
                page.click("#accept")
                page.wait_for_function("document.body.dataset.accepted === '1'", timeout=60000)
                assert errors == []
            finally:
                browser.close()
    finally:
        next(served, None)
    lab = view_array(state.labels_map, "axial")
    reached = [j for j in range(lab.shape[0]) if (lab[j] == 1).any()]
    assert reached == list(range(k - 3, k + 4))  # the cord runs through every axial slice
    (obj,) = VS.read_objects(tmp_path / "model")
    assert obj["made"] == "SEMIAUTOMATIC" and obj["n_propagate"] == 1
    assert obj["hand_voxels_after_model"] > 0
    export = tmp_path / "model" / "export" / "dicom"
    seg = hd.seg.segread(export / "seg.dcm")
    assert seg.number_of_segments == 1
    desc = seg.get_segment_description(1)
    assert desc.segment_label == "SpinalCord" and desc.algorithm_type.value == "SEMIAUTOMATIC"
    assert desc.algorithm_identification[0].AlgorithmName == "litemedsam"
    assert state.model_sha256 in str(desc.algorithm_identification[0].AlgorithmParameters)
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == uid
    positions = {
        pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID: [
            float(v) for v in pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient
        ]
        for f in sorted(folder.iterdir())
    }
    for fg in seg.PerFrameFunctionalGroupsSequence:
        src = fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        got = [float(v) for v in fg.PlanePositionSequence[0].ImagePositionPatient]
        np.testing.assert_allclose(got, positions[src], atol=1e-4)
    img = nib.load(str(export / "labels.nii.gz"))
    import SimpleITK as sitk

    series = sitk.ReadImage(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid))
    lab_itk = sitk.ReadImage(str(export / "labels.nii.gz"))
    assert lab_itk.GetSize() == series.GetSize()
    np.testing.assert_allclose(lab_itk.GetOrigin(), series.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(lab_itk.GetDirection(), series.GetDirection(), atol=1e-6)
    assert img.shape == series.GetSize()
    SESSIONS["model"] = tmp_path / "model"


def _model_session(tmp_path: Path) -> Path:
    """A one-box LiteMedSAM session on the cord (one encoder pass), in-process."""
    from sambench.models.registry import build_model

    items = list_items(SCT)
    st = VolumeState(items, tmp_path / "model1", model=build_model("litemedsam", device="cpu"),
                     model_name="litemedsam", annotator="browser", source=str(SCT),
                     prefetch=False)  # fmt: skip
    k = st.depth("axial") // 2
    x0, y0, x1, y1 = _cord_box(view_array(st.vol.reference, "axial")[k])  # type: ignore[union-attr]
    st.interact("box", {"view": "axial", "slice": k, "box": [[x0, y0], [x1, y1]]})
    st.accept()
    st.close()
    return tmp_path / "model1"


def test_annotation_report_over_volume_sessions(tmp_path: Path) -> None:
    if "manual" not in SESSIONS:
        pytest.skip("needs the manual browser session (run the module)")
    model = SESSIONS.get("model") or _model_session(tmp_path)
    out = tmp_path / "report"
    assert main(["annotation-report", str(SESSIONS["manual"]), str(model), "--out", str(out)]) == 0
    table = pd.read_csv(out / "tables" / "annotation_3d.csv")
    assert sorted(table["mode"]) == ["manual", "model"]
    for _, row in table.iterrows():
        assert row["objects"] == 1 and row["time_per_volume_s"] > 0
        assert 0 < row["dice"] < 100  # one slice (or seven) of a cord through 55 slices
    objects = pd.read_csv(out / "tables" / "annotation_3d_objects.csv")
    assert set(objects["made"]) == {"MANUAL", "SEMIAUTOMATIC"}
    assert (
        "annotation_3d" in (out / "report.html").read_text()
        or "Annotation of volumes" in (out / "report.html").read_text()
    )


def _native_state(tmp_path: Path) -> tuple[Path, Path, VolumeState]:
    """The tiny random nnInteractive folder and a volume session on the tiny CT-like NIfTI."""
    from annotate_volume_data import write_tiny_ct
    from nninteractive_tiny import make_tiny_folder
    from sambench.models.volume_registry import build_volume_model

    folder = make_tiny_folder(tmp_path / "m")
    ct = write_tiny_ct(tmp_path / "ct.nii.gz")
    state = VolumeState(list_items(ct), tmp_path / "native",
                        model=build_volume_model("nninteractive", folder, device="cpu"),
                        model_name="nninteractive", annotator="browser", source=str(ct))  # fmt: skip
    return folder, ct, state


def test_volume_nninteractive_in_chromium(tmp_path: Path) -> None:
    """The native 3D model from the page: a box on an axial slice and a positive click; the
    label map equals the tiny nnInteractive adapter called directly with the same records (the
    page's pixels turned into voxels by hand: axial (col, row) -> (k, ny-1-row, nx-1-col))."""
    pytest.importorskip("nnInteractive.inference.inference_session")
    from playwright.sync_api import sync_playwright

    from sambench.annotate.volume_state import NATIVE_SEED
    from sambench.models.volume_base import BoxInteraction, PointInteraction, VolumeImage
    from sambench.models.volume_registry import build_volume_model

    folder, ct, state = _native_state(tmp_path)
    served = _serve(state)
    url = next(served)
    nz, ny, nx = state.labels_map.shape
    try:
        with sync_playwright() as p:
            browser, page, errors = _open(p, url)
            try:
                k = nz // 2
                assert _slice(page) == f"axial:{k}"
                assert not page.is_visible("#propagate")  # each answer is already 3D
                _drag(page, [(6, 13), (15, 22)])
                _idle(page, 120000)
                after_box = (state.labels_map == 1).copy()
                page.check("input[value=click_pos]")
                page.mouse.click(*_xy(page, 11, 16))
                _idle(page, 120000)
                page.screenshot(path=str(_shots(tmp_path) / "annotate-3d-nninteractive.png"))
                assert errors == []
            finally:
                browser.close()
    finally:
        next(served, None)
    ref = build_volume_model("nninteractive", folder, device="cpu")
    canon = np.asarray(nib.as_closest_canonical(nib.load(str(ct))).dataobj, np.float32)
    ref.open(VolumeImage(canon.transpose(2, 1, 0), (2.0, 0.9, 0.8)))
    ref.reset(seed=NATIVE_SEED)  # type: ignore[call-arg]
    m_box = ref.apply(BoxInteraction(k, ny - 1 - 22, nx - 1 - 15, k, ny - 1 - 13, nx - 1 - 6))
    m_click = ref.apply(PointInteraction(k, ny - 1 - 16, nx - 1 - 11, True))
    assert m_box.any() and not np.array_equal(m_box, m_click)
    np.testing.assert_array_equal(after_box, m_box)
    np.testing.assert_array_equal(state.labels_map == 1, m_click)


def _records(events: list[dict[str, Any]]) -> list[Any]:
    """The interaction records the server logged, rebuilt as sambench's records."""
    from sambench.models.volume_base import LassoInteraction, ScribbleInteraction

    out: list[Any] = []
    for e in events:
        r = dict(e["interaction"])
        kind = r.pop("kind")
        if kind == "scribble":
            r["points_yx"] = tuple(tuple(q) for q in r["points_yx"])
            out.append(ScribbleInteraction(**r))
        else:
            r["polygon_yx"] = tuple(tuple(q) for q in r["polygon_yx"])
            out.append(LassoInteraction(**r))
    return out


def test_volume_nninteractive_scribble_and_lasso_in_chromium(tmp_path: Path) -> None:
    """Scribble and lasso from the page with the native 3D model: a scribble dragged on a
    coronal slice, a freehand lasso dragged with Shift (negative) on a sagittal slice and a
    lasso clicked corner by corner (double-click closes) on an axial slice; after each, the
    label map equals the tiny nnInteractive adapter called directly with the records the server
    logged, and those records are the dragged pixels through the views' inverse index (written
    out here per view)."""
    pytest.importorskip("nnInteractive.inference.inference_session")
    from playwright.sync_api import sync_playwright

    from sambench.annotate.volume_state import NATIVE_SEED
    from sambench.models.volume_base import VolumeImage
    from sambench.models.volume_registry import build_volume_model

    folder, ct, state = _native_state(tmp_path)
    served = _serve(state)
    url = next(served)
    nz, ny, nx = state.labels_map.shape
    after: list[np.ndarray] = []
    try:
        with sync_playwright() as p:
            browser, page, errors = _open(p, url)
            try:
                for tool in ("scribble", "lasso"):
                    assert page.is_visible(f"input[value={tool}]")
                assert page.is_visible("#negative") and not page.is_visible("#propagate")
                # a scribble on the middle coronal slice
                page.check("input[value=coronal]")
                page.wait_for_function("document.body.dataset.slice === 'coronal:14'")
                page.check("input[value=scribble]")
                _drag(page, [(16, 13), (19, 12), (22, 14)])
                _idle(page, 120000)
                after.append((state.labels_map == 1).copy())
                # a freehand lasso with Shift held (negative) on the middle sagittal slice
                page.check("input[value=sagittal]")
                page.wait_for_function("document.body.dataset.slice === 'sagittal:15'")
                page.check("input[value=lasso]")
                page.keyboard.down("Shift")
                _drag(page, [(7, 9), (14, 9), (14, 17), (7, 17), (7, 10)])
                page.keyboard.up("Shift")
                _idle(page, 120000)
                after.append((state.labels_map == 1).copy())
                # a lasso clicked corner by corner on the middle axial slice
                page.check("input[value=axial]")
                page.wait_for_function("document.body.dataset.slice === 'axial:13'")
                for c in ((12, 6), (22, 6), (22, 14)):
                    page.mouse.click(*_xy(page, *c))
                page.mouse.dblclick(*_xy(page, 12, 14))
                _idle(page, 120000)
                after.append((state.labels_map == 1).copy())
                page.screenshot(
                    path=str(_shots(tmp_path) / "annotate-volume-lasso.png"), full_page=True
                )
                assert errors == []
            finally:
                browser.close()
    finally:
        next(served, None)
    events = [
        json.loads(line)
        for line in (tmp_path / "native" / "events.jsonl").read_text().splitlines()
        if json.loads(line)["type"] in ("scribble", "lasso")
    ]
    assert [(e["type"], e["view"], e["slice"]) for e in events] == [
        ("scribble", "coronal", 14), ("lasso", "sagittal", 15), ("lasso", "axial", 13)
    ]  # fmt: skip
    records = _records(events)
    # the records are the page's pixels (col, row) through each view's inverse index
    to_plane = {
        "coronal": lambda c, r: (nz - 1 - r, nx - 1 - c),  # plane y = k: (z, x)
        "sagittal": lambda c, r: (nz - 1 - r, ny - 1 - c),  # plane x = k: (z, y)
        "axial": lambda c, r: (ny - 1 - r, nx - 1 - c),  # slice z = k: (y, x)
    }
    for e, rec, axis in zip(events, records, (1, 2, 0), strict=True):
        pix = e["coords"]["points"]
        pts = rec.points_yx if rec.kind == "scribble" else rec.polygon_yx
        assert rec.axis == axis and rec.z == e["slice"]
        assert list(pts) == [to_plane[e["view"]](c, r) for c, r in pix]
    assert events[0]["coords"]["points"][0] == [16, 13]
    assert events[0]["coords"]["points"][-1] == [22, 14]
    assert len(events[1]["coords"]["points"]) > 5  # a freehand outline, every pixel dragged over
    assert [rec.positive for rec in records] == [True, False, True]
    assert events[2]["coords"]["points"] == [[12, 6], [22, 6], [22, 14], [12, 14]]
    # the label map equals the adapter called directly with the logged records
    ref = build_volume_model("nninteractive", folder, device="cpu")
    canon = np.asarray(nib.as_closest_canonical(nib.load(str(ct))).dataobj, np.float32)
    ref.open(VolumeImage(canon.transpose(2, 1, 0), (2.0, 0.9, 0.8)))
    ref.reset(seed=NATIVE_SEED)  # type: ignore[call-arg]
    masks = [ref.apply(rec) for rec in records]
    assert all(0 < m.sum() < m.size for m in masks[:1]) and len({m.tobytes() for m in masks}) == 3
    for got, expect in zip(after, masks, strict=True):
        np.testing.assert_array_equal(got, expect)
