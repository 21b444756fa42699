"""JSON round trip and difference listing for the typed configurations saved next to results
(``RunConfig`` as ``config.json``, ``FinetuneConfig`` as ``finetune.json``).

A configuration is a frozen dataclass whose tuple fields are stored as JSON lists. Loading
refuses unknown fields (listing the known ones) and names the file in every error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from sambench.store.atomic import write_json_atomic

T = TypeVar("T")


def to_json_dict(config: Any, tuple_fields: Iterable[str]) -> dict[str, object]:
    """``asdict(config)`` with the tuple fields as lists (None stays None)."""
    d = asdict(config)
    for name in tuple_fields:
        v = d[name]
        d[name] = None if v is None else list(v)
    return d


def from_json_dict(cls: type[T], d: dict[str, object], tuple_fields: Iterable[str], file: str) -> T:
    """``cls(**d)`` with the tuple fields back as tuples; unknown fields are an error."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"{file}: unknown fields {unknown}; known: {sorted(known)}")
    kw = dict(d)
    for name in tuple_fields:
        if kw.get(name) is not None:
            kw[name] = tuple(kw[name])  # type: ignore[arg-type,call-overload]
    return cls(**kw)


def with_absolute_paths(config: T, path_fields: Iterable[str]) -> T:
    """``config`` with each path field (a ``str`` or None) made absolute against the current
    directory (``~`` expanded, symlinks kept), so a saved configuration works from any directory."""
    changes = {}
    for name in path_fields:
        v = getattr(config, name)
        if v is not None:
            changes[name] = os.path.abspath(os.path.expanduser(str(v)))
    return replace(config, **changes)  # type: ignore[type-var]


def save_json(path: Path, d: dict[str, object]) -> Path:
    write_json_atomic(path, d)
    return path


def load_json(path: Path, what: str) -> dict[str, object]:
    """The JSON object in ``path``; a missing file says it is not ``what``."""
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no {what}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(d).__name__}")
    return d


def differences(old: Any, new: Any, ignore: Iterable[str]) -> list[str]:
    """``"name: old (saved) != new (now)"`` for every field that differs, but those in ``ignore``."""
    skip = set(ignore)
    diffs = []
    for f in fields(old):
        if f.name in skip:
            continue
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a != b:
            diffs.append(f"{f.name}: {a!r} (saved) != {b!r} (now)")
    return diffs
