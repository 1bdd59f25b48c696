"""Serve an ASGI app on a background thread: uvicorn with its ``httptools`` parser, and the kiosk's rules
for requests that never reach the app.

The kiosk API and the installer console are Starlette apps (docs/kiosk-console.md says why). What an
app cannot see is a request the HTTP parser already refused; the stock protocol answers those in
plain text and logs a WARNING for each, so a flood of garbage would become a flood of log lines and
an answer that is not the documented JSON. :class:`_KioskProtocol` keeps uvicorn's protocol and
changes only that edge:

- a request the parser refuses gets ``{"error", "status"}`` and is reported to ``on_refusal`` (the
  owner audits it, aggregated: :mod:`edge.kiosk.refusals`): a method HTTP does not define (501),
  anything that is not HTTP (400), a request line over 64 KiB (414), a header line over 64 KiB, more
  than 100 headers or a head over 1 MiB (431) — the limits of the stdlib server the API used before,
  so clients see the same answers;
- a client that trickles its head (slowloris) is disconnected after ``HEAD_TIMEOUT_S``;
- a connection beyond ``MAX_CONNECTIONS`` open at once is answered 503 at once and closed (audited like
  the other refusals), so a crowd of idle sockets cannot exhaust the kiosk's file descriptors and
  memory; the connections already open are served as before;
- closing after a refusal is a *lingering* close (Apache's lingering_close, RFC 9112 §9.6): closing
  with unread input makes the kernel send RST, which can destroy the answer at the client, so the
  server half-closes, drops what still arrives (bounded) and closes at the client's EOF or after
  ``LINGER_S``.

The listening socket is bound by :meth:`BackgroundServer.start` itself, so "port in use" is an
``OSError`` in the caller's thread (the caller names its config key) and port 0 works.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from typing import Any

from edge.errors import ConfigError, EdgefasError, import_optional
from edge.kiosk.refusals import Refusal, RefusalAudit, printable

log = logging.getLogger(__name__)

MAX_REQUEST_LINE = 65536  # the stdlib server's limit (http.server _MAXLINE): 414 above it
MAX_HEADER_LINE = 65536  # same limit per header line: 431 above it
MAX_HEADERS = 100  # http.client's and http.server's limit: 431 above it
MAX_HEAD_BYTES = 1 << 20  # a head still incomplete after 1 MiB is refused (431): bounds memory per connection
HEAD_TIMEOUT_S = 5.0  # a client that trickles its request (slowloris) is disconnected after this
KEEP_ALIVE_S = 5.0  # an idle kept-alive connection is closed after this (uvicorn's default)
LINGER_S, LINGER_MAX_BYTES = 0.5, 1 << 20  # lingering close: how long and how much to drain
START_TIMEOUT_S = 30.0  # the server thread reports "started" within this, or start() fails
MAX_CONNECTIONS = 64  # open at once, per server: a kiosk's clients and a few console viewers
STOP_GRACE_S = 1.0  # open requests (a viewer's long poll) get this long to finish at stop()
SERVER_HEADER = "edgefas-kiosk"
TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token: what a method name may be

RefusalSink = Callable[[Refusal, str, str], None]  # (refusal, peer, action): audit it (aggregated)


def refusal_bytes(refusal: Refusal) -> bytes:
    """A complete HTTP/1.1 answer carrying the refusal's JSON, closing the connection."""
    body = json.dumps(refusal.body(), separators=(",", ":")).encode("utf-8")
    lines = [f"HTTP/1.1 {refusal.status.value} {refusal.status.phrase}", "Content-Type: application/json",
             f"Content-Length: {len(body)}", "Cache-Control: no-store", "Connection: close",
             f"Server: {SERVER_HEADER}"]
    lines += [f"{name}: {value}" for name, value in refusal.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def periodic_lifespan(task: Callable[[], None], every_s: float) -> Callable[[Any], Any]:
    """A Starlette ``lifespan`` running the blocking ``task`` every ``every_s`` on a worker thread while
    the app serves (the refusal aggregates of ended intervals are written this way)."""
    from starlette.concurrency import run_in_threadpool

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async def repeat() -> None:
            while True:
                await asyncio.sleep(every_s)
                await run_in_threadpool(task)

        running = asyncio.create_task(repeat())
        try:
            yield
        finally:
            running.cancel()

    return lifespan


class _LingeringTransport:
    """The connection's transport, with :meth:`close` turned into a lingering close."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self.lingering = False
        self._drained = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        if self.lingering or self._transport.is_closing():
            return
        self.lingering = True
        try:
            if not self._transport.can_write_eof():
                self._transport.close()
                return
            self._transport.write_eof()  # FIN after the answer; the client's EOF then closes (eof_received)
        except (OSError, RuntimeError):  # reset or already half-closed: nothing left to protect
            self._transport.close()
            return
        self._loop.call_later(LINGER_S, self._transport.close)

    def drain(self, size: int) -> None:
        """Input that arrived after the answer: dropped, up to ``LINGER_MAX_BYTES``."""
        self._drained += size
        if self._drained > LINGER_MAX_BYTES:
            self._transport.close()


def _protocol_class() -> type:
    """uvicorn's httptools protocol with the kiosk's edge rules (imported on first use: a kiosk extra)."""
    httptools = import_optional("httptools", "kiosk", "the kiosk's HTTP server")
    impl = import_optional("uvicorn.protocols.http.httptools_impl", "kiosk", "the kiosk's HTTP server")

    class _KioskProtocol(impl.HttpToolsProtocol):
        def __init__(self, *args: Any, on_refusal: RefusalSink, max_connections: int, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._max_connections = max_connections
            self.logger = log  # uvicorn logs only real failures here ("Exception in ASGI application")
            self._on_refusal = on_refusal
            self._reading_head, self._head_bytes, self._first_line = True, 0, b""
            self._refusal: Refusal | None = None
            self._head_timer: asyncio.TimerHandle | None = None

        # -- connection ------------------------------------------------------------------------------

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(_LingeringTransport(transport, self.loop))  # type: ignore[arg-type]
            if len(self.connections) > self._max_connections:  # uvicorn's own limit logs a WARNING per request
                self._refuse(Refusal(HTTPStatus.SERVICE_UNAVAILABLE, f"more than {self._max_connections} "
                                     "connections open at once; try again", headers=(("Retry-After", "1"),)))
                return
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.transport.lingering:
                self.transport.drain(len(data))
                return
            self._unset_keepalive_if_required()
            if self._reading_head:
                if not self._first_line:
                    self._first_line = data.split(b"\r\n", 1)[0]
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEAD_BYTES:
                    self._refuse(self._refusal or Refusal(
                        HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"request head over {MAX_HEAD_BYTES} bytes"))
                    return
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                pass  # no protocol switch offered: the request is answered as plain HTTP
            except httptools.HttpParserError as exc:
                self._refuse(self._refusal or self._classify(exc))

        def on_response_complete(self) -> None:
            self._reading_head, self._head_bytes, self._first_line = True, 0, b""
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_head_timer()

        # -- parser callbacks: the limits ---------------------------------------------------------

        def on_url(self, url: bytes) -> None:
            super().on_url(url)
            if len(self.url) > MAX_REQUEST_LINE:
                self._refusal = Refusal(HTTPStatus.REQUEST_URI_TOO_LONG,
                                        f"request target over {MAX_REQUEST_LINE} bytes")
                raise ValueError(str(self._refusal))

        def on_header(self, name: bytes, value: bytes) -> None:
            super().on_header(name, value)
            if len(name) + len(value) + 2 > MAX_HEADER_LINE:
                self._refusal = Refusal(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                                        f"a header line is over {MAX_HEADER_LINE} bytes")
            elif len(self.headers) > MAX_HEADERS:
                self._refusal = Refusal(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"more than {MAX_HEADERS} headers")
            if self._refusal is not None:
                raise ValueError(str(self._refusal))

        def on_headers_complete(self) -> None:
            self._reading_head = False
            self._cancel_head_timer()
            super().on_headers_complete()

        # -- refusing ---------------------------------------------------------------------------------

        def _classify(self, exc: Exception) -> Refusal:
            if isinstance(exc, httptools.HttpParserInvalidMethodError):
                method = self._first_line.split(b" ", 1)[0]
                if b" " in self._first_line and TOKEN.fullmatch(method):
                    return Refusal(HTTPStatus.NOT_IMPLEMENTED, f"method {method.decode('ascii')} is not supported")
                return Refusal(HTTPStatus.BAD_REQUEST, "not an HTTP request")
            return Refusal(HTTPStatus.BAD_REQUEST, f"malformed HTTP request ({exc})")

        def _refuse(self, refusal: Refusal) -> None:
            self._cancel_head_timer()
            peer = self.client[0] if self.client else "?"
            action = printable(self._first_line.decode("latin-1")) or "(no request line)"
            self._on_refusal(refusal, peer, action)
            self.transport.write(refusal_bytes(refusal))
            self.transport.close()

        def _arm_head_timer(self) -> None:
            self._cancel_head_timer()
            self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self._reading_head and not self.transport.is_closing():
                log.debug("http client %s sent no complete request in %g s; closed", self.client, HEAD_TIMEOUT_S)
                self.transport.close()

    return _KioskProtocol


class BackgroundServer:
    """One ASGI app on one address, served by uvicorn on a daemon thread between start() and stop()."""

    def __init__(self, app: Any, host: str, port: int, name: str, on_refusal: RefusalSink,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.app, self.host, self.port, self.name = app, host, port, name
        self.on_refusal, self.max_connections = on_refusal, max_connections
        self._socket: socket.socket | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        if self._socket is None:
            raise ValueError(f"{self.name}: the address is only known after start()")
        host, port = self._socket.getsockname()[:2]
        return host, port

    def start(self) -> None:
        """Bind (``OSError`` when the port is taken), then serve; returns once the app has started."""
        uvicorn = import_optional("uvicorn", "kiosk", f"the {self.name}")
        protocol = functools.partial(_protocol_class(), on_refusal=self.on_refusal, max_connections=self.max_connections)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart is not blocked by TIME_WAIT
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self._socket = sock
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # no start-up banner in the kiosk's log
        config = uvicorn.Config(self.app, http=protocol, ws="none", lifespan="on", log_config=None,
                                access_log=False, server_header=False, headers=[("server", SERVER_HEADER)],
                                timeout_keep_alive=int(KEEP_ALIVE_S), timeout_graceful_shutdown=int(STOP_GRACE_S))
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name=self.name,
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise EdgefasError(f"the {self.name} did not start within {START_TIMEOUT_S:g} s (see the log above)")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving (idempotent, safe after a failed start); open requests get ``STOP_GRACE_S``."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=STOP_GRACE_S + 5.0)
            self._thread = None
        self._server = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class ServedApp:
    """What the kiosk API and the installer console share: one :class:`BackgroundServer` between
    :meth:`serve` and :meth:`stop_serving`, and refusals audited in aggregate by ``self.refusals``."""

    refusals: RefusalAudit
    max_connections: int = MAX_CONNECTIONS  # open at once; one more is answered 503
    _server: BackgroundServer | None = None

    def refused(self, refusal: Refusal, peer: str, action: str) -> None:
        """Audit a refusal (aggregated); an audit failure is logged, the refusal is still answered."""
        self.refusals.report(refusal, action, peer)

    def flush_refusals(self, *, everything: bool = False) -> None:
        self.refusals.flush_logged(everything=everything)

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise ValueError(f"{type(self).__name__}.address is only known after start()")
        return self._server.address

    def serve(self, app: Any, host: str, port: int, name: str, section: str) -> None:
        """Listen on host:port; a port that is taken is a one-line :class:`ConfigError` naming ``[section] port``."""
        server = BackgroundServer(app, host, port, name, self.refused, self.max_connections)
        try:
            server.start()
        except OSError as exc:
            raise ConfigError(f"the {name} cannot listen on {host}:{port} ({exc.strerror}); "
                              f"change [{section}] port or stop what uses it") from None
        self._server = server

    def stop_serving(self) -> None:
        """Stop serving (idempotent, safe after a failed start) and write pending refusal rows."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.flush_refusals(everything=True)
