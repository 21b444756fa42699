"""``sambench evaluate``: a model on a prepared dataset under prompt strategies (a thin layer
over :class:`sambench.engine.config.RunConfig` and the executor, :mod:`sambench.cli.executor`).
Registered in :mod:`sambench.cli.app`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sambench.cli import executor as X
from sambench.cli import options as O
from sambench.engine.amg_settings import AmgSettings
from sambench.errors import OptionError

_AMG = AmgSettings()  # the official automatic mask generator's defaults (S1)
_MODEL_HELP = (
    "litemedsam, sam_vit_b/l/h, medsam_vit_b, sam2.1_hiera_t/s/b+/l, sam2_hiera_t/s/b+/l; baselines "
    "random_walker, grabcut; or your own adapter as package.module:builder (see docs/models.md)."
)

# The automatic mask generator's options (S1): flag -> (metavar, help after "S1: ").
_S1_OPTIONS = {
    "--points-per-batch": ("N", "point prompts decoded per batch (>= 1)."),
    "--pred-iou-thresh": (
        "FLOAT",
        "keep masks whose predicted IoU is > this, in [0, 1] (0 = off; default: the model's "
        "official generator, 0.88 SAM, 0.8 SAM 2).",
    ),
    "--stability-score-thresh": (
        "FLOAT",
        "keep masks whose stability score is >= this, in [0, 1] (0 = off).",
    ),
    "--box-nms-thresh": (
        "FLOAT",
        "box IoU above which NMS drops the lower-scored mask, in [0, 1].",
    ),
    "--min-mask-region-area": ("PIXELS", "remove holes and islands smaller than this (0 = off)."),
}


def _s1(flag: str) -> Any:
    """The ``typer.Option`` of the S1 generator option ``flag`` (:data:`_S1_OPTIONS`)."""
    metavar, text = _S1_OPTIONS[flag]
    return typer.Option(flag, metavar=metavar, help=f"S1: {text}")


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
    out: Annotated[Path, O.out("Run folder for results and tables.")],
    model: Annotated[str, O.model(_MODEL_HELP)] = "litemedsam",
    checkpoint: Annotated[
        Path | None, O.checkpoint("Checkpoint file (required for SAM/MedSAM/SAM 2).")
    ] = None,
    decoder: Annotated[
        Path | None,
        typer.Option("--decoder", metavar="FILE", help="Fine-tuned mask decoder (.safetensors)."),
    ] = None,
    all_cases: Annotated[
        bool,
        typer.Option(
            "--all-cases",
            help="With --decoder: score every case, its training cases too (default: only the "
            "test cases of the split.csv beside the decoder).",
        ),
    ] = False,
    model_config: O.ModelConfig = None,
    strategies: Annotated[
        str,
        O.strategies(
            "Comma list of S1 (everything), S2..S6, interactive; text models (sam3): T, "
            "T-para, T-neg, E."
        ),
    ] = "S2,S3,S4,S5,S6",
    prompt_rules: Annotated[
        str,
        typer.Option("--prompt-rules", metavar="RULES", help="paper (default) or authors-code."),
    ] = "paper",
    multimask: Annotated[
        str,
        O.multimask(
            "auto (model default; LiteMedSAM: 3 candidates for S2-S6, 1 for S1), on (3), off (1).",
            metavar="MODE",
        ),
    ] = "auto",
    nsd_tolerance: Annotated[
        float,
        typer.Option("--nsd-tolerance", metavar="PIXELS", help="NSD tolerance, pixels (>= 0)."),
    ] = 2.0,
    nsd_tolerance_mm: Annotated[float, O.nsd_tolerance_mm("NSD of the *_mm columns, mm.")] = 2.0,
    empty: Annotated[
        str, O.empty("Distances of empty predictions: worst (diagonal) or nan.", metavar="RULE")
    ] = "worst",
    datasets: Annotated[str | None, O.datasets(metavar="LIST")] = None,
    max_images: Annotated[
        int | None, O.max_images("Evaluate an evenly spaced subset of N.", metavar="N")
    ] = None,
    cache_dir: O.CacheDir = None,
    device: Annotated[
        str | None, O.device("cpu, cuda, cuda:N, mps (default: cuda if available).")
    ] = None,
    runtime: O.Runtime = "torch",
    precision: O.Precision = "fp32",
    skip_bad: Annotated[bool, O.skip_bad("Record unreadable images as skipped rows.")] = False,
    grid: Annotated[
        str,
        typer.Option(
            "--grid", metavar="LIST", help="S1 grid sizes (points per side), e.g. 8,16,32,64."
        ),
    ] = "32",
    points_per_batch: Annotated[int, _s1("--points-per-batch")] = _AMG.points_per_batch,
    pred_iou_thresh: Annotated[float | None, _s1("--pred-iou-thresh")] = None,
    stability_score_thresh: Annotated[
        float, _s1("--stability-score-thresh")
    ] = _AMG.stability_score_thresh,
    box_nms_thresh: Annotated[float, _s1("--box-nms-thresh")] = _AMG.box_nms_thresh,
    min_mask_region_area: Annotated[int, _s1("--min-mask-region-area")] = _AMG.min_mask_region_area,
    save_masks: Annotated[
        bool,
        O.save_masks("Save the selected S2-S6 masks as PNG (masks/) and S1's masks as RLE JSON."),
    ] = False,
    shift: Annotated[bool, O.shift("Add prompt-shift robustness repeats (SPEC 6).")] = False,
    shift_repeats: Annotated[
        int,
        typer.Option("--shift-repeats", metavar="N", help="Shifted repeats per prompt (>= 1)."),
    ] = 3,
    shift_seed: Annotated[
        int, typer.Option("--shift-seed", metavar="N", help="Seed of the prompt shifts (>= 0).")
    ] = 0,
    max_clicks: Annotated[
        int,
        typer.Option("--max-clicks", metavar="N", help="Clicks per object for 'interactive'."),
    ] = 20,
    start_with: Annotated[
        str,
        typer.Option(
            "--start-with",
            metavar="START",
            help="Interactive round 1: the S2 click (point) or the S5 box (box).",
        ),
    ] = "point",
    prompts: Annotated[
        Path | None,
        typer.Option(
            "--prompts",
            metavar="FILE",
            help="Replay a prompts.jsonl (S2-S6, T, T-para, T-neg, E prompts from the file).",
        ),
    ] = None,
    phrases: Annotated[
        Path | None,
        typer.Option(
            "--phrases",
            metavar="FILE",
            help="Phrase table CSV (target,phrase,instances) over the defaults, for T/T-para/T-neg.",
        ),
    ] = None,
    text_modality: Annotated[
        bool,
        typer.Option("--text-modality", help="Add the modality to each phrase ('liver in CT')."),
    ] = False,
    cases: Annotated[str | None, O.cases("Comma list of <dataset>/<case> to evaluate.")] = None,
    progress: Annotated[bool, O.progress("Show a progress bar.")] = True,
    wait_lock: O.WaitLock = False,
    executor: O.Executor = "local",
    address: O.Address = None,
    workers: O.Workers = None,
    gpus_per_worker: O.GpusPerWorker = 0.0,
    cpus_per_worker: O.CpusPerWorker = 1.0,
    encoder_batch: O.EncoderBatch = None,
    cache_dtype: O.CacheDtype = "float32",
    single_file: O.SingleFile = True,
) -> None:
    """Evaluate a model on a prepared dataset under prompt strategies; write results and tables."""
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
