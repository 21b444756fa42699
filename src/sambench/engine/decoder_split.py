"""The fine-tuning split saved beside a decoder: ``evaluate --decoder`` scores its test cases only.

``sambench finetune`` writes, in its run folder, ``decoder.safetensors`` beside ``split.csv``
(``dataset, case, split`` with split ``train``, ``val`` or ``test``) and ``decoder.json`` (whose
``split_sha256`` identifies that split). Scoring the decoder on its own training or validation
cases would report how well it remembers them, so by default :func:`keep_test_cases` keeps only
the manifest rows of the split's **test** cases; ``RunConfig.all_cases`` (``--all-cases``) scores
every case instead, and the report says which was done.

The reader lives here, in the engine, because the engine applies it; :mod:`sambench.finetune.split`
(which writes the split) uses the same reader and names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from sambench.errors import DataError, OptionError

SPLIT_NAME = "split.csv"
DECODER_INFO_NAME = "decoder.json"
SPLITS = ("train", "val", "test")
SPLIT_COLUMNS = ("dataset", "case", "split")


def split_hash(split: pd.DataFrame) -> str:
    """SHA-256 (hex) of the split table's CSV text: identifies the split in ``decoder.json``."""
    text = split.loc[:, list(SPLIT_COLUMNS)].to_csv(index=False)
    return hashlib.sha256(text.encode()).hexdigest()


def read_split(path: Path | str) -> pd.DataFrame:
    """Read a split CSV; ValueError naming the file for missing columns or unknown split names."""
    p = Path(path)
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{p}: no split file (run `sambench finetune` first)") from None
    missing = [c for c in SPLIT_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{p}: missing columns {missing}; expected {list(SPLIT_COLUMNS)}")
    bad = sorted(set(df["split"]) - set(SPLITS))
    if bad:
        raise ValueError(f"{p}: unknown split values {bad}; expected one of {', '.join(SPLITS)}")
    return df.loc[:, list(SPLIT_COLUMNS)]


def decoder_split(decoder: Path | str) -> pd.DataFrame:
    """The split saved beside ``decoder`` (``split.csv`` in its folder), checked against the
    ``split_sha256`` of ``decoder.json`` when that file is there.

    DataError naming the file when the split is missing, unreadable or not the decoder's.
    """
    folder = Path(decoder).parent
    path = folder / SPLIT_NAME
    if not path.is_file():
        raise DataError(
            path,
            "missing: evaluate --decoder scores only the test cases of the decoder's fine-tuning "
            f"split, read from {SPLIT_NAME} beside the decoder (as `sambench finetune` writes "
            "it); put that file there, or pass --all-cases to score every case, training cases "
            "included",
        )
    try:
        split = read_split(path)
    except ValueError as e:
        raise DataError(path, str(e).removeprefix(f"{path}: ")) from None
    info_path = folder / DECODER_INFO_NAME
    if info_path.is_file():
        try:
            expected = json.loads(info_path.read_text()).get("split_sha256")
        except (OSError, ValueError, AttributeError) as e:
            raise DataError(info_path, f"cannot be read as JSON ({e})") from None
        if expected and expected != split_hash(split):
            raise DataError(
                path,
                f"is not the split the decoder was trained with (its SHA-256 differs from "
                f"{DECODER_INFO_NAME}'s split_sha256); restore the fine-tuning run's "
                f"{SPLIT_NAME}, or pass --all-cases",
            )
    return split


def keep_test_cases(
    manifest: pd.DataFrame, decoder: Path | str, asked: Sequence[str] | None = None
) -> pd.DataFrame:
    """The manifest rows of the test cases of ``decoder``'s split (see the module docstring).

    ``asked``: the ``--cases`` given, already applied to ``manifest``; one of them that is a
    training or validation case is an OptionError (it would be scored as a test). No test case
    in the manifest is a DataError naming the split file.
    """
    split = decoder_split(decoder)
    keys = split["dataset"].astype(str) + "/" + split["case"].astype(str)
    test = set(keys[split["split"] == "test"])
    seen = set(keys[split["split"] != "test"])
    if asked:
        trained = sorted(set(asked) & seen)
        if trained:
            raise OptionError(
                "--cases",
                f"{trained[:5]} are training or validation cases of the decoder's split "
                f"({Path(decoder).parent / SPLIT_NAME}); pass --all-cases to score them anyway",
            )
    mk = manifest["dataset"].astype(str) + "/" + manifest["case"].astype(str)
    kept = manifest[mk.isin(test)]
    if kept.empty:
        raise DataError(
            Path(decoder).parent / SPLIT_NAME,
            f"none of its {len(test)} test case(s) is in the prepared data evaluated; evaluate "
            "the prepared folder the decoder was fine-tuned on, or pass --all-cases",
        )
    return kept
