"""The SQLite audit log: WAL mode, the rows it keeps, face images only on opt-in, retention."""

from __future__ import annotations

import sqlite3

import cv2
import numpy as np
import pytest

from edge.kiosk.audit import AuditError, AuditLog
from edge.policy import Decision

DECISION = Decision(state="spoof", code="spoof", reason="4 of the last 10 frames looked like an attack", t_ms=5.0,
                    score=0.91, threshold=0.5, attempt_id=2, track_id=5, spoof_frames=4)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def jpeg() -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((32, 32, 3), 128, np.uint8))
    assert ok
    return data.tobytes()


def test_log_is_in_wal_mode_and_keeps_attempts_and_events(tmp_path):
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path, clock=Clock(1_700_000_000.0))
    log.record_attempt(DECISION, model_sha256="ef" * 32, camera_serial="123", face_jpeg=jpeg())
    log.record_event("actuator", "unlock", "failed", "webhook unreachable", attempt_id=2)
    log.record_event("api", "POST /v1/decision", "refused", "403 address 10.1.1.1 is not in [api] allow", peer="10.1.1.1")
    assert log.journal_mode == "wal"

    other = sqlite3.connect(str(path))  # an operator reading while the service writes
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = other.execute("SELECT state, code, reason, score, threshold, model_sha256, camera_serial, face_jpeg "
                        "FROM attempts").fetchone()
    assert row[:7] == ("spoof", "spoof", DECISION.reason, 0.91, 0.5, "ef" * 32, "123")
    assert row[7] is None  # no face image without the operator's opt-in
    assert other.execute("SELECT count(*) FROM events").fetchone()[0] == 2
    other.close()

    newest = log.events(1)[0]
    assert (newest.source, newest.outcome, newest.peer) == ("api", "refused", "10.1.1.1")
    log.close()


def test_face_images_only_when_opted_in(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite", store_face_images=True)
    image = jpeg()
    log.record_attempt(DECISION, model_sha256="", camera_serial="", face_jpeg=image)
    stored = log.attempts(1)[0].face_jpeg
    assert stored == image and cv2.imdecode(np.frombuffer(stored, np.uint8), cv2.IMREAD_COLOR).shape == (32, 32, 3)
    log.close()


def test_retention_deletes_old_rows(tmp_path):
    clock = Clock(1_000_000.0)
    log = AuditLog(tmp_path / "audit.sqlite", retention_days=1.0, clock=clock)
    log.record_event("service", "start", "ok", "old")
    clock.now += 2 * 86400
    log.record_event("service", "start", "ok", "new")  # more than an hour later: prunes on write
    assert [e.detail for e in log.events(10)] == ["new"]
    log.close()


def test_nan_score_is_stored_as_null(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    log.record_attempt(Decision(state="unknown", code="bad_score", reason="nan", t_ms=0.0, score=float("nan")),
                       model_sha256="", camera_serial="")
    row = log.attempts(1)[0]
    assert row.score is None and row.threshold is None
    log.close()


def test_unwritable_location_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(AuditError, match=r"check \[audit\] path"):
        AuditLog(blocker / "audit.sqlite")


def test_outcome_is_checked(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    with pytest.raises(ValueError, match="outcome"):
        log.record_event("api", "x", "maybe", "")
    log.close()
