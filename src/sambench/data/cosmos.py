"""COSMOS from the datasets a user has downloaded: find which recipes' releases are under a root
folder, prepare each with its recipe, and count what came out beside the paper's COSMOS 1050K.

``find_releases(root)``: every (recipe, folder) whose folder name matches one of the recipe's
``folders`` (a release folder may serve two recipes, e.g. AMOS's CT and MRI cases).
``prepare_cosmos(root, out)``: prepares them one after the other (cases in parallel with
``workers``; resumable, since ``prepare_dataset`` skips finished cases), never stops on one broken
release (its row says why), and returns one row per recipe (found or missing) as a DataFrame.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from sambench.data.recipe import CRITERIA, Recipe, builtin_recipes, matches_folder, prepare_recipe
from sambench.errors import DataError

PAPER_TOTALS = {
    "images": 1_050_311,
    "masks": 6_033_198,
    "targets": 84,
    "target_modality_pairs": 125,
    "datasets": 53,
}
"""COSMOS 1050K as the paper gives it (Huang et al., MedIA 2024, section 2: 53 public datasets;
section 2.1: 84 targets, 125 target-modality pairs; section 2.2: 1,050,311 images, 1,003,809 of
them from 8,653 volumes and 46,502 2D images, 6,033,198 masks). Its Fig. 3(a) per-dataset image
counts are a bar chart whose values the text does not give, so none are copied here."""

COLUMNS = [
    "dataset",
    "paper_name",
    "status",
    "source",
    "reason",
    "modality",
    "cases",
    "images",
    "masks",
    "targets",
    "target_modality_pairs",
    "target_names",
    "excluded",
    "excluded_criterion_1",
    "excluded_criterion_2",
    "excluded_criterion_3",
    "expected",
    "recipe_version",
]


def find_releases(
    root: Path, recipes: dict[str, Recipe] | None = None
) -> list[tuple[Recipe, Path]]:
    """(recipe, release folder) for every folder directly under ``root`` that a recipe's
    ``folders`` name, sorted by recipe name."""
    recipes = recipes if recipes is not None else builtin_recipes()
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "not a folder; expected a folder holding the downloaded releases")
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for r in recipes.values():
            if matches_folder(r, folder.name):
                found.append((r, folder))
    return sorted(found, key=lambda rf: (rf[0].name, str(rf[1])))


def dataset_counts(out: Path, recipe: Recipe) -> dict[str, Any]:
    """Counts of a prepared dataset (``out/<name>/manifest.parquet`` and prepare_report.json):
    cases, images, masks (objects), the paper's targets and (target, modality) pairs, and the
    excluded structures by criterion."""
    ds = Path(out) / recipe.name
    m = pd.read_parquet(ds / "manifest.parquet")
    report = json.loads((ds / "prepare_report.json").read_text())
    targets = m["object_name"].map(lambda n: recipe.targets.get(n, n))
    pairs = set(zip(targets, m["modality"], strict=True))
    excluded: dict[str, int] = report.get("objects_excluded", {})
    crit = {e.name: e.criterion for e in recipe.exclude}
    by_crit = {c: sum(v for k, v in excluded.items() if crit.get(k) == c) for c in CRITERIA}
    return {
        "cases": int(m["case"].nunique()),
        "images": int(m["image_id"].nunique()),
        "masks": len(m),
        "targets": int(targets.nunique()),
        "target_modality_pairs": len(pairs),
        "target_names": ", ".join(sorted(set(targets))),
        "pairs": sorted(pairs),
        "excluded": ", ".join(
            f"{k} (criterion {crit.get(k, '?')}): {v:,}" for k, v in sorted(excluded.items())
        ),
        **{f"excluded_criterion_{c}": n for c, n in by_crit.items()},
    }


def prepare_cosmos(
    root: Path,
    out: Path,
    *,
    workers: int = 1,
    recipes: dict[str, Recipe] | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Prepare every recipe's release found under ``root`` into ``out``; one row per recipe
    (``COLUMNS``; status ``prepared``, ``broken`` with the reason, or ``missing``), sorted by
    status then name. The ``pairs`` of each prepared dataset are in ``df.attrs["pairs"]``.
    A release that fails (layout mismatch, bad data) is recorded, not raised; cases of a release
    that are bad are skipped and counted in its prepare report (``skip_bad``)."""
    recipes = recipes if recipes is not None else builtin_recipes()
    found = find_releases(root, recipes)
    rows: list[dict[str, Any]] = []
    all_pairs: dict[str, list[tuple[str, str]]] = {}
    seen = set()
    for recipe, folder in found:
        if recipe.name in seen:  # two folders for one recipe: the first one is used
            rows.append(_row(recipe, "broken", folder, f"a second folder for {recipe.name}"))
            continue
        seen.add(recipe.name)
        if echo is not None:
            echo(f"{recipe.name}: {folder}")
        try:
            prepare_recipe(folder, out, recipe, workers=workers, skip_bad=True, progress=progress)
            counts = dataset_counts(out, recipe)
        except (DataError, OSError) as e:
            reason = " ".join(str(e).split())
            reason = reason.removeprefix(f"{folder}: ")
            rows.append(_row(recipe, "broken", folder, reason))
            continue
        all_pairs[recipe.name] = counts.pop("pairs")
        rows.append(_row(recipe, "prepared", folder, "") | counts)
    for name, recipe in recipes.items():
        if name not in seen:
            rows.append(_row(recipe, "missing", None, ", ".join(recipe.folders)))
    df = pd.DataFrame(rows).reindex(columns=COLUMNS)
    order = {"prepared": 0, "broken": 1, "missing": 2}
    df = df.sort_values(
        ["status", "dataset"], key=lambda s: s.map(order) if s.name == "status" else s
    )
    df = df.reset_index(drop=True)
    df.attrs["pairs"] = all_pairs
    return df


def _row(recipe: Recipe, status: str, folder: Path | None, reason: str) -> dict[str, Any]:
    return {
        "dataset": recipe.name,
        "paper_name": recipe.meta["paper_name"],
        "status": status,
        "source": "" if folder is None else str(folder),
        "reason": reason,
        "modality": recipe.modality,
        "expected": ", ".join(f"{k} {v['value']:,}" for k, v in recipe.expected.items()),
        "recipe_version": recipe.version,
    }


def totals(df: pd.DataFrame) -> dict[str, int]:
    """Totals over the prepared datasets: datasets, images, masks, distinct targets and distinct
    (target, modality) pairs (a target in two datasets counts once), excluded by criterion."""
    ok = df[df["status"] == "prepared"]
    targets: set[str] = set()
    for names in ok["target_names"]:
        targets |= {t for t in str(names).split(", ") if t}
    pairs = {tuple(p) for ps in df.attrs.get("pairs", {}).values() for p in ps}
    out = {
        "datasets": len(ok),
        "images": int(ok["images"].sum()),
        "masks": int(ok["masks"].sum()),
        "targets": len(targets),
        "target_modality_pairs": len(pairs),
    }
    for c in CRITERIA:
        out[f"excluded_criterion_{c}"] = int(ok[f"excluded_criterion_{c}"].fillna(0).sum())
    return out
