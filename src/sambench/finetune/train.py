"""``sambench finetune``: train only the mask decoder, with box prompts, from cached embeddings.

Run folder ``out``:

- ``finetune.json``: the :class:`~sambench.finetune.config.FinetuneConfig` (resuming with other
  settings is refused);
- ``split.csv``: the case split (``dataset, case, split``);
- ``embeddings/``: the embedding cache (unless ``cache_dir`` points elsewhere);
- ``epochs.csv``: one row per epoch (``epoch, train_loss, val_loss, val_dice, is_best, seconds``;
  epoch 0 is the base decoder before training, for reference);
- ``decoder.safetensors``: the decoder of the best epoch (highest validation DICE), loadable by
  ``build_model(..., decoder=path)`` / ``RunConfig(decoder=path)``; ``decoder.json`` says how it
  was made;
- ``checkpoint.pt``: the last finished epoch (decoder, AdamW state, RNG states; tensors and plain
  values only, read with ``weights_only=True``), from which a killed run resumes.

Training: image encoder and prompt encoder frozen (``requires_grad=False``); AdamW on the mask
decoder's parameters; each step decodes a batch of box prompts (S5 tight box from the ground truth,
optionally jittered, see :func:`~sambench.finetune.data.jitter_box`) with ``multimask_output=False``
and minimizes MONAI ``DiceLoss(sigmoid=True, squared_pred=True)`` + ``BCEWithLogitsLoss`` on the
256x256 low-resolution logits against the ground truth mapped into model input space. The data
order of each epoch is a permutation from ``np.random.default_rng(seed)`` (state saved per epoch), so
a resumed run gives the same weights as an uninterrupted one.
"""

from __future__ import annotations

import io
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from sambench.data.manifest import load_manifest
from sambench.engine.cache import EmbeddingCache
from sambench.engine.plan import embedding_signature
from sambench.errors import OptionError
from sambench.finetune.config import FinetuneConfig, check_compatible
from sambench.finetune.data import (
    Batch,
    TrainObject,
    cache_embeddings,
    load_embedding,
    lowres_target,
    make_batch,
    model_input_size,
    object_mask,
    select_objects,
)
from sambench.finetune.split import (
    SPLIT_NAME,
    read_split,
    rows_of,
    split_cases,
    split_hash,
    write_split,
)
from sambench.metrics.overlap import dice
from sambench.models.registry import build_model
from sambench.models.sam2 import Sam2Adapter
from sambench.models.sam_family import SamFamilyAdapter
from sambench.prompts.strategies import bounding_box
from sambench.prompts.types import Prompts
from sambench.store.atomic import write_atomic, write_bytes_atomic, write_json_atomic
from sambench.store.runfolder import ensure_run_folder
from sambench.store.runlock import RunLock
from sambench.version import __version__

log = logging.getLogger(__name__)

DECODER_NAME = "decoder.safetensors"
DECODER_INFO_NAME = "decoder.json"
EPOCHS_NAME = "epochs.csv"
CHECKPOINT_NAME = "checkpoint.pt"
EPOCH_COLUMNS = ("epoch", "train_loss", "val_loss", "val_dice", "is_best", "seconds")

EpochCallback = Callable[[int, dict[str, Any]], None]


class DiceBCELoss(torch.nn.Module):
    """MedSAM's loss: MONAI ``DiceLoss(sigmoid=True, squared_pred=True, reduction="mean")`` +
    ``BCEWithLogitsLoss(reduction="mean")``, on Bx1xLxL logits and 0/1 float targets."""

    def __init__(self) -> None:
        super().__init__()
        from monai.losses import DiceLoss

        self.dice = DiceLoss(sigmoid=True, squared_pred=True, reduction="mean")
        self.bce = torch.nn.BCEWithLogitsLoss(reduction="mean")

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.dice(logits, targets) + self.bce(logits, targets)  # type: ignore[no-any-return]


def freeze_all_but_decoder(model: SamFamilyAdapter | Sam2Adapter) -> list[torch.nn.Parameter]:
    """Set ``requires_grad=False`` on everything but the mask decoder; return its parameters."""
    for p in model.model.parameters():
        p.requires_grad_(False)
    params = list(model.mask_decoder.parameters())
    for p in params:
        p.requires_grad_(True)
    return params


def train_step(
    model: SamFamilyAdapter | Sam2Adapter,
    optimizer: torch.optim.Optimizer,
    loss_fn: torch.nn.Module,
    batch: Batch,
) -> float:
    """One optimizer step on ``batch`` (box prompts, single-mask output); returns the loss."""
    logits, _ = model.decode_logits(
        batch.features, None, batch.boxes, None, False, extras=batch.extras
    )
    loss = loss_fn(logits, batch.targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def _prepare_split(config: FinetuneConfig, out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The manifest and the case split, checked against a saved split (nothing is written)."""
    manifest = load_manifest(Path(config.prepared), datasets=config.datasets)
    fractions = (config.train_fraction, config.val_fraction, config.test_fraction)
    split = split_cases(manifest, fractions, config.split_seed)
    path = out / SPLIT_NAME
    if path.exists():
        old = read_split(path)
        if split_hash(old) != split_hash(split):
            raise ValueError(
                f"{path}: the saved split differs from the one computed now (the prepared data "
                "changed?); refusing to resume. Use a new output folder"
            )
    return manifest, split


class FinetuneDivergedError(OptionError):
    """Training produced a non-finite loss or decoder weights (a learning rate too large)."""


def _check_finite(
    config: FinetuneConfig,
    epoch: int,
    what: str,
    value: float | None,
    model: SamFamilyAdapter | Sam2Adapter | None = None,
    best_epoch: int = 0,
) -> None:
    """Stop the run, saving nothing of ``epoch``, when ``value`` (a loss) or, given ``model``,
    a weight of its decoder is not finite."""
    bad = value is not None and not math.isfinite(value)
    if not bad and model is not None:
        bad = any(
            v.is_floating_point() and not bool(torch.isfinite(v).all())
            for v in model.decoder_state_dict().values()
        )
    if not bad:
        return
    kept = (
        f"{DECODER_NAME} keeps epoch {best_epoch}'s decoder"
        if best_epoch > 0
        else "no decoder was saved"
    )
    shown = "" if value is None else f" ({value})"
    raise FinetuneDivergedError(
        "--lr",
        f"training diverged in epoch {epoch}: {what} is not finite{shown} at learning rate "
        f"{config.lr:g}; nothing of epoch {epoch} was saved ({kept}); start again with a "
        "smaller --lr in a new --out folder",
    )


def _evaluate(
    model: SamFamilyAdapter | Sam2Adapter,
    cache: EmbeddingCache,
    prepared: Path,
    objects: Sequence[TrainObject],
    loss_fn: DiceBCELoss,
) -> tuple[float, float]:
    """(mean loss, mean DICE %) of the current decoder on ``objects`` with their tight boxes.

    DICE uses ``model.predict`` (thresholded masks at the original size); the loss uses the same
    call's low-resolution logits against the model-input-space target.
    """
    losses, dices = [], []
    s = model_input_size(model)
    model.mask_decoder.eval()
    for obj in objects:
        emb = load_embedding(cache, obj, model.device)
        mask = object_mask(prepared, obj)
        pred = model.predict(
            emb, [Prompts(box=bounding_box(mask).astype(np.float64))], multimask_output=False
        )
        dices.append(dice(pred.masks[0, 0], mask))
        target = lowres_target(mask, emb.input_size, s, model.mask_input_size)
        with torch.no_grad():
            loss = loss_fn(
                torch.as_tensor(pred.low_res_logits[:, :1]), torch.as_tensor(target[None, None])
            )
        losses.append(float(loss))
    return float(np.mean(losses)), float(np.mean(dices))


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes_atomic(path, buf.getvalue())


def _load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a bad file
        raise ValueError(
            f"{path}: unreadable fine-tuning checkpoint ({e}); delete it to restart"
        ) from e
    if not isinstance(state, dict) or "epoch" not in state:
        raise ValueError(f"{path}: not a sambench fine-tuning checkpoint (no 'epoch')")
    return state


def _write_epochs(path: Path, rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(EPOCH_COLUMNS))
    write_atomic(path, lambda p: df.to_csv(p, index=False), suffix=".csv")
    return df


def _decoder_info(
    config: FinetuneConfig,
    model: SamFamilyAdapter | Sam2Adapter,
    split: pd.DataFrame,
    best_epoch: int,
    best_val_dice: float,
    n_train: int,
    n_val: int,
) -> dict[str, Any]:
    return {
        "kind": "sambench fine-tuned mask decoder",
        "base_model": config.model,
        "checkpoint": config.checkpoint,
        "checkpoint_sha256": model.checkpoint_sha256,
        "model_config_sha256": getattr(model, "model_config_sha256", None),
        "decoder_sha256": model.decoder_sha256,
        "best_epoch": best_epoch,
        "best_val_dice": best_val_dice,
        "train_objects": n_train,
        "val_objects": n_val,
        "split_sha256": split_hash(split),
        "config": config.to_json_dict(),
        "sambench_version": __version__,
    }


def finetune(
    config: FinetuneConfig,
    out: Path | str,
    *,
    on_epoch_end: EpochCallback | None = None,
    wait_lock: bool = False,
) -> pd.DataFrame:
    """Fine-tune ``config.model``'s mask decoder on the train cases of ``config.prepared``.

    Writes the run folder ``out`` (see the module docstring) and returns the per-epoch log
    (``epochs.csv``). Re-running on the same folder resumes after the last finished epoch (a run
    that already finished returns its log); different settings raise
    :class:`~sambench.finetune.config.FinetuneConfigMismatchError`. ``on_epoch_end(epoch, row)``
    is called after each epoch's files are written. ``out`` must be new, empty or a fine-tuning
    run folder; the run holds the folder's lock (a second run refuses, or waits with ``wait_lock``).
    """
    config.validate()
    out = ensure_run_folder(out, "finetune")
    created = not out.exists()
    try:
        with RunLock(out, "finetune", wait=wait_lock):
            return _finetune_locked(config, out, on_epoch_end)
    except Exception:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a refused run leaves nothing behind
        raise


def _finetune_locked(
    config: FinetuneConfig, out: Path, on_epoch_end: EpochCallback | None
) -> pd.DataFrame:
    """:func:`finetune`'s body, run while holding the folder's lock."""
    out.mkdir(parents=True, exist_ok=True)
    if (out / "finetune.json").exists():
        check_compatible(FinetuneConfig.load(out), config, out)
    prepared = Path(config.prepared)
    manifest, split = _prepare_split(config, out)
    model = build_model(
        config.model, config.checkpoint, device=config.device, model_config=config.model_config
    )
    if not isinstance(model, SamFamilyAdapter | Sam2Adapter):
        raise OptionError(
            "--model",
            f"decoder fine-tuning supports the SAM family (litemedsam, sam_vit_*, "
            f"medsam_vit_b) and SAM 2 (sam2*, medsam2), not yet {config.model!r}",
        )
    # every setting is checked (data, split, model): only now is anything written
    config.save(out)
    write_split(out / SPLIT_NAME, split)
    params = freeze_all_but_decoder(model)
    cache_root = Path(config.cache_dir) if config.cache_dir else out / "embeddings"
    cache = EmbeddingCache(cache_root, embedding_signature(model))

    train_rows = select_objects(rows_of(manifest, split, "train"), config.max_objects)
    val_rows = select_objects(rows_of(manifest, split, "val"), config.max_objects)
    for name, part in (("train", train_rows), ("val", val_rows)):
        if part.empty:
            raise ValueError(f"{prepared}: the {name} split holds no objects")
    train = cache_embeddings(model, cache, prepared, train_rows, progress=config.progress)
    val = cache_embeddings(model, cache, prepared, val_rows, progress=config.progress)

    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = DiceBCELoss()
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    ckpt_path = out / CHECKPOINT_NAME
    rows: list[dict[str, Any]] = []
    start, best_epoch, best_dice, bad_epochs, stopped = 1, 0, -1.0, 0, False
    if ckpt_path.exists():
        state = _load_checkpoint(ckpt_path)
        model.mask_decoder.load_state_dict(state["decoder"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        rng.bit_generator.state = json.loads(state["np_rng"])
        start = int(state["epoch"]) + 1
        best_epoch, best_dice = int(state["best_epoch"]), float(state["best_val_dice"])
        bad_epochs, stopped = int(state["bad_epochs"]), bool(state["stopped"])
        old = pd.read_csv(out / EPOCHS_NAME)
        rows = [
            {str(k): v for k, v in r.items()} for r in old[old["epoch"] < start].to_dict("records")
        ]
        log.info("resuming %s after epoch %d", out, start - 1)
    else:
        t0 = time.perf_counter()
        val_loss, val_dice = _evaluate(model, cache, prepared, val, loss_fn)
        rows.append(
            dict(epoch=0, train_loss=float("nan"), val_loss=val_loss, val_dice=val_dice,
                 is_best=False, seconds=time.perf_counter() - t0)
        )  # fmt: skip
        _write_epochs(out / EPOCHS_NAME, rows)

    bar = tqdm(
        range(start, config.epochs + 1),
        desc=f"finetune {config.model}",
        unit="epoch",
        disable=not config.progress,
    )
    for epoch in bar:
        if stopped:
            break
        t0 = time.perf_counter()
        model.mask_decoder.train()
        order = rng.permutation(len(train))
        losses = []
        for s in range(0, len(order), config.batch_size):
            batch = make_batch(
                model,
                cache,
                prepared,
                [train[i] for i in order[s : s + config.batch_size]],
                box_jitter=config.box_jitter,
                rng=rng,
            )
            losses.append(train_step(model, optimizer, loss_fn, batch))
            _check_finite(config, epoch, "the training loss", losses[-1], best_epoch=best_epoch)
        _check_finite(config, epoch, "a decoder weight", None, model, best_epoch)
        val_loss, val_dice = _evaluate(model, cache, prepared, val, loss_fn)
        _check_finite(config, epoch, "the validation loss", val_loss, best_epoch=best_epoch)
        is_best = val_dice > best_dice
        if is_best:
            best_epoch, best_dice, bad_epochs = epoch, val_dice, 0
            model.save_decoder(out / DECODER_NAME)
            info = _decoder_info(config, model, split, epoch, val_dice, len(train), len(val))
            write_json_atomic(out / DECODER_INFO_NAME, info)
        else:
            bad_epochs += 1
        stopped = config.patience is not None and bad_epochs >= config.patience
        row = dict(
            epoch=epoch,
            train_loss=float(np.mean(losses)),
            val_loss=val_loss,
            val_dice=val_dice,
            is_best=is_best,
            seconds=time.perf_counter() - t0,
        )
        rows.append(row)
        _write_epochs(out / EPOCHS_NAME, rows)
        _save_checkpoint(
            ckpt_path,
            {
                "epoch": epoch,
                "decoder": model.decoder_state_dict(),
                "optimizer": optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "np_rng": json.dumps(rng.bit_generator.state),
                "best_epoch": best_epoch,
                "best_val_dice": best_dice,
                "bad_epochs": bad_epochs,
                "stopped": stopped,
            },
        )
        bar.set_postfix(loss=f"{row['train_loss']:.4f}", val_dice=f"{val_dice:.2f}")
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
        if stopped:
            log.info("early stopping after epoch %d (best %d)", epoch, best_epoch)
    bar.close()
    model.mask_decoder.eval()
    return pd.DataFrame(rows, columns=list(EPOCH_COLUMNS))
