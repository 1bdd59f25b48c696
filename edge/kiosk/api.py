"""The local HTTP API that kiosk applications ask "is the person in front of the camera live?".

Endpoints (JSON in, JSON out, ``Cache-Control: no-store``):
- ``POST /v1/decision`` with ``{"nonce": "<16-128 url-safe chars>"}``: the newest decision as a
  signed token bound to that nonce (:mod:`edge.kiosk.tokens`), plus its state and reason in clear
  for display. A token is the only thing a kiosk app should act on.
- ``GET /healthz``: every part the door depends on (camera, runner, policy, actuator, audit log) and
  which are down; 200 when all are fine, else 503.

Everything refused gets the JSON ``{"error": ..., "status": ...}``, never opens anything, and is
audited, aggregated per kind and minute (:mod:`edge.kiosk.refusals`): a caller over its rate limit
(429, :mod:`edge.kiosk.rate_limit`), outside ``[api] allow`` (403), a body over 4 KiB (413, not
read), no Content-Length (411), malformed JSON or nonce (400), unknown path (404), wrong method
(405), and what ``http.server`` refuses before we see a request: a garbage request line (400), a
path over 64 KiB (414), a header line over 64 KiB or over 100 headers (431), a method HTTP does not
define (501), an HTTP version we do not speak (505). A client that disconnects is logged at DEBUG,
never as a traceback. Bound to 127.0.0.1 by default. Served by the stdlib ``ThreadingHTTPServer``:
one thread per connection, so providers must be thread-safe. The rules (admission, body length,
nonce parsing, answers, refusal auditing) live in :class:`KioskApi` and the functions below, not in
the handler class, so they move unchanged to another HTTP framework.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from edge.errors import ConfigError
from edge.kiosk.audit import AuditError, AuditLog
from edge.kiosk.config import ApiConfig
from edge.kiosk.rate_limit import RateLimiter
from edge.kiosk.refusals import Refusal, RefusalAudit
from edge.kiosk.tokens import TokenClaims, TokenKey, sign_token

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4096  # a nonce request is < 200 bytes; 4 KiB leaves room and bounds memory per request
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")  # base64url alphabet; 16 chars >= 96 bits if random
SOCKET_TIMEOUT_S = 5.0  # a client that trickles its request (slowloris) loses its thread after this
SHUTDOWN_POLL_S = 0.1  # serve_forever's poll interval: how long stop() may wait for the loop to notice
# Lingering close (Apache's lingering_close, RFC 9112 §9.6): after a refusal sent before the request
# was read to its end (414, 431, 413), closing with unread input makes the kernel send RST, which can
# destroy the answer at the client. Read and drop what still arrives, for this long and this much.
LINGER_S, LINGER_MAX_BYTES = 0.5, 1 << 20
DECISION_PATH, HEALTH_PATH = "/v1/decision", "/healthz"
ROUTES = {DECISION_PATH: "POST", HEALTH_PATH: "GET"}  # path -> the one method it answers


@dataclass(frozen=True)
class HealthReport:
    """What ``GET /healthz`` shows: one line per part the door depends on, and which parts are down
    ("pipeline": camera, runner or the decision loop; "actuator"; "audit"). ``ok`` is True only when
    nothing is down: a door whose actuator is disconnected cannot open, and somebody must be told."""

    ok: bool
    camera: str
    runner: str
    policy: str
    actuator: str
    audit: str = "ok"
    down: tuple[str, ...] = ()


def body_length(content_length: str | None, transfer_encoding: str | None) -> int:
    """The request body's length from its headers, or a :class:`Refusal` (411, 400, 413)."""
    if transfer_encoding:
        raise Refusal(HTTPStatus.LENGTH_REQUIRED, "chunked bodies are not accepted; send Content-Length")
    if content_length is None:
        raise Refusal(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
    text = content_length.strip()
    if not (text.isascii() and text.isdigit()):
        raise Refusal(HTTPStatus.BAD_REQUEST, "Content-Length must be a non-negative integer")
    length = int(text)
    if length > MAX_BODY_BYTES:
        raise Refusal(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body of {length} bytes exceeds {MAX_BODY_BYTES}")
    return length


def parse_nonce(raw: bytes) -> str:
    """The nonce of a ``{"nonce": "..."}`` body, or a 400 :class:`Refusal`.

    ``RecursionError`` is a refusal too: 4 KiB of ``[`` nests deeper than the json module recurses.
    """
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refusal(HTTPStatus.BAD_REQUEST, "body must be JSON: {\"nonce\": \"...\"}") from None
    if not isinstance(body, dict) or set(body) != {"nonce"}:
        raise Refusal(HTTPStatus.BAD_REQUEST, "body must be exactly {\"nonce\": \"...\"}")
    nonce = body["nonce"]
    if not isinstance(nonce, str) or not NONCE_PATTERN.fullmatch(nonce):
        raise Refusal(HTTPStatus.BAD_REQUEST, "nonce must be 16 to 128 characters of A-Z a-z 0-9 _ -")
    return nonce


class _Handler(BaseHTTPRequestHandler):
    """HTTP mechanics only: read, hand to :class:`KioskApi`, write JSON."""

    server_version = "edgefas-kiosk"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's signature
        log.debug("api %s " + format, self.client_address[0], *args)

    def _send(self, status: HTTPStatus, body: dict, headers: tuple[tuple[str, str], ...] = ()) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        if self.request_version == "HTTP/0.9":  # an unparsed request line: answer with a status line anyway
            self.request_version = "HTTP/1.0"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers:
            self.send_header(name, value)
        if status >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _refuse(self, refusal: Refusal, action: str) -> None:
        self.server.api.refused(refusal, self.client_address[0], action)
        self._send(refusal.status, refusal.body(), refusal.headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line 400, 414, 431, 501, 505) in our shape, audited."""
        status = HTTPStatus(code)
        self._refuse(Refusal(status, message or status.phrase), self.requestline or "(no request line)")

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":  # no headers, no Content-Length: nothing we could answer
            self.send_error(HTTPStatus.BAD_REQUEST, "HTTP/1.0 or HTTP/1.1 is required")
            return False
        return True

    def _handle(self) -> None:
        api, peer, action = self.server.api, self.client_address[0], f"{self.command} {self.path}"
        try:
            api.admit(peer, self.command, self.path)
            if self.path == DECISION_PATH:
                length = body_length(self.headers.get("Content-Length"), self.headers.get("Transfer-Encoding"))
                status, body = HTTPStatus.OK, api.decide(self.rfile.read(length), peer, action)
            else:
                status, body = api.healthz()
        except Refusal as refusal:
            self._refuse(refusal, action)
            return
        self._send(status, body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle  # noqa: N815 - stdlib names


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: KioskApi

    def shutdown_request(self, request: socket.socket) -> None:
        """Half-close, drain what the client still sends (bounded), then close: see ``LINGER_S``."""
        try:
            request.shutdown(socket.SHUT_WR)
            request.settimeout(LINGER_S)
            deadline, drained = time.monotonic() + LINGER_S, 0
            while time.monotonic() < deadline and drained < LINGER_MAX_BYTES:
                chunk = request.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:  # reset, timed out, already closed: nothing more to protect
            pass
        self.close_request(request)

    def service_actions(self) -> None:
        """Called by ``serve_forever`` every poll interval: write the aggregates of ended intervals."""
        self.api.flush_refusals()

    def handle_error(self, request: object, client_address: tuple) -> None:
        """A client that went away (reset, broken pipe, timeout) is routine: DEBUG, no traceback on stderr."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, http.client.HTTPException)):
            log.debug("api client %s went away: %s", client_address[0], exc)
            return
        log.error("api request from %s failed", client_address[0], exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class KioskApi:
    """Serves the endpoints above on a background thread between :meth:`start` and :meth:`stop`.

    ``claims_for(nonce)`` returns the claims of the newest decision (the service decides what
    "newest" and "too old" mean); the API signs them. ``health()`` returns a :class:`HealthReport`.
    ``clock`` (monotonic seconds) drives the rate limit and the refusal intervals.
    """

    def __init__(self, config: ApiConfig, key: TokenKey, claims_for: Callable[[str], TokenClaims],
                 health: Callable[[], HealthReport], audit: AuditLog, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.key = key
        self._claims_for = claims_for
        self.health = health
        self.audit = audit
        self.limiter = RateLimiter(config.rate_per_s, config.burst, clock)
        self.refusals = RefusalAudit(audit, clock=clock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- the rules, independent of the HTTP server ----------------------------------------------------

    def admit(self, peer: str, method: str, path: str) -> None:
        """Rate limit, then address, then route; raises :class:`Refusal`."""
        wait_s = self.limiter.admit(peer)
        if wait_s > 0:
            raise Refusal(HTTPStatus.TOO_MANY_REQUESTS,
                          f"more than {self.config.burst} requests at once or {self.config.rate_per_s:g} a second "
                          f"from {peer}; retry in {wait_s:.1f} s", (("Retry-After", str(math.ceil(wait_s))),))
        if not self.config.admits(peer):
            raise Refusal(HTTPStatus.FORBIDDEN, f"address {peer} is not in [api] allow")
        allowed = ROUTES.get(path)
        if allowed is None:
            raise Refusal(HTTPStatus.NOT_FOUND, "unknown path; use POST /v1/decision or GET /healthz")
        if method != allowed:
            raise Refusal(HTTPStatus.METHOD_NOT_ALLOWED, f"use {allowed} for {path}", (("Allow", allowed),))

    def decide(self, raw_body: bytes, peer: str, action: str) -> dict:
        """Answer a decision request; the answer is audited before it is handed out (503 if it cannot be)."""
        body = self.answer_for(parse_nonce(raw_body))
        try:
            self.audit.record_event("api", action, "ok", f"state={body['state']} reason={body['reason']}",
                                    attempt_id=body["attempt_id"], peer=peer)
        except AuditError as exc:
            log.error("api: %s", exc)
            raise Refusal(HTTPStatus.SERVICE_UNAVAILABLE, "the audit log cannot be written; no decision is "
                                                          "handed out without its audit row") from None
        return body

    def answer_for(self, nonce: str) -> dict:
        claims = self._claims_for(nonce)
        return {"token": sign_token(claims, self.key), "state": claims.state, "reason": claims.reason,
                "attempt_id": claims.attempt_id, "expires_at_s": claims.expires_at_s}

    def healthz(self) -> tuple[HTTPStatus, dict]:
        report = self.health()
        return (HTTPStatus.OK if report.ok else HTTPStatus.SERVICE_UNAVAILABLE), asdict(report)

    def refused(self, refusal: Refusal, peer: str, action: str) -> None:
        """Audit a refusal (aggregated); an audit failure is logged, the refusal is still answered."""
        try:
            self.refusals.record(refusal, action, peer)
        except AuditError as exc:
            log.error("api: %s", exc)

    def flush_refusals(self, *, everything: bool = False) -> None:
        try:
            self.refusals.flush(everything=everything)
        except AuditError as exc:
            log.error("api: %s", exc)

    # -- serving ---------------------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise ValueError("KioskApi.address is only known after start()")
        return self._server.server_address[0], self._server.server_address[1]

    def start(self) -> None:
        server_class = _Server6 if ":" in self.config.host else _Server
        try:
            self._server = server_class((self.config.host, self.config.port), _Handler)
        except OSError as exc:
            raise ConfigError(f"the kiosk API cannot listen on {self.config.host}:{self.config.port} "
                              f"({exc.strerror}); change [api] port or stop what uses it") from None
        self._server.api = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="kiosk-api", daemon=True,
                                        kwargs={"poll_interval": SHUTDOWN_POLL_S})
        self._thread.start()
        log.info("kiosk api listening on http://%s:%d (allow: %s)", *self.address, ", ".join(self.config.allow))

    def stop(self) -> None:
        """Stop serving (idempotent, safe after a failed :meth:`start`) and write pending refusal rows."""
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()  # only a running serve_forever returns from shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=SOCKET_TIMEOUT_S)
            self._thread = None
        self.flush_refusals(everything=True)
