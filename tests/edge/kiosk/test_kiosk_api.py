"""The kiosk HTTP API over a real loopback socket: tokens that verify, and audited 4xx refusals."""

from __future__ import annotations

import http.client
import json
import secrets
import time

import pytest

from edge.kiosk.api import MAX_BODY_BYTES, HealthReport, KioskApi
from edge.kiosk.audit import AuditLog
from edge.kiosk.config import ApiConfig
from edge.kiosk.tokens import HmacKey, TokenClaims, TokenVerifier


def live_claims(nonce: str) -> TokenClaims:
    now = time.time()
    return TokenClaims(nonce=nonce, state="live", reason="8 of the last 10 frames looked live", score=0.1,
                       threshold=0.5, attempt_id=3, model_sha256="cd" * 32, camera_serial="0001",
                       issued_at_s=now, expires_at_s=now + 5)


@pytest.fixture
def served(tmp_path):
    """Start an API on an ephemeral loopback port; yields a factory taking the allow-list."""
    started = []

    def start(allow=("127.0.0.1",), healthy=True):
        key = HmacKey(secrets.token_bytes(32))
        audit = AuditLog(tmp_path / f"audit{len(started)}.sqlite")
        api = KioskApi(ApiConfig(host="127.0.0.1", port=0, allow=tuple(allow)), key, live_claims,
                       lambda: HealthReport(ok=healthy, camera="realsense 0001 streaming", runner="ort cpu",
                                            policy="idle", actuator="none"), audit)
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
    refused = [e for e in audit.events(10) if e.outcome == "refused"]
    assert len(refused) == 2 and all(e.peer == "127.0.0.1" and e.detail.startswith("403") for e in refused)


def test_wrong_path_and_method(served):
    api, _, audit = served()
    assert request(api, "GET", "/v1/decision")[0] == 405
    assert request(api, "GET", "/admin")[0] == 404
    assert request(api, "DELETE", "/healthz")[0] == 405
    assert [e.detail[:3] for e in audit.events(3)] == ["405", "404", "405"]


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
    assert set(body) == {"ok", "camera", "runner", "policy", "actuator"}


def test_port_in_use_is_a_config_error(served):
    from edge.errors import ConfigError

    api, key, audit = served()
    clash = KioskApi(ApiConfig(port=api.address[1]), key, live_claims, lambda: None, audit)
    with pytest.raises(ConfigError, match=r"change \[api\] port"):
        clash.start()
