"""The ``sambench finetune`` and ``sambench finetune-compare`` commands (registered in
:mod:`sambench.cli`): thin layers over :mod:`sambench.finetune`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def _split(value: str | None) -> tuple[str, ...] | None:
    """A comma list option as a tuple of its non-empty items (None stays None)."""
    if value is None:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip())


def finetune(
    prepared: Annotated[Path, typer.Argument(help="A `sambench prepare` output folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Fine-tuning run folder.")],
    model: Annotated[
        str, typer.Option("--model", "-m", metavar="MODEL", help="Base model (registry name).")
    ] = "litemedsam",
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", metavar="FILE", help="Checkpoint file (SAM/MedSAM)."),
    ] = None,
    model_config: Annotated[
        Path | None,
        typer.Option("--model-config", metavar="FILE", help="sam2 Hydra YAML (sam2*, medsam2)."),
    ] = None,
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
    train_fraction: Annotated[
        float,
        typer.Option("--train-fraction", min=0.0, max=1.0, help="Share of cases for training."),
    ] = 0.6,
    val_fraction: Annotated[
        float,
        typer.Option("--val-fraction", min=0.0, max=1.0, help="Share of cases for validation."),
    ] = 0.2,
    test_fraction: Annotated[
        float,
        typer.Option("--test-fraction", min=0.0, max=1.0, help="Share of cases for testing."),
    ] = 0.2,
    split_seed: Annotated[
        int, typer.Option("--split-seed", min=0, help="Seed of the case split.")
    ] = 0,
    patience: Annotated[
        int | None,
        typer.Option("--patience", min=1, help="Early stopping patience (epochs)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of training.")] = 0,
    datasets: Annotated[
        str | None, typer.Option("--datasets", help="Comma list of datasets (default: all).")
    ] = None,
    max_objects: Annotated[
        int | None, typer.Option("--max-objects", min=1, help="At most N objects per split.")
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", metavar="DIR", help="On-disk embedding cache folder."),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option("--device", metavar="DEVICE", help="cpu, cuda, cuda:N, mps (default: auto)."),
    ] = None,
    compare: Annotated[
        bool,
        typer.Option("--compare/--no-compare", help="Then compare base vs fine-tuned on test."),
    ] = True,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show progress bars.")
    ] = True,
    wait_lock: Annotated[
        bool,
        typer.Option(
            "--wait-lock", help="Wait while another run holds the --out folder (default: refuse)."
        ),
    ] = False,
) -> None:
    """Fine-tune the mask decoder with box prompts (SPEC 8); resumable; then compare on test cases."""
    from sambench.analysis.summary import to_markdown
    from sambench.engine.config import check_device
    from sambench.finetune.compare import compare_before_after, readable
    from sambench.finetune.config import FinetuneConfig
    from sambench.finetune.train import finetune as run_finetune

    check_device(device)

    cfg = FinetuneConfig(
        prepared=str(prepared),
        model=model,
        checkpoint=None if checkpoint is None else str(checkpoint),
        model_config=None if model_config is None else str(model_config),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        weight_decay=weight_decay,
        box_jitter=box_jitter,
        train_fraction=train_fraction,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        patience=patience,
        seed=seed,
        datasets=_split(datasets),
        max_objects=max_objects,
        cache_dir=None if cache_dir is None else str(cache_dir),
        device=device,
        progress=progress,
    )
    log = run_finetune(cfg, out, wait_lock=wait_lock)
    typer.echo(to_markdown(log))
    typer.echo(f"decoder -> {out / 'decoder.safetensors'}")
    if compare:
        table = compare_before_after(out, device=device, progress=progress)
        typer.echo(to_markdown(readable(table)))


def finetune_compare(
    run_dir: Annotated[Path, typer.Argument(help="A `sambench finetune` run folder.")],
    strategies: Annotated[
        str,
        typer.Option("--strategies", "-s", metavar="LIST", help="Comma list, e.g. S5 or S2,S5."),
    ] = "S5",
    max_images: Annotated[
        int | None,
        typer.Option("--max-images", min=1, help="Compare on an evenly spaced subset of N."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Bootstrap seed.")] = 0,
    device: Annotated[
        str | None,
        typer.Option("--device", metavar="DEVICE", help="cpu, cuda, cuda:N, mps (default: auto)."),
    ] = None,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show progress bars.")
    ] = True,
) -> None:
    """Compare base and fine-tuned decoder on the held-out test cases (paper Fig. 18)."""
    from sambench.analysis.summary import to_markdown
    from sambench.engine.config import check_device
    from sambench.finetune.compare import compare_before_after, readable

    check_device(device)

    table = compare_before_after(
        run_dir,
        strategies=_split(strategies) or ("S5",),
        max_images=max_images,
        seed=seed,
        device=device,
        progress=progress,
    )
    typer.echo(to_markdown(readable(table)))
