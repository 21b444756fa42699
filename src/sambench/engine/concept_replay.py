"""Replaying the concept prompts of a prompt file (``--prompts``): T, T-para, T-neg and E.

A run's ``prompts.jsonl`` holds one record per concept prompt (:mod:`sambench.engine.prompt_file`):
``dataset``, ``image_id``, ``label_value``, ``object_name``, ``strategy``, ``text`` (or null),
``exemplar_boxes`` (Mx4 XYXY pixels, or null), ``exemplar_labels`` (M ints 1/0, or null),
``phrase_index`` (T-para), ``status``. Replaying it asks exactly these prompts: for T, T-para and
E the record of each object (by ``label_value``; every object x strategy of the run must have
one), for T-neg every record of the image (its ``object_name`` / ``label_value`` name the absent
target). Bad records raise :class:`~sambench.errors.DataError` naming the file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sambench.errors import DataError
from sambench.prompts.names import CONCEPT_STRATEGIES, TEXT_NEGATIVE
from sambench.prompts.types import ConceptPrompt


@dataclass(frozen=True)
class ConceptRecord:
    """One replayed concept prompt and where it came from."""

    strategy: str
    label_value: int
    object_name: str
    phrase_index: int
    prompt: ConceptPrompt
    line: int


class ConceptReplay:
    """The concept records of a prompt file, by (dataset, image_id)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as e:
            raise DataError(self.path, f"prompt file cannot be read ({e.strerror or e})") from None
        except UnicodeDecodeError:
            raise DataError(self.path, "not UTF-8 text; --prompts expects JSON Lines") from None
        self.by_image: dict[tuple[str, str], list[ConceptRecord]] = {}
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(self.path, f"line {n}: not JSON ({e.msg})") from None
            if not isinstance(rec, dict) or rec.get("strategy") not in CONCEPT_STRATEGIES:
                continue
            if rec.get("status", "ok") != "ok":
                continue
            key = (str(rec.get("dataset")), str(rec.get("image_id")))
            self.by_image.setdefault(key, []).append(self._record(n, rec))

    def _record(self, n: int, rec: dict[str, object]) -> ConceptRecord:
        where = f"line {n} ({rec.get('image_id')!r}, {rec.get('strategy')})"
        value = rec.get("label_value")
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataError(self.path, f"{where}: 'label_value' must be an integer, got {value!r}")
        text = rec.get("text")
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise DataError(self.path, f"{where}: 'text' must be a non-empty string or null")
        boxes = labels = None
        if rec.get("exemplar_boxes") is not None:
            try:
                boxes = np.asarray(rec["exemplar_boxes"], dtype=np.float64)
            except (TypeError, ValueError):
                boxes = np.zeros(0)
            if boxes.ndim != 2 or boxes.shape[1:] != (4,) or not len(boxes):
                raise DataError(
                    self.path, f"{where}: 'exemplar_boxes' must be [[x_min, y_min, x_max, y_max]]"
                )
            if not np.isfinite(boxes).all() or (boxes[:, :2] > boxes[:, 2:]).any():
                raise DataError(
                    self.path,
                    f"{where}: 'exemplar_boxes' must be finite, x_min <= x_max, y_min <= y_max",
                )
            if rec.get("exemplar_labels") is not None:
                labels = np.asarray(rec["exemplar_labels"])
                if labels.shape != (len(boxes),) or not np.isin(labels, (0, 1)).all():
                    raise DataError(
                        self.path, f"{where}: 'exemplar_labels' must be one 1 or 0 per box"
                    )
        if text is None and boxes is None:
            raise DataError(
                self.path, f"{where}: a concept record needs 'text' or 'exemplar_boxes'"
            )
        prompt = ConceptPrompt(
            text=text if isinstance(text, str) else None,
            boxes=boxes,
            box_labels=None if labels is None else labels.astype(np.int64),
        )
        phrase_index = rec.get("phrase_index", 0)
        return ConceptRecord(
            strategy=str(rec["strategy"]),
            label_value=int(value),
            object_name=str(rec.get("object_name", "")),
            phrase_index=int(phrase_index) if isinstance(phrase_index, int) else 0,
            prompt=prompt,
            line=n,
        )

    def records(
        self, dataset: str, image_id: str, strategies: tuple[str, ...]
    ) -> list[ConceptRecord]:
        """The image's records of ``strategies``, in file order."""
        return [r for r in self.by_image.get((dataset, image_id), []) if r.strategy in strategies]

    def missing(
        self, dataset: str, image_id: str, label_value: int, strategy: str
    ) -> DataError | None:
        """The error for an object x strategy (T, T-para, E) the file does not cover, or None."""
        if strategy == TEXT_NEGATIVE:
            return None
        for r in self.by_image.get((dataset, image_id), []):
            if r.strategy == strategy and r.label_value == label_value:
                return None
        return DataError(
            self.path,
            f"no prompt for dataset={dataset!r} image_id={image_id!r} label_value={label_value} "
            f"strategy={strategy!r} (--prompts must hold every object x strategy of the run)",
        )
