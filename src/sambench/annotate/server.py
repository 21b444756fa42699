"""The annotator's HTTP API and page (FastAPI), and the server that binds it (uvicorn).

Routes (JSON bodies; every ``/api`` route but the image one needs the header ``X-Sambench-Tab``,
the random id the page makes when it opens):

- ``GET /``: the page; ``GET /static/<file>``: its JS and CSS, from the package (no CDN).
- ``POST /api/claim``: the tab takes the session; a second tab gets 409 while the first one is
  alive (it calls ``/api/heartbeat`` every few seconds; a tab silent for ``TAB_STALE_S`` is gone).
- ``GET /api/state``: the view of the object in progress (:meth:`AnnotationState.view`).
- ``GET /api/image/<image_id>``: the prepared image (ids outside the manifest: 404). Never the
  ground truth: no route reads the prepared label maps.
- ``GET /api/mask``: the current mask, PNG 0/255.
- ``POST /api/interact`` ``{image_id, label_value, kind, box|point|points, radius, erase}``;
  ``POST /api/undo``, ``/api/accept`` ``{image_id, label_value}``; ``POST /api/next_image``;
  ``POST /api/open`` ``{image_id}``: each answers the new view.

Refusals answer ``{"error": message}`` with 400 (bad field), 404 (unknown image), 409 (another tab,
or a request for an object that is no longer in progress).
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from sambench.annotate.state import AnnotationState, RequestError
from sambench.errors import OptionError

TAB_STALE_S = 15.0
TAB_HEADER = "X-Sambench-Tab"
JsonBody = Annotated[dict[str, Any], Body()]


def static_dir() -> Path:
    """The folder of the page's assets inside the installed package."""
    return Path(str(resources.files("sambench.annotate") / "static"))


class _TabGuard:
    """One browser tab owns the session; others are refused until it falls silent."""

    def __init__(self) -> None:
        self.owner: str | None = None
        self.seen = 0.0

    def check(self, tab: str | None, *, claim: bool = False) -> None:
        now = time.monotonic()
        if not tab:
            raise RequestError(400, f"header {TAB_HEADER}: missing; open the page at / instead")
        if self.owner in (None, tab) or (claim and now - self.seen > TAB_STALE_S):
            self.owner, self.seen = tab, now
            return
        raise RequestError(
            409,
            "this session is open in another browser tab or window; close it and reload this "
            f"page (a closed tab is released after {TAB_STALE_S:.0f} s)",
        )


def _key(body: dict[str, Any]) -> tuple[str, int]:
    image_id, value = body.get("image_id"), body.get("label_value")
    if not isinstance(image_id, str):
        raise RequestError(400, "image_id: expected a string")
    if not isinstance(value, int) or isinstance(value, bool):
        raise RequestError(400, "label_value: expected an integer")
    return image_id, value


def create_app(state: AnnotationState) -> FastAPI:
    """The FastAPI app of one session; all state changes run under one lock."""
    app = FastAPI(title="sambench annotate", docs_url=None, redoc_url=None, openapi_url=None)
    lock = threading.Lock()
    tabs = _TabGuard()
    static = static_dir()
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.exception_handler(RequestError)
    def _refused(request: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    def locked(tab: str | None, fn: Any, *, claim: bool = False) -> Any:
        with lock:
            tabs.check(tab, claim=claim)
            fn()
            return state.view()

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(static / "index.html", headers={"Cache-Control": "no-store"})

    @app.post("/api/claim")
    def claim(x_sambench_tab: str | None = Header(None)) -> Any:
        return locked(x_sambench_tab, lambda: None, claim=True)

    @app.post("/api/heartbeat")
    def heartbeat(x_sambench_tab: str | None = Header(None)) -> Any:
        with lock:
            tabs.check(x_sambench_tab)
        return {"ok": True}

    @app.get("/api/state")
    def get_state(x_sambench_tab: str | None = Header(None)) -> Any:
        return locked(x_sambench_tab, lambda: None)

    @app.get("/api/image/{image_id}")
    def image(image_id: str) -> Response:
        with lock:
            path = state.image_path(image_id)
        return FileResponse(path, media_type="image/png")

    @app.get("/api/mask")
    def mask(x_sambench_tab: str | None = Header(None)) -> Response:
        with lock:
            tabs.check(x_sambench_tab)
            return Response(state.mask_png(), media_type="image/png")

    @app.post("/api/interact")
    def interact(body: JsonBody, x_sambench_tab: str | None = Header(None)) -> Any:
        kind = body.get("kind")
        if not isinstance(kind, str):
            raise RequestError(400, "kind: expected a string")
        return locked(x_sambench_tab, lambda: state.interact(*_key(body), kind, body))

    @app.post("/api/undo")
    def undo(body: JsonBody, x_sambench_tab: str | None = Header(None)) -> Any:
        return locked(x_sambench_tab, lambda: state.undo(*_key(body)))

    @app.post("/api/accept")
    def accept(body: JsonBody, x_sambench_tab: str | None = Header(None)) -> Any:
        return locked(x_sambench_tab, lambda: state.accept(*_key(body)))

    @app.post("/api/next_image")
    def next_image(x_sambench_tab: str | None = Header(None)) -> Any:
        return locked(x_sambench_tab, state.next_image)

    @app.post("/api/open")
    def open_image(body: JsonBody, x_sambench_tab: str | None = Header(None)) -> Any:
        image_id = body.get("image_id")
        if not isinstance(image_id, str):
            raise RequestError(400, "image_id: expected a string")
        return locked(x_sambench_tab, lambda: state.open_image(image_id))

    return app


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free one).

    A port in use raises :class:`OptionError` naming ``--port``.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if os.name != "nt":  # restart at once after a kill (TIME_WAIT); a live listener still refuses
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise OptionError(
                "--port", f"{port} on {host} is already in use; choose another with --port"
            ) from None
        raise OptionError("--host", f"cannot listen on {host}:{port} ({e.strerror})") from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def make_server(state: AnnotationState, host: str, port: int) -> tuple[Any, socket.socket]:
    """A uvicorn server for ``state`` and its bound socket; ``server.run(sockets=[sock])``."""
    import uvicorn

    sock = bind_socket(host, port)
    config = uvicorn.Config(create_app(state), log_level="warning", access_log=False)
    return uvicorn.Server(config), sock
