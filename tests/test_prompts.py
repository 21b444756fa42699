"""Prompt strategies S2-S6 (SPEC section 3): hand-computed answers, a loop reference, real masks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from sambench.prompts.strategies import (
    PROMPT_RULES,
    STRATEGIES,
    PromptError,
    background_points,
    bounding_box,
    centroid,
    foreground_points,
    make_all_prompts,
    make_prompts,
)
from sambench.prompts.types import Prompts

from shared_data import SEED as SEED_SAMPLES


def rect(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """HxW bool mask with rows y0..y1 and columns x0..x1 (inclusive) set."""
    m = np.zeros((h, w), bool)
    m[y0 : y1 + 1, x0 : x1 + 1] = True
    return m


def ring7() -> np.ndarray:
    """7x7 image: a 5x5 square ring (rows/cols 1..5) around a 3x3 hole; 16 px, centroid (3, 3) in the hole."""
    m = rect(7, 7, 1, 5, 1, 5)
    m[2:5, 2:5] = False
    return m


def as_list(a: np.ndarray | None) -> list[list[int]]:
    assert a is not None
    return np.asarray(a).astype(int).tolist()


# ---------------------------------------------------------------- a 6x6 rectangle, all by hand
# Rows 1..3, cols 1..4: 12 px. Row-major list (x, y): (1,1) (2,1) (3,1) (4,1) (1,2) ... (4,3).
# Centroid (int(2.5), int(2.0)) = (2, 2), inside. n = 5: step = 12 // 5 = 2 -> list[0, 2, 4, 6, 8].
# Background: w = 3, h = 2; x_a = 0, x_b = 5.5 -> cols 0..4; y_a = 0, y_b = 4 -> rows 0..3;
# non-object pixels: (0..4, 0), (0, 1), (0, 2), (0, 3): 8 px, step 1.
RECT = rect(6, 6, 1, 3, 1, 4)
RECT_FG = [[2, 2], [3, 1], [1, 2], [3, 2], [1, 3]]
RECT_BG = [[0, 0], [1, 0], [2, 0], [3, 0], [4, 0]]


def test_rectangle_pieces_by_hand() -> None:
    assert centroid(RECT) == (2, 2)
    assert bounding_box(RECT).tolist() == [1, 1, 4, 3]
    assert as_list(foreground_points(RECT, 5)) == RECT_FG
    assert as_list(background_points(RECT, 5)) == RECT_BG


def test_rectangle_strategies_paper() -> None:
    p = make_all_prompts(RECT, STRATEGIES)
    assert all(isinstance(v, Prompts) for v in p.values())
    s2, s3, s4, s5, s6 = (p[s] for s in STRATEGIES)
    assert isinstance(s2, Prompts) and as_list(s2.points) == [[2, 2]] and as_list(s2.labels) == [1]
    assert s2.box is None
    assert isinstance(s3, Prompts) and as_list(s3.points) == RECT_FG
    assert as_list(s3.labels) == [1] * 5
    assert isinstance(s4, Prompts) and as_list(s4.points) == RECT_FG + RECT_BG
    assert as_list(s4.labels) == [1] * 5 + [0] * 5
    assert isinstance(s5, Prompts) and s5.points is None and as_list(s5.box) == [1, 1, 4, 3]
    assert isinstance(s6, Prompts) and as_list(s6.box) == [1, 1, 4, 3]
    assert as_list(s6.points) == [[2, 2]] and as_list(s6.labels) == [1]
    assert s4.points is not None and s4.points.dtype == np.float64
    assert s4.labels is not None and s4.labels.dtype == np.int64


def test_rectangle_authors_code_n_plus_one() -> None:
    # 12 is not a multiple of 5: list[::2] gives 6 points (indices 0..10); the 6th, (3, 3), becomes
    # the 6th coordinate of S4 with label 0, and only 4 background points remain.
    fg = foreground_points(RECT, 5, rules="authors-code")
    assert as_list(fg) == [*RECT_FG, [3, 3]]
    p = make_all_prompts(RECT, STRATEGIES, rules="authors-code")
    s3, s4 = p["S3"], p["S4"]
    assert isinstance(s3, Prompts) and as_list(s3.points) == RECT_FG
    assert isinstance(s4, Prompts)
    assert as_list(s4.points) == [*RECT_FG, [3, 3], *RECT_BG[:4]]
    assert as_list(s4.labels) == [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]


def test_bool_and_01_integer_masks_agree() -> None:
    for dtype in (np.uint8, np.int32, np.float32):
        a = make_prompts(RECT.astype(dtype), "S4")
        b = make_prompts(RECT, "S4")
        assert as_list(a.points) == as_list(b.points)


# ---------------------------------------------------------------- a ring: centroid outside
# Ring list: row1 (1..5,1) idx 0-4; row2 (1,2) (5,2) idx 5-6; row3 idx 7-8; row4 (1,4) (5,4) idx
# 9-10; row5 (1..5,5) idx 11-15. step = 16 // 5 = 3 -> idx 0,3,6,9,12 (and 15 for authors-code).
RING_FG = [[1, 1], [4, 1], [5, 2], [1, 4], [2, 5]]


def test_ring_paper_uses_first_pixel() -> None:
    m = ring7()
    assert centroid(m) == (3, 3) and not m[3, 3]
    assert as_list(make_prompts(m, "S2").points) == [[1, 1]]
    assert as_list(make_prompts(m, "S6").points) == [[1, 1]]
    assert as_list(make_prompts(m, "S3").points) == RING_FG


def test_ring_background_by_hand() -> None:
    # box [1,1,5,5], w = h = 4: region = whole 7x7 image; 33 non-object px (hole included),
    # step 33 // 5 = 6 -> idx 0, 6, 12, 18, 24 of the row-major non-object list: row 0 idx 0-6,
    # row 1 (0,1) (6,1) idx 7-8, row 2 (0,2) (2,2) (3,2) (4,2) (6,2) idx 9-13, row 3 idx 14-18, ...
    assert as_list(background_points(ring7(), 5)) == [[0, 0], [6, 0], [4, 2], [6, 3], [0, 5]]


def test_ring_authors_code_keeps_outside_centroid_positive() -> None:
    m = ring7()
    s2 = make_prompts(m, "S2", rules="authors-code")
    assert as_list(s2.points) == [[3, 3]] and as_list(s2.labels) == [1]
    s6 = make_prompts(m, "S6", rules="authors-code")
    assert as_list(s6.points) == [[3, 3]] and as_list(s6.box) == [1, 1, 5, 5]
    s3 = make_prompts(m, "S3", rules="authors-code")
    assert as_list(s3.points) == [[3, 3], *RING_FG[1:]]
    s4 = make_prompts(m, "S4", rules="authors-code")
    assert as_list(s4.points)[:6] == [[3, 3], *RING_FG[1:], [5, 5]]
    assert as_list(s4.labels) == [1] * 5 + [0] * 5


def test_multiple_of_n_rules_agree() -> None:
    # 2x5 = 10 px, step 2, list[::2] has exactly 5 points; centroid (4, 2) inside.
    m = rect(10, 10, 2, 3, 2, 6)
    for s in STRATEGIES:
        a, b = make_prompts(m, s), make_prompts(m, s, rules="authors-code")
        assert (a.points is None) == (b.points is None)
        if a.points is not None:
            assert as_list(a.points) == as_list(b.points)
    assert as_list(foreground_points(m, 5)) == [[4, 2], [4, 2], [6, 2], [3, 3], [5, 3]]


def test_l_shape_by_hand() -> None:
    # column x=1, rows 1..6 (6 px) + row y=6, x=2..5 (4 px): 10 px. mean x = (6*1 + 2+3+4+5)/10 = 2.0,
    # mean y = (1+2+3+4+5+6 + 4*6)/10 = 4.5 -> centroid (2, 4): outside the L.
    m = np.zeros((8, 8), bool)
    m[1:7, 1] = True
    m[6, 2:6] = True
    assert centroid(m) == (2, 4) and not m[4, 2]
    assert bounding_box(m).tolist() == [1, 1, 5, 6]
    # row-major: (1,1) (1,2) (1,3) (1,4) (1,5) (1,6) (2,6) (3,6) (4,6) (5,6); step 2
    assert as_list(foreground_points(m, 5)) == [[1, 1], [1, 3], [1, 5], [2, 6], [4, 6]]
    assert as_list(make_prompts(m, "S2").points) == [[1, 1]]


# ---------------------------------------------------------------- borders and shortfalls
def test_background_region_clipped_at_bottom_right() -> None:
    # box [2,3,5,5], w = 3, h = 2: x_a = 0.5, x_b = 6 -> cols int(0.5)=0 .. 0+int(5.5)-1 = 4 (col 5
    # is out by the spec's truncation); y_a = 2, y_b = 6 -> rows 2..5. 11 non-object px, step 2.
    m = rect(6, 6, 3, 5, 2, 5)
    assert as_list(background_points(m, 5)) == [[0, 2], [2, 2], [4, 2], [1, 3], [1, 4]]


@pytest.mark.parametrize(
    "box",
    [(0, 0, 3, 2), (0, 3, 3, 5), (2, 0, 5, 2), (2, 3, 5, 5), (0, 0, 5, 5)],
    ids=["top-left", "bottom-left", "top-right", "bottom-right", "whole-image"],
)
def test_objects_touching_borders(box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    m = rect(6, 6, y0, y1, x0, x1)
    out = make_all_prompts(m, STRATEGIES)
    for s in ("S2", "S3", "S5", "S6"):
        assert isinstance(out[s], Prompts)
    assert bounding_box(m).tolist() == [x0, y0, x1, y1]
    s4 = out["S4"]
    if isinstance(s4, Prompts):
        assert s4.points is not None
        xy = s4.points.astype(int)
        assert ((xy >= 0) & (xy <= 5)).all()
        assert m[xy[:5, 1], xy[:5, 0]].all() and not m[xy[5:, 1], xy[5:, 0]].any()
    else:
        assert s4.reason in ("no_background_pixels", "too_few_background_pixels")


def test_object_filling_its_doubled_box_at_border_is_skipped() -> None:
    # box [0,0,2,2]: x_a = max(-1, 0) = 0, x_b = 3 -> the region is the box itself, all object.
    m = rect(6, 6, 0, 2, 0, 2)
    out = make_all_prompts(m, STRATEGIES)
    err = out["S4"]
    assert isinstance(err, PromptError) and err.reason == "no_background_pixels"
    assert "background" in str(err)
    assert all(isinstance(out[s], Prompts) for s in ("S2", "S3", "S5", "S6"))
    with pytest.raises(PromptError) as info:
        make_prompts(m, "S4")
    assert info.value.reason == "no_background_pixels"


def test_too_few_background_pixels() -> None:
    m = rect(6, 6, 0, 2, 0, 2)
    m[2, 2] = False  # box unchanged; the region now holds exactly 1 non-object pixel
    err = make_all_prompts(m, ["S4"])["S4"]
    assert isinstance(err, PromptError) and err.reason == "too_few_background_pixels"


def test_too_few_foreground_pixels_and_empty_mask() -> None:
    m = np.zeros((6, 6), bool)
    m[1, 1:4] = True  # 3 px
    out = make_all_prompts(m, STRATEGIES)
    for s in ("S3", "S4"):
        err = out[s]
        assert isinstance(err, PromptError) and err.reason == "too_few_foreground_pixels"
    assert as_list(make_prompts(m, "S2").points) == [[2, 1]]
    empty = make_all_prompts(np.zeros((4, 4), bool), STRATEGIES)
    assert {e.reason for e in empty.values() if isinstance(e, PromptError)} == {"empty_mask"}
    assert len(empty) == len(STRATEGIES)


def test_bad_input_errors_list_allowed_values() -> None:
    with pytest.raises(ValueError, match="S2, S3, S4, S5, S6"):
        make_prompts(RECT, "S1")
    with pytest.raises(ValueError, match="paper, authors-code"):
        make_all_prompts(RECT, ["S2"], rules="authors")
    with pytest.raises(ValueError, match="paper, authors-code"):
        foreground_points(RECT, 5, rules="Paper")
    with pytest.raises(ValueError, match="HxW"):
        make_prompts(np.zeros((4, 4, 3), bool), "S2")
    with pytest.raises(ValueError, match="0 and 1"):
        make_prompts(RECT.astype(np.uint8) * 2, "S2")
    with pytest.raises(ValueError, match="positive integer"):
        foreground_points(RECT, 0)
    assert PROMPT_RULES == ("paper", "authors-code")


# ---------------------------------------------------------------- loop reference from the SPEC text
def reference_paper(m: np.ndarray, n: int = 5) -> tuple[list, list, list]:
    """Straight transcription of SPEC section 3 with Python loops and float arithmetic."""
    h, w_img = m.shape
    fg = [(x, y) for y in range(h) for x in range(w_img) if m[y, x]]
    cx = int(sum(p[0] for p in fg) / len(fg))
    cy = int(sum(p[1] for p in fg) / len(fg))
    step = len(fg) // n
    pos = [fg[k * step] for k in range(n)]
    if m[cy, cx]:
        pos[0] = (cx, cy)
    xs, ys = [p[0] for p in fg], [p[1] for p in fg]
    box = [min(xs), min(ys), max(xs), max(ys)]
    bw, bh = box[2] - box[0], box[3] - box[1]
    xa, xb = max(box[0] - bw / 2, 0), min(box[0] + 1.5 * bw, w_img)
    ya, yb = max(box[1] - bh / 2, 0), min(box[1] + 1.5 * bh, h)
    rows = range(int(ya), int(ya) + int(yb - ya))
    cols = range(int(xa), int(xa) + int(xb - xa))
    bg = [(x, y) for y in rows for x in cols if not m[y, x]]
    bstep = len(bg) // n
    neg = [bg[k * bstep] for k in range(n)]
    return [list(p) for p in pos], [list(p) for p in neg], box


def test_matches_loop_reference_on_random_masks() -> None:
    rng = np.random.default_rng(1234)
    checked = 0
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(10, 40, size=2))
        m = rng.random((h, w)) < 0.1  # scattered pixels
        y0, x0 = (int(v) for v in rng.integers(0, [h, w]))
        m[y0 : y0 + int(rng.integers(2, h)), x0 : x0 + int(rng.integers(2, w))] = True
        if m.sum() < 5:
            continue
        out = make_all_prompts(m, STRATEGIES)
        s4 = out["S4"]
        if isinstance(s4, PromptError):  # shortfalls are tested by hand above
            continue
        pos, neg, box = reference_paper(m)
        checked += 1
        assert as_list(s4.points) == pos + neg
        assert as_list(out["S5"].box) == box  # type: ignore[union-attr]
        assert as_list(out["S2"].points) == [pos[0]]  # type: ignore[union-attr]
    assert checked > 40


# ---------------------------------------------------------------- the real seed samples
def seed_objects() -> list[tuple[str, np.ndarray]]:
    objs = []
    for info_path in sorted(SEED_SAMPLES.glob("*/info.json")):
        colors = json.loads(info_path.read_text())["color"]
        for label_path in sorted((info_path.parent / "labels").glob("*.png")):
            lab = np.asarray(Image.open(label_path))
            if lab.ndim == 3:
                lab = lab[..., 0]
            for value in colors.values():
                m = lab == int(value)
                if m.sum() > 50:
                    objs.append((f"{label_path.name}:{value}", m))
    return objs


def test_seed_samples_give_valid_prompts() -> None:
    objs = seed_objects()
    assert len(objs) >= 15  # 15 objects in the tests/data sample, 56 in the full seed set
    for name, m in objs:
        h, w = m.shape
        for rules in PROMPT_RULES:
            out = make_all_prompts(m, STRATEGIES, rules=rules)
            for s, p in out.items():
                assert isinstance(p, Prompts), (name, s, rules, p)
                if p.points is not None and p.labels is not None:
                    xy = p.points.astype(int)
                    assert np.array_equal(xy, p.points), (name, s)
                    assert (
                        (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
                    ).all()
                    inside = m[xy[:, 1], xy[:, 0]]
                    if rules == "paper":
                        assert inside[p.labels == 1].all(), (name, s)
                        assert not inside[p.labels == 0].any(), (name, s)
                if p.box is not None:
                    x0, y0, x1, y1 = p.box.astype(int)
                    ys, xs = np.nonzero(m)
                    assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max(), ys.max())
