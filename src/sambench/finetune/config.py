"""The fine-tuning configuration, saved as ``finetune.json`` in the run folder.

A run folder holds one fine-tuning run: resuming with settings that would change the weights is
refused (:func:`check_compatible` lists every difference), so a decoder is never trained half with
one set-up and half with another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from sambench.errors import OptionError
from sambench.store import saved_config as SC
from sambench.version import __version__

FINETUNE_CONFIG_NAME = "finetune.json"
LOSSES = ("dice+bce",)
OPTIMIZERS = ("adamw",)

# Fields that do not change the trained weights: they may differ when a run is resumed.
_RESUME_FREE = frozenset({"cache_dir", "device", "progress", "sambench_version"})
_TUPLE_FIELDS = ("datasets",)
# Saved absolute (like RunConfig's), so the folder is usable from any directory.
PATH_FIELDS = ("prepared", "checkpoint", "model_config", "cache_dir")


class FinetuneConfigMismatchError(ValueError):
    """A fine-tuning run folder holds a run made with different settings."""


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything that defines a decoder fine-tuning run (SPEC section 8).

    - ``prepared``: a ``sambench prepare`` output folder; ``datasets`` restricts it by name.
    - ``model``/``checkpoint``: the base model (registry name; checkpoint file or None).
    - ``epochs``, ``lr``, ``batch_size``, ``weight_decay``: AdamW settings (the paper's 20 epochs,
      1e-4, batch 2; weight decay 0 by default).
    - ``loss``: ``"dice+bce"`` = MONAI ``DiceLoss(sigmoid=True, squared_pred=True)`` +
      ``torch.nn.BCEWithLogitsLoss``, both mean-reduced, on the 256x256 low-resolution logits
      (MedSAM's training loss).
    - ``box_jitter``: MedSAM's training augmentation: each box edge moves outward by a random
      0..``box_jitter`` pixels (original image pixels), clipped to the image. 0 = off.
    - ``train_fraction``/``val_fraction``/``test_fraction`` and ``split_seed``: the split of the
      cases (never of slices) of each dataset, see :mod:`sambench.finetune.split`.
    - ``patience``: stop after this many epochs without a better validation DICE (None = off).
    - ``seed``: data order, jitter and torch RNG.
    - ``max_objects``: use at most this many objects per split (the first ones in
      (dataset, image_id, label_value) order), for quick runs; None = all.
    - ``cache_dir``: the embedding cache (None = ``<out>/embeddings``).
    """

    prepared: str
    model: str = "litemedsam"
    checkpoint: str | None = None
    model_config: str | None = None  # --model-config: a sam2 Hydra YAML (SAM 2 family)
    epochs: int = 20
    lr: float = 1e-4
    batch_size: int = 2
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    loss: str = "dice+bce"
    box_jitter: int = 0
    train_fraction: float = 0.6
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    split_seed: int = 0
    patience: int | None = None
    seed: int = 0
    datasets: tuple[str, ...] | None = None
    max_objects: int | None = None
    cache_dir: str | None = None
    device: str | None = None
    progress: bool = True
    sambench_version: str = field(default=__version__)

    def validate(self) -> None:
        """Raise :class:`~sambench.errors.OptionError` naming the option (``--lr``, ...) of any
        out-of-range, non-finite or unknown setting; called before anything is written."""
        if self.epochs < 1:
            raise OptionError("--epochs", f"must be >= 1, got {self.epochs}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise OptionError("--lr", f"must be a finite number > 0, got {self.lr}")
        if self.batch_size < 1:
            raise OptionError("--batch-size", f"must be >= 1, got {self.batch_size}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise OptionError(
                "--weight-decay", f"must be a finite number >= 0, got {self.weight_decay}"
            )
        if self.loss not in LOSSES:
            raise OptionError("loss", f"{self.loss!r} is not one of {', '.join(LOSSES)}")
        if self.optimizer not in OPTIMIZERS:
            raise OptionError(
                "optimizer", f"{self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}"
            )
        if self.box_jitter < 0:
            raise OptionError("--box-jitter", f"must be >= 0 pixels, got {self.box_jitter}")
        if self.patience is not None and self.patience < 1:
            raise OptionError("--patience", f"must be >= 1 or None (off), got {self.patience}")
        if self.max_objects is not None and self.max_objects < 1:
            raise OptionError(
                "--max-objects", f"must be >= 1 or None (all), got {self.max_objects}"
            )
        for option, value in (("--seed", self.seed), ("--split-seed", self.split_seed)):
            if value < 0:
                raise OptionError(option, f"must be >= 0, got {value}")
        fr = (self.train_fraction, self.val_fraction, self.test_fraction)
        names = "--train-fraction, --val-fraction, --test-fraction"
        if not all(math.isfinite(f) and 0 <= f <= 1 for f in fr) or min(fr[:2]) <= 0:
            raise OptionError(
                names,
                "train and val must be > 0, test >= 0, each at most 1, got "
                f"{fr[0]}, {fr[1]}, {fr[2]}",
            )
        if abs(sum(fr) - 1.0) > 1e-6:
            raise OptionError(names, f"must sum to 1, got {sum(fr)}")

    def to_json_dict(self) -> dict[str, object]:
        return SC.to_json_dict(self, _TUPLE_FIELDS)

    @classmethod
    def from_json_dict(cls, d: dict[str, object]) -> FinetuneConfig:
        return SC.from_json_dict(cls, d, _TUPLE_FIELDS, FINETUNE_CONFIG_NAME)

    def save(self, run_dir: Path | str) -> Path:
        absolute = SC.with_absolute_paths(self, PATH_FIELDS)
        return SC.save_json(Path(run_dir) / FINETUNE_CONFIG_NAME, absolute.to_json_dict())

    @classmethod
    def load(cls, run_dir: Path | str) -> FinetuneConfig:
        path = Path(run_dir) / FINETUNE_CONFIG_NAME
        return cls.from_json_dict(
            SC.load_json(path, "fine-tuning configuration (is this a `sambench finetune` folder?)")
        )


def check_compatible(old: FinetuneConfig, new: FinetuneConfig, run_dir: Path | str) -> None:
    """Raise :class:`FinetuneConfigMismatchError` listing every weight-changing difference."""
    old, new = (SC.with_absolute_paths(c, PATH_FIELDS) for c in (old, new))
    diffs = SC.differences(old, new, _RESUME_FREE)
    if diffs:
        raise FinetuneConfigMismatchError(
            f"{Path(run_dir) / FINETUNE_CONFIG_NAME}: this fine-tuning folder was made with other "
            "settings; refusing to resume. Use a new output folder or the same settings. "
            "Differences: " + "; ".join(diffs)
        )
