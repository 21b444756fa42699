"""The session folder format (data/annotation_sessions.py): writers, readers, refusals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sambench.errors import DataError
from sambench.store import annotation_sessions as S

MANIFEST = pd.DataFrame(
    {
        "dataset": ["d", "d"],
        "image_id": ["d_a_0", "d_a_0"],
        "label_value": [1, 2],
        "object_name": ["LV", "RV"],
        "height": [8, 8],
        "width": [10, 10],
    }
)


def _record(image_id: str, value: int, mask_path: str, **kw: object) -> dict[str, object]:
    rec: dict[str, object] = {k: 0 for k in S.OBJECT_FIELDS}
    rec.update(
        annotator="ann",
        mode="model",
        model="litemedsam",
        dataset="d",
        image_id=image_id,
        label_value=value,
        object_name="LV",
        started_utc=S.utc_now(),
        accepted_utc=S.utc_now(),
        active_s=3.5,
        mean_latency_ms=12.0,
        mask_path=mask_path,
    )
    rec.update(kw)
    return rec


def test_session_roundtrip_and_corrupt_line(tmp_path):
    fp = S.manifest_fingerprint(MANIFEST)
    assert fp == S.manifest_fingerprint(MANIFEST.iloc[::-1])  # row order does not matter
    sess = tmp_path / "s"
    info = S.open_session(sess, tmp_path / "prep", fp, "ann", "litemedsam")
    assert info.mode == "model" and (sess / S.SESSION_JSON).is_file()
    assert S.open_session(sess, tmp_path / "prep", fp, "ann", "litemedsam") == info
    mask = np.zeros((8, 10), bool)
    mask[2:5, 3:7] = True
    p = S.write_object_mask(sess, "d_a_0", 1, mask)
    png = np.asarray(Image.open(p))
    assert png.dtype == np.uint8 and png.shape == (8, 10) and set(np.unique(png)) == {0, 255}
    S.append_object(sess, _record("d_a_0", 1, S.mask_relpath("d_a_0", 1), n_box=1))
    with open(sess / S.OBJECTS_NAME, "a") as f:
        f.write('{"torn": \n')
    S.append_object(sess, _record("d_a_0", 2, S.mask_relpath("d_a_0", 2), mean_latency_ms=None))
    S.append_object(sess, _record("d_a_0", 1, S.mask_relpath("d_a_0", 1), n_box=2))
    with pytest.warns(UserWarning, match=r"objects.jsonl:2: not a JSON object"):
        df = S.load_session_objects(sess)
    assert list(df.columns) == list(S.OBJECT_COLUMNS)
    assert list(zip(df.image_id, df.label_value, strict=True)) == [("d_a_0", 2), ("d_a_0", 1)]
    assert df.n_box.tolist() == [0, 2]  # the last acceptance wins
    assert np.isnan(df.mean_latency_ms.iloc[0]) and df.mean_latency_ms.iloc[1] == 12.0
    assert df.session.iloc[0] == str(sess.resolve())
    assert df.mask_path.iloc[1] == str(p.resolve())
    lp = S.write_label_map(sess, "d", "d_a_0", mask.astype(np.uint8), {1: "LV"}, info)
    assert json.loads(lp.with_suffix(".json").read_text())["info"] == {"1": "LV"}


def test_events_are_appended_and_typed(tmp_path):
    S.append_event(tmp_path, {"type": "box", "image_id": "x", "coords": [1, 2, 3, 4]})
    S.append_event(tmp_path, {"type": "accept", "image_id": "x"})
    ev = S.read_events(tmp_path)
    assert [e["type"] for e in ev] == ["box", "accept"] and "t" in ev[0]
    with pytest.raises(ValueError, match="event type"):
        S.append_event(tmp_path, {"type": "dance"})


def test_session_refusals(tmp_path):
    fp = S.manifest_fingerprint(MANIFEST)
    sess = tmp_path / "s"
    S.open_session(sess, tmp_path / "prep", fp, "ann", "none")
    other = S.manifest_fingerprint(MANIFEST.assign(object_name=["LV", "Myo"]))
    with pytest.raises(DataError, match="another prepared dataset"):
        S.open_session(sess, tmp_path / "prep2", other, "ann", "none")
    with pytest.raises(DataError, match="model is 'none'"):
        S.open_session(sess, tmp_path / "prep", fp, "ann", "litemedsam")
    with pytest.raises(DataError, match="annotator"):
        S.open_session(sess, tmp_path / "prep", fp, "bob", "none")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    with pytest.raises(DataError, match="non-empty folder"):
        S.open_session(tmp_path / "junk", tmp_path / "prep", fp, "ann", "none")
    with pytest.raises(DataError, match=r"session\.json: not found"):
        S.load_session_objects(tmp_path / "junk")


def test_object_columns_are_the_agreed_contract():
    # the columns the annotation report reads (agreed with its author); more may be added after
    agreed = (
        "session prepared annotator mode model dataset image_id label_value object_name "
        "started_utc accepted_utc active_s n_box n_click_pos n_click_neg n_brush n_erase "
        "n_polygon n_undo n_interactions mean_latency_ms mask_path"
    ).split()
    assert list(S.OBJECT_COLUMNS[: len(agreed)]) == agreed
