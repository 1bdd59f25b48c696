"""KioskService: grants once per attempt, audits before acting, fails closed, serves fresh decisions only."""

from __future__ import annotations

import http.client
import json
import secrets
import threading
import time

import numpy as np
import pytest

from edge.errors import SourceError
from edge.kiosk.actuators.actuator import ActuatorError, ActuatorHealth, OutcomeUnknownError
from edge.kiosk.audit import AuditError, AuditLog
from edge.kiosk.service import DecisionContext, KioskService, PipelineHealth, build_kiosk_service
from edge.kiosk.shutdown import StopRequest
from edge.kiosk.tokens import TokenVerifier
from edge.policy import Decision, DecisionPolicy, Observation

CONTEXT = DecisionContext(model_sha256="12" * 32, camera_serial="943222071234")


class RecordingActuator:
    """Stands in for a door: records unlocks and locks; can be told to fail."""

    kind = "recording"

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.unlocks, self.locks, self.closed = fail, [], 0, False

    def unlock(self, duration_s, decision):
        if self.fail:
            raise ActuatorError("door controller unreachable; the door stays locked")
        self.unlocks.append((duration_s, decision.attempt_id))

    def lock(self):
        self.locks += 1

    def health(self):
        return ActuatorHealth(not self.fail, f"recording ({len(self.unlocks)} unlocks)")

    def close(self):
        self.closed = True


class MonoClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def healthy() -> PipelineHealth:
    return PipelineHealth(ok=True, camera="realsense 943222071234 30 fps", runner="onnxruntime cpu", policy="idle")


def decision(state, attempt, code=None, t_ms=0.0):
    return Decision(state=state, code=code or {"live": "live", "spoof": "spoof"}.get(state, "collecting"),
                    reason=f"{state} test", t_ms=t_ms, score=0.2, threshold=0.5, attempt_id=attempt)


def make_service(make_config, actuator=None, api=False, mono=None, stop=None, **kiosk):
    body = "\n".join([f'source = "{kiosk.pop("source", "realsense")}"', 'model = "m.onnx"',
                      f'production = {str(kiosk.pop("production", True)).lower()}', "unlock_s = 0.5",
                      "decision_max_age_ms = 500"])
    audit_body = f'path = "audit.sqlite"\nstore_face_images = {str(kiosk.pop("images", False)).lower()}'
    config = make_config(kiosk=body, api=f"enabled = {str(api).lower()}\nport = 0\nallow = [\"127.0.0.1\"]",
                         audit=audit_body)
    audit = AuditLog(config.audit.path, store_face_images=config.audit.store_face_images)
    service = KioskService(config, actuator=actuator or RecordingActuator(), audit=audit, health=healthy,
                           mono_clock=mono or time.monotonic, stop=stop)
    return service, config


def test_grants_once_per_attempt(make_config):
    actuator = RecordingActuator()
    service, _ = make_service(make_config, actuator)
    stream = [decision("unknown", 1), decision("live", 1), decision("live", 1), decision("live", 1),
              decision("unknown", 0, code="no_face"), decision("live", 2), decision("spoof", 2), decision("live", 2)]
    with service:
        assert service.run((d, CONTEXT) for d in stream) == len(stream)
    assert actuator.unlocks == [(0.5, 1), (0.5, 2)]
    assert actuator.locks >= 2 and actuator.closed  # locked at start, at the end of the stream, at close


def test_audit_rows_are_written_on_changes_and_before_the_unlock(make_config):
    actuator = RecordingActuator()
    service, config = make_service(make_config, actuator)
    with service:
        service.run([(decision("unknown", 1), CONTEXT), (decision("unknown", 1), CONTEXT),
                     (decision("live", 1), CONTEXT)])
    log = AuditLog(config.audit.path)
    attempts = log.attempts(10)
    assert [(a.attempt_id, a.state) for a in reversed(attempts)] == [(1, "unknown"), (1, "live")]
    assert attempts[0].model_sha256 == CONTEXT.model_sha256 and attempts[0].camera_serial == CONTEXT.camera_serial
    events = [(e.source, e.action, e.outcome) for e in reversed(log.events(10))]
    assert ("actuator", "unlock", "ok") in events and events[0] == ("service", "start", "ok")
    log.close()


def test_failed_unlock_is_audited_and_never_retried(make_config):
    actuator = RecordingActuator(fail=True)
    service, config = make_service(make_config, actuator)
    with service:
        service.run([(decision("live", 1), CONTEXT)] * 5)
    log = AuditLog(config.audit.path)
    failed = [e for e in log.events(20) if e.action == "unlock"]
    assert len(failed) == 1 and failed[0].outcome == "failed" and "unreachable" in failed[0].detail
    log.close()


def test_policy_end_to_end_opens_once_for_a_live_face(make_config):
    actuator = RecordingActuator()
    service, config = make_service(make_config, actuator)
    policy = DecisionPolicy(config.policy, threshold=0.5)  # k=3 of n=4 from the test config
    observations = [Observation(t_ms=i * 33.0, track_id=1, score=0.1) for i in range(20)]
    with service:
        service.run((policy.update(o), CONTEXT) for o in observations)
    assert actuator.unlocks == [(0.5, 1)]


def test_pipeline_failure_locks_audits_and_reraises(make_config):
    actuator = RecordingActuator()
    service, config = make_service(make_config, actuator)

    def stream():
        yield decision("live", 1), CONTEXT
        raise SourceError("RealSense 943222071234 stopped sending frames; check the USB cable")

    with service:
        with pytest.raises(SourceError):
            service.run(stream())
        assert service.claims_for("n" * 20).state == "unknown"
        assert "pipeline failed" in service.claims_for("n" * 20).reason
        assert service.health().ok is False
    log = AuditLog(config.audit.path)
    assert any(e.action == "pipeline" and e.outcome == "failed" for e in log.events(20))
    log.close()


def test_api_serves_fresh_decisions_only(make_config, secret_bytes):
    mono = MonoClock()
    service, config = make_service(make_config, api=True, mono=mono)
    verifier = TokenVerifier(config.token.key(), time.time)

    def ask(nonce):
        host, port = service.api.address
        connection = http.client.HTTPConnection(host, port, timeout=5)
        connection.request("POST", "/v1/decision", body=json.dumps({"nonce": nonce}))
        answer = json.loads(connection.getresponse().read())
        connection.close()
        return verifier.verify(answer["token"], expected_nonce=nonce)

    handled, release = threading.Event(), threading.Event()

    def stream():
        yield decision("live", 3), CONTEXT
        handled.set()  # the service asked for the next decision: the first one is in
        release.wait(10)

    with service:
        assert ask(secrets.token_urlsafe(16)).reason == "the pipeline has not started"
        runner = threading.Thread(target=service.run, args=(stream(),))
        runner.start()
        assert handled.wait(5)
        fresh = ask(secrets.token_urlsafe(16))
        assert fresh.live and fresh.attempt_id == 3 and fresh.camera_serial == CONTEXT.camera_serial
        assert fresh.expires_at_s - fresh.issued_at_s == pytest.approx(config.token.ttl_s)
        mono.now += 0.6  # older than decision_max_age_ms = 500
        stale = ask(secrets.token_urlsafe(16))
        assert stale.state == "unknown" and "ms old" in stale.reason
        release.set()
        runner.join(5)
        ended = ask(secrets.token_urlsafe(16))
        assert ended.state == "unknown" and ended.reason == "the pipeline ended"


def test_face_crops_are_stored_only_on_opt_in(make_config):
    crop = np.zeros((64, 64, 3), np.uint8)
    with_image = DecisionContext(CONTEXT.model_sha256, CONTEXT.camera_serial, face_crop_bgr=crop)
    for opted_in in (False, True):
        service, config = make_service(make_config, images=opted_in)
        with service:
            service.run([(decision("spoof", 1), with_image)])
        log = AuditLog(config.audit.path)
        stored = log.attempts(1)[0].face_jpeg
        assert (stored is not None) == opted_in
        if opted_in:
            assert stored[:2] == b"\xff\xd8"  # JPEG start-of-image marker
        log.close()
        config.audit.path.unlink()


def test_build_kiosk_service_opens_the_configured_parts(make_config):
    config = make_config(kiosk='source = "realsense"\nmodel = "m.onnx"', api="enabled = false")
    service = build_kiosk_service(config, healthy)
    with service:
        assert service.actuator.kind == "none" and service.health().ok is False  # pipeline not started yet
    # production mode is not the service's to check (it never sees a source): test_kiosk_production.py


def test_run_stops_before_the_next_decision_and_audits_the_reason(make_config):
    stop = StopRequest()
    actuator = RecordingActuator()
    service, config = make_service(make_config, actuator, stop=stop)

    def stream():
        yield decision("live", 1), CONTEXT
        stop.request("SIGTERM received")
        yield decision("live", 2), CONTEXT  # arrives after the signal: never handled

    with service:
        assert service.run(stream()) == 1
        assert service.claims_for("n" * 20).reason == "stopped: SIGTERM received"
    assert actuator.unlocks == [(0.5, 1)] and actuator.locks >= 2  # locked after the stop and at close
    log = AuditLog(config.audit.path)
    assert log.events(1)[0].detail == "stopped: SIGTERM received; door locked"
    assert [a.attempt_id for a in log.attempts(10)] == [1]
    log.close()


def test_the_sink_path_grants_nothing_once_stopping(make_config):
    """The live loop drives begin/handle/finish (edge.kiosk.sink); a decision it hands over after the
    signal is audited but opens nothing, and finish() names the signal."""
    stop = StopRequest()
    actuator = RecordingActuator()
    service, config = make_service(make_config, actuator, stop=stop)
    with service:
        service.begin()
        stop.request("SIGINT received")
        service.handle(decision("live", 7), CONTEXT)
        service.finish()
    assert actuator.unlocks == []
    log = AuditLog(config.audit.path)
    assert [(a.attempt_id, a.state) for a in log.attempts(10)] == [(7, "live")]
    assert log.events(1)[0].detail == "stopped: SIGINT received; door locked"
    log.close()


def test_health_names_every_part_that_is_down(make_config):
    """/healthz is 503 when anything the door depends on is down, not only the camera."""
    actuator = RecordingActuator(fail=True)  # its health() says not ready
    service, _ = make_service(make_config, actuator)
    service.start()
    assert service.health().down == ("pipeline", "actuator")  # the pipeline has not started yet
    service.begin()
    report = service.health()
    assert report.ok is False and report.down == ("actuator",) and report.audit.startswith("ok")
    service.audit.close()  # the audit log fails from now on
    with pytest.raises(AuditError):
        service.handle(decision("unknown", 1), CONTEXT)
    report = service.health()
    assert report.down == ("actuator", "audit") and "writing failed" in report.audit


class UnknownOutcomeActuator(RecordingActuator):
    """A door controller that got the command but never confirmed it (webhook timeout, no PUBACK)."""

    def unlock(self, duration_s, decision):
        raise OutcomeUnknownError("webhook door:80 got the unlock request but gave no answer within 2 s")

    def lock(self):
        raise OutcomeUnknownError("webhook door:80 got the lock request but gave no answer within 2 s")


def test_an_unconfirmed_command_is_audited_unknown_not_failed(make_config):
    service, config = make_service(make_config, UnknownOutcomeActuator())
    with service:
        service.run([(decision("live", 1), CONTEXT)])
    log = AuditLog(config.audit.path)
    rows = [(e.action, e.outcome) for e in reversed(log.events(20)) if e.source == "actuator"]
    assert ("unlock", "unknown") in rows and ("lock", "unknown") in rows
    assert not any(outcome == "failed" for _, outcome in rows)
    assert log.events(1)[0].detail.endswith("door lock unknown")  # the stop row does not claim "locked"
    log.close()
