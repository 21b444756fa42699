"""The ``sambench annotate-volume`` command (registered in :mod:`sambench.cli.app`): a thin layer
over :mod:`sambench.annotate.volume_state` and :mod:`sambench.annotate.volume_server`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sambench.cli import options as O
from sambench.errors import DataError, OptionError
from sambench.store.runlock import RunLock, RunLockedError

MODELS_2D = ("litemedsam", "none")
"""The 2D choices needing no --checkpoint (every other name of the 2D registry needs one)."""


def annotate_volume(
    source: Annotated[
        Path,
        typer.Argument(
            help="A NIfTI file or folder, a DICOM series folder, a prepared 3D folder, or 2D "
            "images (file or folder); labels not needed.",
        ),
    ],
    out: Annotated[Path, O.out("Session folder (new, or one to resume).")],
    model: Annotated[
        str,
        O.model(
            "litemedsam (slice by slice, with propagation), a 2D registry model with "
            "--checkpoint (sam2.1_hiera_t ..., medsam2: propagation by SAM 2's video predictor), "
            "nninteractive (native 3D, needs --checkpoint), or none.",
            metavar=None,
        ),
    ] = "litemedsam",
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            metavar="PATH",
            help="The model's weights: a 2D model's file (sam2*, medsam2 ...), or nninteractive's "
            "model folder.",
        ),
    ] = None,
    series: Annotated[
        str | None,
        typer.Option("--series", help="SeriesInstanceUID to open when the folder holds several."),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference", help="Existing label file (or folder) used as the report's reference."
        ),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="A label name to start with (repeat; values 1, 2, ...)."),
    ] = None,
    overlap: Annotated[
        str, typer.Option("--overlap", help="overwrite or block: may a label cover another.")
    ] = "overwrite",
    start_from_reference: Annotated[
        bool,
        typer.Option("--start-from-reference", help="Start each volume from its reference labels."),
    ] = False,
    max_memory_gb: Annotated[
        float | None,
        typer.Option(
            "--max-memory-gb",
            min=0.01,
            help="Refuse larger volumes (default: half the memory available).",
        ),
    ] = None,
    annotator: O.Annotator = "annotator",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8766,
    host: O.Host = "127.0.0.1",
    allow_remote: Annotated[
        bool,
        typer.Option("--allow-remote", help="Allow a --host other machines can reach."),
    ] = False,
) -> None:
    """Annotate volumes (NIfTI, DICOM) or 2D images in the browser; exports NIfTI and DICOM-SEG."""
    from sambench.annotate.server import bind_socket, check_host, is_loopback, remote_warning
    from sambench.annotate.volume_server import make_volume_server
    from sambench.annotate.volume_source import list_items, open_item
    from sambench.annotate.volume_state import OVERLAP_POLICIES, VolumeState

    host = check_host(host, allow_remote=allow_remote)
    if not is_loopback(host):
        typer.echo(remote_warning(host), err=True)
    from sambench.models.registry import MODEL_NAMES
    from sambench.models.volume_registry import VOLUME_MODEL_NAMES

    native = model in VOLUME_MODEL_NAMES
    if model not in (*MODEL_NAMES, "none") and not native:
        known = ", ".join((*MODEL_NAMES, *VOLUME_MODEL_NAMES, "none"))
        raise OptionError("--model", f"expected one of {known}, got {model!r}")
    if checkpoint is not None and model == "none":
        raise OptionError("--checkpoint", "--model none uses no weights; remove --checkpoint")
    if checkpoint is None and model not in MODELS_2D and not native:
        raise OptionError(
            "--checkpoint", f"--model {model} needs its weights file (nothing is downloaded at "
            "run time; docs/models.md lists the files)"
        )  # fmt: skip
    if overlap not in OVERLAP_POLICIES:
        raise OptionError("--overlap", f"expected overwrite or block, got {overlap!r}")
    if not annotator.strip():
        raise OptionError("--annotator", "expected a non-empty name")
    names = [n.strip() for n in (label or [])]
    if any(not n or len(n) > 64 for n in names):
        raise OptionError("--label", "expected names of 1..64 characters")
    items = list_items(source, series=series, reference=reference)
    flat = [i.item_id for i in items if i.kind == "image2d"]
    if native and flat:
        raise OptionError(
            "--model", f"{model} is a native 3D model; {source} holds 2D images ({flat[0]} ...): "
            "use --model litemedsam or none"
        )  # fmt: skip
    limit = None if max_memory_gb is None else int(max_memory_gb * 1e9)
    open_item(items[0], limit_bytes=limit)  # a volume too large is refused before anything else
    bind_socket(host, port).close()
    existed = out.exists()
    lock = RunLock(out, "annotate")
    try:
        lock.acquire()
    except RunLockedError as e:
        raise DataError(
            e.path, f"this session is served by another `sambench annotate-volume` ({e.problem})"
        ) from None
    try:
        adapter: Any = None
        if native:
            from sambench.models.volume_registry import build_volume_model

            adapter = build_volume_model(model, checkpoint)
        elif model != "none":
            from sambench.annotate.volume_state import PROPAGATION_VIDEO, propagation_rule
            from sambench.models.registry import build_model

            # LiteMedSAM on the CPU as before; another 2D model on CUDA when there is one
            adapter = build_model(
                model, checkpoint, device="cpu" if model == "litemedsam" else None
            )
            if propagation_rule(adapter) == PROPAGATION_VIDEO:
                from sambench.volumes.protocols.sam2_video import checked_video_predictor

                checked_video_predictor(adapter, checkpoint)  # built now, refused in one line
        state = VolumeState(
            items, out, model=adapter, model_name=model, annotator=annotator.strip(),
            source=str(source.resolve()), overlap=overlap,
            labels=[(i + 1, n) for i, n in enumerate(names)] or None, limit_bytes=limit,
            start_from_reference=start_from_reference,
        )  # fmt: skip
        server, sock = make_volume_server(state, host, port)
        shown = f"[{host}]" if ":" in host else host
        typer.echo(
            f"annotating {len(items)} volume(s) -> {state.session_dir}\n"
            f"open http://{shown}:{sock.getsockname()[1]}/ in a browser (Ctrl+C stops; the "
            "session resumes where it stopped)"
        )
        try:
            server.run(sockets=[sock])
        finally:
            state.close()
    finally:
        lock.release()
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a refused session leaves nothing behind
