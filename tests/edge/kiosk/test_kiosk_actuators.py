"""Actuators: webhook against a real local HTTP server, command with real programs, GPIO with a fake module."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from edge.kiosk.actuators.actuator import (
    ACTUATOR_KINDS,
    Actuator,
    ActuatorError,
    ActuatorHealth,
    ActuatorSettings,
    NoActuatorConfig,
    OutcomeUnknownError,
    open_actuator,
)
from edge.kiosk.actuators.command import Command, CommandConfig
from edge.kiosk.actuators.gpio_relay import GpioRelay, GpioRelayConfig, open_gpio_relay
from edge.kiosk.actuators.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, Webhook, WebhookConfig
from edge.kiosk.audit import AuditLog
from edge.kiosk.service import DecisionContext, KioskService, PipelineHealth
from edge.kiosk.toml_table import Secret
from edge.policy import Decision

GRANT = Decision(state="live", code="live", reason="8 of the last 10 frames looked live", t_ms=1000.0, score=0.1,
                 threshold=0.5, attempt_id=4, track_id=2, live_frames=8)


# -- webhook ----------------------------------------------------------------------------------------

class DoorController:
    """A real HTTP server standing in for a door controller; verifies signatures like a receiver would.

    With ``hold`` set it is a slow receiver: it takes the request, then answers only once the test
    releases it (``release()``), i.e. after the sender's timeout, whatever the machine's speed."""

    def __init__(self, secret: bytes, status: int = 200, hold: bool = False) -> None:
        self.secret, self.status, self.requests = secret, status, []
        self.received = threading.Event()
        self.released = threading.Event()
        if not hold:
            self.released.set()
        controller = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                timestamp = self.headers[TIMESTAMP_HEADER]
                expected = "sha256=" + hmac.new(controller.secret, timestamp.encode() + b"." + body,
                                                hashlib.sha256).hexdigest()
                valid = hmac.compare_digest(expected, self.headers[SIGNATURE_HEADER])
                controller.requests.append((json.loads(body), valid, int(timestamp)))
                controller.received.set()
                controller.released.wait(60)  # a slow receiver: it acts, but answers late
                self.send_response(controller.status if valid else 401)
                if controller.status in (301, 302, 307):
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/door/unlock"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def door():
    controllers = []

    def make(secret: bytes, status: int = 200, hold: bool = False) -> DoorController:
        controllers.append(DoorController(secret, status, hold))
        return controllers[-1]

    yield make
    for c in controllers:
        c.close()


def test_webhook_posts_a_signed_body_the_receiver_verifies(door):
    secret = secrets.token_bytes(32)
    controller = door(secret)
    hook = Webhook(WebhookConfig(url=controller.url, secret=Secret(secret, "test")))
    hook.unlock(3.0, GRANT)
    body, valid, timestamp = controller.requests[-1]
    assert valid and body["action"] == "unlock" and body["attempt_id"] == 4 and body["duration_s"] == 3.0
    assert abs(timestamp - time.time()) < 5 and len(body["event_id"]) == 32
    hook.lock()
    assert controller.requests[-1][0]["action"] == "lock" and "ok" in hook.health().line and hook.health().ready


def test_webhook_with_the_wrong_secret_fails_closed(door):
    controller = door(secrets.token_bytes(32))
    hook = Webhook(WebhookConfig(url=controller.url, secret=Secret(secrets.token_bytes(32), "test")))
    with pytest.raises(ActuatorError, match="HTTP 401; the door stays locked"):
        hook.unlock(3.0, GRANT)
    assert controller.requests and controller.requests[-1][1] is False


@pytest.mark.parametrize("status", [500, 302, 307])
def test_webhook_non_2xx_and_redirects_fail(door, status):
    secret = secrets.token_bytes(32)
    controller = door(secret, status=status)
    hook = Webhook(WebhookConfig(url=controller.url, secret=Secret(secret, "test")))
    with pytest.raises(ActuatorError, match=f"HTTP {status}"):
        hook.unlock(3.0, GRANT)
    assert "failed" in hook.health().line and not hook.health().ready


def test_webhook_closed_port_fails_closed():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hook = Webhook(WebhookConfig(url=f"http://127.0.0.1:{port}/x", secret=Secret(b"k" * 32, "test"), timeout_s=1.0))
    with pytest.raises(ActuatorError, match="unreachable") as info:
        hook.unlock(3.0, GRANT)
    assert not isinstance(info.value, OutcomeUnknownError)  # nothing was delivered: the door stays locked
    assert not hook.health().ready


def test_webhook_answer_after_the_timeout_is_an_unknown_outcome(door):
    """The receiver had the signed unlock and may have acted on it: "failed" would be a false record."""
    secret = secrets.token_bytes(32)
    controller = door(secret, hold=True)
    hook = Webhook(WebhookConfig(url=controller.url, secret=Secret(secret, "test"), timeout_s=0.3))
    try:
        with pytest.raises(OutcomeUnknownError, match="outcome unknown"):
            hook.unlock(3.0, GRANT)
    finally:
        controller.released.set()  # it answers 200 now: too late for the sender
    assert controller.received.wait(30)
    body, valid, _ = controller.requests[-1]
    assert valid and body["action"] == "unlock"  # the command did arrive
    assert not hook.health().ready and "outcome unknown" in hook.health().line


def test_a_slow_receiver_is_audited_unknown_by_the_service(door, make_config):
    secret = secrets.token_bytes(32)
    controller = door(secret, hold=True)
    hook = Webhook(WebhookConfig(url=controller.url, secret=Secret(secret, "test"), timeout_s=0.3))
    config = make_config(kiosk='source = "realsense"\nmodel = "m.onnx"', api="enabled = false")
    pipeline = PipelineHealth(ok=True, camera="realsense 0001", runner="onnxruntime cpu", policy="idle")
    service = KioskService(config, actuator=hook, audit=AuditLog(config.audit.path), health=lambda: pipeline)
    try:
        with service:
            service.run([(GRANT, DecisionContext("ab" * 32, "0001"))])
    finally:
        controller.released.set()
    log = AuditLog(config.audit.path)
    unlocks = [e for e in log.events(20) if e.action == "unlock"]
    assert [(e.outcome, e.attempt_id) for e in unlocks] == [("unknown", GRANT.attempt_id)]
    assert "may have carried it out" in unlocks[0].detail
    log.close()


# -- command ----------------------------------------------------------------------------------------

def test_command_true_succeeds_and_false_fails():
    Command(CommandConfig(unlock=("true",))).unlock(1.0, GRANT)
    with pytest.raises(ActuatorError, match="exited with status 1"):
        Command(CommandConfig(unlock=("false",))).unlock(1.0, GRANT)


def test_command_timeout_and_missing_program():
    slow = Command(CommandConfig(unlock=("sleep", "30"), timeout_s=0.3))
    with pytest.raises(OutcomeUnknownError, match="did not finish within 0.3 s"):
        slow.unlock(1.0, GRANT)  # killed mid-way: it may have switched the door
    assert not slow.health().ready
    missing = Command(CommandConfig(unlock=("/nonexistent/door-opener",)))
    with pytest.raises(ActuatorError, match="could not start") as info:
        missing.unlock(1.0, GRANT)
    assert not isinstance(info.value, OutcomeUnknownError)
    assert not missing.health().ready and "not found" in missing.health().line


def test_command_gets_the_decision_in_its_environment_not_its_arguments(tmp_path):
    out = tmp_path / "env.json"
    script = ("import json, os, sys; json.dump({k: v for k, v in os.environ.items() if k.startswith('EDGEFAS_')}"
              ", open(sys.argv[1], 'w'))")
    Command(CommandConfig(unlock=(sys.executable, "-c", script, str(out)))).unlock(2.5, GRANT)
    env = json.loads(out.read_text())
    assert env == {"EDGEFAS_ACTION": "unlock", "EDGEFAS_DURATION_S": "2.5", "EDGEFAS_ATTEMPT_ID": "4",
                   "EDGEFAS_SCORE": "0.100000"}


# -- gpio -------------------------------------------------------------------------------------------

class FakeGPIO:
    """Jetson.GPIO's API surface used by the relay, recording every call with its time."""

    BOARD, OUT, HIGH, LOW = "BOARD", "OUT", 1, 0

    def __init__(self) -> None:
        self.calls = []
        self.level = None

    def setmode(self, mode):
        self.calls.append(("setmode", mode))

    def setup(self, pin, direction, initial):
        self.calls.append(("setup", pin, direction, initial))
        self.level = initial

    def output(self, pin, level):
        self.calls.append(("output", pin, level, time.monotonic()))
        self.level = level

    def cleanup(self, pin=None):
        self.calls.append(("cleanup", pin))


@pytest.mark.parametrize("active_high", [True, False])
def test_gpio_pulse_energises_then_releases(active_high):
    gpio = FakeGPIO()
    on, off = (gpio.HIGH, gpio.LOW) if active_high else (gpio.LOW, gpio.HIGH)
    relay = GpioRelay(GpioRelayConfig(pin=7, active_high=active_high), gpio)
    assert gpio.calls[:2] == [("setmode", "BOARD"), ("setup", 7, "OUT", off)]  # locked from the start
    relay.unlock(0.15, GRANT)
    assert gpio.level == on and "energised (unlocked)" in relay.health().line
    deadline = time.monotonic() + 3
    while gpio.level != off and time.monotonic() < deadline:
        time.sleep(0.01)
    writes = [c for c in gpio.calls if c[0] == "output"]
    assert [w[2] for w in writes] == [on, off]
    assert writes[1][3] - writes[0][3] >= 0.14  # the pulse lasted the configured time
    assert "de-energised (locked)" in relay.health().line and relay.health().ready
    relay.close()
    assert not relay.health().ready  # released for good: a grant could not switch it
    assert gpio.calls[-1] == ("cleanup", 7) and gpio.level == off


def test_gpio_lock_cuts_a_pulse_short_and_close_refuses_more():
    gpio = FakeGPIO()
    relay = GpioRelay(GpioRelayConfig(pin=11), gpio)
    relay.unlock(10.0, GRANT)
    relay.lock()
    assert gpio.level == gpio.LOW
    relay.close()
    with pytest.raises(ActuatorError, match="closed"):
        relay.unlock(1.0, GRANT)
    with pytest.raises(ValueError, match="duration_s"):
        GpioRelay(GpioRelayConfig(pin=12), FakeGPIO()).unlock(0.0, GRANT)


def test_real_jetson_gpio_is_refused_off_a_jetson():
    try:
        import Jetson.GPIO  # noqa: F401
    except ImportError:
        pass
    except Exception:  # noqa: BLE001 - Jetson.GPIO raises a plain Exception off a Jetson
        pass
    else:
        pytest.skip("Jetson.GPIO imports here: this is a Jetson, the relay would really switch")
    from edge.errors import EdgefasError

    with pytest.raises(EdgefasError, match="Jetson"):
        open_gpio_relay(GpioRelayConfig(pin=7))


# -- the table ----------------------------------------------------------------------------------------

def test_every_kind_in_the_table_resolves():
    import importlib

    for kind in ACTUATOR_KINDS:
        for ref in (kind.config, kind.opener):
            module, _, name = ref.partition(":")
            assert callable(getattr(importlib.import_module(module), name)), ref


def test_open_actuator_builds_from_settings_and_satisfies_the_protocol():
    webhook = WebhookConfig(url="http://127.0.0.1:9/", secret=Secret(b"k" * 32, "t"))
    built = [open_actuator(ActuatorSettings("command", CommandConfig(unlock=("true",)))),
             open_actuator(ActuatorSettings("webhook", webhook)),
             open_actuator(ActuatorSettings("none", NoActuatorConfig()))]
    for actuator in built:
        assert isinstance(actuator, Actuator) and actuator.kind in {k.type for k in ACTUATOR_KINDS}
        health = actuator.health()
        assert isinstance(health, ActuatorHealth) and isinstance(health.ready, bool) and health.line
