"""The annotator in a real browser: headless Chromium (Debian's ``/usr/bin/chromium``) driven by
Playwright against a real uvicorn server, in both modes: draw a box, add a click (model mode) or a
polygon (manual mode), brush, accept, next image; then the events log and the saved masks. A second
tab on the same session is refused. Then ``sambench annotation-report`` over a manual and a model
session of the same annotator (the two browser sessions when the slow model-mode test ran, else the
manual browser session and a one-object LiteMedSAM session of the simulated annotator), its Table 7
CSV checked against the sessions, and the report page opened in the same Chromium. Screenshots go to the test's temporary folder, or to
``docs/img/`` with ``SAMBENCH_SCREENSHOTS=1`` (to refresh the documentation's). Skipped, with the reason, when Chromium or Playwright is missing (install:
``apt-get install chromium`` and the ``test`` extra; never ``playwright install``)."""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from annotate_data import make_annotation_prepared
from sambench.annotate.server import make_server
from sambench.annotate.session import build_state
from sambench.cli import main
from sambench.data.manifest import load_manifest
from sambench.metrics.hce import human_correction_effort
from sambench.store import annotation_sessions as S

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.is_file(), reason=f"{CHROMIUM} missing (apt-get install -y chromium)"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="playwright missing (pip install -e '.[test]')",
    ),
]


#: The session folder each mode's browser test wrote (read by the report test after them).
SESSIONS: dict[str, Path] = {}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_annotation_prepared(tmp_path_factory.mktemp("annot-browser"))


def _serve(state: Any) -> Iterator[str]:
    server, sock = make_server(state, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(10)
        state.close()


def _xy(page: Any, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of image pixel (x, y)."""
    r = page.evaluate(
        "(() => { const c = document.getElementById('view'); const r = c.getBoundingClientRect();"
        " return [r.left, r.top, r.width / c.width, r.height / c.height]; })()"
    )
    return r[0] + (x + 0.5) * r[2], r[1] + (y + 0.5) * r[3]


def _drag(page: Any, points: list[tuple[float, float]]) -> None:
    page.mouse.move(*_xy(page, *points[0]))
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*_xy(page, *p), steps=4)
    page.mouse.up()


def _idle(page: Any) -> None:
    page.wait_for_function("document.body.dataset.busy === '0'", timeout=30000)


def _area(page: Any) -> int:
    return int(page.evaluate("document.body.dataset.area"))


@pytest.mark.parametrize("model", ["none", pytest.param("litemedsam", marks=pytest.mark.slow)])
def test_annotate_in_chromium(prepared: Path, tmp_path: Path, model: str) -> None:
    _annotate_in_chromium(prepared, tmp_path / "session", model)


def _annotate_in_chromium(prepared: Path, session: Path, model: str) -> None:
    from playwright.sync_api import sync_playwright

    state = build_state(prepared, session, model, "browser")
    first_key = state.pending()[0]
    rec = state.rows[first_key]
    x0, y0, x1, y1 = (int(rec[k]) for k in ("bbox_x_min", "bbox_y_min", "bbox_x_max", "bbox_y_max"))
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    served = _serve(state)
    url = next(served)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 800})
                page.goto(url)
                page.wait_for_function("document.body.dataset.state === 'ready'", timeout=60000)
                assert page.evaluate("document.body.dataset.image") == first_key[0]
                assert page.locator("#object").text_content() == rec["object_name"]
                # every request the page made went to this server (no CDN, no fonts)
                # box
                page.check("input[value=box]")
                _drag(page, [(x0, y0), (cx, cy), (x1, y1)])
                _idle(page)
                after_box = _area(page)
                assert after_box > 0
                if model == "none":
                    assert after_box == (x1 - x0 + 1) * (y1 - y0 + 1)  # the manual box fills
                    assert not page.is_visible("input[value=click_pos]")
                    page.check("input[value=polygon]")
                    for q in [(x1 + 2, y0), (x1 + 8, y0), (x1 + 8, y0 + 6)]:
                        page.mouse.click(*_xy(page, *q))
                    page.mouse.dblclick(*_xy(page, x1 + 8, y0 + 6))
                else:
                    page.check("input[value=click_pos]")
                    page.mouse.click(*_xy(page, cx, cy))
                _idle(page)
                after_second = _area(page)
                page.check("input[value=brush]")
                page.fill("#radius", "2")
                _drag(page, [(x0 - 6, y1 + 4), (x0 - 2, y1 + 4)])
                _idle(page)
                final_area = _area(page)
                assert final_area > after_second
                # docs/img/ only when asked (SAMBENCH_SCREENSHOTS=1): a test run leaves the
                # committed screenshots alone
                shots = (
                    DOCS_IMG if os.environ.get("SAMBENCH_SCREENSHOTS") == "1" else session.parent
                )
                shots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shots / f"annotate-{model}.png"))
                assert (shots / f"annotate-{model}.png").stat().st_size > 1000
                # a second tab is told the session is open elsewhere
                other = browser.new_page(viewport={"width": 900, "height": 400})
                other.goto(url)
                other.wait_for_function("document.body.dataset.state === 'refused'")
                assert "another browser tab" in other.locator("#message").text_content()
                other.close()
                # accept -> the next object of the same image; next image
                page.click("#accept")
                _idle(page)
                assert page.locator("#objects li.done").count() == 1
                page.click("#next")
                _idle(page)
                assert page.evaluate("document.body.dataset.image") != first_key[0]
                assert page.evaluate(
                    "performance.getEntriesByType('resource')"
                    ".every(e => e.name.startsWith(location.origin))"
                )
            finally:
                browser.close()
    finally:
        next(served, None)

    events = S.read_events(session)
    kinds = [e["type"] for e in events]
    second = "polygon" if model == "none" else "click_pos"
    for k in ("image_open", "object_start", "box", second, "brush", "accept", "skip"):
        assert k in kinds, (k, kinds)
    assert kinds.count("image_open") == 2
    box_ev = next(e for e in events if e["type"] == "box")
    assert box_ev["coords"] == [float(v) for v in (x0, y0, x1, y1)]
    if model != "none":
        assert box_ev["latency_ms"] > 0
    objects = S.load_session_objects(session)
    assert len(objects) == 1
    row = objects.iloc[0]
    assert (row.image_id, row.label_value) == first_key
    assert (row.n_box, row.n_brush, row.n_interactions) == (1, 1, 3)
    mask = np.asarray(Image.open(row.mask_path))
    assert mask.shape == (rec["height"], rec["width"]) and int((mask > 0).sum()) == final_area
    SESSIONS[model] = session


def test_annotation_report_in_chromium(prepared: Path, tmp_path: Path) -> None:
    """``sambench annotation-report`` over a manual and a model session of one annotator."""
    from playwright.sync_api import sync_playwright

    from sambench.annotate.simulate import run_simulation

    manual = SESSIONS.get("none")
    if manual is None:  # run alone (-k): annotate by hand in the browser now
        manual = tmp_path / "manual"
        _annotate_in_chromium(prepared, manual, "none")
    model = SESSIONS.get("litemedsam")
    if model is None:  # the slow browser test did not run: one object by the simulated annotator
        model = tmp_path / "model"
        sim = run_simulation(prepared, model, "litemedsam", annotator="browser", max_objects=1)
        assert len(sim) == 1
    objects = pd.concat([S.load_session_objects(manual), S.load_session_objects(model)])
    assert sorted(objects["mode"]) == ["manual", "model"]
    # both sessions accepted the first object in manifest order: one pair
    assert objects[["image_id", "label_value"]].drop_duplicates().shape[0] == 1
    out = tmp_path / "report"
    assert main(["annotation-report", str(manual), str(model), "--out", str(out)]) == 0

    # expected figures, from the sessions' own files (HCE of the saved mask vs the label map)
    man = load_manifest(prepared).set_index(["image_id", "label_value"])
    expected = {}
    for row in objects.itertuples():
        rec = man.loc[(row.image_id, row.label_value)]
        gt = np.asarray(Image.open(prepared / rec["label_path"])) == row.label_value
        pred = np.asarray(Image.open(row.mask_path)) > 0
        # time per image: only for an image whose every object was accepted (one each here)
        complete = int((man.index.get_level_values(0) == row.image_id).sum()) == 1
        minutes = row.active_s / 60 if complete else float("nan")
        expected[row.mode] = (human_correction_effort(pred, gt).hce, minutes)
    t7 = pd.read_csv(out / "tables" / "table7_annotation.csv")
    assert list(t7["annotator"]) == ["browser", "Mean"]
    got = t7.iloc[0]
    assert got["human_hce"] == pytest.approx(expected["manual"][0])
    assert got["human_minutes_per_image"] == pytest.approx(
        expected["manual"][1], rel=1e-6, nan_ok=True
    )
    assert got["human_with_model_hce"] == pytest.approx(expected["model"][0])
    assert got["human_with_model_minutes_per_image"] == pytest.approx(
        expected["model"][1], rel=1e-6, nan_ok=True
    )
    saved = 100 * (1 - expected["model"][1] / expected["manual"][1])
    assert got["time_saved_pct"] == pytest.approx(saved, rel=1e-6, nan_ok=True)
    summary = pd.read_csv(out / "tables" / "annotation_summary.csv")
    assert sorted(zip(summary["annotator"], summary["mode"], strict=True)) == [
        ("browser", "manual"),
        ("browser", "model"),
    ]
    tests = pd.read_csv(out / "tables" / "annotation_paired_tests.csv")
    assert set(tests["n"]) == {1}

    html = out / "report.html"
    assert "browser" in html.read_text(encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(html.as_uri())
            table = page.locator("table", has=page.locator("td", has_text="browser")).first
            assert table.is_visible()
            assert "human with model HCE" in table.inner_text()  # the column's reader label
            imgs = page.locator("img")
            assert imgs.count() >= 2  # time per object and HCE by mode
            assert page.evaluate(
                "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
            )
            # the page loads nothing outside itself (figures are embedded)
            assert page.evaluate(
                "performance.getEntriesByType('resource').every(e => e.name.startsWith('data:'))"
            )
        finally:
            browser.close()


def test_works_from_localhost_and_refuses_a_rebound_name(prepared: Path, tmp_path: Path) -> None:
    """The page works at localhost as at 127.0.0.1 (the other tests), and a page of another site
    that rebinds its name to 127.0.0.1 (``evil.example``, mapped by Chromium's resolver rules) gets
    neither the page, nor its token, nor the API; a cross-site POST changes nothing."""
    from playwright.sync_api import sync_playwright

    session = tmp_path / "session"
    state = build_state(prepared, session, "none", "browser")
    rec = state.rows[state.pending()[0]]
    x0, y0 = int(rec["bbox_x_min"]), int(rec["bbox_y_min"])
    served = _serve(state)
    url = next(served)
    port = url.rsplit(":", 1)[1].strip("/")
    local, evil = f"http://localhost:{port}/", f"http://evil.example:{port}/"
    rules = "--host-resolver-rules=MAP evil.example 127.0.0.1"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[*ARGS, rules])
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 800})
                page.goto(local)
                page.wait_for_function("document.body.dataset.state === 'ready'", timeout=60000)
                page.check("input[value=box]")
                _drag(page, [(x0, y0), (x0 + 4, y0 + 4), (x0 + 9, y0 + 9)])
                _idle(page)
                assert _area(page) == 100  # the POST passed Host, Origin and token checks
                # the same server under a rebound name: no page, no API
                attacker = browser.new_page()
                response = attacker.goto(evil)
                assert response is not None and response.status == 403
                assert "this server answers only as" in attacker.content()
                token = page.evaluate("document.querySelector('meta[name=sambench-token]').content")
                assert token not in attacker.content()
                got = attacker.evaluate(
                    "async (t) => (await fetch('/api/state', {headers: {'X-Sambench-Token': t,"
                    " 'X-Sambench-Tab': 'x'}})).status",
                    token,
                )
                assert got == 403  # even with the token, if it had it
                # a form-like cross-site POST (no preflight, response unreadable) is refused
                attacker.evaluate(
                    "async (u) => { await fetch(u + 'api/next_image', {method: 'POST',"
                    " mode: 'no-cors', body: '{}'}); }",
                    local,
                )
                # and the other origin cannot read the API (CORS: the preflight is refused)
                blocked = page.evaluate(
                    "async (u) => { try { await fetch(u + 'api/state', {headers:"
                    " {'X-Sambench-Token': 'x'}}); return false; } catch (e) { return true; } }",
                    url,
                )
                assert blocked
                attacker.close()
                page.click("#accept")
                _idle(page)
                assert page.locator("#objects li.done").count() == 1
            finally:
                browser.close()
    finally:
        next(served, None)
    kinds = [e["type"] for e in S.read_events(session)]
    assert kinds.count("box") == 1 and kinds.count("accept") == 1 and "skip" not in kinds
