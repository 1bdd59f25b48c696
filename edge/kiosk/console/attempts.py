"""The attempts page's reader: the audit log's decisions, newest first, a page at a time, filtered by state.

A read-only SQLite connection of its own (``mode=ro``): in WAL mode readers and the service's writer
do not block each other (https://www.sqlite.org/wal.html), so a long CSV export never holds up an
audit row of the door, and nothing the console does can change the log. Face images are never read.
"""

from __future__ import annotations

import csv
import io
import math
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from edge.kiosk.audit import AttemptRow, AuditError

STATES = ("live", "spoof", "unknown")
PER_PAGE = 25
MAX_EXPORT_ROWS = 100_000  # a CSV export stops here (~10 MB): more is a database copy, not an export
# the CSV's columns: AttemptRow's fields with the time in UTC and without the face image
COLUMNS = ("time_utc", "attempt", "track", "state", "code", "reason", "score", "threshold", "model_sha256",
           "camera")


@dataclass(frozen=True)
class AttemptsPage:
    rows: tuple[AttemptRow, ...]  # face_jpeg is always None here
    state: str | None  # the filter; None = every state
    page: int  # from 1
    pages: int  # at least 1
    total: int  # rows matching the filter


def utc_text(t_unix_s: float) -> str:
    """Unix seconds as ``YYYY-MM-DD HH:MM:SS.mmm`` in UTC (the pages and the CSV)."""
    return datetime.fromtimestamp(t_unix_s, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _cells(row: AttemptRow) -> tuple[object, ...]:
    return (utc_text(row.t_unix_s), row.attempt_id, row.track_id, row.state, row.code, row.reason, row.score,
            row.threshold, row.model_sha256, row.camera_serial)


class AttemptsReader:
    """Thread-safe (one connection, serialised by a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise AuditError(f"the console cannot read the audit log {self.path} ({exc})") from None
        self._lock = threading.Lock()

    @staticmethod
    def _where(state: str | None) -> tuple[str, tuple]:
        if state is None:
            return "", ()
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, got {state!r}")
        return " WHERE state = ?", (state,)

    def _select(self, where: str, values: tuple, limit: int, offset: int) -> list[AttemptRow]:
        rows = self._db.execute(
            "SELECT t_unix_s, attempt_id, track_id, state, code, reason, score, threshold, model_sha256, camera_serial "
            f"FROM attempts{where} ORDER BY id DESC LIMIT ? OFFSET ?", (*values, limit, offset)).fetchall()
        return [AttemptRow(*row, face_jpeg=None) for row in rows]

    def page(self, state: str | None, page: int, per_page: int = PER_PAGE) -> AttemptsPage:
        """Page ``page`` (from 1; past the end gives the last page) of the rows with ``state``."""
        where, values = self._where(state)
        try:
            with self._lock:
                total = self._db.execute(f"SELECT count(*) FROM attempts{where}", values).fetchone()[0]
                pages = max(1, math.ceil(total / per_page))
                page = min(max(1, page), pages)
                rows = self._select(where, values, per_page, (page - 1) * per_page)
        except sqlite3.Error as exc:
            raise AuditError(f"reading the audit log {self.path} failed ({exc})") from None
        return AttemptsPage(tuple(rows), state, page, pages, total)

    def csv_text(self, state: str | None) -> tuple[str, int]:
        """Every row with ``state`` (up to ``MAX_EXPORT_ROWS``), newest first, as CSV; and the row count."""
        where, values = self._where(state)
        try:
            with self._lock:
                rows = self._select(where, values, MAX_EXPORT_ROWS, 0)
        except sqlite3.Error as exc:
            raise AuditError(f"reading the audit log {self.path} failed ({exc})") from None
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(["" if v is None else v for v in _cells(row)])
        return out.getvalue(), len(rows)

    def close(self) -> None:
        with self._lock:
            self._db.close()
