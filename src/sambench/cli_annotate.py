"""The ``sambench annotate`` command (registered in :mod:`sambench.cli`): a thin layer over
:mod:`sambench.annotate`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sambench.data.annotation_sessions import MODELS
from sambench.data.errors import DataError
from sambench.engine.runlock import RunLock, RunLockedError
from sambench.errors import OptionError

if TYPE_CHECKING:
    from sambench.annotate.state import AnnotationState


def build_state(
    prepared: Path, out: Path, model: str, annotator: str, device: str | None = None
) -> AnnotationState:
    """The :class:`~sambench.annotate.state.AnnotationState` of a session (model built once)."""
    from sambench.annotate.state import AnnotationState
    from sambench.data.annotation_sessions import read_session_info
    from sambench.data.manifest import load_manifest

    if model not in MODELS:
        raise OptionError("--model", f"expected one of {', '.join(MODELS)}, got {model!r}")
    load_manifest(prepared)  # a bad PREPARED is refused before the model loads
    if (out / "session.json").exists():
        read_session_info(out)
    adapter = None
    cache = None
    if model != "none":
        from sambench.engine.cache import EmbeddingCache
        from sambench.engine.evaluate import embedding_signature
        from sambench.models.registry import build_model

        adapter = build_model(model, device=device or "cpu")
        cache = EmbeddingCache(out / "embeddings", embedding_signature(adapter))
    return AnnotationState(
        prepared, out, model=adapter, model_name=model, annotator=annotator, embedding_cache=cache
    )


def annotate(
    prepared: Annotated[Path, typer.Argument(help="A `sambench prepare` output folder.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Session folder (new, or one to resume).")
    ],
    model: Annotated[
        str, typer.Option("--model", "-m", help="litemedsam, or none (the manual baseline).")
    ] = "litemedsam",
    annotator: Annotated[
        str, typer.Option("--annotator", help="Who annotates (logged).")
    ] = "annotator",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8765,
    host: Annotated[
        str, typer.Option("--host", help="Interface to listen on (default: this machine only).")
    ] = "127.0.0.1",
) -> None:
    """Annotate PREPARED in the browser, with LiteMedSAM in the loop or by hand; logs every event."""
    from sambench.annotate.server import bind_socket, make_server

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
