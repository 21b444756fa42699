"""VISTA3D end to end through ``evaluate-3d`` on the spinal-cord MRI (tests/data/sct-spinalcord):
a tiny random checkpoint file, the interactive-3d protocol starting from clicks (VISTA3D takes no
box), rows, the licence in the run config, and the one-line error for a bad file."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("monai.apps.vista3d.inferer")

from sambench.cli import main
from test_vista3d import make_tiny_checkpoint
from volume_data import prepare_cord

SOURCE = Path(__file__).parent / "data" / "sct-spinalcord"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_cord(tmp_path_factory.mktemp("vista_cli"))


@pytest.mark.slow  # about a minute on a shared CPU: three 128^3 windows (the bundle's patch)
def test_cli_vista3d_interactive_3d_on_the_cord(prepared: Path, tmp_path: Path) -> None:
    ckpt = make_tiny_checkpoint(tmp_path / "tiny.pt")
    run = tmp_path / "run"
    args = ["evaluate-3d", str(prepared), "--out", str(run), "--model", "vista3d",
            "--checkpoint", str(ckpt), "--protocol", "interactive-3d", "--steps", "2",
            "--save-masks", "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    df = pd.read_parquet(run / "results3d.parquet")
    # no box step: VISTA3D takes clicks only, so the protocol starts from the first click
    assert list(df["step"]) == [1, 2] and (df["status"] == "ok").all()
    assert (df["model_kind"] == "3d").all() and (df["model"] == "vista3d").all()
    assert df["click_zyx"].notna().all() and (df["seconds"] > 0).all()
    cfg = json.loads((run / "config-3d.json").read_text())
    assert "NVIDIA License, non-commercial" in cfg["model_info"]["license"]
    assert cfg["model_info"]["checkpoint"] == str(ckpt)


def test_cli_bad_vista3d_checkpoint(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "model.pt"
    bad.write_text("<html>not a checkpoint</html>\n")
    run = tmp_path / "run"
    args = ["evaluate-3d", str(prepared), "--out", str(run), "--model", "vista3d",
            "--checkpoint", str(bad), "--protocol", "interactive-3d", "--device", "cpu"]  # fmt: skip
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert str(bad) in err[0] and "--checkpoint" in err[0] and "state dict" in err[0], err
    assert len(err) == 1 or (len(err) == 2 and "--debug" in err[1]), err  # the CLI's hint
    assert not run.exists()  # a refused command leaves nothing behind
