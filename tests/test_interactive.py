"""The interactive round loop through ``evaluate`` with hand-made fakes, and NoC / click curves on
known sequences."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from sambench.analysis.interactive import click_curve, click_curve_ci, noc_per_object, noc_table
from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate
from sambench.engine.interactive import InteractiveTask
from sambench.metrics.noc import noc
from sambench.models.base import Embedding, Prediction
from sambench.prompts.clicks import next_click
from sambench.prompts.strategies import make_prompts
from sambench.prompts.types import Prompts

from fakes import make_prepared

N_IMAGES = 2
OBJECTS = 2  # per image in make_prepared: a rectangle (85) and a disc (170)


class _ImageModel:
    """Base of the fakes: the embedding holds the image; counts embed and predict calls."""

    name = "fake_interactive"
    device = "cpu"

    def __init__(self) -> None:
        self.embed_calls = 0
        self.calls: list[tuple[list[Prompts], bool | None]] = []

    def signature(self) -> dict[str, str]:
        return {"model": self.name}

    def embed(self, image: np.ndarray) -> Embedding:
        self.embed_calls += 1
        feats = torch.from_numpy(np.asarray(image, np.float32))[None, None]
        return Embedding(features=feats, original_size=image.shape[:2], input_size=image.shape[:2])

    def predict(
        self, embedding: Embedding, prompts: Sequence[Prompts], multimask_output: bool | None = None
    ) -> Prediction:
        self.calls.append((list(prompts), multimask_output))
        k = 3 if multimask_output else 1
        masks = np.stack([self.candidates(embedding, p, k) for p in prompts])
        b = len(prompts)
        scores = np.tile(np.array([0.2, 0.9, 0.1], np.float32)[:k], (b, 1))
        if k == 1:
            scores[:] = 0.5
        logits = np.zeros((b, k, 8, 8), np.float32)
        for j in range(b):
            for c in range(k):
                # unique per call, object, candidate
                logits[j, c] = 1000 * len(self.calls) + 10 * j + c
        return Prediction(masks=masks, scores=scores, low_res_logits=logits)

    def candidates(self, embedding: Embedding, p: Prompts, k: int) -> np.ndarray:
        raise NotImplementedError


class PerfectModel(_ImageModel):
    """Returns the ground truth of the object under the first click, from any prompt; with three
    candidates it sits at index 1 (predicted IoU 0.9) between two empty masks."""

    def __init__(self, labels: dict[bytes, np.ndarray]) -> None:
        super().__init__()
        self.labels = labels

    def candidates(self, embedding: Embedding, p: Prompts, k: int) -> np.ndarray:
        image = embedding.features[0, 0].numpy().astype(np.uint8)
        label = self.labels[image.tobytes()]
        assert p.points is not None
        x, y = (int(v) for v in p.points[0])
        gt = label == label[y, x]
        empty = np.zeros_like(gt)
        return np.stack([empty, gt, empty])[1:2] if k == 1 else np.stack([empty, gt, empty])


class IgnoringModel(_ImageModel):
    """A disc of radius 2 around the first click, whatever else the prompts say."""

    def candidates(self, embedding: Embedding, p: Prompts, k: int) -> np.ndarray:
        h, w = embedding.original_size
        assert p.points is not None
        x, y = p.points[0]
        yy, xx = np.mgrid[:h, :w]
        disc = (xx - x) ** 2 + (yy - y) ** 2 <= 4
        return np.stack([disc] * k)


class DiscModel(_ImageModel):
    """Union of radius-4 discs around positive clicks minus radius-2 discs around negative ones
    (it does follow the clicks, but never reaches a perfect mask on the rectangle)."""

    def candidates(self, embedding: Embedding, p: Prompts, k: int) -> np.ndarray:
        h, w = embedding.original_size
        yy, xx = np.mgrid[:h, :w]
        m = np.zeros((h, w), bool)
        assert p.points is not None and p.labels is not None
        for (x, y), lab in zip(p.points, p.labels, strict=True):
            if lab == 1:
                m |= (xx - x) ** 2 + (yy - y) ** 2 <= 16
        for (x, y), lab in zip(p.points, p.labels, strict=True):
            if lab == 0:
                m &= (xx - x) ** 2 + (yy - y) ** 2 > 4
        return np.stack([m] * k)


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    return make_prepared(tmp_path / "prepared", n_images=N_IMAGES)


def labels_by_image(prepared: Path) -> dict[bytes, np.ndarray]:
    out = {}
    for img in sorted((prepared / "toy" / "images").glob("*.png")):
        image = np.asarray(Image.open(img))
        out[image.tobytes()] = np.asarray(Image.open(prepared / "toy" / "labels" / img.name))
    return out


def run(prepared: Path, out: Path, model: _ImageModel, max_clicks: int) -> pd.DataFrame:
    cfg = RunConfig(prepared=str(prepared), model=model.name, progress=False)
    return evaluate(cfg, out, model=model, tasks=[InteractiveTask(max_clicks=max_clicks)])  # type: ignore[arg-type]


def test_perfect_model_reaches_100_at_click_one(prepared: Path, tmp_path: Path) -> None:
    model = PerfectModel(labels_by_image(prepared))
    res = run(prepared, tmp_path / "run", model, max_clicks=5)
    assert model.embed_calls == N_IMAGES
    assert len(model.calls) == N_IMAGES  # only round 1 decodes; nothing is left to click after it
    assert len(res) == N_IMAGES * OBJECTS * 5
    assert set(res["strategy"]) == {"interactive"} and set(res["selection"]) == {"score"}
    assert set(res["status"]) == {"ok"}
    assert np.allclose(res["dice"], 100.0) and np.allclose(res["jaccard"], 100.0)
    assert np.allclose(res["hd"], 0.0)
    first = res[res["click_index"] == 1]
    assert (first["candidate_index"] == 1).all() and (first["n_candidates"] == 3).all()
    assert not first["carried_forward"].any()
    assert res.loc[res["click_index"] > 1, "carried_forward"].all()
    assert (res.loc[res["click_index"] > 1, "click_x"] == -1).all()
    per_obj = noc_per_object(res, (85, 90))
    assert (per_obj["NoC@85"] == 1).all() and per_obj["reached@90"].all()
    table = noc_table(res, (85, 90))
    assert list(table["target_modality"]) == ["Box-CT", "Disc-CT"]
    assert (table["NoC@90"] == 1.0).all() and (table["NoF@90"] == 0).all()
    # N_IMAGES slices of one case per target: too few cases for a CI (it was the zero-width
    # [1, 1] over the slices' objects)
    assert table["NoC@90_ci_low"].isna().all() and table["NoC@90_ci_high"].isna().all()
    assert table["ci_note"].str.endswith("too few").all()


def test_model_ignoring_clicks_never_reaches_the_threshold(prepared: Path, tmp_path: Path) -> None:
    model = IgnoringModel()
    res = run(prepared, tmp_path / "run", model, max_clicks=4)
    assert len(model.calls) == N_IMAGES * 4  # one batched call per round: objects decoded together
    assert all(len(ps) == OBJECTS for ps, _ in model.calls)
    assert (res["jaccard"] < 30).all()
    assert not res["carried_forward"].any()
    table = noc_table(res, (80, 85, 90), by=("model",))
    assert table.loc[0, "n_objects"] == N_IMAGES * OBJECTS
    assert table.loc[0, "NoC@85"] == 4.0 and table.loc[0, "NoF@85"] == N_IMAGES * OBJECTS
    assert table.loc[0, "max_clicks"] == 4


def test_rounds_pass_all_clicks_and_the_kept_logits(prepared: Path, tmp_path: Path) -> None:
    model = DiscModel()
    max_clicks = 4
    res = run(prepared, tmp_path / "run", model, max_clicks=max_clicks)
    assert model.embed_calls == N_IMAGES
    label = np.asarray(Image.open(prepared / "toy" / "labels" / "toy_c0_0.png"))
    calls = model.calls[:max_clicks]  # the first image's rounds
    for k, (prompts, multimask) in enumerate(calls, start=1):
        assert multimask is (k == 1)
        for j, p in enumerate(prompts):
            assert p.points is not None and p.points.shape == (k, 2)
            if k == 1:
                assert p.mask_logits is None
                gt = label == (85, 170)[j]
                s2 = make_prompts(gt, "S2").points
                np.testing.assert_array_equal(p.points, s2)
            else:
                # the kept candidate of round k-1: index 1 (highest score 0.9) in round 1, else 0
                kept = 1 if k == 2 else 0
                expected = 1000 * (k - 1) + 10 * j + kept
                assert p.mask_logits is not None and p.mask_logits.shape == (1, 8, 8)
                assert np.all(p.mask_logits == expected)
    # each click follows the rule from the previous kept mask
    p1 = calls[0][0][0]
    gt = label == 85
    prev = model.candidates(
        Embedding(torch.zeros(1), label.shape, label.shape),  # type: ignore[arg-type]
        p1,
        1,
    )[0]
    c = next_click(prev, gt, p1.points)
    assert c is not None
    p2 = calls[1][0][0]
    assert p2.points is not None and p2.labels is not None
    assert tuple(p2.points[1].astype(int)) == c[:2] and p2.labels[1] == int(c[2])
    rows = res[(res["image_id"] == "toy_c0_0") & (res["label_value"] == 85)].sort_values(
        "click_index"
    )
    assert list(rows["click_index"]) == [1, 2, 3, 4]
    assert (rows.iloc[1]["click_x"], rows.iloc[1]["click_y"]) == c[:2]
    assert bool(rows.iloc[1]["click_positive"]) is c[2]
    assert rows["prompt"].str.contains('"points"').all()
    assert (rows["decode_seconds"] >= 0).all()


def test_overlap_only_metrics_equal_the_full_ones(prepared: Path, tmp_path: Path) -> None:
    full = run(prepared, tmp_path / "full", DiscModel(), max_clicks=3)
    cfg = RunConfig(prepared=str(prepared), model="fake_interactive", progress=False)
    task = InteractiveTask(max_clicks=3, full_metrics=False)
    light = evaluate(cfg, tmp_path / "light", model=DiscModel(), tasks=[task])  # type: ignore[arg-type]
    key = ["image_id", "label_value", "click_index"]
    a, b = full.sort_values(key), light.sort_values(key)
    np.testing.assert_allclose(a["dice"], b["dice"])
    np.testing.assert_allclose(a["jaccard"], b["jaccard"])
    assert a["hd"].notna().all() and b["hd"].isna().all()
    assert (a["tp"].to_numpy() == b["tp"].to_numpy()).all()


def test_bad_task_settings_are_named() -> None:
    with pytest.raises(ValueError, match="max_clicks"):
        InteractiveTask(max_clicks=0)
    with pytest.raises(ValueError, match="paper, authors-code"):
        InteractiveTask(prompt_rules="nope")


def test_noc_known_sequences() -> None:
    seq = [50.0, 79.9, 80.0, 95.0]
    assert noc(seq, 80, 20) == (3, True)
    assert noc(seq, 90, 20) == (4, True)
    assert noc(seq, 96, 20) == (20, False)
    assert noc(seq, 80, 2) == (2, False)  # only the first max_clicks clicks count
    assert noc([85.0, 85.0], 85, 5) == (1, True)  # >=
    assert noc([float("nan"), 90.0], 85, 5) == (2, True)
    with pytest.raises(ValueError, match="max_clicks"):
        noc(seq, 80, 0)


def _table(ious: dict[tuple[str, int], list[float]]) -> pd.DataFrame:
    rows = []
    for (model, value), seq in ious.items():
        for k, v in enumerate(seq, start=1):
            rows.append(
                dict(
                    dataset="d",
                    image_id="i0",
                    label_value=value,
                    object_name="Liver",
                    modality="CT",
                    model=model,
                    strategy="interactive",
                    selection="score",
                    status="ok",
                    click_index=k,
                    jaccard=v,
                    dice=min(100.0, v + 5),
                )
            )
    return pd.DataFrame(rows)


def test_noc_table_and_click_curve_known_answers() -> None:
    df = _table({("A", 1): [70, 86, 91], ("A", 2): [50, 60, 70], ("B", 1): [95, 96, 97]})
    table = noc_table(df, (80, 85, 90), rng=np.random.default_rng(3), unit="object")
    a = table[table["model"] == "A"].iloc[0]
    assert a["target_modality"] == "Liver-CT" and a["n_objects"] == 2
    assert a["NoC@85"] == 2.5 and a["NoF@85"] == 1
    assert a["NoC@90"] == 3.0 and a["NoF@90"] == 1
    # two objects are too few for a CI (it was [2, 3]: the two values): NaN and the reason
    assert np.isnan(a["NoC@85_ci_low"]) and np.isnan(a["NoC@85_ci_high"])
    assert a["ci_note"] == "n = 2 objects: too few"
    with pytest.raises(ValueError, match="no 'case' column"):
        noc_table(df, (85,))  # by case (the default) needs the manifest's case column
    # by case: the objects of one image's case are one unit
    by_case = noc_table(df.assign(case="c0"), (85,), rng=np.random.default_rng(3))
    assert (by_case["n_cases"] == 1).all() and (by_case["ci_note"] == "n = 1 case: too few").all()
    b = table[table["model"] == "B"].iloc[0]
    assert b["NoC@90"] == 1.0 and b["NoF@90"] == 0
    # grouped without the model, the objects of both models still count separately
    pooled = noc_table(df, (85,), by=("target_modality",), unit="object").iloc[0]
    assert pooled["n_objects"] == 3 and pooled["NoC@85"] == pytest.approx(2.0)
    assert pooled["NoF@85"] == 1
    curve = click_curve(df)
    ca = curve[curve["model"] == "A"].set_index("click_index")
    assert list(ca["n"]) == [2, 2, 2]
    assert ca.loc[2, "jaccard"] == pytest.approx(73.0)
    assert ca.loc[1, "dice"] == pytest.approx(65.0)


def test_noc_table_rejects_non_interactive_results() -> None:
    df = _table({("A", 1): [70.0]}).drop(columns="click_index")
    with pytest.raises(ValueError, match="click_index"):
        noc_table(df)
    df = _table({("A", 1): [70.0]}).assign(strategy="S2")
    with pytest.raises(ValueError, match="no rows with strategy 'interactive'"):
        noc_table(df)


@pytest.mark.slow
def test_real_litemedsam_accepts_the_round_prompts() -> None:
    """The real adapter decodes every round from one embedding and takes back its own logits."""
    from sambench.engine.context import ImageContext, ObjectTarget
    from sambench.metrics import MetricConfig
    from sambench.models.registry import build_model

    model = build_model("litemedsam", device="cpu")
    gt = np.zeros((96, 128), bool)
    gt[30:70, 40:100] = True
    rng = np.random.default_rng(0)
    image = np.clip(np.where(gt, 180, 60) + rng.normal(0, 10, gt.shape), 0, 255).astype(np.uint8)
    ctx = ImageContext(
        image=image,
        objects=[ObjectTarget(row={"label_value": 1}, mask=gt)],
        embedding=model.embed(image),
        model=model,
        metric_config=MetricConfig(),
        multimask=None,
        embed_seconds=0.0,
        embedding_cached=False,
    )
    rows = InteractiveTask(max_clicks=3)(ctx)
    assert [r["click_index"] for r in rows] == [1, 2, 3]
    assert [r["n_candidates"] for r in rows] == [3, 1, 1]
    assert all(0.0 <= float(r["dice"]) <= 100.0 for r in rows)  # type: ignore[arg-type]


def _cases_table(n_cases: int, seed: int = 0) -> pd.DataFrame:
    """One model, ``n_cases`` cases of two objects (two images) each, 3 clicks; DICE and IoU
    random but seeded; IoU grows with the click."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_cases):
        for obj in range(2):
            for k in (1, 2, 3):
                iou = float(rng.uniform(20, 60) + 10 * k)
                rows.append(dict(dataset="d", case=f"c{c:02d}", image_id=f"c{c:02d}_{obj}",
                                 label_value=1, object_name="Liver", modality="CT", model="A",
                                 strategy="interactive", selection="score", status="ok",
                                 click_index=k, jaccard=iou, dice=min(100.0, iou + 5)))  # fmt: skip
    return pd.DataFrame(rows)


def test_click_curve_ci_band_equals_scipy_bootstrap_over_case_means() -> None:
    """Two objects per case: the cluster bootstrap's mean of a resample is the mean of the drawn
    cases' means, so the band is scipy's BCa bootstrap of the case means, click by click (the
    same Generator, clicks in order, DICE then IoU)."""
    from scipy import stats as sps

    df = _cases_table(8)
    got = click_curve_ci(df, metrics=("dice", "jaccard"), rng=np.random.default_rng(5), n_boot=500)
    assert list(got["click_index"]) == [1, 2, 3] and (got["n_cases"] == 8).all()
    assert (got["n"] == 16).all()
    rng = np.random.default_rng(5)
    for k in (1, 2, 3):
        row = got[got["click_index"] == k].iloc[0]
        for m in ("dice", "jaccard"):
            at = df[df["click_index"] == k]
            case_means = at.groupby("case", sort=True)[m].mean().to_numpy()
            ref = sps.bootstrap((case_means,), np.mean, n_resamples=500, method="BCa", rng=rng)
            assert row[m] == pytest.approx(at[m].mean())
            assert row[f"{m}_ci_low"] == pytest.approx(ref.confidence_interval.low)
            assert row[f"{m}_ci_high"] == pytest.approx(ref.confidence_interval.high)
        assert row["ci_note"] == ""


def test_click_curve_ci_too_few_cases_gives_no_band() -> None:
    df = _cases_table(4)
    got = click_curve_ci(df, rng=np.random.default_rng(0), n_boot=200)
    assert got["dice_ci_low"].isna().all() and got["jaccard_ci_high"].isna().all()
    assert (got["ci_note"] == "n = 4 cases: too few").all()
    # by object (comparison only) the 8 objects are enough
    obj = click_curve_ci(df, rng=np.random.default_rng(0), n_boot=200, unit="object")
    assert obj["dice_ci_low"].notna().all() and (obj["ci_note"] == "").all()
    with pytest.raises(ValueError, match="no 'case' column"):
        click_curve_ci(df.drop(columns="case"), rng=np.random.default_rng(0))


def test_click_curves_figure_draws_bands_only_with_enough_cases() -> None:
    from matplotlib.collections import PolyCollection

    from sambench.report import figures as F

    many = click_curve_ci(_cases_table(6), rng=np.random.default_rng(0), n_boot=200)
    few = click_curve_ci(_cases_table(3).assign(model="B"), rng=np.random.default_rng(0),
                         n_boot=200)  # fmt: skip
    fig = F.click_curves(pd.concat([many, few], ignore_index=True))
    for ax in fig.axes:
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 1  # model A's band; B has 3 cases: none
        assert ax.get_ylim() == (0.0, 100.0)
        texts = [t.get_text() for t in ax.texts]
        assert texts == ["no band: B: n = 3 cases: too few"]
    # the band spans A's CI at each click
    verts = next(c for c in fig.axes[0].collections if isinstance(c, PolyCollection))
    ys = verts.get_paths()[0].vertices[:, 1]
    lo, hi = many["dice_ci_low"].to_numpy(), many["dice_ci_high"].to_numpy()
    assert ys.min() == pytest.approx(lo.min()) and ys.max() == pytest.approx(hi.max())
    assert fig.axes[0].get_shared_y_axes().joined(fig.axes[0], fig.axes[1])


def test_noc_ci_absent_when_every_object_is_at_the_click_cap() -> None:
    """NoC@t of objects that never reach t is the cap (censored): the bootstrap of identical
    values would print "3.0 (3.0 to 3.0)" as if measured; there is no CI and the note says why.
    A threshold that some objects reach keeps its CI."""
    seqs = {("A", v): [50.0, 60.0 + v, 82.0 + (v % 3)] for v in range(1, 7)}
    df = _table(seqs).assign(case=lambda d: "c" + d["label_value"].astype(str))
    df["image_id"] = "i" + df["label_value"].astype(str)
    table = noc_table(df, (80, 95), rng=np.random.default_rng(0)).iloc[0]
    assert table["n_cases"] == 6 and table["NoF@95"] == 6
    assert table["NoC@95"] == 3.0
    assert np.isnan(table["NoC@95_ci_low"]) and np.isnan(table["NoC@95_ci_high"])
    assert table["ci_note"] == "NoC@95: no object reached it in 3 clicks"
    assert table["NoF@80"] == 0 and table["NoC@80"] == 3.0  # reached at the third click
    # every object reached 80 at click 3: identical values but measured, the CI stays [3, 3]
    assert table["NoC@80_ci_low"] == table["NoC@80_ci_high"] == 3.0
