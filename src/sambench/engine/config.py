"""The typed run configuration, saved as ``config.json`` next to a run's results.

A run folder holds the results of exactly one configuration: resuming with a configuration that
would change the numbers is refused (:func:`check_compatible`), so rows of two set-ups never mix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

from sambench.engine.amg_settings import AmgSettings, generator_defaults
from sambench.errors import OptionError
from sambench.prompts.names import ALL_STRATEGIES
from sambench.store import saved_config as SC
from sambench.version import __version__

CONFIG_NAME = "config.json"
MULTIMASK_CHOICES = ("auto", "on", "off")
EMPTY_CHOICES = ("worst", "nan")

# Fields that do not change any number in the results: they may differ when a run is resumed.
_RESUME_FREE = frozenset(
    {
        "cache_dir",
        "device",
        "progress",
        "sambench_version",
        "skip_bad",
        "points_per_batch",
        "environment",
    }
)


_AMG = AmgSettings()  # the official generator's defaults
_TUPLE_FIELDS = ("strategies", "datasets", "cases", "grid", "images")
DEVICE_PATTERN = re.compile(r"(cpu|mps|(cuda|xpu)(:\d+)?)")
"""Device strings accepted by ``--device``: cpu, mps, cuda, cuda:N, xpu, xpu:N."""


def _is_int(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def check_min_ints(checks: Iterable[tuple[str, object, int]], *, none_ok: bool = False) -> None:
    """Check ``(option, value, minimum)`` triples in order: raise :class:`OptionError` naming the
    option of the first value that is not an integer >= its minimum (a bool is not an integer;
    None passes when ``none_ok``)."""
    for option, v, lo in checks:
        if none_ok and v is None:
            continue
        if not (_is_int(v) and v >= lo):
            raise OptionError(option, f"expected an integer >= {lo}, got {v!r}")


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def check_device(device: str | None, option: str = "--device", *, available: bool = True) -> None:
    """Refuse a malformed or unavailable device string before any model is loaded.

    Accepts None (auto: cuda when available, else cpu) and :data:`DEVICE_PATTERN`; with
    ``available``, ``cuda``/``cuda:N`` must name a visible GPU and ``mps`` must be available.
    Raises :class:`OptionError`.
    """
    if device is None:
        return
    if not isinstance(device, str) or not DEVICE_PATTERN.fullmatch(device):
        raise OptionError(
            option, f"expected cpu, cuda, cuda:N, mps or xpu (default: auto), got {device!r}"
        )
    if not available:
        return
    if device.startswith("cuda"):
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= n:
            seen = "no CUDA GPU is visible" if n == 0 else f"{n} CUDA GPU(s) visible (0..{n - 1})"
            raise OptionError(option, f"{device!r} is not available: {seen}; use --device cpu")
    elif device == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise OptionError(option, "'mps' is not available on this machine; use --device cpu")


# File and folder fields: saved as absolute paths, so `sambench report RUN` works from anywhere.
PATH_FIELDS = ("prepared", "checkpoint", "model_config", "decoder", "cache_dir", "prompts_file")


class ConfigMismatchError(ValueError):
    """A results folder holds a run made with a different configuration."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines an evaluation run.

    ``strategies`` are strategy names (``"S1"``..``"S6"``, ``"interactive"``); ``prompt_rules`` is ``"paper"`` or
    ``"authors-code"``; ``multimask`` is ``"auto"`` (the model's own default), ``"on"`` or ``"off"``;
    ``empty`` is the empty-prediction convention of the distance metrics (``"worst"`` = image
    diagonal, flagged; ``"nan"``). ``images`` keeps only the given image ids (the manifests'
    ``image_id``; None = all), ``max_images`` then an evenly spaced subset of them.
    """

    prepared: str
    model: str = "litemedsam"
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    model_config: str | None = None  # --model-config: a sam2 Hydra YAML (SAM 2 family)
    model_config_sha256: str | None = None
    decoder: str | None = None
    decoder_sha256: str | None = None
    strategies: tuple[str, ...] = ("S2", "S3", "S4", "S5", "S6")
    prompt_rules: str = "paper"
    multimask: str = "auto"
    nsd_tolerance: float = 2.0
    nsd_tolerance_mm: float = 2.0  # NSD of the *_mm columns, mm (slices with a known spacing)
    empty: str = "worst"
    datasets: tuple[str, ...] | None = None
    cases: tuple[str, ...] | None = None  # "<dataset>/<case>" values; None = all cases
    # With a decoder: False scores only the test cases of the split.csv beside it (its
    # fine-tuning split), True every case, training cases included (--all-cases).
    all_cases: bool = False
    max_images: int | None = None
    # image ids to evaluate (None = all; Python API only: the demo's MNI152 subset + seed slices)
    images: tuple[str, ...] | None = None
    # S1 everything mode (official automatic-mask-generator defaults)
    grid: tuple[int, ...] = (32,)
    points_per_batch: int = _AMG.points_per_batch
    pred_iou_thresh: float | None = (
        None  # None: the model's generator default (SAM 0.88, SAM 2 0.8)
    )
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
    # concept strategies (T, T-para, T-neg, E; docs/text-prompts.md): a phrase table over the
    # defaults (--phrases) and the modality in the phrase ("left ventricle in MRI")
    phrases: str | None = None
    text_modality: bool = False
    cache_dir: str | None = None
    cache_dtype: str = "float32"  # "float16": embeddings rounded to fp16 (and cached so)
    device: str | None = None
    runtime: str = "torch"  # sambench.models.runtime.RUNTIMES
    precision: str = "fp32"  # the image encoder's: sambench.models.precision.PRECISIONS
    skip_bad: bool = False
    progress: bool = True
    sambench_version: str = field(default=__version__)
    # where the run ran (sambench.store.provenance.environment: package versions, device, CPU),
    # filled in when the run starts; not compared on resume, but a resume in another environment
    # is warned about (sambench.engine.plan.plan_run)
    environment: dict[str, object] | None = None

    def __post_init__(self) -> None:
        # resolved here, so config.json records the value the run used
        if self.pred_iou_thresh is None:
            default = generator_defaults(self.model).pred_iou_thresh
            object.__setattr__(self, "pred_iou_thresh", default)

    def amg_settings(self) -> AmgSettings:
        """S1's generator settings of this run (validated by :class:`AmgSettings`)."""
        assert self.pred_iou_thresh is not None  # resolved in __post_init__
        return AmgSettings(
            points_per_batch=self.points_per_batch,
            pred_iou_thresh=self.pred_iou_thresh,
            stability_score_thresh=self.stability_score_thresh,
            stability_score_offset=self.stability_score_offset,
            box_nms_thresh=self.box_nms_thresh,
            min_mask_region_area=self.min_mask_region_area,
        )

    def validate(self, *, check_device_available: bool = True) -> None:
        """Check every value before anything is written; raise :class:`OptionError` naming the
        command-line option (``--nsd-tolerance: expected ...``). The CLI and the Python API both
        call it before the run folder is touched, so an invalid value never reaches config.json.
        """
        from sambench.prompts.strategies import PROMPT_RULES

        if not self.strategies:
            raise OptionError("--strategies", f"give at least one of {', '.join(ALL_STRATEGIES)}")
        bad = [s for s in self.strategies if s not in ALL_STRATEGIES]
        if bad:
            raise OptionError(
                "--strategies", f"{bad[0]!r} is not one of {', '.join(ALL_STRATEGIES)}"
            )
        if len(set(self.strategies)) != len(self.strategies):
            raise OptionError("--strategies", f"duplicates in {list(self.strategies)}")
        if set(self.strategies) & {"T", "T-para", "T-neg"}:
            from sambench.prompts.phrases import PhraseTable

            PhraseTable.load(self.phrases)  # a bad or empty --phrases file: DataError naming it
        for option, value, allowed in (
            ("--prompt-rules", self.prompt_rules, PROMPT_RULES),
            ("--multimask", self.multimask, MULTIMASK_CHOICES),
            ("--empty", self.empty, EMPTY_CHOICES),
            ("--start-with", self.start_with, ("point", "box")),
            ("--cache-dtype", self.cache_dtype, ("float32", "float16")),
        ):
            if value not in allowed:
                raise OptionError(option, f"{value!r} is not one of {', '.join(allowed)}")
        if not (_is_number(self.nsd_tolerance) and self.nsd_tolerance >= 0):
            raise OptionError(
                "--nsd-tolerance",
                f"expected a finite number >= 0 (pixels), got {self.nsd_tolerance!r}",
            )
        if not (_is_number(self.nsd_tolerance_mm) and self.nsd_tolerance_mm >= 0):
            raise OptionError(
                "--nsd-tolerance-mm",
                f"expected a finite number >= 0 (mm), got {self.nsd_tolerance_mm!r}",
            )
        if self.max_images is not None and not (_is_int(self.max_images) and self.max_images >= 1):
            raise OptionError("--max-images", f"expected an integer >= 1, got {self.max_images!r}")
        if self.images is not None and (
            not self.images or not all(isinstance(i, str) and i for i in self.images)
        ):
            raise OptionError(
                "images", f"expected image ids (non-empty strings), got {self.images!r}"
            )
        if not self.grid or not all(_is_int(g) and g >= 1 for g in self.grid):
            raise OptionError(
                "--grid", f"expected integers >= 1 (points per side), got {list(self.grid)}"
            )
        ints = (
            ("--points-per-batch", self.points_per_batch, 1),
            ("--min-mask-region-area", self.min_mask_region_area, 0),
            ("--shift-repeats", self.shift_repeats, 1),
            ("--shift-seed", self.shift_seed, 0),
            ("--max-clicks", self.max_clicks, 1),
        )
        check_min_ints(ints)
        for option, x in (
            ("--pred-iou-thresh", self.pred_iou_thresh),
            ("--stability-score-thresh", self.stability_score_thresh),
            ("--box-nms-thresh", self.box_nms_thresh),
        ):
            if not (_is_number(x) and 0.0 <= float(x) <= 1.0):  # type: ignore[arg-type]
                raise OptionError(option, f"expected a number in [0, 1], got {x!r}")
        off = self.stability_score_offset
        if not (_is_number(off) and off > 0):
            raise OptionError(
                "stability_score_offset", f"expected a finite number > 0, got {off!r}"
            )
        if self.model_config is not None and not Path(self.model_config).is_file():
            raise OptionError("--model-config", f"{self.model_config}: no such file (a sam2 YAML)")
        if self.prompts_file is not None and not Path(self.prompts_file).is_file():
            raise OptionError(
                "--prompts", f"{self.prompts_file}: no such file; expected a prompts.jsonl"
            )
        check_device(self.device, available=check_device_available)
        if self.runtime not in ("torch", "openvino", "onnxruntime", "auto"):
            raise OptionError(
                "--runtime", f"{self.runtime!r} is not one of torch, openvino, onnxruntime, auto"
            )
        if self.precision != "fp32":  # the models' own checks (torch imported only then)
            from sambench.models.precision import check_precision
            from sambench.models.registry import check_model_precision, default_device

            check_precision(self.precision, self.device or default_device(), self.runtime)
            check_model_precision(self.model, self.precision)

    def to_json_dict(self) -> dict[str, object]:
        return SC.to_json_dict(self, _TUPLE_FIELDS)

    @classmethod
    def from_json_dict(cls, d: dict[str, object]) -> RunConfig:
        return SC.from_json_dict(cls, d, _TUPLE_FIELDS, CONFIG_NAME)

    def with_absolute_paths(self) -> RunConfig:
        """This config with :data:`PATH_FIELDS` absolute (against the current directory)."""
        return SC.with_absolute_paths(self, PATH_FIELDS)

    def save(self, run_dir: Path) -> Path:
        """Write ``run_dir/config.json`` with absolute paths (see :meth:`with_absolute_paths`)."""
        return SC.save_json(Path(run_dir) / CONFIG_NAME, self.with_absolute_paths().to_json_dict())

    @classmethod
    def load(cls, run_dir: Path) -> RunConfig:
        path = Path(run_dir) / CONFIG_NAME
        return cls.from_json_dict(
            SC.load_json(path, "run configuration (is this a sambench run folder?)")
        )


def check_compatible(old: RunConfig, new: RunConfig, run_dir: Path) -> None:
    """Raise :class:`ConfigMismatchError` listing every result-changing field that differs.

    Paths are compared absolute (a relative path in an older config.json is taken against the
    current directory), so ``data/prep`` and ``/home/me/data/prep`` are the same folder.
    """
    diffs = SC.differences(old.with_absolute_paths(), new.with_absolute_paths(), _RESUME_FREE)
    if diffs:
        raise ConfigMismatchError(
            f"{Path(run_dir) / CONFIG_NAME}: this results folder was made with another configuration; "
            "refusing to mix results. Use a new --out folder or the same settings. Differences: "
            + "; ".join(diffs)
        )
