"""Split the cases of a prepared folder into train / validation / test (SPEC section 8).

The unit is the CASE (``dataset`` + ``case``: a volume or a patient), never the slice, so no slice
of a validation or test case is ever trained on. Each dataset is split on its own: its sorted case
ids are shuffled by ``np.random.default_rng([split_seed, <stable hash of the dataset name>])``, so a
dataset's split depends only on the seed and its own cases (adding another dataset changes nothing).

Counts per dataset with n cases: ``n_test = round(n * test_fraction)`` and
``n_val = round(n * val_fraction)``, each raised to 1 when its fraction is > 0; train gets the rest
and must keep at least one case, else a ValueError explains the counts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

# The split's file name, columns, hash and reader are the engine's: `evaluate --decoder` reads
# the split beside the decoder to score its test cases only (sambench.engine.decoder_split).
from sambench.engine.decoder_split import SPLIT_COLUMNS as SPLIT_COLUMNS
from sambench.engine.decoder_split import SPLIT_NAME as SPLIT_NAME
from sambench.engine.decoder_split import SPLITS as SPLITS
from sambench.engine.decoder_split import read_split as read_split
from sambench.engine.decoder_split import split_hash as split_hash
from sambench.store.atomic import write_atomic


class SplitError(ValueError):
    """The cases of a dataset cannot be split as asked."""


def _dataset_seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def split_counts(n: int, fractions: Sequence[float], dataset: str) -> tuple[int, int, int]:
    """(n_train, n_val, n_test) for ``n`` cases; SplitError when train or val would be empty."""
    f_train, f_val, f_test = (float(f) for f in fractions)
    if n < 2:
        raise SplitError(
            f"dataset {dataset!r}: has {n} case(s); splitting by case needs at least 2 "
            "(train and validation), 3 with a test fraction > 0. Leave it out with the datasets "
            "filter, or prepare it with one case per volume/patient"
        )
    n_test = max(1, round(n * f_test)) if f_test > 0 else 0
    n_val = max(1, round(n * f_val)) if f_val > 0 else 0
    n_train = n - n_val - n_test
    if n_train < 1:
        need = 1 + (1 if f_val > 0 else 0) + (1 if f_test > 0 else 0)
        raise SplitError(
            f"dataset {dataset!r}: {n} cases cannot give non-empty splits with fractions "
            f"train={f_train}, val={f_val}, test={f_test} (would be train={n_train}, val={n_val}, "
            f"test={n_test}); at least {need} cases are needed"
        )
    return n_train, n_val, n_test


def split_cases(
    manifest: pd.DataFrame,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    seed: int = 0,
) -> pd.DataFrame:
    """Assign every (dataset, case) of ``manifest`` to ``train``, ``val`` or ``test``.

    ``fractions`` = (train, val, test), summing to 1. Returns a DataFrame with columns
    ``dataset, case, split`` (str), one row per case, sorted by dataset then split order then
    case. Deterministic from ``seed``.
    """
    if len(fractions) != 3:
        raise ValueError(f"fractions: expected (train, val, test), got {list(fractions)}")
    for c in ("dataset", "case"):
        if c not in manifest.columns:
            raise ValueError(f"manifest: missing column {c!r}")
    if manifest.empty:
        raise SplitError("manifest: no objects to split")
    rows = []
    for dataset, g in manifest.groupby(manifest["dataset"].astype(str), sort=True):
        cases = sorted(g["case"].astype(str).unique())
        n_train, n_val, n_test = split_counts(len(cases), fractions, str(dataset))
        rng = np.random.default_rng([int(seed), _dataset_seed(str(dataset))])
        order = [cases[i] for i in rng.permutation(len(cases))]
        labels = ["test"] * n_test + ["val"] * n_val + ["train"] * n_train
        rows += [
            {"dataset": str(dataset), "case": c, "split": s}
            for c, s in zip(order, labels, strict=True)
        ]
    df = pd.DataFrame(rows, columns=list(SPLIT_COLUMNS))
    df["_o"] = df["split"].map({s: i for i, s in enumerate(SPLITS)})
    df = df.sort_values(["dataset", "_o", "case"], kind="stable").drop(columns="_o")
    return df.reset_index(drop=True)


def write_split(path: Path | str, split: pd.DataFrame) -> Path:
    """Write the split as CSV (``dataset, case, split``), atomically."""
    df = split.loc[:, list(SPLIT_COLUMNS)]
    return write_atomic(path, lambda p: df.to_csv(p, index=False), suffix=".csv")


def rows_of(manifest: pd.DataFrame, split: pd.DataFrame, which: str) -> pd.DataFrame:
    """The manifest rows whose (dataset, case) is in split ``which`` (train, val or test)."""
    if which not in SPLITS:
        raise ValueError(f"which: {which!r} is not one of {', '.join(SPLITS)}")
    sel = split[split["split"] == which]
    keys = set(zip(sel["dataset"].astype(str), sel["case"].astype(str), strict=True))
    mk = list(zip(manifest["dataset"].astype(str), manifest["case"].astype(str), strict=True))
    return manifest[[k in keys for k in mk]]


def case_keys(split: pd.DataFrame, which: str) -> tuple[str, ...]:
    """``"<dataset>/<case>"`` keys of split ``which`` (the engine's ``RunConfig.cases`` format)."""
    sel = split[split["split"] == which]
    return tuple(f"{d}/{c}" for d, c in zip(sel["dataset"], sel["case"], strict=True))
