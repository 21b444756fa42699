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
from sambench.annotate.simulate import run_simulation
from sambench.annotate.state import AnnotationState
from sambench.cli import main
from sambench.data.manifest import load_manifest
from sambench.errors import DataError, OptionError
from sambench.store import annotation_sessions as S

TAB = {"X-Sambench-Tab": "tab-1"}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_annotation_prepared(tmp_path_factory.mktemp("annot"))


def _manual(prepared: Path, session: Path) -> tuple[AnnotationState, TestClient]:
    state = build_state(prepared, session, "none", "ann")
    client = TestClient(create_app(state))
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
    c = TestClient(create_app(state))
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
        with httpx.Client(base_url=url, headers=TAB, timeout=30) as c:
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
        with httpx.Client(base_url=url, headers={"X-Sambench-Tab": "new"}, timeout=30) as c:
            resumed = c.post("/api/claim").json()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
    assert _key(resumed) == _key(v2) and resumed["area"] == 0 and resumed["accepted"] == 1
    kinds = [e["type"] for e in S.read_events(session)]
    assert kinds.count("session_open") == 2 and kinds[-1] == "session_close"
    assert kinds.count("box") == 2  # the lost object's box is in the log, not in objects.jsonl
