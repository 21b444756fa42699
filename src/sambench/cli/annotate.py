"""The ``sambench annotate`` command (registered in :mod:`sambench.cli.app`): a thin layer over
:mod:`sambench.annotate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sambench.cli import options as O
from sambench.errors import DataError, OptionError
from sambench.store.runlock import RunLock, RunLockedError


def annotate(
    prepared: Annotated[
        Path,
        O.prepared(
            "A `sambench prepare` output folder; or a NIfTI file or folder, a DICOM series "
            "folder, a prepared 3D form or 2D images (opens the volume annotator)."
        ),
    ],
    out: Annotated[Path, O.out("Session folder (new, or one to resume).")],
    model: Annotated[
        str, O.model("litemedsam, or none (the manual baseline).", metavar=None)
    ] = "litemedsam",
    annotator: O.Annotator = "annotator",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8765,
    host: O.Host = "127.0.0.1",
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Allow a --host other machines can reach (0.0.0.0, ::); the app has no login.",
        ),
    ] = False,
) -> None:
    """Annotate PREPARED in the browser, with LiteMedSAM in the loop or by hand; logs every event.

    A volume or image source (NIfTI, DICOM series, prepared 3D form, 2D images) opens the volume
    annotator: the same as `sambench annotate-volume SOURCE` (which has more options)."""
    from sambench.annotate.volume_source import is_volume_source

    if is_volume_source(prepared):
        _hand_off(prepared, out, model, annotator, port, host, allow_remote)
        return
    from sambench.annotate.server import (
        bind_socket,
        check_host,
        is_loopback,
        make_server,
        remote_warning,
    )
    from sambench.annotate.session import build_state

    host = check_host(host, allow_remote=allow_remote)  # syntax and loopback, no DNS lookup
    if not is_loopback(host):
        typer.echo(remote_warning(host), err=True)
    if not annotator.strip():
        raise OptionError("--annotator", "expected a non-empty name")
    bind_socket(host, port).close()  # a port in use is refused before the model loads
    lock = RunLock(out, "annotate")
    try:
        lock.acquire()  # one server per session folder
    except RunLockedError as e:
        raise DataError(
            e.path, f"this session is served by another `sambench annotate` ({e.problem})"
        ) from None
    try:
        state = build_state(prepared, out, model, annotator.strip())
        server, sock = make_server(state, host, port)
        shown = f"[{host}]" if ":" in host else host
        typer.echo(
            f"annotating {len(state.pending())} of {len(state.order)} objects -> "
            f"{state.session_dir}\nopen http://{shown}:{sock.getsockname()[1]}/ in a browser "
            "(Ctrl+C stops; the session resumes where it stopped)"
        )
        try:
            server.run(sockets=[sock])
        finally:
            state.close()
    finally:
        lock.release()


def _hand_off(
    source: Path, out: Path, model: str, annotator: str, port: int, host: str, allow_remote: bool
) -> None:
    """``sambench annotate SOURCE`` of a volume or image source: ``annotate-volume`` with this
    command's options (its own options keep their defaults; an error that needs one of them
    says to run ``annotate-volume``)."""
    from sambench.cli.annotate_volume import annotate_volume

    hint = f"run `sambench annotate-volume {source} ...` for the volume annotator's options"
    if model not in ("litemedsam", "none"):
        raise OptionError("--model", f"expected litemedsam or none here, got {model!r}; {hint}")
    typer.echo(
        f"{source}: a volume or image source, opened in the volume annotator "
        "(`sambench annotate-volume`: --series, --reference, --label, --checkpoint ...)",
        err=True,
    )
    try:
        annotate_volume(source, out, model=model, annotator=annotator, port=port, host=host,
                        allow_remote=allow_remote)  # fmt: skip
    except OptionError as e:
        if e.option in ("--series", "--reference", "--checkpoint"):
            raise OptionError(e.option, f"{e.problem}; {hint}") from None
        raise
