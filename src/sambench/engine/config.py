"""The typed run configuration, saved as ``config.json`` next to a run's results.

A run folder holds the results of exactly one configuration: resuming with a configuration that
would change the numbers is refused (:func:`check_compatible`), so rows of two set-ups never mix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sambench import __version__
from sambench.data import saved_config as SC
from sambench.engine.amg_settings import AmgSettings

CONFIG_NAME = "config.json"
SELECTIONS = ("oracle", "score")
MULTIMASK_CHOICES = ("auto", "on", "off")
EMPTY_CHOICES = ("worst", "nan")

# Fields that do not change any number in the results: they may differ when a run is resumed.
_RESUME_FREE = frozenset(
    {"cache_dir", "device", "progress", "sambench_version", "skip_bad", "points_per_batch"}
)


_AMG = AmgSettings()  # the official generator's defaults
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
    points_per_batch: int = _AMG.points_per_batch
    pred_iou_thresh: float = _AMG.pred_iou_thresh
    stability_score_thresh: float = _AMG.stability_score_thresh
    stability_score_offset: float = _AMG.stability_score_offset
    box_nms_thresh: float = _AMG.box_nms_thresh
    min_mask_region_area: int = _AMG.min_mask_region_area
    save_masks: bool = False
    # prompt-shift robustness (SPEC 6): adds shifted repeats of the single-round strategies
    shift: bool = False
    shift_repeats: int = 3
    shift_seed: int = 0
    # multi-round interactive segmentation (SPEC 7); start_with: "point" (S2 click) or "box" (S5)
    max_clicks: int = 20
    start_with: str = "point"
    # replay a prompt file (prompts.jsonl of a run) instead of the strategy rules for S2-S6
    prompts_file: str | None = None
    cache_dir: str | None = None
    device: str | None = None
    skip_bad: bool = False
    progress: bool = True
    sambench_version: str = field(default=__version__)

    def amg_settings(self) -> AmgSettings:
        """S1's generator settings of this run (validated by :class:`AmgSettings`)."""
        return AmgSettings(
            points_per_batch=self.points_per_batch,
            pred_iou_thresh=self.pred_iou_thresh,
            stability_score_thresh=self.stability_score_thresh,
            stability_score_offset=self.stability_score_offset,
            box_nms_thresh=self.box_nms_thresh,
            min_mask_region_area=self.min_mask_region_area,
        )

    def to_json_dict(self) -> dict[str, object]:
        return SC.to_json_dict(self, _TUPLE_FIELDS)

    @classmethod
    def from_json_dict(cls, d: dict[str, object]) -> RunConfig:
        return SC.from_json_dict(cls, d, _TUPLE_FIELDS, CONFIG_NAME)

    def save(self, run_dir: Path) -> Path:
        return SC.save_json(Path(run_dir) / CONFIG_NAME, self.to_json_dict())

    @classmethod
    def load(cls, run_dir: Path) -> RunConfig:
        path = Path(run_dir) / CONFIG_NAME
        return cls.from_json_dict(
            SC.load_json(path, "run configuration (is this a sambench run folder?)")
        )


def check_compatible(old: RunConfig, new: RunConfig, run_dir: Path) -> None:
    """Raise :class:`ConfigMismatchError` listing every result-changing field that differs."""
    diffs = SC.differences(old, new, _RESUME_FREE)
    if diffs:
        raise ConfigMismatchError(
            f"{Path(run_dir) / CONFIG_NAME}: this results folder was made with another configuration; "
            "refusing to mix results. Use a new --out folder or the same settings. Differences: "
            + "; ".join(diffs)
        )
