"""The kiosk's audit log: one SQLite file in WAL mode (DESIGN §7).

What is kept: every attempt's decisions (time, state, reason, score, threshold, model hash, camera
serial), every API request that was refused or answered, every actuator command and its outcome.
What is not kept: face images, unless the operator sets ``[audit] store_face_images = true``; then
a JPEG crop of the face is stored with the attempt row, and nowhere else.

WAL mode (https://www.sqlite.org/wal.html) lets an operator read the log while the service writes
it, and ``synchronous=NORMAL`` is durable across application crashes in WAL mode (same page).
One connection shared by the service thread and the API threads, serialised by a lock.
Retention: rows older than ``retention_days`` are deleted at start and then hourly.

The file is created with mode 0600 before SQLite opens it (it holds decisions and maybe face crops);
SQLite gives its ``-wal`` and ``-shm`` files the database file's permissions
(https://www.sqlite.org/tempfiles.html, unixOpen's findCreateFileMode), so they are 0600 too. An
existing file readable by others is logged at WARNING, not changed: the operator may have meant it.
An event row has a ``count``: API refusals are aggregated (:mod:`edge.kiosk.refusals`), one row
standing for many.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.errors import EdgefasError
from edge.policy import Decision

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0  # retention is in days; checking hourly keeps the log within an hour of it
SCHEMA_VERSION = 2  # 2: events.count (aggregated refusals)
FILE_MODE = 0o600  # owner only: decisions, caller addresses and (opt-in) face images are personal data
OUTCOMES = ("ok", "refused", "failed", "unknown")  # unknown: sent, but whether it was carried out is not known

_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    t_unix_s REAL NOT NULL,
    attempt_id INTEGER NOT NULL,
    track_id INTEGER,
    state TEXT NOT NULL,
    code TEXT NOT NULL,
    reason TEXT NOT NULL,
    score REAL,
    threshold REAL,
    model_sha256 TEXT NOT NULL,
    camera_serial TEXT NOT NULL,
    face_jpeg BLOB
);
CREATE INDEX IF NOT EXISTS attempts_time ON attempts (t_unix_s);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    t_unix_s REAL NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    attempt_id INTEGER,
    peer TEXT,
    count INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS events_time ON events (t_unix_s);
"""


class AuditError(EdgefasError):
    """The audit log cannot be opened or written; the kiosk refuses to grant without it."""


@dataclass(frozen=True)
class AttemptRow:
    t_unix_s: float
    attempt_id: int
    track_id: int | None
    state: str
    code: str
    reason: str
    score: float | None
    threshold: float | None
    model_sha256: str
    camera_serial: str
    face_jpeg: bytes | None


@dataclass(frozen=True)
class EventRow:
    t_unix_s: float
    source: str  # "api", "actuator" or "service"
    action: str  # e.g. "POST /v1/decision", "unlock", "start"
    outcome: str  # "ok", "refused", "failed" or "unknown" (a command sent but not confirmed)
    detail: str
    attempt_id: int | None
    peer: str | None  # the API caller's address (None for an aggregate of several callers)
    count: int = 1  # how many occurrences this row stands for (aggregated refusals)


class AuditLog:
    """Append-only log; thread-safe. ``clock`` gives Unix seconds (injected for tests)."""

    def __init__(self, path: Path, *, store_face_images: bool = False, retention_days: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.store_face_images = store_face_images
        self.retention_days = retention_days
        self._clock = clock
        self._lock = threading.Lock()
        self.failure: str | None = None  # the last write error, for /healthz; None while writes succeed
        if self.path.is_dir():
            raise AuditError(f"the audit log {self.path} is a folder; set [audit] path to a file in it, "
                             f"e.g. {self.path / 'audit.sqlite'}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._create_private()
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise AuditError(f"cannot open the audit log {self.path} ({exc}); check [audit] path and that the "
                             "service user may write its folder") from None
        if mode.lower() != "wal":
            raise AuditError(f"the audit log {self.path} cannot use WAL mode (got {mode}); put it on a local "
                             "file system")
        self._last_prune = -math.inf
        self.prune()

    def _create_private(self) -> None:
        """Create the file owner-only before SQLite would create it with the umask's default (0644)."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            mode = stat.S_IMODE(self.path.stat().st_mode)
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                log.warning("the audit log %s is readable by group or others (mode %04o); it holds decisions "
                            "and maybe face images: chmod 600 %s", self.path, mode, self.path)
            return
        os.close(fd)

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if 0 < version < 2:  # a version-1 file: events had no count column
            self._db.execute("ALTER TABLE events ADD COLUMN count INTEGER NOT NULL DEFAULT 1")
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @property
    def journal_mode(self) -> str:
        with self._lock:
            return self._db.execute("PRAGMA journal_mode").fetchone()[0]

    def _write(self, sql: str, values: tuple) -> None:
        try:
            with self._lock:
                self._db.execute(sql, values)
        except sqlite3.Error as exc:
            self.failure = f"writing failed ({exc})"
            raise AuditError(f"writing the audit log {self.path} failed ({exc}); check free disk space") from None
        self.failure = None
        if self._clock() - self._last_prune >= PRUNE_EVERY_S:
            self.prune()

    def record_attempt(self, decision: Decision, *, model_sha256: str, camera_serial: str,
                       face_jpeg: bytes | None = None) -> None:
        """One row per decision worth keeping; ``face_jpeg`` is dropped unless images are opted in."""
        image = face_jpeg if self.store_face_images else None
        score = decision.score if decision.score is not None and math.isfinite(decision.score) else None
        threshold = decision.threshold if math.isfinite(decision.threshold) else None
        self._write("INSERT INTO attempts (t_unix_s, attempt_id, track_id, state, code, reason, score, threshold, "
                    "model_sha256, camera_serial, face_jpeg) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (self._clock(), decision.attempt_id, decision.track_id, decision.state, decision.code,
                     decision.reason, score, threshold, model_sha256, camera_serial,
                     sqlite3.Binary(image) if image is not None else None))

    def record_event(self, source: str, action: str, outcome: str, detail: str, *,
                     attempt_id: int | None = None, peer: str | None = None, count: int = 1) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer, got {count!r}")
        self._write("INSERT INTO events (t_unix_s, source, action, outcome, detail, attempt_id, peer, count) "
                    "VALUES (?,?,?,?,?,?,?,?)",
                    (self._clock(), source, action, outcome, detail, attempt_id, peer, count))

    def prune(self) -> int:
        """Delete rows older than the retention period; returns how many were deleted."""
        now = self._clock()
        self._last_prune = now
        if self.retention_days is None:
            return 0
        cutoff = now - self.retention_days * 86400.0
        try:
            with self._lock:
                deleted = self._db.execute("DELETE FROM attempts WHERE t_unix_s < ?", (cutoff,)).rowcount
                deleted += self._db.execute("DELETE FROM events WHERE t_unix_s < ?", (cutoff,)).rowcount
        except sqlite3.Error as exc:
            raise AuditError(f"pruning the audit log {self.path} failed ({exc})") from None
        if deleted:
            log.info("audit log: %d rows older than %g days deleted", deleted, self.retention_days)
        return deleted

    def attempts(self, limit: int = 100) -> list[AttemptRow]:
        """Most recent first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT t_unix_s, attempt_id, track_id, state, code, reason, score, threshold, model_sha256, "
                "camera_serial, face_jpeg FROM attempts ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [AttemptRow(*row[:10], bytes(row[10]) if row[10] is not None else None) for row in rows]

    def events(self, limit: int = 100) -> list[EventRow]:
        """Most recent first."""
        with self._lock:
            rows = self._db.execute("SELECT t_unix_s, source, action, outcome, detail, attempt_id, peer, count "
                                    "FROM events ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [EventRow(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
