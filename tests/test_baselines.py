"""Classical interactive baselines behind the adapter protocol: seeds, shapes, known answers on a
synthetic two-region image, and the random walker driven by the interactive engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sambench.analysis.interactive import noc_table
from sambench.data.records import DATASET_JSON_NAME, MANIFEST_NAME
from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate
from sambench.engine.interactive import InteractiveTask
from sambench.models.base import PromptableModel
from sambench.models.baselines import (
    BASELINE_NAMES,
    GrabCutBaseline,
    RandomWalkerBaseline,
    build_baseline,
)
from sambench.prompts.types import Prompts

from fakes import object_row

H, W = 40, 48


def two_region(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A bright 16x20 rectangle (rows 12-27, cols 14-33) on a dark noisy background."""
    rng = np.random.default_rng(seed)
    gt = np.zeros((H, W), bool)
    gt[12:28, 14:34] = True
    image = np.where(gt, 190.0, 50.0) + rng.normal(0, 8, (H, W))
    return np.clip(image, 0, 255).astype(np.uint8), gt


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 200.0 * (a & b).sum() / (a.sum() + b.sum())


def click(x: int, y: int, positive: bool = True) -> Prompts:
    return Prompts(points=np.array([[x, y]], float), labels=np.array([int(positive)]))


def test_random_walker_seeds_layout() -> None:
    rw = RandomWalkerBaseline(radius=1)
    p = Prompts(points=np.array([[5.0, 5.0], [20.0, 8.0]]), labels=np.array([1, 0]))
    seeds = rw.seeds(p, (12, 30))
    assert seeds[0, 10] == seeds[11, 10] == seeds[6, 0] == seeds[6, 29] == 2  # image frame
    assert seeds[5, 5] == seeds[4, 5] == seeds[5, 6] == 1  # disc radius 1 (a plus)
    assert seeds[4, 4] == 0
    assert seeds[8, 20] == seeds[7, 20] == 2
    assert (seeds == 1).sum() == 5 and seeds[3:9, 12:18].sum() == 0
    boxed = rw.seeds(Prompts(box=np.array([3.0, 2.0, 10.0, 7.0])), (12, 30))
    assert (boxed[2:8, 3:11] == 0).all() and (boxed == 2).sum() == 12 * 30 - 6 * 8


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_adapter_shapes_and_protocol(name: str) -> None:
    model = build_baseline(name)
    assert isinstance(model, PromptableModel)
    image, _gt = two_region()
    emb = model.embed(image)
    assert emb.original_size == (H, W)
    pred = model.predict(emb, [click(23, 19), click(2, 2, positive=False)], multimask_output=True)
    assert pred.masks.shape == (2, 1, H, W) and pred.masks.dtype == np.bool_
    assert pred.scores.shape == (2, 1) and np.all(pred.scores == 1.0)
    assert pred.low_res_logits.shape[:2] == (2, 1) and not pred.low_res_logits.any()
    assert not pred.masks[1].any()  # no positive click, no box: empty


def test_random_walker_one_click_segments_the_bright_region() -> None:
    image, gt = two_region()
    rw = RandomWalkerBaseline()
    mask = rw.predict(rw.embed(image), [click(23, 19)]).masks[0, 0]
    assert dice(mask, gt) > 95


def test_random_walker_rgb_and_negative_click() -> None:
    image, _gt = two_region()
    rgb = np.repeat(image[..., None], 3, axis=2)
    rw = RandomWalkerBaseline()
    emb = rw.embed(rgb)
    p = Prompts(points=np.array([[23.0, 19.0], [30.0, 25.0]]), labels=np.array([1, 0]))
    mask = rw.predict(emb, [p]).masks[0, 0]
    assert not mask[25, 30]  # a negative click is background whatever the image says
    assert mask[19, 23]


def test_grabcut_from_box_and_determinism() -> None:
    image, gt = two_region(1)
    gc = GrabCutBaseline()
    emb = gc.embed(image)
    box = Prompts(box=np.array([12.0, 10.0, 35.0, 29.0]))
    m1 = gc.predict(emb, [box]).masks[0, 0]
    m2 = gc.predict(emb, [box]).masks[0, 0]
    np.testing.assert_array_equal(m1, m2)
    assert dice(m1, gt) > 90
    assert not m1[:10].any()  # outside the box is definite background


def test_bad_names_and_images() -> None:
    with pytest.raises(ValueError, match="random_walker, grabcut"):
        build_baseline("simpleclick")
    with pytest.raises(ValueError, match="uint8"):
        RandomWalkerBaseline().embed(np.zeros((4, 4), np.float32))


def _prepared(root: Path, n: int = 2) -> Path:
    ds = root / "syn"
    (ds / "images").mkdir(parents=True)
    (ds / "labels").mkdir()
    records = []
    for i in range(n):
        image, gt = two_region(i)
        stem = f"syn_c{i}_{i}"
        Image.fromarray(image).save(ds / "images" / f"{stem}.png")
        Image.fromarray(gt.astype(np.uint8) * 255).save(ds / "labels" / f"{stem}.png")
        records.append(object_row("syn", i, gt, "Rect", 255, "MRI"))
    pd.DataFrame(records).to_parquet(ds / MANIFEST_NAME, index=False)
    (ds / DATASET_JSON_NAME).write_text('{"info": {"1": "Rect"}, "color": {"1": 255}}')
    return root


def test_random_walker_through_the_interactive_engine(tmp_path: Path) -> None:
    prepared = _prepared(tmp_path / "prepared")
    model = RandomWalkerBaseline()
    cfg = RunConfig(prepared=str(prepared), model=model.name, progress=False)
    res = evaluate(cfg, tmp_path / "run", model=model, tasks=[InteractiveTask(max_clicks=3)])
    assert len(res) == 2 * 3 and set(res["status"]) == {"ok"}
    final = res[res["click_index"] == 3]
    assert (final["dice"] > 95).all()
    # clicks never make it worse on this clean image
    for _, g in res.groupby("image_id"):
        d = g.sort_values("click_index")["dice"].to_numpy()
        assert d[-1] >= d[0] - 1e-9
    table = noc_table(res, (85,), by=("model",))
    assert table.loc[0, "NoC@85"] <= 2 and table.loc[0, "NoF@85"] == 0


def test_random_walker_multigrid_equals_jacobi_and_bad_mode() -> None:
    """The default multigrid solver (pyamg) segments like skimage's Jacobi CG on a real-looking
    image, up to a few pixels at the tolerance; an unknown solver is a clear error."""
    image, truth = two_region(3)
    prompts = [click(23, 19), click(2, 2, positive=False)]
    fast, ref = RandomWalkerBaseline(), RandomWalkerBaseline(mode="cg_j")
    assert fast.mode == "cg_mg" and fast.signature() != ref.signature()
    a = fast.predict(fast.embed(image), prompts).masks
    b = ref.predict(ref.embed(image), prompts).masks
    assert (a != b).mean() < 1e-3
    assert dice(a[0, 0], truth) > 90
    with pytest.raises(ValueError, match="mode: 'amg' is not one of cg_mg, cg_j, cg"):
        RandomWalkerBaseline(mode="amg")
