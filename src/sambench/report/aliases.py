"""Target and modality names of ours matched to the paper's (Tables 2 and 3).

Names are compared after normalisation (:func:`norm`: lower case, only letters and digits kept), so
``LeftVentricularMyocardium`` = ``Left Ventricular Myocardium`` and ``GallBladder`` =
``Gall Bladder`` without an alias. Other names go through an alias table of ``ours -> paper``
rows: the package's defaults (``reference/aliases.csv``: ``WholeBrain -> Brain``,
``MRI -> T1W MRI``, ...) after the rows of a user file (:func:`load_alias_file`, CSV with columns
``ours,paper`` or YAML). What a row renames follows from its ``paper`` value: a paper target
(``WholeBrain,Brain``), a paper modality (``MRI,T1W MRI``) or a paper target-modality
(``Heart-MRI,Left Ventricle-Cine-MRI``); any other value is an error naming the file and row.

Resolution of our (target, modality): a target-modality alias first; else every candidate target
(ours itself, then its aliases in order) with every candidate modality (ours itself, then its
aliases in order), the first pair that is a row of the paper wins. So ``Brain-MRI`` becomes the
paper's ``Brain-T1W MRI`` (the paper has no plain-MRI brain row), while ``Prostate-MRI`` stays
``Prostate-MRI``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from sambench.errors import DataError
from sambench.report.paper import paper_table

DEFAULT_ALIASES = "aliases.csv"


def norm(name: object) -> str:
    """Lower case, letters and digits only: the form in which names are compared."""
    return re.sub(r"[^0-9a-z]+", "", str(name).lower())


@dataclass(frozen=True)
class PaperMatch:
    """The paper row matched to one of our target-modalities (the paper's spelling)."""

    target: str
    modality: str

    @property
    def label(self) -> str:
        return f"{self.target}-{self.modality}"


def _paper_rows() -> list[tuple[str, str]]:
    t2 = paper_table("table2_dice")
    return list(zip(t2["target"].astype(str), t2["modality"].astype(str), strict=True))


def _read_rows(path: Path) -> list[tuple[int, str, str]]:
    """(row number, ours, paper) of an alias file; CSV (header ours,paper) or YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DataError(path, f"alias file cannot be read ({e.strerror or e})") from None
    rows: list[tuple[int, str, str]] = []
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise DataError(path, f"not valid YAML ({e})") from None
        items: list[tuple[object, object]] = []
        if isinstance(data, dict):
            for k, v in data.items():
                items += [(k, x) for x in v] if isinstance(v, list) else [(k, v)]
        elif isinstance(data, list) and all(isinstance(d, dict) for d in data):
            items = [(d.get("ours"), d.get("paper")) for d in data]
        else:
            raise DataError(
                path, "expected a mapping 'ours: paper' or a list of {ours: ..., paper: ...}"
            )
        for i, (o, p) in enumerate(items, 1):
            if not isinstance(o, str | int) or not isinstance(p, str | int):
                raise DataError(
                    path, f"entry {i}: expected two names (ours, paper), got {o!r}, {p!r}"
                )
            rows.append((i, str(o), str(p)))
        return rows
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"ours", "paper"} <= {f.strip() for f in reader.fieldnames}:
        raise DataError(path, f"expected a CSV header 'ours,paper', got {reader.fieldnames}")
    for i, rec in enumerate(reader, 2):
        rec = {(k or "").strip(): (v or "").strip() for k, v in rec.items()}
        if not rec["ours"] or not rec["paper"]:
            raise DataError(path, f"line {i}: both 'ours' and 'paper' must be given")
        rows.append((i, rec["ours"], rec["paper"]))
    return rows


@dataclass
class AliasTable:
    """Our names -> the paper's; build with :meth:`default` or :meth:`with_file`."""

    targets: dict[str, list[str]] = field(default_factory=dict)
    modalities: dict[str, list[str]] = field(default_factory=dict)
    pairs: dict[str, tuple[str, str]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rows = _paper_rows()
        self._by_key = {(norm(t), norm(m)): (t, m) for t, m in self._rows}
        self._target = {norm(t): t for t, _ in self._rows}
        self._modality = {norm(m): m for _, m in self._rows}
        self._pair = {norm(f"{t}{m}"): (t, m) for t, m in self._rows}

    @classmethod
    def default(cls) -> AliasTable:
        table = cls()
        text = resources.files("sambench.report").joinpath("reference", DEFAULT_ALIASES)
        with resources.as_file(text) as path:
            table.add_file(Path(path))
        table.sources = ["defaults"]
        return table

    @classmethod
    def with_file(cls, path: Path | str | None) -> AliasTable:
        """The user's rows (tried first) followed by the defaults; ``None`` = defaults only."""
        if path is None:
            return cls.default()
        table = cls()
        table.add_file(Path(path))
        defaults = cls.default()
        for k, v in defaults.targets.items():
            table.targets.setdefault(k, []).extend(x for x in v if x not in table.targets[k])
        for k, v in defaults.modalities.items():
            table.modalities.setdefault(k, []).extend(x for x in v if x not in table.modalities[k])
        for k, p in defaults.pairs.items():
            table.pairs.setdefault(k, p)
        table.sources = [str(path), "defaults"]
        return table

    def add(self, ours: str, paper: str, where: str = "alias") -> None:
        """One row; ``paper`` must be a paper target, modality or target-modality."""
        key, p = norm(ours), norm(paper)
        if p in self._pair and p not in self._target and p not in self._modality:
            self.pairs[key] = self._pair[p]
        elif p in self._target:
            self.targets.setdefault(key, []).append(self._target[p])
        elif p in self._modality:
            self.modalities.setdefault(key, []).append(self._modality[p])
        else:
            raise ValueError(
                f"{where}: {paper!r} is not a target, modality or target-modality of the paper's "
                "Table 2 (e.g. 'Brain', 'T1W MRI', 'Left Ventricle-Cine-MRI')"
            )

    def add_file(self, path: Path) -> None:
        for i, ours, paper in _read_rows(path):
            try:
                self.add(ours, paper, where=f"row {i}")
            except ValueError as e:
                raise DataError(path, str(e)) from None

    def resolve(self, target: object, modality: object) -> PaperMatch | None:
        """The paper row for our (target, modality), or None (see the module docstring)."""
        t, m = norm(target), norm(modality)
        if t + m in self.pairs:
            return PaperMatch(*self.pairs[t + m])
        for tc in [t, *map(norm, self.targets.get(t, []))]:
            for mc in [m, *map(norm, self.modalities.get(m, []))]:
                if (tc, mc) in self._by_key:
                    return PaperMatch(*self._by_key[(tc, mc)])
        return None

    def paper_target(self, target: object) -> str | None:
        """The paper's spelling of our target (any modality), or None."""
        t = norm(target)
        for tc in [t, *map(norm, self.targets.get(t, []))]:
            if tc in self._target:
                return self._target[tc]
        return None

    def paper_modalities(self, target: object) -> list[str]:
        """The modalities for which the paper has our target (empty when it has none)."""
        pt = self.paper_target(target)
        return [m for t, m in self._rows if t == pt] if pt else []
