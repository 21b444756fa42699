"""`sambench annotate`: the session state and HTTP API (in-process, Starlette's TestClient),
resume after a kill, the refusals, and the simulated annotator. Model-mode tests run LiteMedSAM
(one encoder pass per image) and are marked slow."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from annotate_data import make_annotation_prepared
from sambench.annotate.server import bind_socket, create_app
from sambench.annotate.session import build_state
from sambench.annotate.simulate import api_headers, run_simulation
from sambench.annotate.state import AnnotationState
from sambench.cli import main
from sambench.data.manifest import load_manifest
from sambench.errors import DataError, OptionError
from sambench.store import annotation_sessions as S

TAB = {"X-Sambench-Tab": "tab-1"}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_annotation_prepared(tmp_path_factory.mktemp("annot"))


def _client(state: AnnotationState, **app_options: object) -> TestClient:
    """A client of the session's app as its page talks to it: at 127.0.0.1, with the page's token
    and ``Origin`` on every request (the tab id per request: ``TAB``)."""
    port = app_options.get("port")
    c = TestClient(
        create_app(state, **app_options),  # type: ignore[arg-type]
        base_url="http://127.0.0.1" + (f":{port}" if port else ""),
    )
    c.headers.update({k: v for k, v in api_headers(c, "-").items() if k != "X-Sambench-Tab"})
    return c


def _manual(prepared: Path, session: Path) -> tuple[AnnotationState, TestClient]:
    state = build_state(prepared, session, "none", "ann")
    client = _client(state)
    assert client.post("/api/claim", headers=TAB).status_code == 200
    return state, client


def _key(view: dict) -> dict:
    return {"image_id": view["image_id"], "label_value": view["label_value"]}


def _post(client: TestClient, path: str, body: dict, status: int = 200) -> dict:
    r = client.post(path, json=body, headers=TAB)
    assert r.status_code == status, r.text
    return r.json()


def test_manual_tools_have_known_masks_and_are_logged(prepared: Path, tmp_path: Path) -> None:
    _state, c = _manual(prepared, tmp_path / "s")
    manifest = load_manifest(prepared)
    first = manifest.sort_values(["image_id", "label_value"]).iloc[0]
    v = c.get("/api/state", headers=TAB).json()
    assert (v["image_id"], v["label_value"]) == (first.image_id, first.label_value)
    assert (v["width"], v["height"]) == (first.width, first.height)
    k = _key(v)
    # known areas: a 10x5 box fill, an inclusive 10x5 polygon, a 10-pixel 1-px stroke
    assert (
        _post(c, "/api/interact", {**k, "kind": "box", "box": [[19, 14], [10, 10]]})["area"] == 50
    )
    poly = [[30, 30], [39, 30], [39, 34], [30, 34]]
    assert _post(c, "/api/interact", {**k, "kind": "polygon", "points": poly})["area"] == 100
    line = {**k, "kind": "brush", "points": [[0, 40], [9, 40]], "radius": 0}
    assert _post(c, "/api/interact", line)["area"] == 110
    erase = {**k, "kind": "erase", "points": [[10, 10], [19, 10]], "radius": 0}
    assert _post(c, "/api/interact", erase)["area"] == 100
    assert _post(c, "/api/undo", k)["area"] == 110
    after = _post(c, "/api/accept", k)
    assert after["label_value"] != v["label_value"] and after["accepted"] == 1

    mask = np.asarray(Image.open(tmp_path / "s" / S.mask_relpath(v["image_id"], v["label_value"])))
    expect = np.zeros((first.height, first.width), np.uint8)
    expect[10:15, 10:20] = expect[30:35, 30:40] = expect[40, 0:10] = 255
    np.testing.assert_array_equal(mask, expect)
    labels = np.asarray(Image.open(tmp_path / "s" / "labels" / "22_Heart" / f"{v['image_id']}.png"))
    np.testing.assert_array_equal(labels, np.where(expect > 0, v["label_value"], 0))
    meta = json.loads(
        (tmp_path / "s" / "labels" / "22_Heart" / f"{v['image_id']}.json").read_text()
    )
    assert meta["info"][str(v["label_value"])] == v["object_name"] and meta["mode"] == "manual"

    df = S.load_session_objects(tmp_path / "s")
    assert len(df) == 1
    row = df.iloc[0]
    assert (row.n_box, row.n_polygon, row.n_brush, row.n_erase, row.n_undo) == (1, 1, 1, 1, 1)
    assert row.n_interactions == 5 and np.isnan(row.mean_latency_ms) and row.active_s > 0
    assert (row["mode"], row["model"], row["annotator"]) == ("manual", "none", "ann")
    events = S.read_events(tmp_path / "s")
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["session_open", "image_open", "object_start"]
    assert kinds[3:10] == ["box", "polygon", "brush", "erase", "undo", "accept", "object_start"]
    assert events[3]["coords"] == [10.0, 10.0, 19.0, 14.0]  # XYXY, corners in any order
    assert events[4]["coords"]["points"] == poly
    assert all("t" in e for e in events)


def test_kill_and_resume_loses_only_the_object_in_progress(prepared: Path, tmp_path: Path) -> None:
    session = tmp_path / "s"
    _state, c = _manual(prepared, session)
    v = c.get("/api/state", headers=TAB).json()
    box = {**_key(v), "kind": "box", "box": [[5, 5], [20, 20]]}
    _post(c, "/api/interact", box)
    v2 = _post(c, "/api/accept", _key(v))
    _post(c, "/api/interact", {**_key(v2), "kind": "box", "box": [[5, 5], [9, 9]]})
    # "kill": no close(), a torn last line in the events log
    with open(session / S.EVENTS_NAME, "a") as f:
        f.write('{"type": "box", "image_')
    n_lines = len((session / S.EVENTS_NAME).read_text().splitlines())
    _state2, c2 = _manual(prepared, session)
    resumed = c2.get("/api/state", headers=TAB).json()
    assert _key(resumed) == _key(v2) and resumed["area"] == 0 and resumed["accepted"] == 1
    with pytest.warns(UserWarning, match=rf"events.jsonl:{n_lines}: not a JSON object"):
        events = S.read_events(session)
    assert sum(e["type"] == "accept" for e in events) == 1
    assert [e["type"] for e in events].count("session_open") == 2


def test_refusals(prepared: Path, tmp_path: Path) -> None:
    _state, c = _manual(prepared, tmp_path / "s")
    v = c.get("/api/state", headers=TAB).json()
    k = _key(v)
    # a second tab is told the session is open elsewhere
    r = c.post("/api/claim", headers={"X-Sambench-Tab": "tab-2"})
    assert r.status_code == 409 and "another browser tab" in r.json()["error"]
    assert c.get("/api/state").status_code == 400  # no tab id
    # image ids outside the manifest
    assert c.get("/api/image/../../etc/passwd").status_code == 404
    r = c.get("/api/image/22_Heart_9_9")
    assert r.status_code == 404 and "not in the prepared manifest" in r.json()["error"]
    assert _post(c, "/api/open", {"image_id": "nope"}, 404)["error"].startswith("image_id 'nope'")
    assert _post(c, "/api/interact", {**k, "image_id": "nope", "kind": "box"}, 404)
    # bad fields, each named
    assert (
        "clicks need a model"
        in _post(c, "/api/interact", {**k, "kind": "click_pos", "point": [1, 1]}, 400)["error"]
    )
    bad = _post(c, "/api/interact", {**k, "kind": "brush", "points": [[1e6, 0]]}, 400)
    assert bad["error"].startswith("points: a point lies outside")
    assert _post(c, "/api/interact", {**k, "kind": "paint"}, 400)["error"].startswith("kind:")
    assert _post(c, "/api/undo", k, 400)["error"].startswith("undo: nothing")
    assert _post(c, "/api/accept", {**k, "label_value": 1}, 409)
    # the static route serves the package's assets only; the ground truth is never served
    assert c.get("/static/app.js").status_code == 200
    assert c.get("/static/../state.py").status_code == 404
    img = c.get(f"/api/image/{v['image_id']}").content
    rec = load_manifest(prepared).set_index("image_id").loc[v["image_id"]].iloc[0]
    assert (
        img == (prepared / rec.image_path).read_bytes() != (prepared / rec.label_path).read_bytes()
    )
    # a session of another prepared dataset; another mode on the same session
    other = tmp_path / "other"
    shutil.copytree(prepared, other)
    man = load_manifest(other)
    man.loc[0, "object_name"] = "Renamed"
    from sambench.data.manifest import write_manifest

    write_manifest(other / "22_Heart" / "manifest.parquet", man)
    with pytest.raises(DataError, match="another prepared dataset"):
        build_state(other, tmp_path / "s", "none", "ann")
    with pytest.raises(DataError, match="model is 'none'"):
        AnnotationState(
            prepared,
            tmp_path / "s",
            model=object(),
            model_name="litemedsam",  # type: ignore[arg-type]
            annotator="ann",
        )
    with pytest.raises(OptionError, match="--model"):
        build_state(prepared, tmp_path / "x", "sam9", "ann")


def test_port_in_use_is_a_clear_error(prepared: Path, tmp_path: Path, capsys) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(OptionError, match=rf"--port: {port} on 127.0.0.1 is already in use"):
            bind_socket("127.0.0.1", port)
        rc = main(
            [
                "annotate",
                str(prepared),
                "--out",
                str(tmp_path / "s"),
                "--model",
                "none",
                "--port",
                str(port),
            ]
        )
    assert rc == 2
    err = capsys.readouterr().err
    assert "already in use" in err and len(err.strip().splitlines()) <= 2
    assert not (tmp_path / "s").exists()  # refused before anything is written


def test_simulated_manual_annotator(prepared: Path, tmp_path: Path) -> None:
    df = run_simulation(prepared, tmp_path / "s", "none")
    objects = S.load_session_objects(tmp_path / "s")
    manifest = load_manifest(prepared)
    assert len(df) == len(objects) == len(manifest)
    # the session's own counts are the simulator's
    merged = objects.merge(df, on=["image_id", "label_value"], suffixes=("", "_sim"))
    assert (merged.n_polygon == merged.n_polygons).all()
    assert ((merged.n_brush + merged.n_erase) == merged.n_strokes).all()
    assert (merged.n_interactions == merged.n_interactions_sim).all()
    reached = df.iou >= 0.9
    assert (reached | (df.n_strokes == 20)).all()
    # the saved masks are what the simulator measured
    for r in merged.itertuples():
        gt = (
            np.asarray(
                Image.open(
                    prepared
                    / manifest.set_index(["image_id", "label_value"])
                    .loc[(r.image_id, r.label_value)]
                    .label_path
                )
            )
            == r.label_value
        )
        m = np.asarray(Image.open(r.mask_path)) > 0
        assert abs((m & gt).sum() / (m | gt).sum() - r.iou) < 1e-9


@pytest.mark.slow
def test_model_mode_encodes_once_and_decodes_like_the_adapter(
    prepared: Path, tmp_path: Path
) -> None:
    from sambench.prompts.types import Prompts

    state = build_state(prepared, tmp_path / "s", "litemedsam", "ann")
    calls: list[Prompts] = []
    predict = state.model.predict  # type: ignore[union-attr]

    def spy(emb, prompts, multimask_output=None):  # type: ignore[no-untyped-def]
        calls.extend(prompts)
        return predict(emb, prompts, multimask_output=multimask_output)

    state.model.predict = spy  # type: ignore[union-attr,method-assign]
    c = _client(state)
    v = _post(c, "/api/claim", {})
    k = _key(v)
    rec = load_manifest(prepared).set_index(["image_id", "label_value"]).loc[tuple(k.values())]
    box = [int(rec.bbox_x_min), int(rec.bbox_y_min), int(rec.bbox_x_max), int(rec.bbox_y_max)]
    after_box = _post(c, "/api/interact", {**k, "kind": "box", "box": [box[:2], box[2:]]})
    assert after_box["latency_ms"] > 0 and after_box["box"] == [float(b) for b in box]
    # the reference: the adapter itself on the same image and box, highest predicted IoU
    image = np.asarray(Image.open(prepared / rec.image_path))
    ref = predict(
        state.model.embed(image),
        [Prompts(box=np.array(box, np.float32))],  # type: ignore[union-attr]
        multimask_output=True,
    )
    best = ref.masks[0, int(np.argmax(ref.scores[0]))]
    got = (
        np.asarray(Image.open(__import__("io").BytesIO(c.get("/api/mask", headers=TAB).content)))
        > 0
    )
    np.testing.assert_array_equal(got, best)
    _post(c, "/api/interact", {**k, "kind": "click_neg", "point": [box[0], box[1]]})
    assert calls[-1].mask_logits is not None and calls[-1].mask_logits.shape == (1, 256, 256)
    assert calls[-1].box is not None and calls[-1].labels.tolist() == [0]
    nxt = _post(c, "/api/accept", k)
    assert nxt["image_id"] == k["image_id"] and state.encoder_passes == 1
    _post(c, "/api/next_image", {})
    assert state.encoder_passes == 2
    df = S.load_session_objects(tmp_path / "s")
    assert df.mean_latency_ms.iloc[0] > 0 and df.n_click_neg.iloc[0] == 1
    # a restart reads the embeddings from the session's cache: no encoder pass
    state2 = build_state(prepared, tmp_path / "s", "litemedsam", "ann")
    state2.ensure_current()
    assert state2.encoder_passes == 0 and state2.cache.hits == 1  # type: ignore[union-attr]


@pytest.mark.slow
def test_simulated_annotator_with_litemedsam(prepared: Path, tmp_path: Path) -> None:
    df = run_simulation(prepared, tmp_path / "s", "litemedsam", max_objects=3)
    objects = S.load_session_objects(tmp_path / "s")
    assert len(df) == len(objects) == 3
    assert (df.n_model >= 1).all() and (objects.n_box == 1).all()
    assert ((objects.n_click_pos + objects.n_click_neg + 1) == df.n_model).all()
    assert (objects.mean_latency_ms > 0).all()


def test_second_server_on_a_session_is_refused(prepared: Path, tmp_path: Path, capsys) -> None:
    from sambench.store.runlock import RunLock

    session = tmp_path / "s"
    with RunLock(session, "annotate"):
        rc = main(
            ["annotate", str(prepared), "--out", str(session), "--model", "none", "--port", "0"]
        )
    assert rc == 2
    assert "served by another `sambench annotate`" in capsys.readouterr().err
    assert not (session / S.SESSION_JSON).exists()
    # the lock file alone does not make the folder "non-empty"
    build_state(prepared, session, "none", "ann")
    assert (session / S.SESSION_JSON).is_file()


def _start_cli(prepared: Path, session: Path, port: str = "0") -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-u", "-c", "from sambench.cli import main; raise SystemExit(main())",
           "annotate", str(prepared), "--out", str(session), "--model", "none", "--port", port]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for _ in range(20):
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if m:
            return proc, f"http://127.0.0.1:{m.group(1)}"
    proc.kill()
    raise AssertionError("the server did not print its address")


def _wait_up(url: str) -> None:
    for _ in range(100):
        try:
            httpx.get(url + "/static/app.css", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


def test_sigkill_mid_object_then_resume_with_the_real_server(
    prepared: Path, tmp_path: Path
) -> None:
    session = tmp_path / "s"
    proc, url = _start_cli(prepared, session)
    try:
        _wait_up(url)
        with httpx.Client(base_url=url, timeout=30) as c:
            c.headers.update(api_headers(c, "tab-1"))
            v = c.post("/api/claim").json()
            k = _key(v)
            c.post("/api/interact", json={**k, "kind": "box", "box": [[3, 3], [12, 12]]})
            v2 = c.post("/api/accept", json=k).json()
            r = c.post("/api/interact", json={**_key(v2), "kind": "box", "box": [[3, 3], [6, 6]]})
            assert r.json()["area"] == 16
            proc.send_signal(signal.SIGKILL)  # while the client's connection is open
            proc.wait(10)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert len(S.load_session_objects(session)) == 1
    # at once on the same port (the dead server's connections in TIME_WAIT must not block it);
    # the lock died with the process
    proc, url = _start_cli(prepared, session, url.rsplit(":", 1)[1])
    try:
        _wait_up(url)
        with httpx.Client(base_url=url, timeout=30) as c:
            c.headers.update(api_headers(c, "new"))
            resumed = c.post("/api/claim").json()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
    assert _key(resumed) == _key(v2) and resumed["area"] == 0 and resumed["accepted"] == 1
    kinds = [e["type"] for e in S.read_events(session)]
    assert kinds.count("session_open") == 2 and kinds[-1] == "session_close"
    assert kinds.count("box") == 2  # the lost object's box is in the log, not in objects.jsonl


# ---------------------------------------------------------------- security (issue 28: 1, 2, 3, 23)


def _events(session: Path) -> list[str]:
    return [e["type"] for e in S.read_events(session)]


def test_host_origin_and_token_are_checked(prepared: Path, tmp_path: Path) -> None:
    """DNS rebinding (a foreign Host), a foreign or missing Origin on a POST, no token: refused."""
    state = build_state(prepared, tmp_path / "s", "none", "ann")
    c = _client(state, port=8765)
    page = c.get("/")
    token = c.headers["X-Sambench-Token"]
    assert page.status_code == 200 and token in page.text and len(token) >= 32
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    v = c.post("/api/claim", headers=TAB).json()
    image = f"/api/image/{v['image_id']}"
    assert c.get(image, headers=TAB).status_code == 200
    # the page and the API answer as 127.0.0.1, localhost and [::1] on the bound port only
    # (a GET from the page itself sends no Origin)
    no_origin = TestClient(c.app, base_url="http://127.0.0.1:8765")
    for host in ("localhost:8765", "[::1]:8765", "LOCALHOST:8765"):
        assert no_origin.get("/", headers={"Host": host}).status_code == 200, host
    auth = {**TAB, "X-Sambench-Token": token}
    for host in ("evil.example:8765", "evil.example", "127.0.0.1:9999", "127.0.0.1", "", "a@b"):
        for path in ("/", image, "/static/app.js"):
            r = no_origin.get(path, headers={"Host": host, **auth})
            assert r.status_code == 403, (host, path, r.text)
            assert token not in r.text
        assert r.json()["error"].endswith(
            "this server answers only as 127.0.0.1, [::1], localhost with port 8765 "
            "(a page of another site cannot use it)"
        )
    # a state-changing request needs this page's Origin
    box = {**_key(v), "kind": "box", "box": [[1, 1], [5, 5]]}
    before = _events(tmp_path / "s")
    for origin in (
        "http://evil.example",
        "http://127.0.0.1:9999",
        "null",
        "https://127.0.0.1:8765",
    ):
        r = c.post("/api/interact", json=box, headers={**TAB, "Origin": origin})
        assert r.status_code == 403 and "another site" in r.json()["error"], origin
    r = no_origin.post("/api/interact", json=box, headers=auth)
    assert r.status_code == 403 and r.json()["error"].startswith("Origin header missing")
    # the token: every /api route needs it (the image one too); the page and its assets do not
    origin = {"Origin": "http://127.0.0.1:8765"}
    for headers in ({}, {"X-Sambench-Token": "wrong"}, {"X-Sambench-Token": "é".encode("latin-1")}):
        r = no_origin.post("/api/interact", json=box, headers={**TAB, **origin, **headers})
        assert r.status_code == 403 and "X-Sambench-Token: missing or wrong" in r.text
        assert no_origin.get(image, headers={**TAB, **headers}).status_code == 403
    assert no_origin.get("/static/app.css").status_code == 200
    assert _events(tmp_path / "s") == before  # nothing refused reached the session
    assert c.post("/api/interact", json=box, headers=TAB).json()["area"] == 25
    # another app (another server start) has another token
    assert create_app(state).state.token != token


def test_wildcard_host_answers_to_ip_addresses_and_this_machine(
    prepared: Path, tmp_path: Path
) -> None:
    state = build_state(prepared, tmp_path / "s", "none", "ann")
    c = TestClient(create_app(state, host="0:0:0:0:0:0:0:0", port=8765))
    ok = ("192.168.1.5:8765", "0.0.0.0:8765", "[fe80::1]:8765", f"{socket.gethostname()}:8765")
    for host in ok:
        assert c.get("/", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example:8765", "192.168.1.5:8766"):
        assert c.get("/", headers={"Host": host}).status_code == 403, host


def test_request_size_limits(prepared: Path, tmp_path: Path) -> None:
    """A 40 MiB body is refused unread (413), a polygon over MAX_POINTS with 400, and no refusal
    echoes a long value back."""
    import asyncio

    from sambench.annotate.server import MAX_BODY_BYTES
    from sambench.annotate.state import MAX_POINTS, RequestError

    state, c = _manual(prepared, tmp_path / "s")
    v = c.get("/api/state", headers=TAB).json()
    k = _key(v)
    before = _events(tmp_path / "s")
    big = {**k, "kind": "polygon", "points": [[1, 1]] * 2_000_000}
    body = json.dumps(big).encode()
    assert len(body) > 40 * 2**20 // 3
    r = c.post("/api/interact", content=b" " * (40 * 2**20 - len(body)) + body, headers=TAB)
    assert r.status_code == 413 and len(r.text) < 200
    assert "larger than 1048576 bytes" in r.json()["error"]
    poly = {**k, "kind": "polygon", "points": [[1, 1], [5, 1], [5, 5]] * 67_000}  # 201,000
    assert c.post("/api/interact", json=poly, headers=TAB).status_code == 413
    # under the body limit but over the point limit
    poly = {**k, "kind": "polygon", "points": [[1, 1], [5, 1], [5, 5]] * 4000}
    r = c.post("/api/interact", json=poly, headers=TAB)
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith(f"points: at most {MAX_POINTS} points")
    with pytest.raises(RequestError, match=r"at most 10000 points.*got 200001"):
        state.interact(*k.values(), "polygon", {"points": [[1, 1]] * 200_001})
    assert _events(tmp_path / "s") == before
    # echoed text is cut: ids, kinds, label values, a body that is not an object
    long_id = "x" * 500_000
    for path, payload in (
        ("/api/open", {"image_id": long_id}),
        ("/api/interact", {**k, "image_id": long_id, "kind": "box"}),
        ("/api/interact", {**k, "kind": "p" * 500_000}),
        ("/api/undo", {**k, "label_value": int("9" * 4000)}),
        ("/api/interact", [long_id]),
    ):
        r = c.post(path, json=payload, headers=TAB)
        assert r.status_code in (400, 404, 409) and len(r.text) < 300, (path, r.text[:300])
    assert c.get("/api/image/" + "y" * 20_000, headers=TAB).status_code == 404
    assert len(c.get("/api/image/" + "y" * 20_000, headers=TAB).text) < 300

    # at the ASGI level: how much of the body is read before the refusal
    app = c.app
    token = c.headers["X-Sambench-Token"]

    def call(length: int | None, chunk: int, n_chunks: int) -> tuple[int, int]:
        read = sent = 0
        status = 0

        async def receive() -> dict:
            nonlocal read, sent
            sent += 1
            read += chunk
            return {"type": "http.request", "body": b" " * chunk, "more_body": sent < n_chunks}

        async def send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        headers = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1"),
                   (b"x-sambench-token", token.encode()), (b"x-sambench-tab", b"tab-1"),
                   (b"content-type", b"application/json")]  # fmt: skip
        if length is not None:
            headers.append((b"content-length", str(length).encode()))
        scope = {"type": "http", "method": "POST", "path": "/api/interact", "raw_path": b"",
                 "query_string": b"", "headers": headers, "http_version": "1.1",
                 "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
                 "root_path": ""}  # fmt: skip
        asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
        return status, read

    assert call(40 * 2**20, 2**16, 640) == (413, 0)  # by its Content-Length: nothing read
    status, read = call(None, 2**16, 640)  # chunked: stops just past the limit
    assert status == 413 and MAX_BODY_BYTES < read <= MAX_BODY_BYTES + 2**16


def test_host_option_refuses_other_machines_unless_allowed(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sambench.annotate.server import check_host

    base = ["annotate", str(prepared), "--out", str(tmp_path / "s"), "--model", "none"]
    for host in ("0.0.0.0", "::", "[::]", "192.168.1.5", "myhost.lan"):
        assert main([*base, "--host", host]) == 2
        err = capsys.readouterr().err
        assert "--host" in err and "add --allow-remote" in err, err
        assert len(err.strip().splitlines()) == 2
    assert not (tmp_path / "s").exists()
    assert check_host("localhost") == "localhost" and check_host("[::1]") == "::1"
    assert check_host("127.0.0.2") == "127.0.0.2"
    assert check_host("0.0.0.0", allow_remote=True) == "0.0.0.0"
    # allowed: a warning on stderr (then, here, a port in use stops it before it serves)
    with socket.socket() as held:
        held.bind(("0.0.0.0", 0))
        held.listen()
        port = str(held.getsockname()[1])
        assert main([*base, "--host", "0.0.0.0", "--allow-remote", "--port", port]) == 2
    err = capsys.readouterr().err
    assert err.startswith("warning: --host 0.0.0.0 --allow-remote: other machines can reach")
    assert "already in use" in err
    # loopback with --allow-remote: nothing to warn about
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = str(held.getsockname()[1])
        assert main([*base, "--allow-remote", "--port", port]) == 2
    assert "warning" not in capsys.readouterr().err


def test_host_syntax_is_checked_without_a_dns_lookup(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    import sambench.annotate.server as server

    def no_lookup(*args: object, **kwargs: object) -> None:
        raise AssertionError("DNS lookup or bind attempted")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    monkeypatch.setattr(socket, "gethostbyname", no_lookup)
    monkeypatch.setattr(server, "bind_socket", no_lookup)
    base = ["annotate", str(prepared), "--out", str(tmp_path / "s"), "--model", "none"]
    cases = {
        "not.a.host.invalid": "is a reserved name that never resolves",
        "not.a.host": "add --allow-remote",
        "bad host!": "expected an IP address (127.0.0.1, ::1, 0.0.0.0) or a host name",
        "http://127.0.0.1": "expected an IP address",
        "1.2.3.999": "expected an IP address",
        "[127.0.0.1]": "expected an IP address",
        "-x.example": "expected an IP address",
        "a" * 300: "... (302 characters)",
    }
    for host, expected in cases.items():
        assert main([*base, "--host", host]) == 2
        err = capsys.readouterr().err
        assert err.startswith("sambench annotate: error: --host: ") and expected in err, err
        assert len(err.strip().splitlines()) == 2
    assert main([*base, "--host", "not.a.host.invalid", "--allow-remote"]) == 2
    err = capsys.readouterr().err
    assert "--host: 'not.a.host.invalid' is a reserved name that never resolves" in err
    assert not (tmp_path / "s").exists()
