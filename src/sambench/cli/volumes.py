"""The ``sambench evaluate-3d`` command (registered in :mod:`sambench.cli.app`): a thin layer
over :func:`sambench.volumes.evaluate.evaluate_3d`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sambench.cli import options as O
from sambench.errors import OptionError


def _floats(option: str, value: str | None, n: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        vals = tuple(float(v) for v in value.split(","))
    except ValueError:
        vals = ()
    if len(vals) != n:
        raise OptionError(option, f"expected {n} comma-separated numbers, got {value!r}")
    return vals


def _options(values: list[str] | None) -> dict[str, object]:
    """``KEY=VALUE`` items; values parsed as JSON when they are (numbers, true/false)."""
    import json

    out: dict[str, object] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise OptionError("--protocol-option", f"expected KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except ValueError:
            out[key.strip()] = raw
    return out


def evaluate_3d(
    prepared: Annotated[Path, O.prepared("A `sambench prepare` folder of volumes.")],
    out: Annotated[Path, O.out("Run folder (new, empty or resumed).")],
    protocol: Annotated[
        str,
        typer.Option(
            "--protocol",
            "-p",
            metavar="NAMES",
            help="Comma list of slicewise-gt, propagate, interactive-3d, effort, sam2-video (SAM 2 "
            "models only) and any registered protocol; see docs/volumes.md.",
        ),
    ] = "propagate",
    model: Annotated[
        str, O.model("Model (registry name; native 3D: nninteractive, sam_med3d, vista3d).")
    ] = "litemedsam",
    checkpoint: Annotated[
        Path | None, O.checkpoint("Checkpoint file, or a native model's folder.")
    ] = None,
    device: Annotated[str | None, O.device("cpu, cuda, cuda:1, mps.")] = None,
    prompt: Annotated[
        str, typer.Option("--prompt", metavar="KIND", help="First prompt: box or point.")
    ] = "box",
    shift: Annotated[
        str | None, O.shift("Shift the first prompt by LO..HI px.", metavar="LO,HI")
    ] = None,
    mask_prompt: Annotated[
        bool,
        typer.Option(
            "--mask-prompt/--no-mask-prompt", help="Propagate the neighbour's logits too."
        ),
    ] = True,
    multimask: Annotated[
        bool | None,
        O.multimask("Candidates per prompt (best score kept).", negative="/--single-mask"),
    ] = None,
    steps: Annotated[
        int, typer.Option("--steps", metavar="N", help="interactive-3d: clicks after the box.")
    ] = 5,
    protocol_option: Annotated[
        list[str] | None,
        typer.Option(
            "--protocol-option",
            metavar="KEY=VALUE",
            help="Protocol extra, repeatable (interactive-3d: initial_box=false, agree_dsc=0.9).",
        ),
    ] = None,
    start_with: Annotated[
        str | None,
        typer.Option(
            "--start-with",
            metavar="KIND",
            help="interactive-3d, effort: first interaction: box (default), none, scribble or "
            "lasso (simulated on the key slice), class (VISTA3D's class prompt).",
        ),
    ] = None,
    class_map: Annotated[
        Path | None,
        typer.Option(
            "--class-map",
            metavar="FILE",
            help="--start-with class: YAML/JSON target name -> VISTA3D class index (before "
            "the built-in map).",
        ),
    ] = None,
    time_cap_s: Annotated[
        float | None,
        typer.Option(
            "--time-cap-s",
            metavar="S",
            help="interactive-3d, effort: model seconds per object; later steps score empty "
            "(CVPR 2025: 90).",
        ),
    ] = None,
    nsd_tolerance_mm: Annotated[float, O.nsd_tolerance_mm("NSD tolerance, mm.")] = 2.0,
    empty: Annotated[str, O.empty("Empty prediction: worst or nan.", metavar="MODE")] = "worst",
    assume_spacing: Annotated[
        str | None,
        typer.Option(
            "--assume-spacing", metavar="Z,Y,X", help="Spacing (mm) of volumes without one."
        ),
    ] = None,
    save_masks: Annotated[bool, O.save_masks("Write predictions as NIfTI (source grid).")] = False,
    seed: Annotated[int, O.seed("Random seed.", at_least=None, metavar="N")] = 0,
    cases: Annotated[str | None, O.cases("'<dataset>/<case>' comma list.")] = None,
    max_volumes: Annotated[
        int | None, typer.Option("--max-volumes", metavar="N", help="First N volumes only.")
    ] = None,
    wait_lock: Annotated[bool, O.wait_lock("Wait for a run holding --out.")] = False,
    embedding_budget_mb: Annotated[
        float,
        typer.Option(
            "--embed-budget-mb",
            metavar="MB",
            help="Slice embeddings held per volume, MiB (0: each protocol encodes its own).",
        ),
    ] = 1024.0,
    cache_dir: O.CacheDir = None,
) -> None:
    """Evaluate a model on whole volumes: 3D DSC, NSD (mm), HD95 (mm) per object and step."""
    from sambench.volumes.evaluate import Run3DConfig, encoder_summary, evaluate_3d, summary_3d
    from sambench.volumes.types import ProtocolConfig

    sr = _floats("--shift", shift, 2)
    extras = _options(protocol_option)
    if time_cap_s is not None:
        if not {"interactive-3d", "effort"} & set(O.comma_list(protocol) or ()):
            raise OptionError("--time-cap-s", "applies to --protocol interactive-3d or effort only")
        if not time_cap_s > 0:
            raise OptionError("--time-cap-s", f"expected seconds > 0, got {time_cap_s:g}")
        extras["time_cap_s"] = float(time_cap_s)
    if start_with is not None:
        from sambench.volumes.starts import START_KINDS, START_OPTION

        if not {"interactive-3d", "effort"} & set(O.comma_list(protocol) or ()):
            raise OptionError("--start-with", "applies to --protocol interactive-3d or effort only")
        if start_with not in START_KINDS:
            raise OptionError(
                "--start-with", f"expected one of {', '.join(START_KINDS)}, got {start_with!r}"
            )
        extras[START_OPTION] = start_with
    if class_map is not None:
        from sambench.volumes.class_prompts import CLASS_MAP_OPTION, read_class_map

        if start_with != "class":
            raise OptionError("--class-map", "applies to --start-with class only")
        extras[CLASS_MAP_OPTION] = read_class_map(class_map)
    sp = _floats("--assume-spacing", assume_spacing, 3)
    cfg = Run3DConfig(
        prepared=str(prepared),
        model=model,
        checkpoint=None if checkpoint is None else str(checkpoint),
        device=device,
        protocols=O.comma_list(protocol) or (),
        protocol=ProtocolConfig(
            prompt=prompt,
            shift_range=None if sr is None else (sr[0], sr[1]),
            multimask=multimask,
            use_mask_prompt=mask_prompt,
            steps=steps,
            options=extras,
        ),
        nsd_tolerance_mm=nsd_tolerance_mm,
        empty=empty,
        assume_spacing=None if sp is None else (sp[0], sp[1], sp[2]),
        save_masks=save_masks,
        seed=seed,
        cases=O.comma_list(cases),
        max_volumes=max_volumes,
        embedding_budget_mb=embedding_budget_mb,
        cache_dir=None if cache_dir is None else str(cache_dir),
    )
    df = evaluate_3d(cfg, out, wait_lock=wait_lock, progress=True)
    if df.empty:
        typer.echo(f"no rows -> {out}")
        return
    typer.echo(summary_3d(df).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    enc = encoder_summary(df)
    if not enc.empty:
        typer.echo(enc.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    typer.echo(f"{len(df)} rows -> {out}/results3d.parquet")
