"""The installer console's web app (Starlette) and its server: pages, pictures, CSV, login.

Pages (server-rendered Jinja2 templates, one stylesheet, one script; no front-end build):
``/live`` (colour view with face box, state, score against threshold and spoof map; depth view),
``/health``, ``/attempts`` (newest first, ``?page=`` and ``?state=``; ``/attempts.csv`` exports),
``/config`` (read-only, secrets hidden), ``/login`` and ``POST /logout``. Pictures are fetched by
the live page's script (``/live/colour.jpg?after=N`` waits up to ``LONG_POLL_S`` for a frame newer
than N) and made only then, at most ``[console] max_fps`` a second (:mod:`edge.kiosk.console.feed`).

Access (:mod:`edge.kiosk.console.auth`): everything but the login page and the static files needs a
session; every POST needs its CSRF token. Refused requests get the API's JSON refusal shape (a
page asked for by a browser gets the same message as a small HTML page, or the login page for a
missing session) and are audited, aggregated, with source "console" (:mod:`edge.kiosk.refusals`).
Each login (ok or refused), logout, view of the attempts page and CSV export is one audit row; when
that row cannot be written the request is refused (503): nobody reads the audit unrecorded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from edge.errors import ConfigError, import_optional
from edge.kiosk.audit import AuditError, AuditLog
from edge.kiosk.config import KioskConfig
from edge.kiosk.console.attempts import STATES, AttemptsReader, utc_text
from edge.kiosk.console.auth import LOGIN_COOKIE, LOGIN_FORM_TTL_S, SESSION_COOKIE, ConsoleAuth, Session, \
    new_form_token, tokens_match
from edge.kiosk.console.config_view import config_view
from edge.kiosk.console.feed import VIEWS, LiveFeed
from edge.kiosk.console.health import FactsProvider, health_rows
from edge.kiosk.console.password import parse_password_hash
from edge.kiosk.http_server import ServedApp, periodic_lifespan
from edge.kiosk.refusals import Refusal, RefusalAudit

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
MAX_FORM_BYTES = 4096  # a login form is < 300 bytes
LONG_POLL_S = 2.0  # a picture request waits this long for a newer frame before answering with the newest
FLUSH_EVERY_S = 0.5  # how often the aggregates of ended refusal intervals are written
SECURITY_HEADERS = (
    # no inline script or style, no framing, forms post only here, nothing cached, no referrer leaks
    ("content-security-policy", "default-src 'self'; img-src 'self' blob:; script-src 'self'; style-src 'self'; "
                                "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    ("x-frame-options", "DENY"), ("x-content-type-options", "nosniff"), ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
)
MACHINE_SUFFIXES = (".jpg", ".json", ".csv")  # answered in JSON when refused, never with an HTML page


class KioskConsole(ServedApp):
    """Owns the console's server between :meth:`start` and :meth:`stop`.

    ``health()`` returns the service's :class:`~edge.kiosk.api.HealthReport` (its ``down`` parts are
    shown); ``facts()`` the door's :class:`~edge.kiosk.console.health.DoorFacts`. ``clock``
    (monotonic seconds) drives sessions, the login rate limit, refusal intervals and the uptime.
    """

    def __init__(self, config: KioskConfig, audit: AuditLog, feed: LiveFeed, facts: FactsProvider,
                 health: Callable[[], Any], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.kiosk_config = config
        self.config = config.console
        self.audit = audit
        self.feed = feed
        self.facts = facts
        self.health = health
        self.clock = clock
        self.auth = ConsoleAuth(parse_password_hash(self.config.password_hash), self.config.session_idle_s, clock)
        self.refusals = RefusalAudit(audit, clock=clock, source="console")
        self.started_s = clock()
        self.reader: AttemptsReader | None = None

    # -- audit ---------------------------------------------------------------------------------------

    def record(self, action: str, outcome: str, detail: str, peer: str) -> None:
        """One audit row, or a 503 refusal: nothing is shown or granted unrecorded."""
        try:
            self.audit.record_event("console", action, outcome, detail, peer=peer)
        except AuditError as exc:
            log.error("console: %s", exc)
            raise Refusal(HTTPStatus.SERVICE_UNAVAILABLE, "the audit log cannot be written; the console shows "
                                                          "nothing that would go unrecorded") from None

    # -- serving -------------------------------------------------------------------------------------

    def start(self) -> None:
        self.reader = AttemptsReader(self.audit.path)
        try:
            self.serve(build_console_app(self), self.config.host, self.config.port, "installer console", "console")
        except ConfigError:
            self.reader.close()
            self.reader = None
            raise
        log.info("installer console on http://%s:%d", *self.address)

    def stop(self) -> None:
        self.stop_serving()
        if self.reader is not None:
            self.reader.close()
            self.reader = None


def _peer(request: Any) -> str:
    return request.client.host if request.client else "?"


def _wants_html(request: Any) -> bool:
    return not request.url.path.endswith(MACHINE_SUFFIXES) and "text/html" in request.headers.get("accept", "")


def _security_headers(app: Any) -> Any:
    """Pure ASGI middleware: the headers of ``SECURITY_HEADERS`` on every answer."""
    from starlette.datastructures import MutableHeaders

    async def middleware(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers.setdefault(name, value)
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


def build_console_app(console: KioskConsole) -> Any:
    import_optional("starlette", "kiosk", "the installer console")
    import_optional("jinja2", "kiosk", "the installer console")
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse, RedirectResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
    from starlette.templating import Jinja2Templates

    from edge.kiosk.api import check_http_version

    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["utc"] = utc_text
    auth, feed = console.auth, console.feed

    def page(request: Request, name: str, session: Session | None, status: int = 200,
             headers: dict[str, str] | None = None, **context: Any) -> Response:
        return templates.TemplateResponse(request, name, {"session": session, "page": name.removesuffix(".html"),
                                                          **context}, status_code=status, headers=headers)

    def require(request: Request) -> Session:
        check_http_version(request.scope.get("http_version", "1.1"))
        session = auth.session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise Refusal(HTTPStatus.UNAUTHORIZED, "log in first: no console session, or it ended")
        return session

    async def form(request: Request) -> dict[str, str]:
        length = request.headers.get("content-length", "")
        if not (length.isascii() and length.isdigit()):
            raise Refusal(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
        if int(length) > MAX_FORM_BYTES:
            raise Refusal(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"form of {length} bytes exceeds {MAX_FORM_BYTES}")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            raise Refusal(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the form as application/x-www-form-urlencoded")
        try:
            fields = parse_qs((await request.body()).decode("utf-8"), keep_blank_values=True, max_num_fields=8)
        except (UnicodeDecodeError, ValueError):
            raise Refusal(HTTPStatus.BAD_REQUEST, "the form cannot be read") from None
        return {name: values[0] for name, values in fields.items()}

    def check_csrf(expected: str | None, fields: dict[str, str]) -> None:
        if not tokens_match(expected, fields.get("csrf")):
            raise Refusal(HTTPStatus.FORBIDDEN, "missing or wrong CSRF token; reload the page and try again")

    # -- login -----------------------------------------------------------------------------------------

    def login_page(request: Request, status: int = 200, error: str = "") -> Response:
        token = new_form_token()
        response = page(request, "login.html", None, status, form_token=token, error=error)
        response.set_cookie(LOGIN_COOKIE, token, max_age=LOGIN_FORM_TTL_S, path="/login", httponly=True,
                            samesite="strict")
        return response

    async def login_get(request: Request) -> Response:
        check_http_version(request.scope.get("http_version", "1.1"))
        if auth.session(request.cookies.get(SESSION_COOKIE)) is not None:
            return RedirectResponse("/live", status_code=303)
        return login_page(request)

    async def login_post(request: Request) -> Response:
        check_http_version(request.scope.get("http_version", "1.1"))
        peer = _peer(request)
        wait_s = auth.login_wait_s(peer)
        if wait_s > 0:
            retry_s = str(math.ceil(wait_s))
            raise Refusal(HTTPStatus.TOO_MANY_REQUESTS, f"too many login attempts from {peer}; try again in {retry_s} s",
                          (("Retry-After", retry_s),))
        fields = await form(request)
        check_csrf(request.cookies.get(LOGIN_COOKIE), fields)
        session = await run_in_threadpool(auth.login, peer, fields.get("password", ""))
        if session is None:
            await run_in_threadpool(console.record, "login", "refused", "wrong password", peer)
            return login_page(request, HTTPStatus.UNAUTHORIZED, "Wrong password.")
        try:
            await run_in_threadpool(console.record, "login", "ok", "session started", peer)
        except Refusal:
            auth.logout(session.token)
            raise
        response = RedirectResponse("/live", status_code=303)
        response.set_cookie(SESSION_COOKIE, session.token, path="/", httponly=True, samesite="strict")
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    async def logout(request: Request) -> Response:
        session = require(request)
        check_csrf(session.csrf, await form(request))
        auth.logout(session.token)
        await run_in_threadpool(console.record, "logout", "ok", "session ended", _peer(request))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- pages -----------------------------------------------------------------------------------------

    async def home(request: Request) -> Response:
        require(request)
        return RedirectResponse("/live", status_code=303)

    async def live(request: Request) -> Response:
        return page(request, "live.html", require(request), max_fps=console.config.max_fps, views=VIEWS)

    async def picture(request: Request) -> Response:
        session = require(request)
        view = request.path_params["view"]
        if view not in VIEWS:
            raise Refusal(HTTPStatus.NOT_FOUND, f"no view {view!r}; views: {', '.join(VIEWS)}")
        after = _int_param(request, "after", -1)
        feed.seen(session.token)
        deadline = time.monotonic() + LONG_POLL_S
        while feed.frame <= after and time.monotonic() < deadline:
            await asyncio.sleep(1.0 / console.config.max_fps)
        shot = await run_in_threadpool(feed.jpeg, view)
        if shot is None:
            return Response(status_code=HTTPStatus.NO_CONTENT)
        number, jpeg = shot
        return Response(jpeg, media_type="image/jpeg", headers={"X-Frame-Number": str(number)})

    async def status(request: Request) -> Response:
        require(request)
        report = await run_in_threadpool(console.health)
        return JSONResponse({**dataclasses.asdict(feed.status()), "down": list(report.down)})

    async def health(request: Request) -> Response:
        session = require(request)
        facts, report = await run_in_threadpool(console.facts), await run_in_threadpool(console.health)
        rows = health_rows(facts, feed.status(), report.down, console.clock() - console.started_s)
        return page(request, "health.html", session, rows=rows, report=report)

    def state_param(request: Request) -> str | None:
        state = request.query_params.get("state", "") or None
        if state not in (None, "all", *STATES):
            raise Refusal(HTTPStatus.BAD_REQUEST, f"state must be one of all, {', '.join(STATES)}; got {state!r}")
        return None if state == "all" else state

    async def attempts(request: Request) -> Response:
        session = require(request)
        state, number = state_param(request), _int_param(request, "page", 1)
        result = await run_in_threadpool(console.reader.page, state, number)
        await run_in_threadpool(console.record, "view attempts", "ok", f"page {result.page} of {result.pages}, "
                                f"state {state or 'all'}, {len(result.rows)} rows", _peer(request))
        return page(request, "attempts.html", session, result=result, states=STATES)

    async def attempts_csv(request: Request) -> Response:
        require(request)
        state = state_param(request)
        text, rows = await run_in_threadpool(console.reader.csv_text, state)
        await run_in_threadpool(console.record, "export attempts", "ok", f"CSV, state {state or 'all'}, {rows} rows",
                                _peer(request))
        name = f"attempts-{state or 'all'}.csv"
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def configuration(request: Request) -> Response:
        return page(request, "config.html", require(request), view=config_view(console.kiosk_config))

    # -- refusals --------------------------------------------------------------------------------------

    async def on_refusal(request: Request, refusal: Refusal) -> Response:
        await run_in_threadpool(console.refused, refusal, _peer(request), f"{request.method} {request.url.path}")
        headers = dict(refusal.headers)
        if refusal.status >= 400:
            headers["Connection"] = "close"
        if _wants_html(request):
            if refusal.status == HTTPStatus.UNAUTHORIZED and request.method == "GET":
                return RedirectResponse("/login", status_code=303)
            return page(request, "error.html", None, int(refusal.status), refusal=refusal.body(), headers=headers)
        return JSONResponse(refusal.body(), status_code=int(refusal.status), headers=headers)

    async def on_http_exception(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
            allow = (exc.headers or {}).get("Allow", "")
            refusal = Refusal(exc.status_code, f"use {allow} for {request.url.path}", (("Allow", allow),))
        elif exc.status_code == HTTPStatus.NOT_FOUND:
            refusal = Refusal(exc.status_code, "unknown page; start at /live")
        else:
            refusal = Refusal(exc.status_code, str(exc.detail))
        return await on_refusal(request, refusal)

    async def favicon(request: Request) -> Response:
        return Response(status_code=HTTPStatus.NO_CONTENT)  # browsers ask once; not worth a refusal row

    routes = [
        Route("/", home), Route("/favicon.ico", favicon),
        Route("/login", login_get, methods=["GET"]), Route("/login", login_post, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]), Route("/live", live), Route("/live/status.json", status),
        Route("/live/{view}.jpg", picture), Route("/health", health), Route("/attempts", attempts),
        Route("/attempts.csv", attempts_csv), Route("/config", configuration),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=periodic_lifespan(console.flush_refusals, FLUSH_EVERY_S),
                    exception_handlers={Refusal: on_refusal, HTTPException: on_http_exception})
    return _security_headers(app)


def _int_param(request: Any, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise Refusal(HTTPStatus.BAD_REQUEST, f"{name} must be an integer, got {text[:40]!r}") from None
