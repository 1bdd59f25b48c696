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
(405), an HTTP version we do not speak (505, or 400 for HTTP/0.9), and what the HTTP parser refuses
before the app sees a request (:mod:`edge.kiosk.http_server`): a garbage request line (400), a path
over 64 KiB (414), a header line over 64 KiB or over 100 headers (431), a method HTTP does not
define (501). A client that disconnects is logged at DEBUG, never as a traceback. Bound to
127.0.0.1 by default.

Served by Starlette on uvicorn (:class:`~edge.kiosk.http_server.BackgroundServer`, one event-loop
thread; the providers and the audit log are called on its worker threads, so they must be
thread-safe). The rules (admission, body length, nonce parsing, answers, refusal auditing) live in
:class:`KioskApi` and the functions below, not in the HTTP layer.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import Any

from edge.errors import import_optional
from edge.kiosk.audit import AuditError, AuditLog
from edge.kiosk.config import ApiConfig
from edge.kiosk.http_server import ServedApp, periodic_lifespan
from edge.kiosk.rate_limit import RateLimiter
from edge.kiosk.refusals import Refusal, RefusalAudit
from edge.kiosk.tokens import TokenClaims, TokenKey, sign_token

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4096  # a nonce request is < 200 bytes; 4 KiB leaves room and bounds memory per request
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")  # base64url alphabet; 16 chars >= 96 bits if random
FLUSH_EVERY_S = 0.1  # how often the aggregates of ended refusal intervals are written
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")
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


def _json(status: HTTPStatus | int, body: dict, headers: tuple[tuple[str, str], ...] = ()) -> Any:
    """A JSON answer with ``Cache-Control: no-store``; a refusal also closes the connection."""
    from starlette.responses import JSONResponse

    extra = {"Cache-Control": "no-store", **dict(headers)}
    if status >= 400:
        extra["Connection"] = "close"
    return JSONResponse(body, status_code=int(status), headers=extra)


def build_api_app(api: KioskApi) -> Any:
    """The Starlette app: one route that takes every path and method, because admission (rate
    limit, address, path, method) is :meth:`KioskApi.admit`'s, in its documented order."""
    import_optional("starlette", "kiosk", "the kiosk API")  # a clear line naming the extra when missing
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.routing import Route

    async def endpoint(request: Request) -> Any:
        peer = request.client.host if request.client else "?"
        action = f"{request.method} {request.url.path}"
        try:
            check_http_version(request.scope.get("http_version", "1.1"))
            api.admit(peer, request.method, request.url.path)
            if request.url.path == DECISION_PATH:
                body_length(request.headers.get("content-length"), request.headers.get("transfer-encoding"))
                raw = await request.body()
                return _json(HTTPStatus.OK, await run_in_threadpool(api.decide, raw, peer, action))
            status, body = await run_in_threadpool(api.healthz)
            return _json(status, body)
        except Refusal as refusal:
            await run_in_threadpool(api.refused, refusal, peer, action)
            return _json(refusal.status, refusal.body(), refusal.headers)

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=list(HTTP_METHODS))],
                     lifespan=periodic_lifespan(api.flush_refusals, FLUSH_EVERY_S))


def check_http_version(version: str) -> None:
    """HTTP/1.0 and 1.1 only: 0.9 has no headers (nothing we could answer), 2 and 3 are other protocols."""
    if version == "0.9":
        raise Refusal(HTTPStatus.BAD_REQUEST, "HTTP/1.0 or HTTP/1.1 is required")
    if version not in ("1.0", "1.1"):
        raise Refusal(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"HTTP/{version} is not supported; use HTTP/1.1")


class KioskApi(ServedApp):
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

    # -- serving ---------------------------------------------------------------------------------------

    def start(self) -> None:
        self.serve(build_api_app(self), self.config.host, self.config.port, "kiosk API", "api")
        log.info("kiosk api listening on http://%s:%d (allow: %s)", *self.address, ", ".join(self.config.allow))

    def stop(self) -> None:
        """Stop serving (idempotent, safe after a failed :meth:`start`) and write pending refusal rows."""
        self.stop_serving()
