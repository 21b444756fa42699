"""``sambench evaluate``: a model on a prepared dataset under prompt strategies (a thin layer
over :class:`sambench.engine.config.RunConfig` and the executor, :mod:`sambench.cli.executor`).
Registered in :mod:`sambench.cli.app`."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any

import typer

from sambench.cli import executor as X
from sambench.cli import options as O
from sambench.engine.amg_settings import AmgSettings
from sambench.errors import OptionError

_AMG = AmgSettings()  # the official automatic mask generator's defaults (S1)
_MODEL_HELP = "Registry name (docs/models.md) or package.module:builder."

# The help's panels (``evaluate --help`` groups its options; docs/evaluate.md explains them).
INPUT, MODELS, PROMPTS, S1, METRICS, PERF, OUTPUT = (
    "Input",
    "Model",
    "Prompts",
    "Everything mode (S1)",
    "Metrics",
    "Performance",
    "Output",
)

# The automatic mask generator's options (S1): flag -> (metavar, help).
_S1_OPTIONS = {
    "--points-per-batch": ("N", "Point prompts decoded per batch."),
    "--pred-iou-thresh": ("FLOAT", "Keep masks with predicted IoU > this (default: the model's)."),
    "--stability-score-thresh": ("FLOAT", "Keep masks with stability score >= this."),
    "--box-nms-thresh": ("FLOAT", "Box IoU above which NMS drops a mask."),
    "--min-mask-region-area": ("PIXELS", "Remove smaller holes and islands (0 = off)."),
}


def _in(panel: str, option: Any, short: str | None = None) -> Any:
    """A copy of ``option`` (a ``typer.Option`` or an ``Annotated`` alias of one, as in
    :mod:`sambench.cli.options`) shown under ``panel`` in ``--help``, with the help text
    ``short`` when given; the shared option itself is left as it is for the other commands."""
    info = option.__metadata__[0] if hasattr(option, "__metadata__") else option
    c = copy.copy(info)
    c.rich_help_panel = panel
    if short is not None:
        c.help = short
    return c


def _s1(flag: str) -> Any:
    """The ``typer.Option`` of the S1 generator option ``flag`` (:data:`_S1_OPTIONS`)."""
    metavar, text = _S1_OPTIONS[flag]
    return typer.Option(flag, metavar=metavar, help=text, rich_help_panel=S1)


def _int_list(value: str, option: str) -> tuple[int, ...]:
    """``"8,16,32"`` -> (8, 16, 32); anything else is an :class:`OptionError` naming ``option``."""
    parts = O.comma_list(value) or ()
    try:
        return tuple(int(v) for v in parts)
    except ValueError:
        raise OptionError(
            option, f"expected comma-separated integers, e.g. 8,16,32; got {value!r}"
        ) from None


def evaluate(
    prepared: O.Prepared,
    *,
    datasets: Annotated[
        str | None, _in(INPUT, O.datasets(metavar="LIST"), "Comma list (default: all).")
    ] = None,
    cases: Annotated[str | None, _in(INPUT, O.cases("Comma list of <dataset>/<case>."))] = None,
    max_images: Annotated[
        int | None, _in(INPUT, O.max_images("An evenly spaced subset of N.", metavar="N"))
    ] = None,
    skip_bad: Annotated[bool, _in(INPUT, O.skip_bad("Unreadable images: skipped rows."))] = False,
    model: Annotated[str, _in(MODELS, O.model(_MODEL_HELP))] = "litemedsam",
    checkpoint: Annotated[
        Path | None, _in(MODELS, O.checkpoint("Weights (SAM, MedSAM, SAM 2)."))
    ] = None,
    model_config: Annotated[Path | None, _in(MODELS, O.ModelConfig, "sam2 Hydra YAML.")] = None,
    decoder: Annotated[
        Path | None,
        typer.Option(
            "--decoder", metavar="FILE", help="Fine-tuned mask decoder.", rich_help_panel=MODELS
        ),
    ] = None,
    all_cases: Annotated[
        bool,
        typer.Option(
            "--all-cases", help="With --decoder: its training cases too.", rich_help_panel=MODELS
        ),
    ] = False,
    device: Annotated[str | None, _in(MODELS, O.device("cpu, cuda, cuda:N, mps."))] = None,
    strategies: Annotated[
        str,
        _in(
            PROMPTS,
            O.strategies("S1 (everything), S2..S6, interactive; sam3: T, T-para, T-neg, E."),
        ),
    ] = "S2,S3,S4,S5,S6",
    prompt_rules: Annotated[
        str,
        typer.Option(
            "--prompt-rules",
            metavar="RULES",
            help="paper or authors-code.",
            rich_help_panel=PROMPTS,
        ),
    ] = "paper",
    multimask: Annotated[
        str, _in(PROMPTS, O.multimask("auto, on (3 masks) or off (1).", metavar="MODE"))
    ] = "auto",
    max_clicks: Annotated[
        int,
        typer.Option(
            "--max-clicks",
            metavar="N",
            help="Clicks per object (interactive).",
            rich_help_panel=PROMPTS,
        ),
    ] = 20,
    start_with: Annotated[
        str,
        typer.Option(
            "--start-with",
            metavar="START",
            help="First round: point or box.",
            rich_help_panel=PROMPTS,
        ),
    ] = "point",
    shift: Annotated[bool, _in(PROMPTS, O.shift("Add prompt-shift repeats."))] = False,
    shift_repeats: Annotated[
        int,
        typer.Option(
            "--shift-repeats",
            metavar="N",
            help="Shifted repeats per prompt.",
            rich_help_panel=PROMPTS,
        ),
    ] = 3,
    shift_seed: Annotated[
        int,
        typer.Option(
            "--shift-seed", metavar="N", help="Seed of the shifts.", rich_help_panel=PROMPTS
        ),
    ] = 0,
    prompts: Annotated[
        Path | None,
        typer.Option(
            "--prompts", metavar="FILE", help="Replay a prompts.jsonl.", rich_help_panel=PROMPTS
        ),
    ] = None,
    phrases: Annotated[
        Path | None,
        typer.Option(
            "--phrases",
            metavar="FILE",
            help="Phrase table CSV for T, T-para, T-neg.",
            rich_help_panel=PROMPTS,
        ),
    ] = None,
    text_modality: Annotated[
        bool,
        typer.Option(
            "--text-modality",
            help="Add the modality to phrases ('liver in CT').",
            rich_help_panel=PROMPTS,
        ),
    ] = False,
    nsd_tolerance: Annotated[
        float,
        typer.Option(
            "--nsd-tolerance",
            metavar="PIXELS",
            help="NSD tolerance (pixels).",
            rich_help_panel=METRICS,
        ),
    ] = 2.0,
    nsd_tolerance_mm: Annotated[
        float, _in(METRICS, O.nsd_tolerance_mm("NSD tolerance of *_mm columns."))
    ] = 2.0,
    empty: Annotated[
        str, _in(METRICS, O.empty("Empty mask distances: worst or nan.", metavar="RULE"))
    ] = "worst",
    grid: Annotated[
        str,
        typer.Option(
            "--grid", metavar="LIST", help="Grid sizes, e.g. 8,16,32,64.", rich_help_panel=S1
        ),
    ] = "32",
    points_per_batch: Annotated[int, _s1("--points-per-batch")] = _AMG.points_per_batch,
    pred_iou_thresh: Annotated[float | None, _s1("--pred-iou-thresh")] = None,
    stability_score_thresh: Annotated[
        float, _s1("--stability-score-thresh")
    ] = _AMG.stability_score_thresh,
    box_nms_thresh: Annotated[float, _s1("--box-nms-thresh")] = _AMG.box_nms_thresh,
    min_mask_region_area: Annotated[int, _s1("--min-mask-region-area")] = _AMG.min_mask_region_area,
    runtime: Annotated[
        str, _in(PERF, O.Runtime, "torch, openvino, onnxruntime (CPU) or auto.")
    ] = "torch",
    precision: Annotated[
        str, _in(PERF, O.Precision, "Encoder: fp32, bf16 or fp16 (CUDA).")
    ] = "fp32",
    cache_dir: Annotated[Path | None, _in(PERF, O.CacheDir, "Embedding cache folder.")] = None,
    cache_dtype: Annotated[
        str, _in(PERF, O.CacheDtype, "float32 or float16 (half size).")
    ] = "float32",
    encoder_batch: Annotated[
        int | None, _in(PERF, O.EncoderBatch, "Images per GPU encoder pass.")
    ] = None,
    executor: Annotated[
        str, _in(PERF, O.Executor, "local or ray (docs/distributed.md).")
    ] = "local",
    address: Annotated[str | None, _in(PERF, O.Address, "Ray cluster: auto or HOST:PORT.")] = None,
    workers: Annotated[int | None, _in(PERF, O.Workers, "Ray workers (default: all).")] = None,
    gpus_per_worker: Annotated[float, _in(PERF, O.GpusPerWorker, "GPUs per Ray worker.")] = 0.0,
    cpus_per_worker: Annotated[float, _in(PERF, O.CpusPerWorker)] = 1.0,
    out: Annotated[Path, _in(OUTPUT, O.out("Run folder (results, tables)."))],
    save_masks: Annotated[bool, _in(OUTPUT, O.save_masks("Save the masks (masks/)."))] = False,
    single_file: Annotated[
        bool, _in(OUTPUT, O.SingleFile, "Write results.parquet (else parts).")
    ] = True,
    progress: Annotated[bool, _in(OUTPUT, O.progress("Show a progress bar."))] = True,
    wait_lock: Annotated[bool, _in(OUTPUT, O.WaitLock, "Wait for a run holding --out.")] = False,
) -> None:
    """Evaluate a model on a prepared dataset under prompt strategies; write results and tables.

    Every option, with its defaults and rules: docs/evaluate.md."""
    from sambench.engine.config import RunConfig

    cfg = O.config_of(
        RunConfig,
        locals(),
        strategies=O.comma_list(strategies) or (),
        datasets=O.comma_list(datasets),
        cases=O.comma_list(cases),
        grid=_int_list(grid, "--grid"),
        prompts_file=None if prompts is None else str(prompts.resolve()),
        phrases=None if phrases is None else str(phrases.resolve()),
    )
    cfg.validate()  # every value checked before the run folder is touched
    o = (executor, address, workers, gpus_per_worker, cpus_per_worker, encoder_batch, single_file)
    X.run_and_print(cfg, out, wait_lock, X.options(*o))
