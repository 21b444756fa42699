"""The ``sambench`` command line: a thin layer over library functions that return DataFrames.

The console entry point is :func:`main`: it runs the typer app and turns a user error (a bad
option value, a missing file, a bad checkpoint, bad data, an invalid configuration, a full disk)
into two lines on stderr and exit status 2 (:mod:`sambench.cli.errors`); ``sambench --debug ...``
shows the traceback instead. Metavars are words (:func:`command` fills them in).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from sambench.cli import executor as X
from sambench.cli.annotate import annotate
from sambench.cli.annotation_report import annotation_report
from sambench.cli.finetune import _split, finetune, finetune_compare
from sambench.cli.report import report
from sambench.cli.volumes import evaluate_3d
from sambench.engine.amg_settings import AmgSettings
from sambench.errors import OptionError
from sambench.version import __version__

_AMG = AmgSettings()  # the official automatic mask generator's defaults (S1)
_RUNTIME_HELP = "torch (default), openvino, onnxruntime (CPU) or auto (docs/performance.md)."
_PRECISION_HELP = (
    "Image encoder precision: fp32 (default), bf16 (CPU or CUDA; torch or openvino) or fp16 "
    "(CUDA). Not equal to fp32: docs/performance.md."
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Benchmark promptable segmentation models (SAM, MedSAM, LiteMedSAM) on medical images.",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"sambench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show the full traceback of an error (for bug reports)."),
    ] = False,
) -> None:
    """Benchmark promptable segmentation models (SAM, MedSAM, LiteMedSAM) on medical images."""


@app.command()
def prepare(
    source: Annotated[
        Path, typer.Argument(help="Dataset folder (images/ + labels/, volumes, DICOM).")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Prepared output root (shared by datasets).")
    ],
    config: Annotated[
        Path | None, typer.Option("--config", help="Dataset description YAML/JSON.")
    ] = None,
    modality: Annotated[
        str | None, typer.Option("--modality", help="Modality name, e.g. CT, MRI.")
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", "-j", min=1, help="Parallel worker processes (>= 1).")
    ] = 1,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Record bad cases as skipped instead of stopping.")
    ] = False,
    window: Annotated[
        str | None,
        typer.Option(
            "--window",
            metavar="LEVEL,WIDTH|PRESET",
            help="CT window instead of min-max: LEVEL,WIDTH (e.g. 40,400) or abdomen, liver, "
            "mediastinum, lung, bone, brain.",
        ),
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option(
            "--channel",
            metavar="CHANNEL",
            help="Channel of multi-channel cases (MSD / nnU-Net): index, name, or all "
            "(each channel a separate image of the same case). Default: the first.",
        ),
    ] = None,
    roi_dir: Annotated[
        Path | None,
        typer.Option(
            "--roi-dir",
            metavar="FOLDER",
            help="Region-of-interest masks (e.g. field of view), relative to SOURCE or absolute.",
        ),
    ] = None,
    resample_labels: Annotated[
        bool,
        typer.Option(
            "--resample-labels",
            help="Resample a 3D label on another grid onto its image (nearest neighbour) "
            "instead of refusing it.",
        ),
    ] = False,
    max_image_pixels: Annotated[
        int,
        typer.Option(
            "--max-image-pixels",
            metavar="N",
            min=1,
            help="Largest 2D image accepted, in pixels (guard against decompression bombs).",
        ),
    ] = 89_478_485,
    volume_format: Annotated[
        str,
        typer.Option(
            "--volume-format",
            metavar="FORMAT",
            help="Storage of the 3D form (volumes/): nifti, zarr (chunked by slice, streamed "
            "by evaluate-3d) or auto (zarr for a volume over --zarr-above-mb).",
        ),
    ] = "auto",
    zarr_above_mb: Annotated[
        float,
        typer.Option(
            "--zarr-above-mb",
            metavar="MB",
            help="With --volume-format auto: zarr for a volume whose uint8 size exceeds MB "
            "(1 MB = 1e6 bytes).",
        ),
    ] = 256.0,
) -> None:
    """Standardize a dataset into 2D PNG image/label pairs plus a manifest (SPEC section 2)."""
    from sambench.data.prepare import prepare_dataset

    report = prepare_dataset(
        source,
        out,
        config=config,
        modality=modality,
        workers=workers,
        skip_bad=skip_bad,
        window=window,
        channel=channel,
        roi_dir=roi_dir,
        resample_labels=resample_labels,
        max_image_pixels=max_image_pixels,
        volume_format=volume_format,
        zarr_above_mb=zarr_above_mb,
    )
    typer.echo(report.to_text())


def _int_list(value: str, option: str) -> tuple[int, ...]:
    """``"8,16,32"`` -> (8, 16, 32); anything else is an :class:`OptionError` naming ``option``."""
    parts = _split(value) or ()
    try:
        return tuple(int(v) for v in parts)
    except ValueError:
        raise OptionError(
            option, f"expected comma-separated integers, e.g. 8,16,32; got {value!r}"
        ) from None


@app.command()
def evaluate(
    prepared: Annotated[Path, typer.Argument(help="A `sambench prepare` output folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder for results and tables.")],
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            metavar="MODEL",
            help="litemedsam, sam_vit_b/l/h, medsam_vit_b, sam2.1_hiera_t/s/b+/l, sam2_hiera_t/s/b+/l; baselines random_walker, grabcut; "
            "or your own adapter as package.module:builder (see docs/models.md).",
        ),
    ] = "litemedsam",
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint", metavar="FILE", help="Checkpoint file (required for SAM/MedSAM/SAM 2)."
        ),
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
    model_config: Annotated[
        Path | None,
        typer.Option("--model-config", metavar="FILE", help="sam2 Hydra YAML (sam2*, medsam2)."),
    ] = None,
    strategies: Annotated[
        str,
        typer.Option(
            "--strategies",
            "-s",
            metavar="LIST",
            help="Comma list of S1 (everything), S2..S6, interactive.",
        ),
    ] = "S2,S3,S4,S5,S6",
    prompt_rules: Annotated[
        str,
        typer.Option("--prompt-rules", metavar="RULES", help="paper (default) or authors-code."),
    ] = "paper",
    multimask: Annotated[
        str,
        typer.Option(
            "--multimask",
            metavar="MODE",
            help="auto (model default; LiteMedSAM: 3 candidates for S2-S6, 1 for S1), on (3), off (1).",
        ),
    ] = "auto",
    nsd_tolerance: Annotated[
        float,
        typer.Option("--nsd-tolerance", metavar="PIXELS", help="NSD tolerance, pixels (>= 0)."),
    ] = 2.0,
    nsd_tolerance_mm: Annotated[
        float, typer.Option("--nsd-tolerance-mm", metavar="MM", help="NSD of the *_mm columns, mm.")
    ] = 2.0,
    empty: Annotated[
        str,
        typer.Option(
            "--empty",
            metavar="RULE",
            help="Distances of empty predictions: worst (diagonal) or nan.",
        ),
    ] = "worst",
    datasets: Annotated[
        str | None,
        typer.Option("--datasets", metavar="LIST", help="Comma list of datasets (default: all)."),
    ] = None,
    max_images: Annotated[
        int | None,
        typer.Option("--max-images", metavar="N", help="Evaluate an evenly spaced subset of N."),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", metavar="DIR", help="On-disk embedding cache folder."),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            metavar="DEVICE",
            help="cpu, cuda, cuda:N, mps (default: cuda if available).",
        ),
    ] = None,
    runtime: Annotated[
        str, typer.Option("--runtime", metavar="RUNTIME", help=_RUNTIME_HELP)
    ] = "torch",
    precision: Annotated[
        str, typer.Option("--precision", metavar="PRECISION", help=_PRECISION_HELP)
    ] = "fp32",
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Record unreadable images as skipped rows.")
    ] = False,
    grid: Annotated[
        str,
        typer.Option(
            "--grid", metavar="LIST", help="S1 grid sizes (points per side), e.g. 8,16,32,64."
        ),
    ] = "32",
    points_per_batch: Annotated[
        int,
        typer.Option(
            "--points-per-batch", metavar="N", help="S1: point prompts decoded per batch (>= 1)."
        ),
    ] = _AMG.points_per_batch,
    pred_iou_thresh: Annotated[
        float | None,
        typer.Option(
            "--pred-iou-thresh",
            metavar="FLOAT",
            help="S1: keep masks whose predicted IoU is > this, in [0, 1] (0 = off; "
            "default: the model's official generator, 0.88 SAM, 0.8 SAM 2).",
        ),
    ] = None,
    stability_score_thresh: Annotated[
        float,
        typer.Option(
            "--stability-score-thresh",
            metavar="FLOAT",
            help="S1: keep masks whose stability score is >= this, in [0, 1] (0 = off).",
        ),
    ] = _AMG.stability_score_thresh,
    box_nms_thresh: Annotated[
        float,
        typer.Option(
            "--box-nms-thresh",
            metavar="FLOAT",
            help="S1: box IoU above which NMS drops the lower-scored mask, in [0, 1].",
        ),
    ] = _AMG.box_nms_thresh,
    min_mask_region_area: Annotated[
        int,
        typer.Option(
            "--min-mask-region-area",
            metavar="PIXELS",
            help="S1: remove holes and islands smaller than this (0 = off).",
        ),
    ] = _AMG.min_mask_region_area,
    save_masks: Annotated[
        bool,
        typer.Option(
            "--save-masks",
            help="Save the selected S2-S6 masks as PNG (masks/) and S1's masks as RLE JSON.",
        ),
    ] = False,
    shift: Annotated[
        bool, typer.Option("--shift", help="Add prompt-shift robustness repeats (SPEC 6).")
    ] = False,
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
            help="Replay a prompts.jsonl (S2-S6 prompts from the file, not the rules).",
        ),
    ] = None,
    cases: Annotated[
        str | None,
        typer.Option("--cases", metavar="LIST", help="Comma list of <dataset>/<case> to evaluate."),
    ] = None,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")
    ] = True,
    wait_lock: Annotated[
        bool,
        typer.Option(
            "--wait-lock", help="Wait while another run holds the --out folder (default: refuse)."
        ),
    ] = False,
    executor: X.Executor = "local",
    address: X.Address = None,
    workers: X.Workers = None,
    gpus_per_worker: X.GpusPerWorker = 0.0,
    cpus_per_worker: X.CpusPerWorker = 1.0,
    encoder_batch: X.EncoderBatch = None,
    cache_dtype: X.CacheDtype = "float32",
    single_file: X.SingleFile = True,
) -> None:
    """Evaluate a model on a prepared dataset under prompt strategies; write results and tables."""
    from sambench.engine.config import RunConfig

    cfg = RunConfig(
        prepared=str(prepared),
        model=model,
        checkpoint=None if checkpoint is None else str(checkpoint),
        model_config=None if model_config is None else str(model_config),
        decoder=None if decoder is None else str(decoder),
        all_cases=all_cases,
        strategies=_split(strategies) or (),
        prompt_rules=prompt_rules,
        multimask=multimask,
        nsd_tolerance=nsd_tolerance,
        nsd_tolerance_mm=nsd_tolerance_mm,
        empty=empty,
        datasets=_split(datasets),
        cases=_split(cases),
        max_images=max_images,
        grid=_int_list(grid, "--grid"),
        points_per_batch=points_per_batch,
        pred_iou_thresh=pred_iou_thresh,
        stability_score_thresh=stability_score_thresh,
        box_nms_thresh=box_nms_thresh,
        min_mask_region_area=min_mask_region_area,
        save_masks=save_masks,
        shift=shift,
        shift_repeats=shift_repeats,
        shift_seed=shift_seed,
        max_clicks=max_clicks,
        start_with=start_with,
        prompts_file=None if prompts is None else str(prompts.resolve()),
        cache_dir=None if cache_dir is None else str(cache_dir),
        cache_dtype=cache_dtype,
        device=device,
        runtime=runtime,
        precision=precision,
        skip_bad=skip_bad,
        progress=progress,
    )
    cfg.validate()  # every value checked before the run folder is touched
    o = (executor, address, workers, gpus_per_worker, cpus_per_worker, encoder_batch, single_file)
    X.run_and_print(cfg, out, wait_lock, X.options(*o))


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Demo folder.")] = Path("sambench-demo"),
    max_images: Annotated[
        int, typer.Option("--max-images", min=1, help="Slices evaluated (evenly spaced).")
    ] = 16,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show progress bars.")
    ] = True,
    runtime: Annotated[
        str, typer.Option("--runtime", metavar="RUNTIME", help=_RUNTIME_HELP)
    ] = "torch",
    precision: Annotated[
        str, typer.Option("--precision", metavar="PRECISION", help=_PRECISION_HELP)
    ] = "fp32",
) -> None:
    """The whole pipeline on bundled real data: MNI152 brain MRI (from nilearn), LiteMedSAM vs
    GrabCut and the random walker, S1-S6, prompt shift, interactive clicks, and the HTML report."""
    import pandas as pd

    from sambench.analysis.summary import main_rows, paper_table, timing_table, to_markdown
    from sambench.demo.run import NOC_SHOWN, DemoConfig, interactive_summary, run_demo

    result = run_demo(
        out,
        DemoConfig(max_images=max_images, progress=progress, runtime=runtime, precision=precision),
    )
    for rep in result.prepare_reports:
        typer.echo(rep.to_text())
    every = pd.concat(list(result.results.values()), ignore_index=True)
    main = main_rows(every)
    typer.echo(
        f"\nLiteMedSAM, GrabCut, random walker on {main['image_id'].nunique()} MNI152 slices"
    )
    typer.echo("DICE (%), mean (std), oracle selection:")
    typer.echo(to_markdown(paper_table(main, "dice")))
    typer.echo(f"\nInteractive: NoC@{NOC_SHOWN} and DICE after 1, 5 and the last click:")
    typer.echo(to_markdown(interactive_summary(every)))
    typer.echo("\nSeconds (embedding per image; decoding per object, per click for interactive):")
    typer.echo(to_markdown(timing_table(every)))
    typer.echo("\nresults: " + ", ".join(str(p) for p in result.runs.values()))
    typer.echo(f"report:  {result.report}")


app.command("report")(report)
app.command("finetune")(finetune)
app.command("finetune-compare")(finetune_compare)
app.command("annotate")(annotate)
app.command("annotation-report")(annotation_report)
app.command("evaluate-3d")(evaluate_3d)


def command() -> Any:
    """The click command of :data:`app`, every option's metavar a word (PATH, N, FLOAT, VALUE)."""
    from sambench.cli.errors import word_metavars

    cmd = typer.main.get_command(app)
    word_metavars(cmd)
    return cmd


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry: run the CLI; a user error is two lines on stderr and exit status 2.

    ``sambench --debug ...`` re-raises instead (full traceback). Third-party FutureWarnings from
    timm's deprecated import paths (used by LiteMedSAM's code) are silenced here, narrowly.
    """
    import sys
    import warnings

    from sambench.cli.errors import run_reporting_errors

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:  # a root option, accepted anywhere on the line (`sambench evaluate ... --debug`)
        args = ["--debug", *(a for a in args if a != "--debug")]
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"timm(\.|$)")
    return run_reporting_errors(command(), args, debug=debug)


if __name__ == "__main__":
    raise SystemExit(main())
