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
or a request for an object that is no longer in progress), 403 (the checks below), 413 (a body over
``MAX_BODY_BYTES``). Refusals never echo a whole value back (:func:`~sambench.annotate.state.shown`).

Every request is checked before any route runs (:class:`_Guard`, docs/annotate.md "Security"):

- ``Host`` must name this server: 127.0.0.1, localhost, [::1] or the ``--host`` given, with the
  port it listens on (so a page elsewhere that rebinds its own name to 127.0.0.1 is refused);
  a wildcard ``--host`` (0.0.0.0, ::, with ``--allow-remote``) also accepts any IP address and
  this machine's name.
- ``Origin``, when present, must be this server's own origin; a state-changing request (POST...)
  must carry it (browsers always send it on a POST).
- every ``/api`` route needs the header ``X-Sambench-Token``: a random token made when the app is
  created and written into the page (``<meta name="sambench-token">``), which only a page served
  by this server can read.
- a body over ``MAX_BODY_BYTES`` is refused with 413 before more than that is read.
"""

from __future__ import annotations

import errno
import hmac
import ipaddress
import os
import re
import secrets
import socket
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sambench.annotate.state import AnnotationState, RequestError, shown
from sambench.errors import OptionError

TAB_STALE_S = 15.0
TAB_HEADER = "X-Sambench-Tab"
TOKEN_HEADER = "X-Sambench-Token"
TOKEN_PLACEHOLDER = "__SAMBENCH_TOKEN__"  # in static/index.html; replaced by the session's token
MAX_BODY_BYTES = 1 << 20  # 1 MiB: a 10,000-point stroke is ~120 kB
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PAGE_HEADERS = {  # no framing by another page (clickjacking)
    "Cache-Control": "no-store",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
}
JsonBody = Annotated[dict[str, Any], Body()]
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_HOST_HEADER = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^:\[\]/@\s]+)(?::([0-9]{1,5}))?")


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP literal or a name, unresolved) is this machine only."""
    ip = _ip(host)
    if ip is not None:
        return ip.is_loopback
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def check_host(host: str, *, allow_remote: bool = False) -> str:
    """The ``--host`` to listen on, checked without any DNS lookup; IPv6 without brackets.

    Refused (:class:`OptionError` naming ``--host``): anything but an IP literal or a host name
    (RFC 1123 labels; a name under ``.invalid`` never resolves, RFC 6761), and a host reachable
    from other machines (0.0.0.0, ::, a LAN address or name) unless ``allow_remote``
    (``--allow-remote``): the app has no login.
    """
    bare = host.strip()
    bracketed = bare.startswith("[") and bare.endswith("]")
    bare = bare[1:-1] if bracketed else bare
    ip = _ip(bare)
    if ip is None or (bracketed and ip.version == 4):
        last = bare.rstrip(".").rsplit(".", 1)[-1]
        if not _HOSTNAME.fullmatch(bare) or len(bare) > 253 or last.isdigit():
            raise OptionError(
                "--host",
                "expected an IP address (127.0.0.1, ::1, 0.0.0.0) or a host name (localhost), "
                f"got {shown(host)}",
            )
        if last.lower() == "invalid":
            raise OptionError("--host", f"{shown(host)} is a reserved name that never resolves")
    else:
        bare = str(ip)
    if not allow_remote and not is_loopback(bare):
        raise OptionError(
            "--host",
            f"{shown(bare)} is reachable from other machines and the annotator has no login; "
            "add --allow-remote to serve it there anyway (trusted networks only)",
        )
    return bare


def remote_warning(host: str) -> str:
    """What ``sambench annotate --allow-remote`` prints on stderr for a non-loopback host."""
    return (
        f"warning: --host {host} --allow-remote: other machines can reach this server, and anyone "
        "who can may see the prepared images and annotate (the app has no login)"
    )


def _split_host(value: str) -> tuple[str, int | None] | None:
    """(name, port or None) of a ``Host`` value (``name[:port]``, ``[v6][:port]``); None if bad."""
    m = _HOST_HEADER.fullmatch(value.strip())
    if m is None:
        return None
    ip = _ip(m.group(1))
    name = str(ip) if ip is not None else m.group(1).lower().rstrip(".")
    return name, int(m.group(2)) if m.group(2) else None


class _Guard:
    """The checks every request passes before the app sees it (see the module docstring).

    A pure ASGI middleware, so a body is refused before it is read: a ``Content-Length`` over
    ``MAX_BODY_BYTES`` at once, a chunked body as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, *, host: str, port: int | None, token: str) -> None:
        self.app = app
        self.port = port
        self.token = token.encode()
        ip = _ip(host)
        self.names = {*LOOPBACK_NAMES, str(ip) if ip is not None else host.lower().rstrip(".")}
        self.wildcard = ip is not None and ip.is_unspecified  # 0.0.0.0, ::
        if self.wildcard:
            self.names.add(socket.gethostname().lower())
        shown_names = ", ".join(f"[{n}]" if ":" in n else n for n in sorted(self.names))
        self.expected = shown_names + ("" if port is None else f" with port {port}")

    def _host_ok(self, value: str | None) -> tuple[str, int | None] | None:
        parsed = _split_host(value) if value else None
        if parsed is None:
            return None
        name, port = parsed
        if name not in self.names and not (self.wildcard and _ip(name) is not None):
            return None
        if self.port is not None and (port or 80) != self.port:
            return None
        return parsed

    def problem(self, scope: Scope) -> tuple[int, str] | None:
        """(status, message) of the first check ``scope`` fails, or None."""
        headers = Headers(scope=scope)
        host = headers.get("host")
        parsed = self._host_ok(host)
        if parsed is None:
            return 403, (
                f"Host {shown(host or '')}: this server answers only as {self.expected} "
                "(a page of another site cannot use it)"
            )
        origin = headers.get("origin")
        if origin is None:
            if scope["method"] not in SAFE_METHODS:
                return 403, (
                    f"Origin header missing: a {scope['method']} must come from the annotator's "
                    "own page"
                )
        else:
            scheme, sep, rest = origin.partition("://")
            theirs = _split_host(rest) if sep and scheme.lower() == "http" else None
            if theirs is None or (theirs[0], theirs[1] or 80) != (parsed[0], parsed[1] or 80):
                return 403, f"Origin {shown(origin)}: requests from another site are refused"
        if scope["path"].startswith("/api/"):
            got = headers.get(TOKEN_HEADER)
            if got is None or not hmac.compare_digest(got.encode("latin-1"), self.token):
                return 403, (
                    f"header {TOKEN_HEADER}: missing or wrong; reload the page (the token changes "
                    "each time the server starts)"
                )
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return 413, f"request body: larger than {MAX_BODY_BYTES} bytes"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self.problem(scope)
        if refused is None:  # read the body here, at most MAX_BODY_BYTES of it
            chunks: list[bytes] = []
            size, more = 0, True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                more = message.get("more_body", False)
                if size > MAX_BODY_BYTES:
                    refused = 413, f"request body: larger than {MAX_BODY_BYTES} bytes"
                    break
        if refused is not None:
            status, text = refused
            await JSONResponse({"error": text}, status_code=status)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)


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


SessionApp = tuple[FastAPI, threading.Lock, "_TabGuard", Any]


def session_app(
    title: str,
    page_file: str,
    view: Any,
    *,
    host: str,
    port: int | None,
    token: str | None,
    with_result: bool = False,
) -> SessionApp:
    """What both annotators' apps share: the FastAPI app with its security (the ``_Guard``
    middleware: Host, Origin, token, size caps), its two error answers, the static folder, the
    page ``page_file`` with its token, one lock, the tab guard, and the routes ``/``,
    ``/api/claim``, ``/api/heartbeat`` and ``/api/state``. Returns ``(app, lock, tabs, locked)``:
    ``locked(tab, fn, claim=False)`` runs ``fn`` under the lock for the tab that holds the
    session and answers ``view()`` (with ``result``: ``fn``'s return value when not None)."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    lock = threading.Lock()
    tabs = _TabGuard()
    static = static_dir()
    app.state.token = token or secrets.token_urlsafe(32)
    page = (
        (static / page_file).read_text(encoding="utf-8").replace(TOKEN_PLACEHOLDER, app.state.token)
    )
    app.mount("/static", StaticFiles(directory=static), name="static")
    app.add_middleware(_Guard, host=host, port=port, token=app.state.token)

    @app.exception_handler(RequestError)
    def _refused(request: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    def _bad_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer echoes the whole body back; say what was expected instead
        return JSONResponse({"error": "body: expected a JSON object"}, status_code=400)

    def locked(tab: str | None, fn: Any, *, claim: bool = False) -> Any:
        with lock:
            tabs.check(tab, claim=claim)
            result = fn()
            out = view()
            if with_result and result is not None:
                out["result"] = result
            return out

    @app.get("/")
    def index() -> HTMLResponse:
        return HTMLResponse(page, headers=PAGE_HEADERS)

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

    return app, lock, tabs, locked


def create_app(
    state: AnnotationState,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    token: str | None = None,
) -> FastAPI:
    """The FastAPI app of one session; all state changes run under one lock.

    ``host``, ``port``: where it is served (the ``Host`` names it answers to; ``port`` None: any
    port, for an in-process client). ``token``: the page's API token (default: a random one;
    ``app.state.token``).
    """
    app, lock, tabs, locked = session_app(
        "sambench annotate", "index.html", state.view, host=host, port=port, token=token
    )

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
    app = create_app(state, host=host, port=sock.getsockname()[1])
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    return uvicorn.Server(config), sock
