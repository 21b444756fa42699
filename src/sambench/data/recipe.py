"""Dataset recipes: one small YAML file per public release (``sambench/data/recipes/*.yaml``).

A recipe is a prepare config (``describe`` keys: images, labels, pairing, classes, exclude, plane,
...) plus what a user needs to know about the release: its name in the paper's Table 1, home page,
terms, citation, what to download, the release and recipe version it was written for, the
paper's exclusions with their criterion number (section 2.1), the slicing plane (section 2.2) and
counts the release or the paper gives. ``compile_recipe`` turns it into the config mapping that
``prepare_dataset(config=...)`` takes, so a recipe runs the same code as a hand-written config.

Recipe file (format 1)::

    format: 1
    name: KiTS19                  # the prepared dataset's name
    version: 1                    # this recipe's own version
    paper_name: KITS19            # as in the paper's Table 1
    release: ...                  # the release it was written for
    written_for: ...              # version / date of that release
    homepage: https://...
    terms: CC BY-NC-SA 4.0
    citation: ...
    download: ...                 # what to download and where to put it
    layout_source: ...            # where the layout and label values were checked
    folders: [kits19]             # folder names under a COSMOS root (case-insensitive)
    modality: CT                  # the images' modality (Table 2 spelling)
    modality_from_channels: false # true: each channel's name (MSD dataset.json) is its modality
    plane: axial                  # axial | sagittal | coronal | acquisition (coarsest axis)
    layout: {images: ..., labels: ..., pairing: ..., roi: ..., instance: ..., channel: ...}
    labels: {1: Kidney, 2: {name: Kidney Tumor}, 3: {name: Left Lung, target: Lung}}
    exclude: [{value: 3, name: Ureter, criterion: 1, note: ...}]
    expected: {cases: {value: 210, source: ...}}
    notes: ...
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sambench.errors import DataError

RECIPE_FORMAT = 1
PLANES = ("axial", "sagittal", "coronal", "acquisition")
LAYOUT_KEYS = (
    "images",
    "labels",
    "pairing",
    "roi",
    "instance",
    "instance_name",
    "channel",
    "label_threshold",
    "replace_nonfinite",
)
RECIPE_KEYS = (
    "format",
    "name",
    "version",
    "paper_name",
    "release",
    "written_for",
    "homepage",
    "terms",
    "citation",
    "download",
    "layout_source",
    "folders",
    "modality",
    "modality_from_channels",
    "plane",
    "layout",
    "labels",
    "exclude",
    "expected",
    "notes",
)
REQUIRED: tuple[str, ...] = (
    *("format", "name", "version", "paper_name", "release", "written_for", "homepage"),
    *("terms", "citation", "download", "layout_source", "modality", "plane", "layout"),
)
CRITERIA = {
    1: "tiny structure (e.g. cochlea, ureter)",
    2: "split into pieces by slicing (e.g. bowel, mandible, thyroid)",
    3: "scattered structure (e.g. breast cancer histology, airway tree, renal arteries/veins)",
}
"""The paper's exclusion criteria (section 2.1), by number."""


@dataclass(frozen=True)
class Exclusion:
    """A structure of the release the paper leaves out: source ``value``, ``name``, the
    ``criterion`` number (``CRITERIA``) and a note saying why it applies."""

    value: int
    name: str
    criterion: int
    note: str = ""


@dataclass(frozen=True)
class Recipe:
    """A validated recipe (see the module docstring). ``labels``: source value -> class name;
    ``targets``: class name -> the paper's target name (the class name when not given)."""

    name: str
    version: int
    meta: dict[str, str]
    folders: tuple[str, ...]
    modality: str
    modality_from_channels: bool
    plane: str
    layout: dict[str, Any]
    labels: dict[int, str]
    targets: dict[str, str]
    exclude: tuple[Exclusion, ...] = ()
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: str = ""

    @property
    def where(self) -> str:
        """How errors name this recipe: ``recipe KiTS19 v1 (kits19 master, 2019)``."""
        return f"recipe {self.name} v{self.version} ({self.meta['written_for']})"

    def target_names(self) -> list[str]:
        """The paper's target names this recipe gives, sorted, without duplicates."""
        return sorted(set(self.targets.values()))


def _fail(where: str, msg: str) -> DataError:
    return DataError(Path(where), msg)


def parse_recipe(data: Any, where: str) -> Recipe:
    """Validate a recipe mapping; ``DataError`` naming ``where`` and the field otherwise."""
    if not isinstance(data, dict):
        raise _fail(where, "expected a mapping (a recipe)")
    unknown = [k for k in data if k not in RECIPE_KEYS]
    if unknown:
        raise _fail(where, f"unknown key(s) {unknown}; allowed: {', '.join(RECIPE_KEYS)}")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise _fail(where, f"missing key(s) {', '.join(missing)}")
    if data["format"] != RECIPE_FORMAT:
        raise _fail(where, f"format: {data['format']!r}; this sambench reads format 1")
    if not isinstance(data["version"], int) or data["version"] < 1:
        raise _fail(where, f"version: expected an integer >= 1, got {data['version']!r}")
    if data["plane"] not in PLANES:
        raise _fail(where, f"plane: expected one of {', '.join(PLANES)}, got {data['plane']!r}")
    layout = data["layout"]
    if not isinstance(layout, dict) or "images" not in layout or "labels" not in layout:
        raise _fail(where, "layout: expected a mapping with images and labels")
    bad = [k for k in layout if k not in LAYOUT_KEYS]
    if bad:
        raise _fail(where, f"layout: unknown key(s) {bad}; allowed: {', '.join(LAYOUT_KEYS)}")
    labels: dict[int, str] = {}
    targets: dict[str, str] = {}
    raw_labels = data.get("labels") or {}
    if not layout.get("instance") and not raw_labels:
        raise _fail(where, "labels: expected value -> name (or layout.instance: true)")
    for k, v in raw_labels.items():
        if isinstance(k, bool) or not isinstance(k, int) or k == 0:
            raise _fail(where, f"labels: keys are non-zero source values, got {k!r}")
        name, target = (v, v) if isinstance(v, str) else (v.get("name"), v.get("target"))
        if not isinstance(name, str) or not name:
            raise _fail(where, f"labels.{k}: expected a name or {{name, target}}")
        if name in targets:
            raise _fail(where, f"labels.{k}: class name {name!r} given twice; add a target")
        labels[k] = name
        targets[name] = target or name
    if layout.get("instance"):
        inst = str(layout.get("instance_name", "instance"))
        targets[inst] = inst
    excl = []
    for i, e in enumerate(data.get("exclude") or []):
        if not isinstance(e, dict) or not {"value", "name", "criterion"} <= set(e):
            raise _fail(where, f"exclude[{i}]: expected {{value, name, criterion, note}}")
        if e["criterion"] not in CRITERIA:
            raise _fail(where, f"exclude[{i}].criterion: expected 1, 2 or 3 (paper section 2.1)")
        if e["value"] in labels:
            raise _fail(where, f"exclude[{i}]: value {e['value']} is also in labels")
        excl.append(
            Exclusion(int(e["value"]), str(e["name"]), int(e["criterion"]), str(e.get("note", "")))
        )
    expected = data.get("expected") or {}
    for k, v in expected.items():
        if not isinstance(v, dict) or "value" not in v or "source" not in v:
            raise _fail(where, f"expected.{k}: expected {{value, source}}")
    meta = {k: str(data.get(k, "")) for k in REQUIRED if k not in ("format", "layout", "plane")}
    meta["notes"] = str(data.get("notes", ""))
    meta.pop("name")
    meta.pop("version")
    meta.pop("modality")
    folders = tuple(str(f) for f in data.get("folders") or [data["name"]])
    return Recipe(
        name=str(data["name"]),
        version=int(data["version"]),
        meta=meta,
        folders=folders,
        modality=str(data["modality"]),
        modality_from_channels=bool(data.get("modality_from_channels", False)),
        plane=str(data["plane"]),
        layout=dict(layout),
        labels=labels,
        targets=targets,
        exclude=tuple(excl),
        expected=dict(expected),
        path=where,
    )


def load_recipe_file(path: Path) -> Recipe:
    """A recipe from a YAML file (a user's own, or one of the package's)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise DataError(Path(path), f"cannot be read as a recipe ({e})") from None
    return parse_recipe(data, str(path))


def builtin_recipes() -> dict[str, Recipe]:
    """The package's recipes by name (``sambench/data/recipes/*.yaml``), sorted by name."""
    import yaml

    out: dict[str, Recipe] = {}
    folder = resources.files("sambench.data.recipes")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            r = parse_recipe(yaml.safe_load(entry.read_text()), f"recipes/{entry.name}")
            if r.name in out:
                raise _fail(r.path, f"name {r.name!r} is also the name of {out[r.name].path}")
            out[r.name] = r
    return out


def get_recipe(name: str) -> Recipe:
    """A package recipe by name (case-insensitive) or a recipe file path; ``OptionError``-style
    ``DataError`` listing the names otherwise."""
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        return load_recipe_file(Path(name))
    recipes = builtin_recipes()
    for key, r in recipes.items():
        if key.lower() == name.lower():
            return r
    raise DataError(Path("--recipe"), f"no recipe {name!r}; known: {', '.join(recipes)}")


def compile_recipe(recipe: Recipe) -> dict[str, Any]:
    """The prepare config (``describe`` keys) the recipe stands for, plus ``_where`` naming the
    recipe in errors. Classes: class name -> source value; excluded structures -> ``exclude``;
    ``plane: acquisition`` leaves the plane to prepare's rule (the coarsest axis)."""
    config: dict[str, Any] = {"_where": recipe.where, "name": recipe.name}
    config.update({k: v for k, v in recipe.layout.items()})
    if not recipe.modality_from_channels:
        config["modality"] = recipe.modality
    if recipe.labels:
        config["classes"] = {n: v for v, n in sorted(recipe.labels.items())}
    if recipe.exclude:
        config["exclude"] = {e.name: e.value for e in recipe.exclude}
    if recipe.plane != "acquisition":
        config["plane"] = recipe.plane
    return config


def config_yaml(recipe: Recipe) -> str:
    """The compiled config as a YAML file a user can edit and pass to ``prepare --config``."""
    import yaml

    config = compile_recipe(recipe)
    config.pop("_where")
    head = (
        f"# prepare config compiled from {recipe.where}\n"
        f"# edit images/labels/pairing for another layout, then: sambench prepare SOURCE "
        f"--config this.yaml\n"
    )
    return head + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def _glob(source: Path, spec: str) -> list[Path]:
    base = source / spec
    if base.is_dir():
        return sorted(p for p in base.iterdir() if not p.name.startswith("."))
    return sorted(source.glob(spec))


def _listing(source: Path, limit: int = 8) -> str:
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in source.iterdir())
    except OSError:
        return "nothing (not a folder)"
    if not names:
        return "an empty folder"
    more = f", ... ({len(names)} entries)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def check_layout(recipe: Recipe, source: Path) -> tuple[int, int]:
    """(images, labels) found by the recipe's globs under ``source``; ``DataError`` naming the
    recipe, the expected and the found paths, and how to override with a config, when either is
    empty."""
    source = Path(source)
    found = []
    for what in ("images", "labels"):
        spec = recipe.layout[what]
        if isinstance(spec, dict):  # one file per structure: the first structure's files
            spec = next(iter(spec.values()))
        spec = str(spec)
        hits = _glob(source, spec)
        if not hits:
            raise DataError(
                source,
                f"{recipe.where}: expected {what} at '{spec}', found {_listing(source)}; for "
                f"another layout (a renamed folder, a newer release) write a config: sambench "
                f"datasets {recipe.name} --config > {recipe.name}.yaml, edit images/labels, then "
                f"sambench prepare SOURCE --config {recipe.name}.yaml",
            )
        found.append(len(hits))
    return found[0], found[1]


def matches_folder(recipe: Recipe, folder_name: str) -> bool:
    """True when a folder under a COSMOS root is named like one of the recipe's ``folders``
    (case-insensitive, shell wildcards allowed)."""
    name = folder_name.lower()
    return any(fnmatch.fnmatch(name, f.lower()) for f in recipe.folders)


def exclusion_criterion(recipe: Recipe) -> dict[str, int]:
    """Excluded structure name -> the paper's criterion number."""
    return {e.name: e.criterion for e in recipe.exclude}


RECIPE_JSON = "recipe.json"
"""What a recipe-prepared dataset folder records about its recipe (``OUT/<dataset>/recipe.json``)."""


def recipe_record(recipe: Recipe) -> dict[str, Any]:
    """The JSON record of a recipe kept beside a prepared dataset (read by the coverage report)."""
    return {
        "recipe": recipe.name,
        "version": recipe.version,
        "written_for": recipe.meta["written_for"],
        "paper_name": recipe.meta["paper_name"],
        "modality": recipe.modality,
        "plane": recipe.plane,
        "targets": recipe.targets,
        "exclude": [
            {"name": e.name, "value": e.value, "criterion": e.criterion} for e in recipe.exclude
        ],
    }


def prepare_recipe(source: Path, out: Path, recipe: Recipe | str, **kwargs: Any) -> Any:
    """``prepare_dataset`` with the recipe's compiled config, after ``check_layout``; writes
    ``OUT/<dataset>/recipe.json``. ``kwargs`` go to ``prepare_dataset`` (``workers``,
    ``skip_bad``, ``window``, ...; not ``config``). Returns its ``PrepareReport``."""
    from sambench.data.prepare import prepare_dataset
    from sambench.store.atomic import write_json_atomic

    if isinstance(recipe, str):
        recipe = get_recipe(recipe)
    if "config" in kwargs:
        raise ValueError("prepare_recipe: give a recipe or a config, not both")
    check_layout(recipe, Path(source))
    report = prepare_dataset(Path(source), Path(out), config=compile_recipe(recipe), **kwargs)
    write_json_atomic(Path(out) / recipe.name / RECIPE_JSON, recipe_record(recipe))
    return report


def recipes_table(recipes: dict[str, Recipe] | None = None) -> Any:
    """One row per recipe (a DataFrame): name, paper_name, modality, targets, plane, exclusions
    (``name (criterion N)``), terms, homepage, download, expected counts, recipe version."""
    import pandas as pd

    rows = []
    for r in (recipes if recipes is not None else builtin_recipes()).values():
        rows.append(
            {
                "name": r.name,
                "paper_name": r.meta["paper_name"],
                "modality": r.modality,
                "targets": ", ".join(r.target_names()),
                "plane": r.plane,
                "excluded": ", ".join(f"{e.name} (criterion {e.criterion})" for e in r.exclude),
                "terms": r.meta["terms"],
                "homepage": r.meta["homepage"],
                "download": r.meta["download"],
                "expected": ", ".join(f"{k} {v['value']:,}" for k, v in r.expected.items()),
                "version": f"v{r.version} for {r.meta['written_for']}",
            }
        )
    return pd.DataFrame(rows)


def describe_recipe(recipe: Recipe) -> str:
    """A recipe in words, for ``sambench datasets NAME``."""
    lines = [
        f"{recipe.name} (recipe v{recipe.version}), Table 1: {recipe.meta['paper_name']}",
        f"release: {recipe.meta['release']} ({recipe.meta['written_for']})",
        f"home page: {recipe.meta['homepage']}",
        f"terms: {recipe.meta['terms']}",
        f"cite: {recipe.meta['citation']}",
        f"download: {recipe.meta['download']}",
        f"modality: {recipe.modality}; plane: {recipe.plane}",
        f"images: {recipe.layout['images']}; labels: "
        + (
            f"one file per structure, e.g. {next(iter(recipe.layout['labels'].values()))}"
            if isinstance(recipe.layout["labels"], dict)
            else str(recipe.layout["labels"])
        ),
        "labels: "
        + (
            ", ".join(
                f"{v} {n}" + (f" -> {recipe.targets[n]}" if recipe.targets[n] != n else "")
                for v, n in sorted(recipe.labels.items())
            )
            or f"instances ({recipe.layout.get('instance_name', 'instance')})"
        ),
    ]
    for e in recipe.exclude:
        lines.append(
            f"excluded: {e.value} {e.name}, criterion {e.criterion} ({CRITERIA[e.criterion]})"
            + (f": {e.note}" if e.note else "")
        )
    for k, v in recipe.expected.items():
        lines.append(f"expected {k}: {v['value']:,} ({v['source']})")
    lines.append(f"layout checked against: {recipe.meta['layout_source']}")
    if recipe.meta["notes"]:
        lines.append(f"notes: {recipe.meta['notes']}")
    return "\n".join(lines)
