"""The typed run configuration, saved as ``config.json`` next to a run's results.

A run folder holds the results of exactly one configuration: resuming with a configuration that
would change the numbers is refused (:func:`check_compatible`), so rows of two set-ups never mix.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from sambench import __version__
from sambench.data.atomic import write_json_atomic

CONFIG_NAME = "config.json"
SELECTIONS = ("oracle", "score")
MULTIMASK_CHOICES = ("auto", "on", "off")
EMPTY_CHOICES = ("worst", "nan")

# Fields that do not change any number in the results: they may differ when a run is resumed.
_RESUME_FREE = frozenset(
    {"cache_dir", "device", "progress", "sambench_version", "skip_bad", "points_per_batch"}
)


_TUPLE_FIELDS = ("strategies", "datasets", "cases", "grid")


class ConfigMismatchError(ValueError):
    """A results folder holds a run made with a different configuration."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines an evaluation run.

    ``strategies`` are strategy names (``"S1"``..``"S6"``, ``"interactive"``); ``prompt_rules`` is ``"paper"`` or
    ``"authors-code"``; ``multimask`` is ``"auto"`` (the model's own default), ``"on"`` or ``"off"``;
    ``empty`` is the empty-prediction convention of the distance metrics (``"worst"`` = image
    diagonal, flagged; ``"nan"``). ``max_images`` keeps an evenly spaced subset of the images.
    """

    prepared: str
    model: str = "litemedsam"
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    decoder: str | None = None
    decoder_sha256: str | None = None
    strategies: tuple[str, ...] = ("S2", "S3", "S4", "S5", "S6")
    prompt_rules: str = "paper"
    multimask: str = "auto"
    nsd_tolerance: float = 2.0
    empty: str = "worst"
    datasets: tuple[str, ...] | None = None
    cases: tuple[str, ...] | None = None  # "<dataset>/<case>" values; None = all cases
    max_images: int | None = None
    # S1 everything mode (official automatic-mask-generator defaults)
    grid: tuple[int, ...] = (32,)
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    min_mask_region_area: int = 0
    save_masks: bool = False
    # prompt-shift robustness (SPEC 6): adds shifted repeats of the single-round strategies
    shift: bool = False
    shift_repeats: int = 3
    shift_seed: int = 0
    # multi-round interactive segmentation (SPEC 7)
    max_clicks: int = 20
    cache_dir: str | None = None
    device: str | None = None
    skip_bad: bool = False
    progress: bool = True
    sambench_version: str = field(default=__version__)

    def to_json_dict(self) -> dict[str, object]:
        d = asdict(self)
        for name in _TUPLE_FIELDS:
            v = d[name]
            d[name] = None if v is None else list(v)
        return d

    @classmethod
    def from_json_dict(cls, d: dict[str, object]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{CONFIG_NAME}: unknown fields {unknown}; known: {sorted(known)}")
        kw = dict(d)
        for name in _TUPLE_FIELDS:
            if kw.get(name) is not None:
                kw[name] = tuple(kw[name])  # type: ignore[arg-type]
        return cls(**kw)  # type: ignore[arg-type]

    def save(self, run_dir: Path) -> Path:
        path = Path(run_dir) / CONFIG_NAME
        write_json_atomic(path, self.to_json_dict())
        return path

    @classmethod
    def load(cls, run_dir: Path) -> RunConfig:
        path = Path(run_dir) / CONFIG_NAME
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{path}: no run configuration (is this a sambench run folder?)"
            ) from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
        return cls.from_json_dict(d)


def check_compatible(old: RunConfig, new: RunConfig, run_dir: Path) -> None:
    """Raise :class:`ConfigMismatchError` listing every result-changing field that differs."""
    diffs = []
    for f in fields(RunConfig):
        if f.name in _RESUME_FREE:
            continue
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a != b:
            diffs.append(f"{f.name}: {a!r} (saved) != {b!r} (now)")
    if diffs:
        raise ConfigMismatchError(
            f"{Path(run_dir) / CONFIG_NAME}: this results folder was made with another configuration; "
            "refusing to mix results. Use a new --out folder or the same settings. Differences: "
            + "; ".join(diffs)
        )
