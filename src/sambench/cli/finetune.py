"""The ``sambench finetune`` and ``sambench finetune-compare`` commands (registered in
:mod:`sambench.cli.app`): thin layers over :mod:`sambench.finetune`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sambench.cli import options as O


def _share(split: str, purpose: str) -> Any:
    """``--train-fraction``, ``--val-fraction``, ``--test-fraction``: a split's share of cases."""
    return typer.Option(
        f"--{split}-fraction", min=0.0, max=1.0, help=f"Share of cases for {purpose}."
    )


def finetune(
    prepared: O.Prepared,
    out: Annotated[Path, O.out("Fine-tuning run folder.")],
    model: Annotated[str, O.model("Base model (registry name).")] = "litemedsam",
    checkpoint: Annotated[Path | None, O.checkpoint("Checkpoint file (SAM/MedSAM).")] = None,
    model_config: O.ModelConfig = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Training epochs.")] = 20,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate (> 0).")] = 1e-4,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Objects per optimizer step.")
    ] = 2,
    weight_decay: Annotated[
        float, typer.Option("--weight-decay", min=0.0, help="AdamW weight decay (>= 0).")
    ] = 0.0,
    box_jitter: Annotated[
        int,
        typer.Option("--box-jitter", min=0, help="Random outward box shift, 0..N px (0 = off)."),
    ] = 0,
    train_fraction: Annotated[float, _share("train", "training")] = 0.6,
    val_fraction: Annotated[float, _share("val", "validation")] = 0.2,
    test_fraction: Annotated[float, _share("test", "testing")] = 0.2,
    split_seed: Annotated[
        int, typer.Option("--split-seed", min=0, help="Seed of the case split.")
    ] = 0,
    patience: Annotated[
        int | None,
        typer.Option("--patience", min=1, help="Early stopping patience (epochs)."),
    ] = None,
    seed: Annotated[int, O.seed("Seed of training.")] = 0,
    datasets: Annotated[str | None, O.datasets()] = None,
    max_objects: Annotated[
        int | None, typer.Option("--max-objects", min=1, help="At most N objects per split.")
    ] = None,
    cache_dir: O.CacheDir = None,
    device: O.Device = None,
    compare: Annotated[
        bool,
        typer.Option("--compare/--no-compare", help="Then compare base vs fine-tuned on test."),
    ] = True,
    progress: O.Progress = True,
    wait_lock: O.WaitLock = False,
) -> None:
    """Fine-tune the mask decoder with box prompts (SPEC 8); resumable; then compare on test cases."""
    from sambench.analysis.summary import to_markdown
    from sambench.engine.config import check_device
    from sambench.finetune.compare import compare_before_after, readable
    from sambench.finetune.config import FinetuneConfig
    from sambench.finetune.train import finetune as run_finetune

    check_device(device)

    cfg = O.config_of(FinetuneConfig, locals(), datasets=O.comma_list(datasets))
    log = run_finetune(cfg, out, wait_lock=wait_lock)
    typer.echo(to_markdown(log))
    typer.echo(f"decoder -> {out / 'decoder.safetensors'}")
    if compare:
        table = compare_before_after(out, device=device, progress=progress)
        typer.echo(to_markdown(readable(table)))


def finetune_compare(
    run_dir: Annotated[Path, typer.Argument(help="A `sambench finetune` run folder.")],
    strategies: Annotated[str, O.strategies("Comma list, e.g. S5 or S2,S5.")] = "S5",
    max_images: Annotated[
        int | None, O.max_images("Compare on an evenly spaced subset of N.", at_least=1)
    ] = None,
    seed: Annotated[int, O.seed("Bootstrap seed.")] = 0,
    device: O.Device = None,
    progress: O.Progress = True,
) -> None:
    """Compare base and fine-tuned decoder on the held-out test cases (paper Fig. 18)."""
    from sambench.analysis.summary import to_markdown
    from sambench.engine.config import check_device
    from sambench.finetune.compare import compare_before_after, readable

    check_device(device)

    table = compare_before_after(
        run_dir,
        strategies=O.comma_list(strategies) or ("S5",),
        max_images=max_images,
        seed=seed,
        device=device,
        progress=progress,
    )
    typer.echo(to_markdown(readable(table)))
