"""``--start-with scribble|lasso`` for interactive-3d and effort: native models receive the
simulated scribble/lasso itself, 2D models its stated translation (lasso -> its box, scribble ->
its vertices as positive clicks); rows record the start; a model that cannot take the start is
refused in one line naming --start-with before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sambench.cli import main
from sambench.errors import OptionError
from sambench.models.volume_base import (
    BoxInteraction,
    Interaction,
    LassoInteraction,
    PointInteraction,
    ScribbleInteraction,
    VolumeImage,
)
from sambench.models.volume_raster import lasso_mask, scribble_mask
from sambench.volumes.evaluate import Run3DConfig, evaluate_3d
from sambench.volumes.protocols.effort import effort
from sambench.volumes.protocols.interactive_3d import _box_slice, interactive_3d
from sambench.volumes.types import ProtocolConfig
from test_interactive_3d import _synthetic
from threshold_model import ThresholdModel
from volume_data import prepare_cord

SOURCE = Path(__file__).parent / "data" / "sct-spinalcord"


class StrokeModel:
    """A deterministic native 3D model that records what it receives: a scribble or lasso fills
    its rasterized pixels on its slice and the two slices either side; a click adds (removes) a
    ball of radius 3."""

    name = "stroke"
    model_kind = "3d"
    max_shape = None

    def __init__(self, supports=("point", "box2d", "box3d", "scribble", "lasso")) -> None:
        self.supports = frozenset(supports)
        self.received: list[Interaction] = []

    def info(self) -> dict[str, str]:
        return {"model": self.name}

    def open(self, image: VolumeImage) -> None:
        self.shape = image.shape
        self.m = np.zeros(self.shape, bool)

    def reset(self, seed: int | None = None) -> None:
        self.m = np.zeros(self.shape, bool)
        self.received = []

    def apply(self, i: Interaction) -> np.ndarray:
        self.received.append(i)
        if isinstance(i, ScribbleInteraction | LassoInteraction):
            r = scribble_mask(self.shape, i, 3) if isinstance(i, ScribbleInteraction) else (
                lasso_mask(self.shape, i))  # fmt: skip
            plane = r[i.z].astype(bool)
            self.m[max(0, i.z - 2) : i.z + 3] |= plane
        elif isinstance(i, BoxInteraction):
            self.m[i.z_min : i.z_max + 1, i.y_min : i.y_max + 1, i.x_min : i.x_max + 1] = True
        elif isinstance(i, PointInteraction):
            zz, yy, xx = np.indices(self.shape)
            ball = (zz - i.z) ** 2 + (yy - i.y) ** 2 + (xx - i.x) ** 2 <= 9
            self.m = self.m | ball if i.positive else self.m & ~ball
        return self.m.copy()


def _opened(model: StrokeModel, vol) -> StrokeModel:
    model.open(VolumeImage(np.asarray(vol.image, np.float32), vol.spacing))
    return model


def _cfg(start: str, steps: int = 3, **extra: object) -> ProtocolConfig:
    return ProtocolConfig(steps=steps, options={"start": start, **extra})


@pytest.mark.parametrize("start", ["scribble", "lasso"])
def test_native_model_receives_the_simulated_start_then_clicks(start: str) -> None:
    vol, obj = _synthetic()
    model = _opened(StrokeModel(), vol)
    steps = interactive_3d(model, vol, obj, _cfg(start), np.random.default_rng(3))
    assert [st.step for st in steps] == [0, 1, 2, 3]
    assert all(st.extras["start"] == start for st in steps)
    first = model.received[0]
    assert first.kind == start and first.z == obj.key_slice
    assert all(isinstance(i, PointInteraction) for i in model.received[1:])
    gt = np.asarray(vol.label) > 0
    pts = json.loads(steps[0].extras["start_points_yx"])
    assert steps[0].extras["start_z"] == obj.key_slice
    held = first.points_yx if isinstance(first, ScribbleInteraction) else first.polygon_yx
    assert [list(p) for p in held] == pts  # the row records what the model received
    if start == "scribble":
        assert all(gt[obj.key_slice, int(y), int(x)] for y, x in pts)
    else:  # the lasso holds the key slice's object
        filled = lasso_mask(vol.shape, first).astype(bool)  # type: ignore[arg-type]
        assert not (gt[obj.key_slice] & ~filled[obj.key_slice]).any()
    # the prediction of step 0 is the model's answer to the start (not empty, not a box)
    assert np.asarray(steps[0].mask).any()
    # same generator seed: same start; the box start gives another first interaction
    again = _opened(StrokeModel(), vol)
    interactive_3d(again, vol, obj, _cfg(start), np.random.default_rng(3))
    assert again.received[0] == first
    box = _opened(StrokeModel(), vol)
    interactive_3d(box, vol, obj, _cfg("box"), np.random.default_rng(3))
    assert isinstance(box.received[0], BoxInteraction)


def test_a_start_the_model_cannot_take_is_one_line_naming_the_option() -> None:
    vol, obj = _synthetic()
    model = _opened(StrokeModel(supports=("point", "box2d")), vol)
    with pytest.raises(OptionError, match="--start-with") as e:
        interactive_3d(model, vol, obj, _cfg("lasso"), np.random.default_rng(0))
    assert "stroke cannot take a lasso" in str(e.value) and "\n" not in str(e.value)
    assert model.received == []


class _Recording(ThresholdModel):
    def __init__(self) -> None:
        self.prompts: list = []

    def predict(self, embedding, prompts, multimask_output=None):
        self.prompts.extend(prompts)
        return super().predict(embedding, prompts, multimask_output)


@pytest.mark.parametrize("start", ["scribble", "lasso"])
def test_2d_model_gets_the_lasso_box_or_the_scribble_points(start: str) -> None:
    vol, obj = _synthetic()
    model = _Recording()
    steps = interactive_3d(model, vol, obj, _cfg(start, steps=2), np.random.default_rng(1))
    assert [st.step for st in steps] == [0, 1, 2]
    assert all(st.extras["start"] == start for st in steps)
    first = model.prompts[0]
    pts = np.array(json.loads(steps[0].extras["start_points_yx"]))
    if start == "scribble":  # the scribble's vertices, (X, Y), all positive, no box
        assert first.box is None
        np.testing.assert_array_equal(first.points, pts[:, ::-1])
        assert (first.labels == 1).all()
    else:  # the lasso's vertices' tight box, XYXY
        assert first.points is None
        lo, hi = np.floor(pts.min(axis=0)), np.ceil(pts.max(axis=0))
        np.testing.assert_array_equal(first.box, [lo[1], lo[0], hi[1], hi[0]])
    # step 0 propagated beyond the key slice (the threshold model finds the bright object)
    assert len(list(steps[0].mask.slices())) >= 3
    assert _box_slice(vol, obj, _cfg(start)) == [obj.key_slice]


def test_effort_counts_the_scribble_as_interaction_one() -> None:
    vol, obj = _synthetic()
    model = _opened(StrokeModel(), vol)
    cfg = ProtocolConfig(options={"start": "scribble", "budgets": [1, 3]})
    got = effort(model, vol, obj, cfg, np.random.default_rng(4))
    assert [st.step for st in got] == [1, 3]
    assert got[0].extras["start_z"] == obj.key_slice and got[0].extras["start"] == "scribble"
    assert len(model.received) == 3 and model.received[0].kind == "scribble"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"start": "brush"}, "expected one of box, none, scribble, lasso"),
        ({"start": "scribble", "initial_box": False}, "contradicts initial_box=false"),
        ({"start": "none", "initial_box": True}, "contradicts initial_box=true"),
    ],
)
def test_bad_starts(options: dict[str, object], match: str) -> None:
    vol, obj = _synthetic()
    with pytest.raises(OptionError, match=match):
        interactive_3d(ThresholdModel(), vol, obj, ProtocolConfig(options=options),
                       np.random.default_rng(0))  # fmt: skip


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_cord(tmp_path_factory.mktemp("starts"))


def test_evaluate_3d_records_the_start_column_on_the_cord(prepared: Path, tmp_path: Path) -> None:
    cfg = Run3DConfig(prepared=str(prepared), model="stroke",
                      protocols=("interactive-3d", "effort"),
                      protocol=ProtocolConfig(steps=2, options={"start": "lasso",
                                                                "budgets": [1, 2]}))  # fmt: skip
    df = evaluate_3d(cfg, tmp_path / "run", model=StrokeModel())
    assert (df["status"] == "ok").all() and (df["start"] == "lasso").all()
    first = df[(df["protocol"] == "interactive-3d") & (df["step"] == 0)].iloc[0]
    assert len(json.loads(first["start_points_yx"])) >= 3
    saved = pd.read_parquet(tmp_path / "run" / "results3d.parquet")
    assert (saved["start"] == "lasso").all()


def test_evaluate_3d_refuses_a_start_the_model_cannot_take(prepared: Path, tmp_path: Path) -> None:
    cfg = Run3DConfig(prepared=str(prepared), model="stroke", protocols=("effort",),
                      protocol=ProtocolConfig(options={"start": "scribble"}))  # fmt: skip
    with pytest.raises(OptionError, match="--start-with") as e:
        evaluate_3d(cfg, tmp_path / "run", model=StrokeModel(supports=("point", "box3d")))
    assert "cannot take a scribble" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_cli_start_with_errors(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["evaluate-3d", str(prepared), "--out", str(tmp_path / "r")]
    assert main([*base, "--protocol", "propagate", "--start-with", "lasso"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert "--start-with" in err[0] and "interactive-3d or effort" in err[0]
    assert main([*base, "--protocol", "effort", "--start-with", "brush"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert "--start-with" in err[0] and "scribble, lasso" in err[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.slow  # about 60-90 s on a shared CPU: the tiny random nnInteractive on the cord
@pytest.mark.parametrize("start", ["scribble", "lasso"])
def test_cli_nninteractive_starts_with_a_simulated_scribble_or_lasso(
    prepared: Path, tmp_path: Path, start: str
) -> None:
    """The authors' session (tiny random folder) takes the simulated start through the CLI."""
    pytest.importorskip("nnInteractive.inference.inference_session")
    from nninteractive_tiny import make_tiny_folder

    tiny = make_tiny_folder(tmp_path / "tiny", license_text="CC BY-NC-SA 4.0")
    run = tmp_path / "run"
    args = ["evaluate-3d", str(prepared), "--out", str(run), "--model", "nninteractive",
            "--checkpoint", str(tiny), "--protocol", "interactive-3d", "--steps", "1",
            "--device", "cpu", "--start-with", start]  # fmt: skip
    assert main(args) == 0
    df = pd.read_parquet(run / "results3d.parquet")
    assert list(df["step"]) == [0, 1] and (df["status"] == "ok").all()
    assert (df["start"] == start).all() and df["start_z"].iloc[0] >= 0
