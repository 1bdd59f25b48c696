"""The installer console over a real loopback socket: off by default, login, sessions, CSRF, the login
rate limit, the audit of every login and view, pages that render real data, refusals in the API's
JSON shape, and pictures made only for a viewer at a capped rate. The browser tests are
test_kiosk_console_browser.py."""

from __future__ import annotations

import http.client
import json
import re
import socket
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import cv2
import numpy as np
import pytest

from edge.capture.synthetic import SyntheticWorld
from edge.kiosk.audit import AuditLog
from edge.kiosk.console.feed import LiveFeed
from edge.kiosk.console.password import PasswordHashError, hash_password, parse_password_hash
from edge.kiosk.service import KioskService, PipelineHealth
from edge.live.pipeline import FrameResult
from edge.live.sinks import LiveEvent
from edge.policy import Decision

PASSWORD = "open sesame 42"
HASH = str(hash_password(PASSWORD, log2_n=14))  # the smallest cost the config accepts: fast tests


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Door:
    """Stands in for the actuator."""

    kind = "none"

    def unlock(self, duration_s, decision):
        pass

    def lock(self):
        pass

    def health(self):
        from edge.kiosk.actuators.actuator import ActuatorHealth

        return ActuatorHealth(True, "none (no actuator)")

    def close(self):
        pass


def healthy() -> PipelineHealth:
    return PipelineHealth(ok=True, camera="ok", runner="onnxruntime cpu ok", policy="idle")


CONSOLE = f'enabled = true\nport = 0\npassword_hash = "{HASH}"\nmax_fps = 5'


@pytest.fixture
def console(make_config):
    """A started KioskService with the console on; yields (service, clock)."""
    started = []

    def start(console_table: str = CONSOLE, clock: Clock | None = None):
        clock = clock or Clock()
        config = make_config(kiosk='source = "realsense"\nmodel = "m.onnx"', api="enabled = false",
                             console=console_table)
        audit = AuditLog(config.audit.path)
        service = KioskService(config, actuator=Door(), audit=audit, health=healthy, mono_clock=clock)
        service.start()
        started.append(service)
        return service, clock

    yield start
    for service in started:
        service.close()


class Browser:
    """http.client with a cookie jar: enough of a browser for the HTTP-level rules."""

    def __init__(self, address):
        self.address = address
        self.cookies: dict[str, str] = {}

    def request(self, method, path, body=None, headers=None):
        connection = http.client.HTTPConnection(*self.address, timeout=10)
        try:
            all_headers = dict(headers or {})
            if self.cookies:
                all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or (morsel["expires"] and "1970" in morsel["expires"]):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response, data

    def page(self, path):
        return self.request("GET", path, headers={"Accept": "text/html"})

    def post_form(self, path, fields):
        return self.request("POST", path, urlencode(fields),
                            {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"})

    def login(self, password=PASSWORD):
        _, html = self.page("/login")
        token = re.search(rb'name="csrf" value="([^"]+)"', html).group(1).decode()
        return self.post_form("/login", {"csrf": token, "password": password})

    def csrf(self, html: bytes) -> str:
        return re.search(rb'name="csrf" value="([^"]+)"', html).group(1).decode()


def console_events(service, action=None):
    rows = [e for e in service.audit.events(1000) if e.source == "console"]
    return [e for e in rows if action is None or e.action == action]


def live_event(number: int, state: str = "live", attempt: int = 1) -> LiveEvent:
    frame = SyntheticWorld("live", 3, distance_m=0.5).frame(number)
    decision = Decision(state=state, code=state if state != "unknown" else "collecting", reason=f"{state} test",
                        t_ms=33.0 * number, score=0.2, threshold=0.5, attempt_id=attempt)
    return LiveEvent(FrameResult(frame_number=number, t_ms=33.0 * number, face=None, sample=None, score=0.2,
                                 decision=decision), frame, drops=2)


# -- configuration ---------------------------------------------------------------------------------------

def test_the_console_is_off_by_default(make_config):
    config = make_config()
    assert config.console.enabled is False and config.console.host == "127.0.0.1"
    audit = AuditLog(config.audit.path)
    service = KioskService(config, actuator=Door(), audit=audit, health=healthy)
    assert service.console is None and service.feed is None
    audit.close()


@pytest.mark.parametrize(("body", "message"), [
    ("enabled = true", "kiosk.toml: [console] password_hash is required when the console is enabled"),
    ('enabled = true\npassword_hash = "plain-text"', "kiosk.toml: [console] password_hash must look like scrypt$"),
    (f'enabled = true\npassword_hash = "{HASH}"\nhost = "localhost"', "kiosk.toml: [console] host must be an IP"),
    (f'enabled = true\npassword_hash = "{HASH}"\nmax_fps = 30', "kiosk.toml: [console] max_fps must be at most 15"),
    (f'enabled = true\npassword_hash = "{HASH}"\nsession_idle_s = 5', "[console] session_idle_s must be between"),
    ('enabled = true\npasword_hash = "x"', 'kiosk.toml: [console] unknown key "pasword_hash"'),
])
def test_console_config_errors_are_one_line(make_config, body, message):
    from edge.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        make_config(console=body)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_console_open_to_the_network_is_a_warning(make_config):
    config = make_config(console=f'enabled = true\npassword_hash = "{HASH}"\nhost = "0.0.0.0"')
    assert any("[console] host" in w and "plain HTTP" in w for w in config.warnings)


def test_password_hash_round_trip_and_errors():
    parsed = parse_password_hash(HASH)
    assert parsed.verify(PASSWORD) and not parsed.verify(PASSWORD + " ") and str(parsed) == HASH
    with pytest.raises(PasswordHashError, match="out of range"):
        parse_password_hash(str(hash_password("x" * 8, log2_n=10)))
    with pytest.raises(PasswordHashError, match="base64"):
        parse_password_hash("scrypt$14$8$1$***$***")


def test_kiosk_password_command_prints_a_hash_that_verifies():
    from typer.testing import CliRunner

    from edge.cli.app import app

    result = CliRunner().invoke(app, ["kiosk-password", "--stdin"], input="correct horse battery\n")
    assert result.exit_code == 0, result.output
    line = next(row for row in result.stdout.splitlines() if row.startswith("password_hash"))
    assert parse_password_hash(line.split('"')[1]).verify("correct horse battery")
    short = CliRunner().invoke(app, ["kiosk-password", "--stdin"], input="short\n")
    assert short.exit_code == 1 and "at least 8" in str(short.exception)  # edge.cli.app:main prints it as one line


def test_console_port_in_use_is_a_config_error_and_nothing_stays_open(make_config):
    from edge.errors import ConfigError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = make_config(api="enabled = false",
                             console=f'enabled = true\nport = {port}\npassword_hash = "{HASH}"')
        service = KioskService(config, actuator=Door(), audit=AuditLog(config.audit.path), health=healthy)
        with pytest.raises(ConfigError, match=r"change \[console\] port"):
            service.start()
    rows = AuditLog(config.audit.path).events(10)
    assert ("service", "start", "failed") in [(e.source, e.action, e.outcome) for e in rows]


# -- access ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/live/status.json", "/live/colour.jpg", "/attempts.csv"])
def test_no_session_is_a_401_json_refusal_and_audited(console, path):
    service, _ = console()
    response, body = Browser(service.console.address).request("GET", path)
    answer = json.loads(body)
    assert response.status == 401 and set(answer) == {"error", "status"} and answer["status"] == 401
    assert "log in" in answer["error"]
    service.console.flush_refusals(everything=True)
    refused = console_events(service, f"GET {path}")
    assert refused and refused[0].outcome == "refused" and refused[0].detail.startswith("401")


def test_a_page_without_a_session_sends_the_browser_to_the_login(console):
    service, _ = console()
    for path in ("/", "/live", "/health", "/attempts", "/config"):
        response, _ = Browser(service.console.address).page(path)
        assert (response.status, response.getheader("Location")) == (303, "/login"), path


def test_login_sets_a_strict_httponly_cookie_and_is_audited(console):
    service, _ = console()
    browser = Browser(service.console.address)
    response, _ = browser.login()
    assert response.status == 303 and response.getheader("Location") == "/live"
    cookie = next(h for h in response.headers.get_all("Set-Cookie") if h.startswith("edgefas_console="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/" in cookie
    response, html = browser.page("/live")
    assert response.status == 200 and b"data-live" in html
    logins = console_events(service, "login")
    assert [(e.outcome, e.peer) for e in logins] == [("ok", "127.0.0.1")]


def test_a_wrong_password_is_refused_and_audited(console):
    service, _ = console()
    browser = Browser(service.console.address)
    response, html = browser.login("not the password")
    assert response.status == 401 and b"Wrong password" in html and "edgefas_console" not in browser.cookies
    assert [(e.outcome, e.detail) for e in console_events(service, "login")] == [("refused", "wrong password")]
    assert browser.page("/live")[0].status == 303  # still not logged in


@pytest.mark.parametrize("token", [None, "forged-token-value"])
def test_login_without_the_forms_csrf_token_is_refused(console, token):
    service, _ = console()
    browser = Browser(service.console.address)
    browser.page("/login")  # the form's cookie is set; the form field is missing or forged
    fields = {"password": PASSWORD} | ({"csrf": token} if token else {})
    response, body = browser.request("POST", "/login", urlencode(fields),
                                     {"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 403 and json.loads(body)["status"] == 403 and "CSRF" in json.loads(body)["error"]
    assert "edgefas_console" not in browser.cookies and not console_events(service, "login")


def test_logout_needs_the_sessions_csrf_token(console):
    service, _ = console()
    browser = Browser(service.console.address)
    browser.login()
    _, html = browser.page("/live")
    response, body = browser.request("POST", "/logout", urlencode({"csrf": "wrong"}),
                                     {"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 403 and json.loads(body)["status"] == 403
    assert browser.page("/live")[0].status == 200  # a forged logout changed nothing
    response, _ = browser.post_form("/logout", {"csrf": browser.csrf(html)})
    assert response.status == 303 and response.getheader("Location") == "/login"
    assert browser.page("/live")[0].status == 303
    assert [e.outcome for e in console_events(service, "logout")] == ["ok"]


def test_a_stolen_cookie_is_useless_after_the_session_idles_out(console):
    service, clock = console()
    browser = Browser(service.console.address)
    browser.login()
    clock.now += service.config.console.session_idle_s - 1
    assert browser.page("/health")[0].status == 200  # a request restarts the idle time
    clock.now += service.config.console.session_idle_s + 1
    assert browser.page("/health")[0].status == 303


def test_logins_are_rate_limited_per_address(console):
    """Five tries at once, then one every 12 s; the limit holds even for the right password."""
    service, clock = console()
    browser = Browser(service.console.address)
    for _ in range(5):
        assert browser.login("wrong password")[0].status == 401
    response, body = browser.login()
    assert response.status == 429 and response.getheader("Retry-After") == "12"
    assert b"too many login attempts from 127.0.0.1" in body  # a browser's form post gets the message as a page
    assert "edgefas_console" not in browser.cookies
    clock.now += 12.0
    assert browser.login()[0].status == 303
    assert [e.outcome for e in console_events(service, "login")][::-1] == ["refused"] * 5 + ["ok"]
    service.console.flush_refusals(everything=True)
    assert any(e.detail.startswith("429") for e in console_events(service, "POST /login"))


def test_security_headers_on_every_answer(console):
    service, _ = console()
    browser = Browser(service.console.address)
    for path in ("/login", "/live/status.json", "/static/console.css"):
        response, _ = browser.request("GET", path)
        assert "frame-ancestors 'none'" in response.getheader("Content-Security-Policy"), path
        assert response.getheader("Cache-Control") == "no-store" and response.getheader("X-Frame-Options") == "DENY"


# -- malformed requests: the API's JSON refusals -----------------------------------------------------------

def raw_exchange(address, payload: bytes) -> tuple[int, bytes]:
    with socket.create_connection(address, timeout=30) as connection:
        connection.sendall(payload)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(("payload", "status"), [
    pytest.param(b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n", 400, id="garbage"),
    pytest.param(b"BREW /live HTTP/1.1\r\n\r\n", 501, id="unknown-method"),
    pytest.param(b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, id="64KiB-path"),
    pytest.param(b"GET /login HTTP/1.1\r\nX-Long: " + b"b" * 70_000 + b"\r\n\r\n", 431, id="64KiB-header"),
    pytest.param(b"DELETE /live HTTP/1.1\r\n\r\n", 405, id="wrong-method"),
    pytest.param(b"GET /nowhere HTTP/1.1\r\nAccept: application/json\r\n\r\n", 404, id="unknown-path"),
    pytest.param(b"POST /login HTTP/1.1\r\nContent-Length: 5000\r\nContent-Type: application/x-www-form-urlencoded"
                 b"\r\n\r\n" + b"a" * 5000, 413, id="big-form"),
])
def test_malformed_requests_get_json_refusals_audited_as_console(console, payload, status):
    service, _ = console()
    got, body = raw_exchange(service.console.address, payload)
    answer = json.loads(body)
    assert got == status and set(answer) == {"error", "status"} and answer["status"] == status
    service.console.flush_refusals(everything=True)
    event = console_events(service)[0]
    assert (event.outcome, event.detail[:3]) == ("refused", str(status))


# -- pages with data -----------------------------------------------------------------------------------------

def decision(state, attempt, n):
    return Decision(state=state, code={"live": "live", "spoof": "spoof"}.get(state, "collecting"),
                    reason=f"{state} #{n}", t_ms=float(n), score=0.1 * (n % 10), threshold=0.5, attempt_id=attempt)


def test_attempts_page_is_newest_first_paginated_filtered_and_audited(console):
    from edge.kiosk.service import DecisionContext

    service, _ = console()
    context = DecisionContext("ab" * 32, "943222071234")
    service.begin()
    for n in range(60):  # a new attempt each time, so each is audited: 60 rows, every third a spoof
        service.handle(decision("spoof" if n % 3 == 0 else "unknown", n + 1, n), context)
    browser = Browser(service.console.address)
    browser.login()
    response, html = browser.page("/attempts?state=spoof&page=1")
    text = html.decode()
    assert response.status == 200 and "20 rows" in text and "page 1 of 1" in text
    assert text.index("spoof #57") < text.index("spoof #54") and "unknown #" not in text
    _, html = browser.page("/attempts?page=3")
    assert "page 3 of 3" in html.decode() and "#9</td>" in html.decode() and "#10</td>" not in html.decode()
    views = console_events(service, "view attempts")
    assert [e.detail for e in views] == ["page 3 of 3, state all, 10 rows", "page 1 of 1, state spoof, 20 rows"]
    response, body = browser.request("GET", "/attempts?state=maybe")
    assert response.status == 400 and "state must be one of" in json.loads(body)["error"]


def test_csv_export_has_every_matching_row_and_is_audited(console):
    from edge.kiosk.service import DecisionContext

    service, _ = console()
    service.begin()
    for n in range(7):
        service.handle(decision("live" if n % 2 else "unknown", n + 1, n), DecisionContext("ab" * 32, "cam"))
    browser = Browser(service.console.address)
    browser.login()
    response, body = browser.request("GET", "/attempts.csv?state=live")
    lines = body.decode().strip().splitlines()
    assert response.status == 200 and response.getheader("Content-Type").startswith("text/csv")
    assert lines[0].startswith("time_utc,attempt,track,state")
    assert [line.split(",")[1] for line in lines[1:]] == ["6", "4", "2"]  # the live attempts, newest first
    assert "attachment" in response.getheader("Content-Disposition")
    assert [e.detail for e in console_events(service, "export attempts")] == ["CSV, state live, 3 rows"]


def test_config_page_shows_the_file_and_never_a_secret(console, secret_bytes):
    service, _ = console()
    browser = Browser(service.console.address)
    browser.login()
    response, html = browser.page("/config")
    text = html.decode()
    assert response.status == 200 and str(service.config.path.resolve()) in text and "[console]" in text
    assert "hidden (from " in text and "set (hidden)" in text  # the token secret and the password hash
    assert secret_bytes.decode() not in text and HASH not in text and HASH.split("$")[-1] not in text


def test_health_page_shows_the_door(console):
    service, _ = console()
    service.feed.offer(live_event(1))
    browser = Browser(service.console.address)
    browser.login()
    response, html = browser.page("/health")
    text = html.decode()
    for label in ("camera serial", "camera firmware", "USB link", "frames per second", "frames dropped", "watchdog",
                  "model file", "model sha256", "runner", "threshold", "uptime"):
        assert f">{label}<" in text, label
    assert "0.5000" in text and "onnxruntime cpu ok" in text  # the decision's threshold, the runner's line


# -- the live view -------------------------------------------------------------------------------------------

def test_pictures_are_made_only_when_a_viewer_asks(console):
    service, _ = console()
    browser = Browser(service.console.address)
    browser.login()
    assert browser.request("GET", "/live/colour.jpg")[0].status == 204  # no frame yet
    for n in range(1, 31):
        service.feed.offer(live_event(n))  # the door's loop runs ...
    assert service.feed.encodes == 0 and service.feed.viewers == 1  # ... and nothing was encoded for it
    response, body = browser.request("GET", "/live/colour.jpg?after=-1")
    picture = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert response.status == 200 and response.getheader("X-Frame-Number") == "30" and picture.shape == (480, 640, 3)
    response, body = browser.request("GET", "/live/depth.jpg")
    assert response.status == 200 and cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR) is not None
    assert service.feed.encodes == 2
    status = json.loads(browser.request("GET", "/live/status.json")[1])
    assert (status["frame"], status["state"], status["threshold"], status["drops"]) == (30, "live", 0.5, 2)


def test_the_feed_caps_encodes_and_shares_them_between_viewers():
    clock = Clock(0.0)
    feed = LiveFeed(max_fps=5.0, clock=clock)
    assert feed.jpeg("colour") is None
    feed.offer(live_event(1))
    first = feed.jpeg("colour")
    feed.offer(live_event(2))
    clock.now = 0.1  # a newer frame, but less than 1/5 s after the last encode: the same picture
    assert feed.jpeg("colour") == first and feed.encodes == 1
    clock.now = 0.2
    number, _ = feed.jpeg("colour")
    assert number == 2 and feed.encodes == 2
    assert feed.jpeg("colour")[0] == 2 and feed.encodes == 2  # a second viewer of the same frame: shared
    with pytest.raises(ValueError, match="view must be one of"):
        feed.jpeg("infrared")


def test_viewers_count_only_while_they_ask():
    clock = Clock(0.0)
    feed = LiveFeed(max_fps=5.0, clock=clock)
    feed.seen("a")
    feed.seen("b")
    assert feed.viewers == 2
    clock.now = 2.0
    feed.seen("a")
    clock.now = 4.0  # b asked 4 s ago, a 2 s ago
    assert feed.viewers == 1


def test_the_feeds_fps_comes_from_the_clock():
    clock = Clock(0.0)
    feed = LiveFeed(max_fps=5.0, clock=clock)
    for n in range(31):
        clock.now = n / 30.0
        feed.offer(live_event(1))
    assert feed.fps == pytest.approx(30.0) and feed.frame == 31


def test_the_sink_feeds_the_console(console):
    from edge.kiosk.sink import KioskSink

    service, _ = console()
    sink = KioskSink(service, "ab" * 32, "realsense")
    sink.write(live_event(5, state="spoof"))
    status = service.feed.status()
    assert (status.frame, status.state, status.encodes) == (1, "spoof", 0)  # handed over, nothing encoded


def test_edgefas_live_stays_free_of_the_console_and_its_http_stack():
    """The live command and every module of the live loop import nothing of the console, Starlette or uvicorn."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import json, sys, edge.cli.app, edge.live.loop, edge.live.session, edge.live.sinks, edge.live.overlay\n"
            "stack = sorted(m for m in sys.modules if m.startswith('edge.kiosk')\n"
            "               or m.split('.')[0] in ('starlette', 'uvicorn', 'httptools', 'jinja2'))\n"
            "print(json.dumps({'live_loaded': 'edge.live.loop' in sys.modules, 'stack': stack}))")
    repo = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"live_loaded": True, "stack": []}


@pytest.mark.parametrize("module", ["starlette", "uvicorn"])
def test_without_the_kiosk_extra_the_api_stops_the_start_with_one_line(make_config, monkeypatch, module):
    import sys

    from edge.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, module, None)  # `import starlette` now fails as if it were not installed
    config = make_config(kiosk='source = "realsense"\nmodel = "m.onnx"', api="port = 0\nallow = [\"127.0.0.1\"]")
    service = KioskService(config, actuator=Door(), audit=AuditLog(config.audit.path), health=healthy)
    with pytest.raises(MissingExtraError, match=r"pip install 'edgefas\[kiosk\]'"):
        service.start()
    rows = AuditLog(config.audit.path).events(10)
    assert ("service", "start", "failed") in [(e.source, e.action, e.outcome) for e in rows]
