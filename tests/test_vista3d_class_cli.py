"""``evaluate-3d --model vista3d --start-with class``: the target -> class map, its errors, the
protocols' class start (a stand-in native model that records what it receives), and a run
through the CLI on a tiny synthetic CT volume (tests/volume_data.py: a "Liver" and a one-slice
"Tumor") with the tiny random VISTA3D of ``test_vista3d``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sambench.cli import main
from sambench.errors import OptionError
from sambench.models.volume_base import ClassInteraction, Interaction, PointInteraction
from sambench.volumes.class_prompts import (
    check_targets,
    class_label,
    read_class_map,
    target_key,
)
from sambench.volumes.protocols.effort import effort
from sambench.volumes.protocols.interactive_3d import interactive_3d
from sambench.volumes.types import ProtocolConfig
from test_interactive_3d import _synthetic
from test_start_with import StrokeModel, _opened
from volume_data import prepare_synthetic


class ClassStroke(StrokeModel):
    """The stand-in native model, taking class prompts too: class k fills the slices 2..6."""

    def __init__(self) -> None:
        super().__init__(supports=("point", "class"))

    def apply(self, i: Interaction) -> np.ndarray:
        if isinstance(i, ClassInteraction):
            self.received.append(i)
            self.m[2:7] = True
            return self.m.copy()
        return super().apply(i)


def test_protocols_start_from_the_class_then_click() -> None:
    vol, obj = _synthetic()  # one target named "obj"
    cfg = ProtocolConfig(steps=3, options={"start": "class", "class_map": {"OBJ": 7}})
    model = _opened(ClassStroke(), vol)
    steps = interactive_3d(model, vol, obj, cfg, np.random.default_rng(3))
    assert [st.step for st in steps] == [0, 1, 2, 3]
    assert model.received[0] == ClassInteraction(7)  # the user's map, names compared loosely
    assert all(isinstance(i, PointInteraction) for i in model.received[1:])
    assert steps[0].extras["class_label"] == 7 and "click_zyx" not in steps[0].extras
    assert all(st.extras["start"] == "class" for st in steps)
    np.testing.assert_array_equal(np.asarray(steps[0].mask)[2:7], True)
    # effort: the class prompt is interaction 1, each click one more
    cfg_e = ProtocolConfig(options={"start": "class", "class_map": {"obj": 7}, "budgets": [1, 3]})
    got = effort(_opened(ClassStroke(), vol), vol, obj, cfg_e, np.random.default_rng(3))
    assert [st.extras["interactions"] for st in got] == [1, 3]
    for st, k in zip(got, (0, 2), strict=True):
        np.testing.assert_array_equal(np.asarray(st.mask), np.asarray(steps[k].mask))
    # no class for the target: one line naming it and --class-map
    with pytest.raises(OptionError, match="--class-map: no VISTA3D class for target 'obj'"):
        interactive_3d(_opened(ClassStroke(), vol), vol, obj, ProtocolConfig(
            options={"start": "class"}), np.random.default_rng(3))  # fmt: skip
    # a model without class prompts (the stand-in without "class"; every 2D model): refused
    with pytest.raises(OptionError, match="--start-with: class prompts are VISTA3D's"):
        interactive_3d(_opened(StrokeModel(), vol), vol, obj, cfg, np.random.default_rng(3))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out, _ = prepare_synthetic(tmp_path_factory.mktemp("vista_class_cli"), spacing=(1.5, 1.5, 3.0))
    return out


def _err(capsys: pytest.CaptureFixture[str]) -> list[str]:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 or (len(err) == 2 and "--debug" in err[1]), err  # the CLI's hint
    return [err[0].removeprefix("sambench evaluate-3d: error: ")]


def test_target_names_and_the_maps(tmp_path: Path) -> None:
    assert target_key("  Left_Kidney ") == "left kidney" == target_key("left-kidney")
    assert class_label("Liver", None) == 1 and class_label("SPLEEN", {}) == 3  # the default
    assert class_label("cancer", None) is None  # MSD's ambiguous name is not guessed
    user = {"class_map": {"Cancer": 26, "liver": 4}}
    assert class_label("cancer", user) == 26 and class_label("Liver", user) == 4  # user first
    assert class_label("spleen", user) == 3
    yml = tmp_path / "m.yaml"
    yml.write_text("Tumor: 26\nLiver: 1\n")
    assert read_class_map(yml) == {"Tumor": 26, "Liver": 1}
    js = tmp_path / "m.json"
    js.write_text(json.dumps({"cancer": 23}))
    assert read_class_map(js) == {"cancer": 23}
    with pytest.raises(OptionError, match="no VISTA3D class for target 'cancer' of Lung"):
        check_targets([("Lung", "cancer")], None)
    check_targets([("Lung", "cancer")], {"class_map": {"cancer": 23}})


@pytest.mark.parametrize(
    ("text", "words"),
    [("Tumor: 2\n", "'Tumor': VISTA3D class 2 is a group"),
     ("Tumor: 16\n", "'Tumor': VISTA3D class 16 is not one"),
     ("Tumor: liver\n", "expected an integer VISTA3D class index, got 'liver'"),
     ("- 1\n- 2\n", "expected a non-empty mapping"),
     ("Tumor: 26\ntumor: 27\n", "'Tumor' and 'tumor' name the same target"),
     ("a: [1\n", "not readable as YAML or JSON")],
)  # fmt: skip
def test_bad_class_map_files(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(text)
    with pytest.raises(OptionError) as e:
        read_class_map(path)
    msg = str(e.value)
    assert msg.startswith(f"--class-map: {path}: ") and words in msg and "\n" not in msg, msg
    with pytest.raises(OptionError, match="not found"):
        read_class_map(tmp_path / "absent.yaml")


def _args(prepared: Path, run: Path, *extra: str) -> list[str]:
    return ["evaluate-3d", str(prepared), "--out", str(run), "--protocol", "interactive-3d",
            "--device", "cpu", *extra]  # fmt: skip


def test_cli_class_start_errors(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_vista3d import make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(tmp_path / "tiny.pt")
    run = tmp_path / "run"
    vista = ("--model", "vista3d", "--checkpoint", str(ckpt))
    # a target with no class ("Tumor" is in no map): one line naming it and --class-map
    assert main(_args(prepared, run, *vista, "--start-with", "class")) == 2
    err = _err(capsys)
    assert err[0].startswith("--class-map: no VISTA3D class for target 'Tumor' of Synth"), err
    # --class-map without the class start
    good = tmp_path / "map.yaml"
    good.write_text("Tumor: 26\n")
    assert main(_args(prepared, run, *vista, "--class-map", str(good))) == 2
    assert _err(capsys)[0] == "--class-map: applies to --start-with class only"
    # a bad file: one line naming it
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"Tumor": 21}))
    assert main(_args(prepared, run, *vista, "--start-with", "class", "--class-map", str(bad))) == 2
    err = _err(capsys)
    assert err[0].startswith(f"--class-map: {bad}: 'Tumor': VISTA3D class 21 is a group"), err
    # a model without class prompts (a 2D one): refused naming --start-with
    args = _args(prepared, run, "--model", "litemedsam", "--start-with", "class",
                 "--class-map", str(good))  # fmt: skip
    assert main(args) == 2
    err = _err(capsys)
    assert err[0] == (
        "--start-with: class prompts are VISTA3D's (--model vista3d); litemedsam takes no "
        "class prompt"
    ), err
    assert not run.exists()  # every refused command left nothing behind


@pytest.mark.slow  # about a minute on the shared CPU: 128^3 windows (the bundle's patch)
def test_cli_vista3d_class_start(prepared: Path, tmp_path: Path) -> None:
    from test_vista3d import make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(tmp_path / "tiny.pt")
    cmap = tmp_path / "map.yaml"
    cmap.write_text("Tumor: 26\n")  # the liver comes from the built-in map (1)
    run = tmp_path / "run"
    args = _args(prepared, run, "--model", "vista3d", "--checkpoint", str(ckpt), "--steps", "1",
                 "--start-with", "class", "--class-map", str(cmap), "--save-masks")  # fmt: skip
    assert main(args) == 0
    df = pd.read_parquet(run / "results3d.parquet")
    assert (df["status"] == "ok").all() and (df["start"] == "class").all()
    assert list(df["step"]) == [0, 1, 0, 1]  # the class prompt, then one click, per object
    first = df[df["step"] == 0].set_index("object_name")
    assert first["class_label"].to_dict() == {"Liver": 1, "Tumor": 26}
    assert first["click_zyx"].isna().all() and df[df["step"] == 1]["click_zyx"].notna().all()
    assert (df["model_kind"] == "3d").all() and (df["seconds"] > 0).all()
    cfg = json.loads((run / "config-3d.json").read_text())
    assert cfg["protocol"]["options"] == {"start": "class", "class_map": {"Tumor": 26}}
    assert "metadata.json" in cfg["model_info"]["class_labels"]
    assert all((run / p).is_file() for p in df["mask_path"])
