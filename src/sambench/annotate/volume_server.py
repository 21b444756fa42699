"""The volume annotator's HTTP API and page (FastAPI), with the 2D tool's security.

Every request passes :class:`sambench.annotate.server._Guard` (Host, Origin, the page's token,
body size) and the one-tab rule; nothing is served but the package's static files and the
routes below; no route takes a file path (volumes are chosen by ``item_id`` from the session's
list). Routes (JSON unless stated; all ``/api`` routes need ``X-Sambench-Tab``):

- ``GET /``: the page (``static/volume.html``); ``GET /static/<file>``.
- ``POST /api/claim``, ``POST /api/heartbeat``: the tab takes / keeps the session.
- ``GET /api/state``: :meth:`VolumeState.view`.
- ``GET /api/slice?view=V&k=K``: binary, the slice's float32 intensities (little-endian, rows x
  cols, row-major) followed by its uint8 labels; header ``X-Embedding-Ready`` (1/0). Queues the
  neighbours' embeddings in the background (model mode).
- ``POST /api/interact`` ``{kind, view, slice, box|point|points, radius, erase, direction,
  positive}`` (``scribble`` / ``lasso``: ``points`` and ``positive``; only with a native 3D
  model whose weights take them, else a one-line 400 naming the kind and the model);
  ``POST /api/undo``, ``/api/accept``, ``/api/label`` ``{name, colour}``, ``/api/select``
  ``{value}``, ``/api/overlap`` ``{policy}``, ``/api/open`` ``{item_id}``: each answers the
  state (``result`` beside it for interact and accept).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Header
from fastapi.responses import Response

from sambench.annotate.server import (
    JsonBody,
    bind_socket,
    session_app,
)
from sambench.annotate.state import RequestError
from sambench.annotate.volume_state import VolumeState


def create_volume_app(
    state: VolumeState, *, host: str = "127.0.0.1", port: int | None = None,
    token: str | None = None,
) -> FastAPI:  # fmt: skip
    """The app of one volume session (see the module docstring); one lock for state changes."""
    app, lock, tabs, locked = session_app(
        "sambench annotate-volume",
        "volume.html",
        state.view,
        host=host,
        port=port,
        token=token,
        with_result=True,
    )

    @app.get("/api/slice")
    def get_slice(view: str, k: int, x_sambench_tab: str | None = Header(None)) -> Response:
        with lock:
            tabs.check(x_sambench_tab)
            img = state.image_slice(view, k)
            lab = state.label_slice(view, k)
            ready = state.embedding_ready(view, k)
            state.hint(view, k)
        data = img.astype("<f4").tobytes() + lab.tobytes()
        return Response(
            data,
            media_type="application/octet-stream",
            headers={"X-Embedding-Ready": "1" if ready else "0", "Cache-Control": "no-store"},
        )

    def _int(body: dict[str, Any], name: str) -> int:
        v = body.get(name)
        if not isinstance(v, int) or isinstance(v, bool):
            raise RequestError(400, f"{name}: expected an integer")
        return v

    def _str(body: dict[str, Any], name: str) -> str:
        v = body.get(name)
        if not isinstance(v, str):
            raise RequestError(400, f"{name}: expected a string")
        return v

    @app.post("/api/interact")
    def interact(body: JsonBody, x_sambench_tab: str | None = Header(None)) -> Any:
        kind = _str(body, "kind")
        return locked(x_sambench_tab, lambda: state.interact(kind, body))

    @app.post("/api/undo")
    def undo(body: JsonBody, x_sambench_tab: str | None = Header(None)) -> Any:
        return locked(x_sambench_tab, state.undo)

    @app.post("/api/accept")
    def accept(body: JsonBody, x_sambench_tab: str | None = Header(None)) -> Any:
        return locked(x_sambench_tab, state.accept)

    @app.post("/api/label")
    def add_label(body: JsonBody, x_sambench_tab: str | None = Header(None)) -> Any:
        name = _str(body, "name")
        colour = body.get("colour")

        def add() -> None:
            state.select_label(state.add_label(name, None, colour))

        return locked(x_sambench_tab, add)

    @app.post("/api/select")
    def select(body: JsonBody, x_sambench_tab: str | None = Header(None)) -> Any:
        value = _int(body, "value")
        return locked(x_sambench_tab, lambda: state.select_label(value))

    @app.post("/api/overlap")
    def overlap(body: JsonBody, x_sambench_tab: str | None = Header(None)) -> Any:
        policy = _str(body, "policy")
        return locked(x_sambench_tab, lambda: state.set_overlap(policy))

    @app.post("/api/open")
    def open_item(body: JsonBody, x_sambench_tab: str | None = Header(None)) -> Any:
        item_id = _str(body, "item_id")
        return locked(x_sambench_tab, lambda: state.open(item_id))

    return app


def make_volume_server(state: VolumeState, host: str, port: int) -> tuple[Any, Any]:
    """A uvicorn server for ``state`` and its bound socket; ``server.run(sockets=[sock])``."""
    import uvicorn

    sock = bind_socket(host, port)
    app = create_volume_app(state, host=host, port=sock.getsockname()[1])
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    return uvicorn.Server(config), sock
