"""Where a run ran: config.json records the versions of the packages that can change its numbers,
the device and the CPU; a resume in another environment and a compared run from another install
are warned about (issue 27, item 5)."""

from __future__ import annotations

import json
import logging
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy

from sambench.engine.config import RunConfig
from sambench.engine.evaluate import evaluate
from sambench.report.build import build_report
from sambench.store.provenance import (
    NUMERIC_PACKAGES,
    environment,
    environment_differences,
    environment_summary,
)

from fakes import FakeModel, make_prepared


def _run(prepared: Path, out: Path, model: str = "fake") -> pd.DataFrame:
    adapter = FakeModel()
    adapter.name = model
    cfg = RunConfig(prepared=str(prepared), model=model, progress=False, strategies=("S5",))
    return evaluate(cfg, out, model=adapter)


def test_environment_records_the_installed_versions() -> None:
    env = environment("cpu")
    pk = env["packages"]
    assert isinstance(pk, dict) and tuple(pk) == NUMERIC_PACKAGES
    # independent of importlib.metadata: the modules' own version strings
    assert pk["numpy"] == np.__version__ and pk["scipy"] == scipy.__version__
    assert pk["torch"] == version("torch")
    assert env["device"] == "cpu" and env["cpu"] and env["cpu_count"]


def test_differences_name_each_package_and_the_device() -> None:
    a = environment("cpu")
    b = json.loads(json.dumps(a))
    b["packages"]["numpy"] = "0.0.1"
    b["device"] = "cuda:0"
    diffs = environment_differences(a, b)
    assert f"numpy {np.__version__} != 0.0.1" in diffs
    assert "device cpu != cuda:0" in diffs and len(diffs) == 2
    assert environment_differences(a, a) == []
    assert environment_differences(a, None) == ["environment: recorded for one run only"]
    assert "numpy " + np.__version__ in environment_summary(a)


def test_config_json_records_the_environment(tmp_path: Path) -> None:
    prepared = make_prepared(tmp_path / "prepared")
    _run(prepared, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["environment"]["packages"]["numpy"] == np.__version__
    assert saved["environment"]["device"] in {"cpu", "cuda"}
    assert RunConfig.load(tmp_path / "run").environment == saved["environment"]


def test_resume_in_another_environment_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    prepared = make_prepared(tmp_path / "prepared")
    _run(prepared, tmp_path / "run")
    path = tmp_path / "run" / "config.json"
    saved = json.loads(path.read_text())
    saved["environment"]["packages"]["numpy"] = "0.0.1"
    path.write_text(json.dumps(saved))
    with caplog.at_level(logging.WARNING):
        _run(prepared, tmp_path / "run")  # resumes: nothing left to do, but the config is checked
    assert "resuming in another environment" in caplog.text and "numpy 0.0.1 !=" in caplog.text


def test_report_names_the_environment_and_warns_on_compared_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    prepared = make_prepared(tmp_path / "prepared")
    _run(prepared, tmp_path / "a")
    _run(prepared, tmp_path / "b", model="other")
    cfg = tmp_path / "b" / "config.json"
    saved = json.loads(cfg.read_text())
    saved["environment"]["packages"]["opencv-python-headless"] = "9.9.9"
    cfg.write_text(json.dumps(saved))
    with caplog.at_level(logging.WARNING):
        html = build_report(
            tmp_path / "a", prepared=prepared, overlays=False, compare_with=[tmp_path / "b"]
        ).read_text()
    assert "Environment: " in html and f"numpy {np.__version__}" in html
    assert "ran in another environment" in html and "!= 9.9.9" in html
    assert "ran in another environment" in caplog.text
    # the same install: no warning
    html = build_report(
        tmp_path / "a", tmp_path / "r2", prepared=prepared, overlays=False
    ).read_text()
    assert "another environment" not in html
