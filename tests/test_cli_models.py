"""Custom models from the CLI (``--model package.module:builder`` and the ``sambench.models``
entry-point group) and the top-level Python API (``sambench.evaluate`` ...)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pandas as pd
import pytest

import custom_adapter
import sambench
from sambench.cli import main
from sambench.errors import OptionError
from sambench.models import registry

from fakes import make_prepared

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_prepared(tmp_path_factory.mktemp("models") / "prepared", n_images=2)


def test_module_builder_runs_end_to_end(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, prepared: Path
) -> None:
    custom_adapter.CALLS.clear()
    out = tmp_path / "run"
    args = ["evaluate", str(prepared), "-o", str(out), "--model", "custom_adapter:build"]
    rc = main([*args, "-s", "S5", "--device", "cpu", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert custom_adapter.CALLS == [(None, "cpu")]
    res = pd.read_parquet(out / "results.parquet")
    assert set(res["model"]) == {"custom_fake"}
    assert len(res) == 2 * 2 and (res["status"] == "ok").all()  # images x objects (oracle file)
    assert len(pd.read_parquet(out / "results_score.parquet")) == 2 * 2
    box = res[(res["object_name"] == "Box") & (res["selection"] == "oracle")]
    assert (box["dice"] == 100.0).all()  # the filled box of a rectangle


def test_entry_point_builder(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    prepared: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ep = EntryPoint(
        name="mygrabcut", value="custom_adapter:build", group=registry.ENTRY_POINT_GROUP
    )

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        return [ep] if group == registry.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    out = tmp_path / "run"
    rc = main(
        ["evaluate", str(prepared), "-o", str(out), "-m", "mygrabcut", "-s", "S5", "--no-progress"]
    )
    assert rc == 0, capsys.readouterr().err
    assert set(pd.read_parquet(out / "results.parquet")["model"]) == {"custom_fake"}
    # an unknown name lists the registered entry points
    with pytest.raises(OptionError, match="mygrabcut"):
        registry.build_any("other")


def test_checkpoint_is_passed_to_a_custom_builder() -> None:
    custom_adapter.CALLS.clear()
    registry.build_any("custom_adapter:build", "weights.pth", device="cpu")
    assert custom_adapter.CALLS == [("weights.pth", "cpu")]


def test_python_api_evaluate(tmp_path: Path, prepared: Path) -> None:
    out = tmp_path / "api"
    res = sambench.evaluate(
        prepared, out, model="custom_adapter:build", strategies=["S5"], progress=False
    )
    assert isinstance(res, pd.DataFrame) and set(res["model"]) == {"custom_fake"}
    assert set(res["strategy"]) == {"S5"}
    # evaluate() returns every row (both selections); results.parquet holds the oracle ones
    again = pd.read_parquet(out / "results.parquet")
    assert len(again) == len(res[res["selection"] == "oracle"]) == len(res) // 2
    # an adapter instance is used as is
    res2 = sambench.evaluate(
        prepared,
        tmp_path / "api2",
        model=custom_adapter.build(None, device="cpu"),
        strategies=["S5"],
        progress=False,
    )
    pd.testing.assert_series_equal(
        res2.sort_values(["image_id", "object_name", "selection"])["dice"].reset_index(drop=True),
        res.sort_values(["image_id", "object_name", "selection"])["dice"].reset_index(drop=True),
    )


def test_python_api_validates_before_writing(tmp_path: Path, prepared: Path) -> None:
    out = tmp_path / "api"
    with pytest.raises(OptionError, match="--nsd-tolerance"):
        sambench.evaluate(prepared, out, model="grabcut", nsd_tolerance=-1)
    assert not out.exists()


def test_import_sambench_is_light() -> None:
    code = "import sys, sambench; sambench.evaluate; print(sorted(m for m in ('torch', 'pandas', 'typer') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT / "src")},
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    ("spec", "raised"),
    [
        ("os:getcwd", r"TypeError: .*getcwd"),  # not a builder: called with the wrong arguments
        ("custom_adapter:broken", r"RuntimeError: CUDA error: no kernel image"),
    ],
)
def test_an_error_inside_a_custom_builder_names_model_and_builder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, prepared: Path, spec: str, raised: str
) -> None:
    """Was a TypeError traceback; now two lines naming --model, the builder and the original
    one-line error; --debug keeps the original error as the cause."""
    with pytest.raises(OptionError, match=rf"--model: '{spec}': the builder raised {raised}"):
        registry.build_any(spec, device="cpu")
    out = tmp_path / "run"
    rc = main(["evaluate", str(prepared), "-o", str(out), "--model", spec, "-s", "S5"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(err) == 2 and f"--model: '{spec}': the builder raised" in err[0], err
    with pytest.raises(OptionError) as e:
        main(["--debug", "evaluate", str(prepared), "-o", str(out), "--model", spec, "-s", "S5"])
    assert e.value.__cause__ is not None
