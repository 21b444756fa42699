"""Every setting of a run's config comes from the command line (or is set on purpose elsewhere).

``sambench.cli.options.config_of`` fills a config dataclass from a command's ``locals()`` by name and
silently leaves a field at its default when no option has its name. A renamed option would then be
dropped without a word; this test finds every ``config_of`` call in ``sambench.cli`` and checks that
each field of its class is a parameter of the command, an explicit keyword of the call, or one of
the fields no command sets (listed here with the reason).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

import sambench.cli

CLI = Path(sambench.cli.__file__).parent

# fields no command line sets, per config class, with the reason
_RECORDED = {
    "sambench_version": "the installed version, recorded by the config itself",
    "environment": "package versions and machine, recorded by sambench.store.provenance",
}
NOT_OPTIONS: dict[str, dict[str, str]] = {
    "RunConfig": {
        **_RECORDED,
        "checkpoint_sha256": "computed from --checkpoint when the run starts",
        "model_config_sha256": "computed from --model-config when the run starts",
        "decoder_sha256": "computed from --decoder when the run starts",
        "stability_score_offset": "the official generator's 1.0; the paper varies it nowhere",
        "images": "Python API only (the demo picks its slices); the CLI has --cases, --max-images",
    },
    "FinetuneConfig": {
        **_RECORDED,
        "optimizer": "AdamW, MedSAM's; one choice so far (library callers may set it)",
        "loss": "Dice + BCE, MedSAM's; one choice so far (library callers may set it)",
    },
}


def _calls() -> list[tuple[str, str, str, set[str]]]:
    """(module, function, config class name, keyword names) of each ``config_of`` call."""
    found = []
    for path in sorted(CLI.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef):
                continue
            for node in ast.walk(fn):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute | ast.Name)
                    and getattr(node.func, "attr", getattr(node.func, "id", None)) == "config_of"
                    and node.args
                    and isinstance(node.args[0], ast.Name)
                ):
                    kws = {k.arg for k in node.keywords if k.arg}
                    found.append((f"sambench.cli.{path.stem}", fn.name, node.args[0].id, kws))
    return found


CALLS = _calls()


def test_config_of_calls_found() -> None:
    # evaluate and finetune build their configs this way; if neither is found the parser broke
    assert {c[1] for c in CALLS} >= {"evaluate", "finetune"}


@pytest.mark.parametrize("module,function,cls_name,keywords", CALLS, ids=[c[1] for c in CALLS])
def test_every_config_field_has_an_option(
    module: str, function: str, cls_name: str, keywords: set[str]
) -> None:
    mod = importlib.import_module(module)
    command = getattr(mod, function)
    source = inspect.getsource(command)
    # the class is imported inside the command (lazy import); find it by name where it lives
    cls = None
    for line in source.splitlines():
        if f"import {cls_name}" in line and line.strip().startswith("from "):
            cls = getattr(importlib.import_module(line.split()[1]), cls_name)
    cls = cls or getattr(mod, cls_name)
    params = set(inspect.signature(command).parameters)
    fields = {f.name for f in dataclasses.fields(cls)}
    missing = fields - params - keywords - set(NOT_OPTIONS.get(cls_name, _RECORDED))
    assert not missing, f"{module}.{function}: {cls_name} fields no option sets: {sorted(missing)}"
