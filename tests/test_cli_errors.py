"""The CLI's user errors: two lines on stderr, exit status 2, no traceback; --debug re-raises;
every numeric option validated before the run folder (config.json) is written."""

from __future__ import annotations

import errno
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomllib

from sambench import __version__
from sambench.cli import command, main
from sambench.errors import OptionError

from fakes import make_prepared

ROOT = Path(__file__).resolve().parents[1]


def _run(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, list[str], str]:
    rc = main(args)
    out, err = capsys.readouterr()
    return rc, [line for line in err.splitlines() if line.strip()], out


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_prepared(tmp_path_factory.mktemp("cli") / "prepared", n_images=2)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    rc, err, out = _run(capsys, ["--version"])
    assert rc == 0 and out.strip() == f"sambench {__version__}" and not err


def test_console_script_is_the_error_reporting_entry() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["sambench"] == "sambench.cli:main"


BAD_VALUES = [
    (["--nsd-tolerance", "-1"], "--nsd-tolerance"),
    (["--points-per-batch", "0"], "--points-per-batch"),
    (["--grid", "abc"], "--grid"),
    (["--grid", "8,0"], "--grid"),
    (["--device", "bogus"], "--device"),
    (["--device", "cuda:7"], "--device"),
    (["--pred-iou-thresh", "1.5"], "--pred-iou-thresh"),
    (["--stability-score-thresh", "-0.1"], "--stability-score-thresh"),
    (["--box-nms-thresh", "2"], "--box-nms-thresh"),
    (["--min-mask-region-area", "-1"], "--min-mask-region-area"),
    (["--max-images", "0"], "--max-images"),
    (["--max-images", "x"], "--max-images"),
    (["--max-clicks", "0"], "--max-clicks"),
    (["--shift-repeats", "0"], "--shift-repeats"),
    (["--strategies", "S9"], "--strategies"),
    (["--multimask", "maybe"], "--multimask"),
    (["--model", "nope"], "--model"),
    (["--model", "grabcut", "--checkpoint", "x.pth"], "--checkpoint"),
    (["--model", "random_walker", "--decoder", "d.safetensors"], "--decoder"),
    (["--model", "sam_vit_b"], "--checkpoint"),
    (
        ["--model", "medsam2", "--checkpoint", "x.pt", "--model-config", "absent.yaml"],
        "--model-config",
    ),
    (["--model", "litemedsam", "--model-config", __file__], "--model-config"),
    (["--model", "no_such_module_xyz:build"], "--model"),
    (["--model", "custom_adapter:not_an_adapter"], "--model"),
]


@pytest.mark.parametrize(("extra", "option"), BAD_VALUES, ids=[" ".join(b[0]) for b in BAD_VALUES])
def test_bad_value_two_lines_exit_2_nothing_written(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    prepared: Path,
    extra: list[str],
    option: str,
) -> None:
    out = tmp_path / "run"
    rc, err, _ = _run(capsys, ["evaluate", str(prepared), "-o", str(out), "--no-progress", *extra])
    assert rc == 2
    assert 1 <= len(err) <= 2, err
    assert option in err[0] and "Traceback" not in "\n".join(err)
    assert not (out / "config.json").exists()


def test_invalid_value_does_not_poison_an_existing_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, prepared: Path
) -> None:
    out = tmp_path / "run"
    base = [
        "evaluate",
        str(prepared),
        "-o",
        str(out),
        "--no-progress",
        "--model",
        "grabcut",
        "-s",
        "S5",
    ]
    assert _run(capsys, base)[0] == 0
    before = (out / "config.json").read_bytes()
    rc, err, _ = _run(capsys, [*base, "--nsd-tolerance", "-1"])
    assert rc == 2 and "--nsd-tolerance" in err[0]
    assert (out / "config.json").read_bytes() == before
    assert _run(capsys, base)[0] == 0  # the folder still resumes with the valid settings


def test_debug_shows_the_traceback(tmp_path: Path, prepared: Path) -> None:
    args = ["evaluate", str(prepared), "-o", str(tmp_path / "r"), "--nsd-tolerance", "-1"]
    with pytest.raises(OptionError, match="--nsd-tolerance"):
        main(["--debug", *args])
    with pytest.raises(OptionError, match="--nsd-tolerance"):
        main([*args, "--debug"])  # also after the subcommand


def test_missing_input_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, err, _ = _run(capsys, ["evaluate", str(tmp_path / "nope"), "-o", str(tmp_path / "r")])
    assert rc == 2 and len(err) <= 2 and "nope" in err[0]


def test_unknown_option_and_missing_out(capsys: pytest.CaptureFixture[str], prepared: Path) -> None:
    rc, err, _ = _run(capsys, ["evaluate", str(prepared), "--bogus"])
    assert rc == 2 and len(err) == 2 and "--bogus" in err[0]
    rc, err, _ = _run(capsys, ["evaluate", str(prepared)])
    assert rc == 2 and len(err) == 2 and "--out" in err[0]


# ------------------------------------------------------------------------------ checkpoints
class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))  # type: ignore[return-value]


def _write_kind(kind: str, path: Path) -> None:
    if kind == "text":
        path.write_text(
            "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 375042383\n"
        )
    elif kind == "html":
        path.write_text("<!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>\n")
    elif kind == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("weights/readme.txt", "not a checkpoint")
    elif kind == "random":
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "empty":
        path.write_bytes(b"")


CHECKPOINT_KINDS = [
    ("text", "a text file"),
    ("html", "an HTML page"),
    ("zip", "a zip archive that is not a torch checkpoint"),
    ("random", "not a checkpoint at all"),
    ("empty", "an empty file"),
]


@pytest.mark.parametrize(("kind", "words"), CHECKPOINT_KINDS)
def test_checkpoint_kind_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, prepared: Path, kind: str, words: str
) -> None:
    ckpt = tmp_path / "sam_vit_b.pth"
    _write_kind(kind, ckpt)
    args = ["evaluate", str(prepared), "-o", str(tmp_path / "r"), "-m", "sam_vit_b"]
    rc, err, _ = _run(capsys, [*args, "--checkpoint", str(ckpt)])
    assert rc == 2 and len(err) == 2, err
    assert "--checkpoint" in err[0] and words in err[0] and str(ckpt) in err[0]
    assert not (tmp_path / "r" / "config.json").exists()


def test_code_executing_pickle_refused_not_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, prepared: Path
) -> None:
    import torch

    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(1), "x": _Payload(marker)}, ckpt)
    args = ["evaluate", str(prepared), "-o", str(tmp_path / "r"), "-m", "sam_vit_b"]
    rc, err, _ = _run(capsys, [*args, "--checkpoint", str(ckpt)])
    assert rc == 2 and len(err) == 2
    assert "--checkpoint" in err[0] and "needs code execution" in err[0]
    assert not marker.exists()
    torch.load(ckpt, weights_only=False)  # the payload is real: an unrestricted load runs it
    assert marker.exists()


# ------------------------------------------------------------------------------ report, disk
def test_report_on_a_results_file_without_columns(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    pd.DataFrame().to_parquet(run / "results.parquet")
    rc, err, _ = _run(capsys, ["report", str(run), "--no-overlays"])
    assert rc == 2 and len(err) == 2
    assert "results.parquet" in err[0] and "lacks the columns" in err[0] and "model" in err[0]


def test_no_space_left_names_the_file(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    prepared: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def full(self: Path, *a: object, **k: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")  # as a failing write() raises it

    monkeypatch.setattr(Path, "write_text", full)
    out = tmp_path / "run"
    rc, err, _ = _run(
        capsys, ["evaluate", str(prepared), "-o", str(out), "-m", "grabcut", "-s", "S5"]
    )
    assert rc == 2 and len(err) == 2
    assert str(out / "config.json") in err[0] and "no space left on device" in err[0]


READ_ONLY = [
    ["evaluate", "PREP", "-o", "RO/run", "-m", "grabcut", "-s", "S5", "--no-progress"],
    ["evaluate", "PREP", "-o", "RUN2", "-m", "grabcut", "--cache-dir", "RO/cache", "--no-progress"],
    ["prepare", "SEED", "-o", "RO/prepared", "--modality", "MRI"],
    ["report", "RUN", "-o", "RO/report", "--no-overlays"],
    ["finetune", "PREP", "-o", "RO/ft", "--no-progress"],
]


@pytest.mark.parametrize("args", READ_ONLY, ids=[f"{a[0]} {a[3]}" for a in READ_ONLY])
def test_read_only_file_system_is_a_two_line_error(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    prepared: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
) -> None:
    """EROFS (a read-only mount given as --out or --cache-dir) was a traceback; now the same
    two lines as "permission denied", naming the folder."""
    from shared_data import SEED

    ro = tmp_path / "ro"
    run = tmp_path / "run"
    if args[0] == "report":
        assert main(["evaluate", str(prepared), "-o", str(run), "-m", "grabcut", "-s", "S5",
                     "--no-progress"]) == 0  # fmt: skip
        capsys.readouterr()
    mkdir = Path.mkdir

    def read_only(self: Path, *a: object, **k: object) -> None:
        if str(self).startswith(str(ro)):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        mkdir(self, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "mkdir", read_only)
    names = {"PREP": prepared, "SEED": SEED / "22_Heart", "RUN": run, "RUN2": tmp_path / "run2"}
    argv = [str(names[a]) if a in names else a.replace("RO", str(ro)) for a in args]
    rc, err, _ = _run(capsys, argv)
    assert rc == 2 and len(err) == 2, err
    assert (
        err[0].startswith(f"sambench {args[0]}: error: {ro}") and "read-only file system" in err[0]
    )


# ------------------------------------------------------------------------------ help, warnings
def _all_commands() -> list[object]:
    root = command()
    return [root, *root.commands.values()]


def test_every_option_has_help_and_a_word_metavar() -> None:
    python_types = {"INTEGER", "TEXT", "FLOAT RANGE", "INTEGER RANGE", "BOOLEAN", "<path>"}
    for cmd in _all_commands():
        for p in cmd.params:  # type: ignore[attr-defined]
            if p.param_type_name != "option":
                continue
            assert p.help, f"{cmd.name} {p.opts}: no help text"  # type: ignore[attr-defined]
            if not p.is_flag:
                assert p.metavar and p.metavar.isupper() and p.metavar not in python_types, (
                    cmd.name,  # type: ignore[attr-defined]
                    p.opts,
                    p.metavar,
                )


def test_everything_thresholds_exist_on_evaluate() -> None:
    evaluate = command().commands["evaluate"]
    opts = {o for p in evaluate.params for o in p.opts}
    for name in (
        "--pred-iou-thresh",
        "--stability-score-thresh",
        "--box-nms-thresh",
        "--min-mask-region-area",
    ):
        assert name in opts


def test_thresholds_reach_the_run_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, prepared: Path
) -> None:
    from sambench.engine.config import RunConfig

    out = tmp_path / "run"
    args = ["evaluate", str(prepared), "-o", str(out), "-m", "grabcut", "-s", "S5", "--no-progress"]
    extra = ["--pred-iou-thresh", "0.5", "--stability-score-thresh", "0.8"]
    extra += ["--box-nms-thresh", "0.6", "--min-mask-region-area", "7"]
    assert _run(capsys, [*args, *extra])[0] == 0
    cfg = RunConfig.load(out)
    s = cfg.amg_settings()
    assert (s.pred_iou_thresh, s.stability_score_thresh) == (0.5, 0.8)
    assert (s.box_nms_thresh, s.min_mask_region_area) == (0.6, 7)


def test_timm_future_warnings_are_silenced_only(capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        main(["--version"])
        warnings.warn_explicit(
            "old import path", FutureWarning, "x.py", 1, module="timm.models.layers"
        )
        warnings.warn_explicit("our own", FutureWarning, "y.py", 1, module="sambench.x")
    assert [str(w.message) for w in seen] == ["our own"]


def test_third_party_warnings_are_logged_not_shown_unless_debug(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """MONAI's deprecation warning (raised inside compute_surface_dice on every evaluate-3d
    volume) is logged at DEBUG level, not printed; sambench's own warnings are still shown;
    --debug shows everything."""
    import logging

    import sambench.cli.errors as E

    monai_file = "/venv/lib/python3.11/site-packages/monai/metrics/utils.py"
    ours_file = str(ROOT / "src" / "sambench" / "volumes" / "evaluate.py")

    def run(cmd: object, args: list[str], *, debug: bool) -> int:
        warnings.warn_explicit(
            "get_mask_edges:always_return_as_numpy: Argument `always_return_as_numpy` has been "
            "deprecated since version 1.5.0.", FutureWarning, monai_file, 246,
            module="monai.metrics.utils",
        )  # fmt: skip
        warnings.warn_explicit("our own", UserWarning, ours_file, 1, module="sambench.x")
        return 0

    monkeypatch.setattr(E, "run_reporting_errors", run)
    for debug, shown in ((False, ["our own"]), (True, ["always_return_as_numpy", "our own"])):
        caplog.clear()
        with caplog.at_level(logging.DEBUG, "sambench.warnings"):
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                assert main(["report", "x", *(["--debug"] if debug else [])]) == 0
        got = [str(w.message) for w in seen]
        assert len(got) == len(shown) and all(s in g for s, g in zip(shown, got, strict=True))
        assert ("always_return_as_numpy" in caplog.text) is not debug
        assert "our own" not in caplog.text


OTHER_COMMANDS = [
    (["prepare", "SRC", "-o", "OUT", "--workers", "0"], "--workers"),
    (["finetune", "SRC", "-o", "OUT", "--epochs", "0"], "--epochs"),
    (["finetune", "SRC", "-o", "OUT", "--batch-size", "0"], "--batch-size"),
    (["finetune", "SRC", "-o", "OUT", "--train-fraction", "1.5"], "--train-fraction"),
    (["finetune", "SRC", "-o", "OUT", "--device", "bogus"], "--device"),
    (["finetune-compare", "OUT", "--max-images", "0"], "--max-images"),
    (["demo", "-o", "OUT", "--max-images", "0"], "--max-images"),
    (["report", "OUT", "--seed", "-1"], "--seed"),
]


@pytest.mark.parametrize(
    ("args", "option"), OTHER_COMMANDS, ids=[" ".join(a[0][:1] + a[0][-2:]) for a in OTHER_COMMANDS]
)
def test_other_commands_check_ranges_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, prepared: Path, args: list[str], option: str
) -> None:
    out = tmp_path / "out"
    argv = [str(prepared) if a == "SRC" else str(out) if a == "OUT" else a for a in args]
    rc, err, _ = _run(capsys, argv)
    assert rc == 2 and len(err) == 2 and option in err[0], err
    assert not out.exists()


@pytest.mark.slow  # a fresh interpreter importing torch and timm: ~10-30 s on 2 shared cores
def test_real_process_stderr_is_two_lines_without_timm_warnings(
    tmp_path: Path, prepared: Path
) -> None:
    """In a fresh interpreter (default warning filters): building LiteMedSAM imports timm, whose
    deprecated-import FutureWarnings must not reach the terminal; the error is two lines."""
    import os
    import subprocess
    import sys

    ckpt = tmp_path / "lite.pth"
    ckpt.write_text("hello\n")
    code = "import sys; from sambench.cli import main; sys.exit(main())"
    args = ["evaluate", str(prepared), "-o", str(tmp_path / "r"), "--checkpoint", str(ckpt)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONWARN")}
    env["PYTHONPATH"] = str(ROOT / "src")
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 2, proc.stderr
    assert "--checkpoint" in lines[0] and "a text file" in lines[0]
    assert "FutureWarning" not in proc.stderr
