"""The kiosk HTTP API over a real loopback socket: tokens that verify, refusals in one JSON shape,
audited in aggregate, a per-client rate limit, and no tracebacks when clients misbehave."""

from __future__ import annotations

import http.client
import json
import logging
import secrets
import socket
import struct
import threading
import time
from collections import Counter

import pytest

from edge.kiosk.api import MAX_BODY_BYTES, HealthReport, KioskApi
from edge.kiosk.audit import AuditLog
from edge.kiosk.config import ApiConfig
from edge.kiosk.rate_limit import RateLimiter
from edge.kiosk.refusals import Refusal, RefusalAudit
from edge.kiosk.tokens import HmacKey, TokenClaims, TokenVerifier


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def live_claims(nonce: str) -> TokenClaims:
    now = time.time()
    return TokenClaims(nonce=nonce, state="live", reason="8 of the last 10 frames looked live", score=0.1,
                       threshold=0.5, attempt_id=3, model_sha256="cd" * 32, camera_serial="0001",
                       issued_at_s=now, expires_at_s=now + 5)


@pytest.fixture
def served(tmp_path):
    """Start an API on an ephemeral loopback port; yields a factory taking the allow-list."""
    started = []

    def start(allow=("127.0.0.1",), healthy=True, clock=time.monotonic, burst=20):
        key = HmacKey(secrets.token_bytes(32))
        audit = AuditLog(tmp_path / f"audit{len(started)}.sqlite")
        api = KioskApi(ApiConfig(host="127.0.0.1", port=0, allow=tuple(allow), burst=burst), key, live_claims,
                       lambda: HealthReport(ok=healthy, camera="realsense 0001 streaming", runner="ort cpu",
                                            policy="idle", actuator="none"), audit, clock=clock)
        api.start()
        started.append((api, audit))
        return api, key, audit

    yield start
    for api, audit in started:
        api.stop()
        audit.close()


def request(api, method, path, body=None, headers=None):
    host, port = api.address
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null"), response.getheader("Cache-Control")
    finally:
        connection.close()


def test_valid_nonce_returns_a_token_that_verifies(served):
    api, key, audit = served()
    nonce = secrets.token_urlsafe(24)
    status, body, cache = request(api, "POST", "/v1/decision", json.dumps({"nonce": nonce}),
                                  {"Content-Type": "application/json"})
    assert status == 200 and cache == "no-store"
    claims = TokenVerifier(key, time.time).verify(body["token"], expected_nonce=nonce)
    assert claims.live and body["state"] == "live" and claims.attempt_id == 3
    event = audit.events(1)[0]
    assert (event.source, event.outcome, event.peer) == ("api", "ok", "127.0.0.1")


@pytest.mark.parametrize(("body", "status", "fragment"), [
    (b"{not json", 400, "must be JSON"),
    (b'{"nonce": "short"}', 400, "16 to 128"),
    (b'{"nonce": "' + b"a" * 20 + b'", "extra": 1}', 400, "exactly"),
    (b'{"nonce": "has spaces in it, not url-safe"}', 400, "16 to 128"),
    (b"[]", 400, "exactly"),
    (b'{"nonce": "' + b"x" * (MAX_BODY_BYTES + 100) + b'"}', 413, "exceeds"),
])
def test_bad_requests_are_refused_and_audited(served, body, status, fragment):
    api, _, audit = served()
    got, answer, _ = request(api, "POST", "/v1/decision", body, {"Content-Type": "application/json"})
    assert got == status and fragment in answer["error"] and answer["status"] == status
    event = audit.events(1)[0]
    assert event.outcome == "refused" and event.detail.startswith(str(status))


def test_disallowed_address_gets_403_and_an_audit_line(served):
    api, _, audit = served(allow=("10.0.0.0/8",))
    status, answer, _ = request(api, "POST", "/v1/decision", json.dumps({"nonce": "a" * 32}))
    assert status == 403 and "127.0.0.1" in answer["error"]
    status, _, _ = request(api, "GET", "/healthz")
    assert status == 403
    api.flush_refusals(everything=True)  # the second 403 of the interval is counted, written as an aggregate
    refused = [e for e in audit.events(10) if e.outcome == "refused"]
    assert len(refused) == 2 and all(e.peer == "127.0.0.1" and e.detail.startswith("403") for e in refused)
    assert [e.count for e in refused] == [1, 1]


def test_wrong_path_and_method(served):
    api, _, audit = served()
    assert request(api, "GET", "/v1/decision")[0] == 405
    assert request(api, "GET", "/admin")[0] == 404
    assert request(api, "DELETE", "/healthz")[0] == 405
    api.flush_refusals(everything=True)
    assert [e.detail[:3] for e in audit.events(3)] == ["405", "404", "405"]  # newest first: the aggregate


def test_missing_content_length_is_411(served):
    api, _, _ = served()
    host, port = api.address
    connection = http.client.HTTPConnection(host, port, timeout=5)
    connection.putrequest("POST", "/v1/decision")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 411
    connection.close()


@pytest.mark.parametrize(("healthy", "status"), [(True, 200), (False, 503)])
def test_healthz_reports_state(served, healthy, status):
    api, _, _ = served(healthy=healthy)
    got, body, _ = request(api, "GET", "/healthz")
    assert got == status and body["ok"] is healthy and body["camera"].startswith("realsense")
    assert set(body) == {"ok", "camera", "runner", "policy", "actuator", "audit", "down"}


def test_port_in_use_is_a_config_error(served):
    from edge.errors import ConfigError

    api, key, audit = served()
    clash = KioskApi(ApiConfig(port=api.address[1]), key, live_claims, lambda: None, audit)
    with pytest.raises(ConfigError, match=r"change \[api\] port"):
        clash.start()


# -- refusals that http.server produces itself, and floods -------------------------------------------

def raw_exchange(api, payload: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer: (status, lower-cased headers, body)."""
    with socket.create_connection(api.address, timeout=30) as connection:
        connection.sendall(payload)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines[1:]))
    return int(lines[0].split()[1]), headers, body


MANY_HEADERS = b"".join(b"X-Header-%d: 1\r\n" % i for i in range(101))  # http.client allows 100


@pytest.mark.parametrize(("payload", "status"), [
    pytest.param(b"PATCH /healthz HTTP/1.1\r\n\r\n", 405, id="PATCH"),
    pytest.param(b"OPTIONS /v1/decision HTTP/1.1\r\n\r\n", 405, id="OPTIONS"),
    pytest.param(b"BREW /healthz HTTP/1.1\r\n\r\n", 501, id="method-HTTP-does-not-define"),
    pytest.param(b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n", 400, id="garbage-request-line"),
    pytest.param(b"GET /healthz HTTP/2.0\r\n\r\n", 505, id="HTTP-2"),
    pytest.param(b"GET /healthz\r\n\r\n", 400, id="HTTP-0.9"),
    pytest.param(b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, id="64KiB-path"),
    pytest.param(b"GET /healthz HTTP/1.1\r\nX-Long: " + b"b" * 70_000 + b"\r\n\r\n", 431, id="64KiB-header"),
    pytest.param(b"GET /healthz HTTP/1.1\r\n" + MANY_HEADERS + b"\r\n", 431, id="101-headers"),
    pytest.param(b"POST /v1/decision HTTP/1.1\r\nContent-Length: 4000\r\n\r\n" + b"[" * 2000 + b"]" * 2000, 400,
                 id="deeply-nested-JSON"),
])
def test_every_refusal_is_json_in_the_documented_shape_and_audited(served, payload, status):
    api, _, audit = served()
    got, headers, body = raw_exchange(api, payload)
    assert got == status and headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert set(answer) == {"error", "status"} and answer["status"] == status and answer["error"]
    api.flush_refusals(everything=True)
    event = audit.events(1)[0]
    assert (event.source, event.outcome, event.count) == ("api", "refused", 1) and event.detail.startswith(str(status))


def test_head_gets_405_without_a_body(served):
    api, _, _ = served()
    status, headers, body = raw_exchange(api, b"HEAD /healthz HTTP/1.1\r\n\r\n")
    assert status == 405 and headers["allow"] == "GET" and body == b""


def test_a_flood_is_rate_limited_and_audited_in_aggregate(served, capfd, caplog):
    """2,000 bad requests: 20 answered 400 (the burst), 1,980 answered 429; four audit rows in all."""
    clock = Clock()  # time stands still: the bucket never refills and no interval ends during the flood
    api, _, audit = served(clock=clock)
    statuses = Counter()
    retry_after = set()
    for _ in range(2000):
        status, headers, body = raw_exchange(api, b"POST /v1/decision HTTP/1.1\r\nContent-Length: 9\r\n\r\n{not json")
        statuses[status] += 1
        assert json.loads(body)["status"] == status
        retry_after.add(headers.get("retry-after"))
    assert statuses == {400: 20, 429: 1980}
    assert retry_after == {None, "1"}
    assert len(audit.events(100)) == 2  # the first of each kind, at once
    api.stop()  # writes the counted rest: one row per kind
    rows = audit.events(100)
    assert sorted((e.detail[:3], e.count) for e in rows) == [("400", 1), ("400", 19), ("429", 1), ("429", 1979)]
    assert sum(e.count for e in rows) == 2000 and all(e.peer == "127.0.0.1" for e in rows)
    assert "Traceback" not in capfd.readouterr().err
    warnings = [r for r in caplog.records if r.name.startswith("edge.kiosk") and r.levelno >= logging.WARNING]
    assert len(warnings) == 4 and all(r.levelno == logging.WARNING for r in warnings)  # one per audit row


def test_a_connection_over_the_cap_is_answered_503_and_the_open_ones_are_still_served(tmp_path):
    """With max_connections open (each with half a request head), one more connection is answered 503 in the
    refusal shape with Retry-After and audited; the held connections then finish their requests with 200
    (before, every socket was accepted: a crowd of idle ones could exhaust the kiosk's file descriptors)."""
    key, audit = HmacKey(secrets.token_bytes(32)), AuditLog(tmp_path / "audit.sqlite")
    api = KioskApi(ApiConfig(host="127.0.0.1", port=0, allow=("127.0.0.1",)), key, live_claims,
                   lambda: HealthReport(ok=True, camera="realsense", runner="ort cpu", policy="idle", actuator="none"),
                   audit)
    api.max_connections = 2
    api.start()
    held = []
    try:
        for _ in range(2):
            held.append(socket.create_connection(api.address, timeout=30))
            held[-1].sendall(b"GET /healthz HTTP/1.1\r\nHost: kiosk\r\n")  # the head is not finished yet
        status, headers, body = raw_exchange(api, b"GET /healthz HTTP/1.1\r\nHost: kiosk\r\n\r\n")
        assert status == 503 and headers.get("retry-after") == "1"
        assert json.loads(body) == {"error": "more than 2 connections open at once; try again", "status": 503}
        for connection in held:
            connection.sendall(b"Connection: close\r\n\r\n")
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
    finally:
        for connection in held:
            connection.close()
        api.stop()
    rows = audit.events(100)
    assert [(e.detail[:3], e.count) for e in rows] == [("503", 1)]
    audit.close()


def test_clients_that_reset_the_connection_leave_no_traceback(served, capfd, caplog):
    api, _, audit = served(burst=1000)
    for _ in range(30):
        client = socket.create_connection(api.address, timeout=30)
        client.sendall(b"POST /v1/decision HTTP/1.1\r\nContent-Length: 9\r\n\r\n{not json")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # RST: the server's read or write fails with ConnectionResetError
    deadline = time.monotonic() + 60
    while any("process_request" in t.name for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert request(api, "GET", "/healthz")[0] == 200  # still serving
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ConnectionResetError" not in err
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_refusals_are_written_once_at_once_then_once_per_interval(tmp_path):
    clock = Clock(0.0)
    audit = AuditLog(tmp_path / "audit.sqlite")
    refusals = RefusalAudit(audit, interval_s=60.0, clock=clock)
    assert refusals.record(Refusal(400, "body must be JSON"), "POST /v1/decision", "10.0.0.1") is True
    for i in range(999):
        assert refusals.record(Refusal(400, "body must be JSON"), "POST /v1/decision",
                               "10.0.0.2" if i % 3 else "10.0.0.1") is False
    assert refusals.record(Refusal(403, "address 10.0.0.9 is not in [api] allow"), "GET /healthz", "10.0.0.9")
    assert len(audit.events(10)) == 2  # one row per kind so far
    clock.now = 59.9
    assert refusals.flush() == 0  # the interval has not ended
    clock.now = 60.0
    assert refusals.flush() == 1  # the 400s: the 403 window has nothing counted
    aggregate = audit.events(1)[0]
    assert aggregate.count == 999 and aggregate.peer is None and aggregate.detail.startswith("400 body must be JSON")
    assert "10.0.0.2 x666" in aggregate.detail and "10.0.0.1 x333" in aggregate.detail
    assert refusals.record(Refusal(400, "again"), "POST /v1/decision", "10.0.0.1") is True  # a new interval
    assert refusals.total == 1002
    audit.close()


def test_rate_limiter_is_per_client_and_refills_with_time():
    clock = Clock(0.0)
    limiter = RateLimiter(rate_per_s=2.0, burst=3, clock=clock, max_clients=2)
    assert [limiter.admit("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.admit("a") == pytest.approx(0.5)  # refused: a token is back in half a second
    assert limiter.admit("b") == 0.0  # another caller is not affected
    clock.now = 0.5
    assert limiter.admit("a") == 0.0 and limiter.admit("a") > 0
    limiter.admit("c")  # a third caller: the least recently seen ("b") is forgotten, memory stays bounded
    assert limiter.admit("a") > 0  # still remembered, still empty
