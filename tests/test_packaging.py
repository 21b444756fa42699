"""Every third-party module the package imports is a runtime dependency in pyproject.toml, so
`pip install .` (the README's demo command, without the test extras) runs everything."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_modules() -> dict[str, str]:
    """Top-level module -> first file importing it, over src/sambench (absolute imports only)."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "src" / "sambench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for n in names:
                found.setdefault(n.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_imported_module_is_a_runtime_dependency() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_canon(re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0]) for d in meta["dependencies"]}
    dists = packages_distributions()
    missing = []
    for module, where in _imported_top_modules().items():
        if module == "sambench" or module in sys.stdlib_module_names:
            continue
        owners = {_canon(d) for d in dists.get(module, [])}
        assert owners, f"{where}: imports {module!r}, which no installed distribution provides"
        if not owners & declared:
            missing.append(f"{module} ({where}; from {sorted(owners)})")
    assert not missing, f"imported but not in [project] dependencies: {missing}"
