"""The SQLite audit log: WAL mode, the rows it keeps, face images only on opt-in, retention."""

from __future__ import annotations

import sqlite3
import stat

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


def test_the_database_and_its_wal_files_are_created_owner_only(tmp_path):
    """It holds decisions and maybe face crops: 0600 whatever the umask (SQLite would use 0644)."""
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    log.record_event("service", "start", "ok", "")
    for created in (path, tmp_path / "audit.sqlite-wal", tmp_path / "audit.sqlite-shm"):
        assert stat.S_IMODE(created.stat().st_mode) == 0o600, created
    log.close()


def test_an_existing_file_readable_by_others_is_a_warning(tmp_path, caplog):
    path = tmp_path / "audit.sqlite"
    AuditLog(path).close()
    path.chmod(0o644)
    with caplog.at_level("WARNING", logger="edge.kiosk.audit"):
        AuditLog(path).close()
    assert any("chmod 600" in r.getMessage() for r in caplog.records)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # the operator's choice is reported, not changed


def test_a_folder_as_the_path_is_a_one_line_error(tmp_path):
    with pytest.raises(AuditError, match=r"is a folder; set \[audit\] path to a file") as info:
        AuditLog(tmp_path)
    assert "\n" not in str(info.value)


def test_a_version_1_log_gains_the_count_column(tmp_path):
    path = tmp_path / "audit.sqlite"
    old = sqlite3.connect(path)
    old.executescript("CREATE TABLE events (id INTEGER PRIMARY KEY, t_unix_s REAL NOT NULL, source TEXT NOT NULL, "
                      "action TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL, attempt_id INTEGER, "
                      "peer TEXT); INSERT INTO events VALUES (1, 1.0, 'service', 'start', 'ok', 'v1', NULL, NULL); "
                      "PRAGMA user_version=1;")
    old.close()
    log = AuditLog(path)
    log.record_event("api", "GET /x", "refused", "404 unknown path", count=7)
    assert [(e.detail, e.count) for e in log.events(10)] == [("404 unknown path", 7), ("v1", 1)]
    log.close()


def test_unknown_is_an_outcome(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    log.record_event("actuator", "unlock", "unknown", "webhook gave no answer within 2 s")
    assert log.events(1)[0].outcome == "unknown"
    log.close()
