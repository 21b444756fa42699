"""The phrase table: a target's name -> the noun phrase(s) a text-promptable model is asked.

Rows of ``target,phrase,instances`` (CSV, ``#`` comments allowed). The package's default table
(``phrases.csv`` beside this module) covers the paper's targets (its Table 2; CamelCase names read
as words, with anatomical overrides and a few synonyms each) and the seed samples' targets. A
user's file (``--phrases FILE``, same columns) replaces the rows of every target it lists and adds
new targets; the other targets keep the defaults (the way the report's alias table extends its
defaults).

- Targets are matched after :func:`norm` (lower case, letters and digits only), so
  ``LeftVentricle`` = ``Left Ventricle`` = ``left_ventricle``.
- A target's first row is its phrase (strategy ``T``); all its rows are its phrasings
  (``T-para``, paraphrase robustness), in file order, plus the first phrase with / without the
  modality (:meth:`PhraseTable.paraphrases`).
- ``instances``: ``yes`` for instance-type targets (cells, nuclei, lesions, polyps, tumours,
  nodules, masses), which are also scored with the instance metrics
  (:mod:`sambench.metrics.instances`); ``no`` otherwise. A target's value is its first row's.
- ``with_modality``: the phrase gets the image's modality: ``"left ventricle in MRI"``.

Errors name the file and row (:class:`~sambench.errors.DataError`): an unreadable file, missing
columns, an empty phrase, an ``instances`` value other than yes/no, a table with no rows. A target
with no row is an :class:`~sambench.errors.OptionError` naming ``--phrases``
(:meth:`PhraseTable.phrases`).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from sambench.errors import DataError, OptionError

DEFAULT_FILE = "phrases.csv"
COLUMNS = ("target", "phrase", "instances")


def norm(name: object) -> str:
    """Lower case, letters and digits only: the form in which target names are compared."""
    return re.sub(r"[^0-9a-z]+", "", str(name).lower())


def camel_to_words(name: str) -> str:
    """``LeftVentricularMyocardium`` -> ``left ventricular myocardium`` (also ``_``/``-``)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", str(name))
    return " ".join(spaced.replace("_", " ").replace("-", " ").lower().split())


@dataclass(frozen=True)
class TargetPhrases:
    """One target's phrasings (the first is its phrase) and whether it is instance-type."""

    target: str
    phrases: tuple[str, ...]
    instances: bool


def _parse(text: str, source: Path | str) -> dict[str, TargetPhrases]:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    have = tuple(c.strip() for c in (reader.fieldnames or ()))
    missing = [c for c in ("target", "phrase") if c not in have]
    if missing:
        raise DataError(
            source,
            f"phrase table: missing column(s) {', '.join(missing)}; expected a CSV header "
            "target,phrase[,instances]",
        )
    out: dict[str, TargetPhrases] = {}
    for i, row in enumerate(reader, 2):
        row = {str(k).strip(): (v or "").strip() for k, v in row.items() if k is not None}
        target, phrase = row.get("target", ""), " ".join(row.get("phrase", "").split())
        if not target:
            raise DataError(source, f"phrase table row {i}: empty target")
        if not phrase:
            raise DataError(source, f"phrase table row {i}: target {target!r} has an empty phrase")
        flag = row.get("instances", "").lower() or "no"
        if flag not in ("yes", "no"):
            raise DataError(source, f"phrase table row {i}: instances {flag!r}; expected yes or no")
        key = norm(target)
        if key in out:
            old = out[key]
            if phrase not in old.phrases:
                out[key] = TargetPhrases(old.target, (*old.phrases, phrase), old.instances)
        else:
            out[key] = TargetPhrases(target, (phrase,), flag == "yes")
    if not out:
        raise DataError(source, "phrase table has no rows; expected target,phrase[,instances]")
    return out


def read_phrase_file(path: str | Path) -> dict[str, TargetPhrases]:
    """A user's phrase table (CSV ``target,phrase[,instances]``); errors name the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise DataError(p, f"phrase table cannot be read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise DataError(p, "phrase table is not UTF-8 text") from None
    return _parse(text, p)


def default_rows() -> dict[str, TargetPhrases]:
    text = resources.files("sambench.prompts").joinpath(DEFAULT_FILE).read_text(encoding="utf-8")
    return _parse(text, DEFAULT_FILE)


@dataclass(frozen=True)
class PhraseTable:
    """Targets -> phrasings: the defaults, with a user's file (``source``) over them."""

    rows: dict[str, TargetPhrases]
    source: str = DEFAULT_FILE
    with_modality: bool = False
    user_targets: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def load(cls, path: str | Path | None = None, *, with_modality: bool = False) -> PhraseTable:
        """The default table, extended by ``path`` (its targets replace the defaults')."""
        rows = default_rows()
        user: dict[str, TargetPhrases] = {}
        if path is not None:
            user = read_phrase_file(path)
            rows.update(user)
        return cls(
            rows,
            str(path) if path is not None else DEFAULT_FILE,
            with_modality,
            frozenset(user),
        )

    def has(self, target: str) -> bool:
        return norm(target) in self.rows

    def entry(self, target: str) -> TargetPhrases:
        found = self.rows.get(norm(target))
        if found is None:
            raise OptionError(
                "--phrases",
                f"no phrase for target {target!r}; add a row '{target},"
                f"{camel_to_words(target)},no' (target,phrase,instances) to a --phrases CSV file",
            )
        return found

    def phrases(self, target: str, modality: str | None = None) -> tuple[str, ...]:
        """Every phrasing of ``target`` (the first is its phrase), with `` in <modality>`` when
        the table says so. Raises OptionError naming ``--phrases`` for an unknown target."""
        base = self.entry(target).phrases
        if self.with_modality and modality:
            return tuple(f"{p} in {modality}" for p in base)
        return base

    def paraphrases(self, target: str, modality: str | None = None) -> tuple[str, ...]:
        """T-para's phrasings: every row of the target as :meth:`phrases` gives them, then its
        first phrase in the other form (without the modality when the table adds it, with it
        otherwise; only when the image's modality is known), duplicates dropped."""
        out = list(self.phrases(target, modality))
        if modality:
            first = self.entry(target).phrases[0]
            other = first if self.with_modality else f"{first} in {modality}"
            if other not in out:
                out.append(other)
        return tuple(out)

    def phrase(self, target: str, modality: str | None = None) -> str:
        return self.phrases(target, modality)[0]

    def is_instance_type(self, target: str) -> bool:
        return self.entry(target).instances
