"""The prompts of a run as JSON Lines (``prompts.jsonl``), and replaying such a file.

Every finished run writes ``RUN_DIR/prompts.jsonl``: one JSON object per line, per object and
strategy (and per shift range and repeat for prompt-shift rows, per grid for S1, the final clicks
for interactive), with the keys

- ``dataset``, ``image_id``, ``label_value`` (int), ``object_name``, ``strategy``;
- ``points``: Nx2 list of (x, y) pixel coordinates of the prepared image (x = column, y = row;
  rounded to 0.01 px), or null; ``point_labels``: N ints, 1 positive / 0 negative, or null;
- ``box``: [x_min, y_min, x_max, y_max] inclusive pixel coordinates, or null;
- ``shift_range`` / ``shift_repeat``: present on prompt-shift records; ``grid``: on S1 records;
- ``status``: ``"ok"`` or ``"skipped"`` (no prompt could be built: ``skip_reason`` says why);
- concept strategies (T, T-para, T-neg, E; docs/text-prompts.md): ``text`` (the phrase, or
  null), ``exemplar_boxes`` (Mx4 XYXY, or null), ``exemplar_labels`` (M ints, 1 positive),
  ``phrase_index`` (T-para: which phrasing); a T-neg record's ``object_name``/``label_value``
  are the absent target's; ``--prompts`` replays them (:mod:`sambench.engine.concept_replay`).

``sambench evaluate --prompts FILE`` replays a file: the single-round strategies S2-S6 take their
prompts from the file's unshifted records (key: dataset, image_id, label_value, strategy) instead of
the strategy rules; a ``skipped`` record replays as a skipped row with its reason. Prompt-shift
repeats shift the replayed prompts with their usual seeded rule; S1 and interactive are not
replayed (their prompts depend on the model's own output). Every object x strategy of the run must
be in the file: the first missing key is an error naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from sambench.errors import DataError
from sambench.prompts.strategies import STRATEGIES, PromptError
from sambench.prompts.types import Prompts
from sambench.store.atomic import write_text_atomic

Key = tuple[str, str, int, str]  # dataset, image_id, label_value, strategy


def _present(row: dict[str, object], col: str) -> bool:
    v = row.get(col)
    return v is not None and not (isinstance(v, float) and np.isnan(v)) and v != ""


def _record(row: dict[str, object]) -> dict[str, object]:
    rec: dict[str, object] = {
        "dataset": str(row["dataset"]),
        "image_id": str(row["image_id"]),
        "label_value": int(row["label_value"]),  # type: ignore[call-overload]
        "object_name": str(row.get("object_name", "")),
        "strategy": str(row["strategy"]),
    }
    if _present(row, "shift_range"):
        rec["shift_range"] = str(row["shift_range"])
        rec["shift_repeat"] = int(row["shift_repeat"])  # type: ignore[call-overload]
    if _present(row, "grid"):
        rec["grid"] = int(row["grid"])  # type: ignore[call-overload]
    p = json.loads(str(row["prompt"])) if _present(row, "prompt") else {}
    rec["points"] = p.get("points")
    rec["point_labels"] = p.get("labels")
    rec["box"] = p.get("box")
    if "text" in p or "boxes" in p:  # a concept prompt (T, T-para, T-neg, E)
        rec["text"] = p.get("text")
        rec["exemplar_boxes"] = p.get("boxes")
        rec["exemplar_labels"] = p.get("box_labels")
        if _present(row, "phrase_index"):
            rec["phrase_index"] = int(row["phrase_index"])  # type: ignore[call-overload]
    rec["status"] = str(row.get("status", "ok"))
    if rec["status"] != "ok":
        rec["skip_reason"] = str(row.get("skip_reason", ""))
    return rec


def prompt_records(results: pd.DataFrame) -> list[dict[str, object]]:
    """One record per object and strategy (x shift range/repeat, x grid) of a run's rows; for
    interactive the prompt of the object's last row (all clicks made)."""
    if results.empty or "prompt" not in results.columns:
        return []
    df = results
    keys = [
        k
        for k in (
            "dataset",
            "image_id",
            "label_value",
            "strategy",
            "shift_range",
            "shift_repeat",
            "phrase_index",
        )
        if k in df.columns
    ]
    if "grid" in df.columns:
        keys.append("grid")
    inter = df["strategy"] == "interactive"
    picked = [df[~inter].drop_duplicates(subset=keys, keep="first")]
    if inter.any():
        clicks = df[inter]
        if "click_index" in clicks.columns:
            clicks = clicks.sort_values("click_index", kind="stable")
        subset = ["dataset", "image_id", "label_value"]
        picked.append(clicks.drop_duplicates(subset=subset, keep="last"))
    out = pd.concat(picked, ignore_index=True)
    return [_record({str(k): v for k, v in r.items()}) for r in out.to_dict("records")]


def write_prompts(path: Path, results: pd.DataFrame) -> Path:
    """Write :func:`prompt_records` of ``results`` as JSON Lines, atomically."""
    lines = (json.dumps(r, separators=(",", ":")) for r in prompt_records(results))
    return write_text_atomic(path, "".join(line + "\n" for line in lines))


def _array(
    path: Path, n: int, rec: dict[str, object], field: str, shape: tuple[int, ...]
) -> np.ndarray | None:
    v = rec.get(field)
    if v is None:
        return None
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        a = np.zeros(0)
    if a.ndim != len(shape) or any(s != -1 and s != d for s, d in zip(shape, a.shape, strict=True)):
        want = (
            "Nx2 [[x, y], ...]"
            if field == "points"
            else ("N ints" if field == "point_labels" else "[x_min, y_min, x_max, y_max]")
        )
        raise DataError(path, f"line {n}: {field!r} must be {want}, got {v!r}")
    return a


def _text(path: Path) -> str:
    """The file as UTF-8 text; DataErrors naming the file (and the line of a bad byte)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, "prompt file not found (--prompts)") from None
    except IsADirectoryError:
        raise DataError(path, "is a folder; --prompts expects a prompts.jsonl file") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(
            path,
            f"line {line}: not UTF-8 text (byte 0x{data[e.start]:02x}); --prompts expects JSON "
            "Lines in UTF-8, as sambench writes prompts.jsonl",
        ) from None


def _outside(p: Prompts, width: int, height: int) -> str | None:
    """What of ``p`` lies outside a ``width`` x ``height`` image (None: all inside)."""
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    if p.points is not None:
        xs.append(p.points[:, 0])
        ys.append(p.points[:, 1])
    if p.box is not None:
        xs.append(p.box[[0, 2]])
        ys.append(p.box[[1, 3]])
    x = np.concatenate(xs) if xs else np.zeros(0)
    y = np.concatenate(ys) if ys else np.zeros(0)
    if ((x < 0) | (x > width - 1)).any() or ((y < 0) | (y > height - 1)).any():
        what = "the box" if p.points is None else ("a point" if p.box is None else "a prompt")
        return (
            f"{what} is outside the image ({width}x{height} px: x in 0..{width - 1}, "
            f"y in 0..{height - 1})"
        )
    return None


class ReplayPrompts:
    """The unshifted S2-S6 records of a prompt file, by (dataset, image_id, label_value, strategy).

    Bad lines (not UTF-8, not JSON, missing keys, wrong shapes, non-finite coordinates, point
    labels other than 0/1, an inverted box) raise :class:`DataError` naming the file and line;
    a prompt outside its image (width and height from the manifest) when its object is
    evaluated, naming the file, line and image.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        text = _text(self.path)
        self.records: dict[Key, Prompts | PromptError] = {}
        self.lines: dict[Key, int] = {}
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(self.path, f"line {n}: not JSON ({e.msg})") from None
            if not isinstance(rec, dict):
                raise DataError(self.path, f"line {n}: expected a JSON object")
            missing = [
                k for k in ("dataset", "image_id", "label_value", "strategy") if k not in rec
            ]
            if missing:
                raise DataError(self.path, f"line {n}: missing keys {missing}")
            if rec["strategy"] not in STRATEGIES or rec.get("shift_range") is not None:
                continue  # S1, interactive and shifted records are not replayed
            value = rec["label_value"]
            if isinstance(value, bool) or not isinstance(value, int):
                raise DataError(
                    self.path, f"line {n}: 'label_value' must be an integer, got {value!r}"
                )
            key = (str(rec["dataset"]), str(rec["image_id"]), value, str(rec["strategy"]))
            self.records[key] = self._prompts(n, rec)
            self.lines[key] = n

    def _prompts(self, n: int, rec: dict[str, object]) -> Prompts | PromptError:
        if rec.get("status", "ok") != "ok":
            reason = str(rec.get("skip_reason", "")).removeprefix("prompt: ") or "replayed"
            return PromptError(reason, f"{self.path} line {n}: skipped")
        where = f"line {n} (image_id {rec['image_id']!r}, {rec['strategy']})"
        pts = _array(self.path, n, rec, "points", (-1, 2))
        lbl = _array(self.path, n, rec, "point_labels", (-1,))
        box = _array(self.path, n, rec, "box", (4,))
        for name, a in (("points", pts), ("box", box), ("point_labels", lbl)):
            if a is not None and not np.isfinite(a).all():
                raise DataError(self.path, f"{where}: {name!r} values must be finite numbers")
        if lbl is not None and not np.isin(lbl, (0, 1)).all():
            raise DataError(
                self.path, f"{where}: 'point_labels' must be 1 (positive) or 0 (negative)"
            )
        if box is not None and (box[0] > box[2] or box[1] > box[3]):
            raise DataError(
                self.path,
                f"{where}: 'box' {box.tolist()} is inverted; expected [x_min, y_min, x_max, y_max] "
                "with x_min <= x_max and y_min <= y_max",
            )
        try:
            return Prompts(
                points=pts, labels=None if lbl is None else lbl.astype(np.int64), box=box
            )
        except ValueError as e:
            raise DataError(self.path, f"{where}: {e}") from None

    def check_covers(self, keys: Iterable[Key]) -> None:
        """Raise :class:`DataError` naming the first key absent from the file."""
        for key in keys:
            if key not in self.records:
                d, i, v, s = key
                raise DataError(
                    self.path,
                    f"no prompt for dataset={d!r} image_id={i!r} label_value={v} strategy={s!r} "
                    "(--prompts must hold every object x strategy of the run)",
                )

    def prompts_for(
        self, row: dict[str, object], strategies: Iterable[str]
    ) -> dict[str, Prompts | PromptError]:
        """``{strategy: Prompts or PromptError}`` of one object (manifest ``row``); a prompt
        outside the image (``row``'s ``width`` and ``height``) is a :class:`DataError`."""
        out: dict[str, Prompts | PromptError] = {}
        base = (str(row["dataset"]), str(row["image_id"]), int(row["label_value"]))  # type: ignore[call-overload]
        width, height = row.get("width"), row.get("height")
        for s in strategies:
            key = (*base, s)
            self.check_covers([key])
            p = self.records[key]
            if isinstance(p, Prompts) and width is not None and height is not None:
                problem = _outside(p, int(width), int(height))  # type: ignore[call-overload]
                if problem is not None:
                    raise DataError(
                        self.path,
                        f"line {self.lines[key]} (image_id {base[1]!r}, {s}): {problem}; the "
                        "prompts must be pixel coordinates of the prepared image",
                    )
            out[s] = p
        return out
