"""The training-data overlap ledger: which public datasets (recipe names) each registered model
was trained on, as its authors list them, with the source of each entry.

``sambench/data/ledger.yaml`` ships the entries checked so far; a user file of the same form
(``format: 1``, ``models: {model: {datasets: [...], source: ..., unmatched: [...], cases: {dataset:
[case, ...]}}}``) adds models or replaces a model's entry (``load_ledger(user_file)``). ``datasets``
are recipe / prepared dataset names; ``unmatched`` (optional) keeps, as the source spells them, the
training datasets the source lists that no recipe matches (shown, never flagged). ``cases`` (optional) narrows
a dataset to the case ids the authors published as their training split; without it every case of
the dataset counts as seen. ``flag_seen(results, ledger)`` marks result rows (columns ``model``,
``dataset``, optionally ``case``) on data the model saw in training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from sambench.errors import DataError


@dataclass(frozen=True)
class LedgerEntry:
    """One model's training data: ``datasets`` (recipe / prepared dataset names), ``source``
    (paper table or model card), ``cases`` (dataset -> training case ids, where published),
    ``unmatched`` (names the source lists that match no recipe, as the source spells them)."""

    model: str
    datasets: frozenset[str]
    source: str
    cases: dict[str, frozenset[str]] = field(default_factory=dict)
    note: str = ""
    unmatched: tuple[str, ...] = ()


def parse_ledger(data: Any, where: str) -> dict[str, LedgerEntry]:
    """Validate a ledger mapping; ``DataError`` naming ``where`` and the field otherwise."""
    if (
        not isinstance(data, dict)
        or data.get("format") != 1
        or not isinstance(data.get("models"), dict)
    ):
        raise DataError(
            Path(where), "expected a ledger {format: 1, models: {model: {datasets, source}}}"
        )
    out = {}
    for model, e in data["models"].items():
        if (
            not isinstance(e, dict)
            or not isinstance(e.get("source"), str)
            or not e["source"].strip()
        ):
            raise DataError(Path(where), f"models.{model}.source: every entry needs its source")
        ds = e.get("datasets") or []
        if not isinstance(ds, list) or not all(isinstance(d, str) for d in ds):
            raise DataError(
                Path(where), f"models.{model}.datasets: expected a list of dataset names"
            )
        um = e.get("unmatched") or []
        if not isinstance(um, list) or not all(isinstance(d, str) for d in um):
            raise DataError(
                Path(where), f"models.{model}.unmatched: expected a list of dataset names"
            )
        cases = {str(k): frozenset(map(str, v)) for k, v in (e.get("cases") or {}).items()}
        unknown = set(e) - {"datasets", "source", "cases", "note", "unmatched"}
        if unknown:
            raise DataError(Path(where), f"models.{model}: unknown key(s) {sorted(unknown)}")
        out[str(model)] = LedgerEntry(
            str(model), frozenset(ds), e["source"], cases, str(e.get("note", "")), tuple(um)
        )
    return out


def load_ledger(user_file: Path | None = None) -> dict[str, LedgerEntry]:
    """The package's ledger, updated by ``user_file`` (its models replace the package's)."""
    import yaml

    text = resources.files("sambench.data").joinpath("ledger.yaml").read_text()
    ledger = parse_ledger(yaml.safe_load(text), "sambench/data/ledger.yaml")
    if user_file is not None:
        try:
            data = yaml.safe_load(Path(user_file).read_text())
        except (OSError, yaml.YAMLError) as e:
            raise DataError(Path(user_file), f"cannot be read as a ledger ({e})") from None
        ledger.update(parse_ledger(data, str(user_file)))
    return ledger


def flag_seen(results: pd.DataFrame, ledger: dict[str, LedgerEntry]) -> pd.Series:
    """A boolean Series over ``results``: True where the row's model lists the row's dataset (and,
    where the ledger gives that dataset's training cases, the row's case) as training data."""

    def seen(model: object, dataset: object, case: object) -> bool:
        e = ledger.get(str(model))
        if e is None or str(dataset) not in e.datasets:
            return False
        cases = e.cases.get(str(dataset))
        return cases is None or str(case) in cases

    case = results["case"] if "case" in results else pd.Series("", index=results.index)
    return pd.Series(
        [seen(m, d, c) for m, d, c in zip(results["model"], results["dataset"], case, strict=True)],
        index=results.index,
        dtype=bool,
    )


def ledger_table(ledger: dict[str, LedgerEntry]) -> pd.DataFrame:
    """One row per model: model, training datasets (recipes, comma-separated, or none), the
    listed datasets no recipe matches (or empty), source, note (how names were matched; PARTIAL
    where the entry is known to be incomplete)."""
    return pd.DataFrame(
        [
            {
                "model": e.model,
                "datasets": ", ".join(sorted(e.datasets)) or "none",
                "not matched to a recipe": ", ".join(e.unmatched),
                "source": e.source,
                "note": e.note,
            }
            for e in ledger.values()
        ]
    )
