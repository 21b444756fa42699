"""``--start-with class``: each dataset target's name -> the model's own class index (VISTA3D).

A class prompt (:class:`~sambench.models.volume_base.ClassInteraction`) names a class of the
model's label dictionary, not the dataset's label value, so the run needs a map from the
prepared targets' names (``object_name`` in ``volumes3d.parquet``) to class indices:

- ``options["class_map"]`` (the CLI's ``--class-map FILE``, read by :func:`read_class_map`):
  the user's ``{target name: class index}``; it comes first;
- then :data:`~sambench.models.vista3d_labels.DEFAULT_CLASS_MAP`: the common CT targets under
  the names VISTA3D's label dictionary gives them (cited there).

Names are compared by :func:`target_key`: lower case, ``_`` and ``-`` read as spaces, runs of
spaces as one (``Left_Kidney`` = ``left kidney``). A target that neither map names is refused
before the run starts (:func:`check_targets`: one line naming the target and ``--class-map``);
nothing is guessed (MSD's "cancer" is a liver, lung or pancreas tumour depending on the task).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sambench.errors import OptionError

CLASS_MAP_OPTION = "class_map"
"""The protocol option holding the user's map (``--class-map``)."""


def target_key(name: str) -> str:
    """The form names are compared in: lower case, ``_``/``-`` as spaces, spaces collapsed."""
    return " ".join(str(name).lower().replace("_", " ").replace("-", " ").split())


def class_map_problem(value: Any) -> str | None:
    """None when ``value`` is a valid class map ({target name: VISTA3D class index}), else
    what was expected (the first bad entry named)."""
    from sambench.models.vista3d_labels import check_class_label

    if not isinstance(value, Mapping) or not value:
        return "expected a non-empty mapping of target name to VISTA3D class index"
    seen: dict[str, str] = {}
    for name, label in value.items():
        if not isinstance(name, str) or not target_key(name):
            return f"expected target names as keys, got {name!r}"
        if isinstance(label, bool) or not isinstance(label, int):
            return f"{name!r}: expected an integer VISTA3D class index, got {label!r}"
        try:
            check_class_label(label)
        except OptionError as e:
            return f"{name!r}: {e.problem}"
        key = target_key(name)
        if key in seen:
            return f"{seen[key]!r} and {name!r} name the same target"
        seen[key] = name
    return None


def read_class_map(path: str | Path) -> dict[str, int]:
    """``{target name: class index}`` from a YAML or JSON file (``.json``: JSON, else YAML);
    OptionError naming ``--class-map`` and the file when it is missing, unreadable or not a
    valid map (:func:`class_map_problem`)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise OptionError("--class-map", f"{p} not found (expected a YAML or JSON file)")
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as e:
        what = " ".join(str(e).split())[:120]
        raise OptionError("--class-map", f"{p}: not readable as YAML or JSON ({what})") from None
    problem = class_map_problem(data)
    if problem is not None:
        raise OptionError("--class-map", f"{p}: {problem}")
    return {str(k): int(v) for k, v in data.items()}


def class_label(name: str, options: Mapping[str, Any] | None) -> int | None:
    """The class index of target ``name``: the user's map (``options["class_map"]``), then the
    default map; None when neither names it."""
    from sambench.models.vista3d_labels import DEFAULT_CLASS_MAP

    key = target_key(name)
    user = (options or {}).get(CLASS_MAP_OPTION) or {}
    for k, v in dict(user).items():
        if target_key(k) == key:
            return int(v)
    return DEFAULT_CLASS_MAP.get(key)


def missing_target(name: str, dataset: str = "") -> OptionError:
    """The one-line error for a target no map names."""
    where = f" of {dataset}" if dataset else ""
    return OptionError(
        "--class-map",
        f"no VISTA3D class for target {name!r}{where}; give a YAML/JSON file mapping it to a "
        "VISTA3D class index (e.g. 'liver: 1'; docs/models-3d.md lists them)",
    )


def check_targets(targets: Iterable[tuple[str, str]], options: Mapping[str, Any] | None) -> None:
    """OptionError (:func:`missing_target`) for the first (dataset, target name) pair with no
    class index."""
    for dataset, name in targets:
        if class_label(name, options) is None:
            raise missing_target(name, dataset)
