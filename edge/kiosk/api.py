"""The local HTTP API that kiosk applications ask "is the person in front of the camera live?".

Endpoints (JSON in, JSON out, ``Cache-Control: no-store``):
- ``POST /v1/decision`` with ``{"nonce": "<16-128 url-safe chars>"}``: the newest decision as a
  signed token bound to that nonce (:mod:`edge.kiosk.tokens`), plus its state and reason in clear
  for display. A token is the only thing a kiosk app should act on.
- ``GET /healthz``: camera, runner, policy and actuator state; 200 when all are fine, else 503.

Everything refused gets a 4xx JSON ``{"error": ..., "status": ...}``, never opens anything, and
leaves a line in the audit log: a caller outside ``[api] allow`` (403), a body over 4 KiB (413,
not read), no Content-Length (411), malformed JSON or nonce (400), unknown path (404), wrong method
(405). Bound to 127.0.0.1 by default. Served by the stdlib ``ThreadingHTTPServer``: one thread per
connection, so providers must be thread-safe.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from edge.errors import ConfigError
from edge.kiosk.audit import AuditLog
from edge.kiosk.config import ApiConfig
from edge.kiosk.tokens import TokenClaims, TokenKey, sign_token

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4096  # a nonce request is < 200 bytes; 4 KiB leaves room and bounds memory per request
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")  # base64url alphabet; 16 chars >= 96 bits if random
SOCKET_TIMEOUT_S = 5.0  # a client that trickles its request (slowloris) loses its thread after this
SHUTDOWN_POLL_S = 0.1  # serve_forever's poll interval: how long stop() may wait for the loop to notice


@dataclass(frozen=True)
class HealthReport:
    """What ``GET /healthz`` shows. ``ok`` is False when anything would keep decisions from being live."""

    ok: bool
    camera: str
    runner: str
    policy: str
    actuator: str


class _Refusal(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    server_version = "edgefas-kiosk"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's signature
        log.debug("api %s " + format, self.client_address[0], *args)

    def _send(self, status: HTTPStatus, body: dict) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        if status >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)

    def _handle(self, method: str) -> None:
        api = self.server.api
        peer = self.client_address[0]
        action = f"{method} {self.path}"
        try:
            if not api.config.admits(peer):
                raise _Refusal(HTTPStatus.FORBIDDEN, f"address {peer} is not in [api] allow")
            if self.path == "/v1/decision":
                if method != "POST":
                    raise _Refusal(HTTPStatus.METHOD_NOT_ALLOWED, "use POST for /v1/decision")
                nonce = self._read_nonce()
                status, body = HTTPStatus.OK, api.answer_for(nonce)
                api.audit.record_event("api", action, "ok", f"state={body['state']} reason={body['reason']}",
                                       attempt_id=body["attempt_id"], peer=peer)
            elif self.path == "/healthz":
                if method != "GET":
                    raise _Refusal(HTTPStatus.METHOD_NOT_ALLOWED, "use GET for /healthz")
                report = api.health()
                status, body = (HTTPStatus.OK if report.ok else HTTPStatus.SERVICE_UNAVAILABLE), asdict(report)
            else:
                raise _Refusal(HTTPStatus.NOT_FOUND, "unknown path; use POST /v1/decision or GET /healthz")
        except _Refusal as refusal:
            api.audit.record_event("api", action[:200], "refused", f"{refusal.status.value} {refusal}", peer=peer)
            log.warning("api refused %s from %s: %d %s", action[:200], peer, refusal.status.value, refusal)
            self._send(refusal.status, {"error": str(refusal), "status": refusal.status.value})
            return
        self._send(status, body)

    def _read_nonce(self) -> str:
        if self.headers.get("Transfer-Encoding"):
            raise _Refusal(HTTPStatus.LENGTH_REQUIRED, "chunked bodies are not accepted; send Content-Length")
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise _Refusal(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
        if not length_text.isdigit():
            raise _Refusal(HTTPStatus.BAD_REQUEST, "Content-Length must be a non-negative integer")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            raise _Refusal(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body of {length} bytes exceeds {MAX_BODY_BYTES}")
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _Refusal(HTTPStatus.BAD_REQUEST, "body must be JSON: {\"nonce\": \"...\"}") from None
        if not isinstance(body, dict) or set(body) != {"nonce"}:
            raise _Refusal(HTTPStatus.BAD_REQUEST, "body must be exactly {\"nonce\": \"...\"}")
        nonce = body["nonce"]
        if not isinstance(nonce, str) or not NONCE_PATTERN.fullmatch(nonce):
            raise _Refusal(HTTPStatus.BAD_REQUEST, "nonce must be 16 to 128 characters of A-Z a-z 0-9 _ -")
        return nonce

    def do_GET(self) -> None:  # noqa: N802 - stdlib dispatch name
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: KioskApi


class _Server6(_Server):
    address_family = socket.AF_INET6


class KioskApi:
    """Serves the endpoints above on a background thread between :meth:`start` and :meth:`stop`.

    ``claims_for(nonce)`` returns the claims of the newest decision (the service decides what
    "newest" and "too old" mean); the API signs them. ``health()`` returns a :class:`HealthReport`.
    """

    def __init__(self, config: ApiConfig, key: TokenKey, claims_for: Callable[[str], TokenClaims],
                 health: Callable[[], HealthReport], audit: AuditLog) -> None:
        self.config = config
        self.key = key
        self._claims_for = claims_for
        self.health = health
        self.audit = audit
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def answer_for(self, nonce: str) -> dict:
        claims = self._claims_for(nonce)
        return {"token": sign_token(claims, self.key), "state": claims.state, "reason": claims.reason,
                "attempt_id": claims.attempt_id, "expires_at_s": claims.expires_at_s}

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
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=SOCKET_TIMEOUT_S)
            self._thread = None
