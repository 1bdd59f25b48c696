"""API refusals: one JSON shape for every refusal, and their audit rows aggregated per kind and interval.

A flood of bad requests must not become a flood of audit rows and log lines (2,000 bad requests used
to write 2,000 rows and megabytes of tracebacks). So a refusal is audited like this, per *kind* (its
HTTP status): the first one of an interval is written at once (count 1, with its peer and detail, so
a single mistake shows up immediately); the others in the same ``interval_s`` are counted and written
as **one** row when the interval ends (``count`` = how many, the busiest peers in the detail), or at
shutdown. A WARNING is logged only when a row is written, so the log is bounded the same way.

Nothing here knows about HTTP serving: the API's and the console's Starlette apps, and the HTTP
protocol for what never reaches an app (:mod:`edge.kiosk.http_server`), raise or build a
:class:`Refusal`, answer with :meth:`Refusal.body`, and report it to :class:`RefusalAudit`. Time
is an input (``clock``, monotonic seconds) so tests drive the intervals.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

from edge.kiosk.audit import AuditError, AuditLog

log = logging.getLogger(__name__)

AGGREGATE_INTERVAL_S = 60.0  # one row per kind per minute: a flood costs ~1,440 rows a day per kind at most
MAX_PEERS_NAMED = 3  # an aggregate row names the busiest callers, not all of them
MAX_PEERS_TRACKED = 64  # distinct callers counted by name per window; the rest are "others"
MAX_ACTION_CHARS = 200  # a garbage request line is stored truncated, printable characters only


class Refusal(Exception):
    """An API request refused with ``status``; ``str(refusal)`` is the message the caller gets."""

    def __init__(self, status: HTTPStatus | int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.status = HTTPStatus(status)
        self.headers = headers  # extra response headers, e.g. Retry-After on a 429

    def body(self) -> dict:
        """The documented refusal shape: ``{"error": message, "status": code}``."""
        return {"error": str(self), "status": self.status.value}


def printable(text: str, limit: int = MAX_ACTION_CHARS) -> str:
    """``text`` cut to ``limit`` characters with anything unprintable replaced, for audit rows and logs."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


@dataclass
class _Window:
    started_s: float
    action: str = ""
    detail: str = ""
    pending: int = 0  # refusals counted since the first one, not written yet
    peers: Counter = field(default_factory=Counter)


class RefusalAudit:
    """Aggregates refusals into audit rows; thread-safe (API threads report, the server flushes)."""

    def __init__(self, audit: AuditLog, interval_s: float = AGGREGATE_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic, source: str = "api") -> None:
        """``source`` is the audit rows' source column: "api", or "console" for the installer console."""
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.audit = audit
        self.source = source
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[int, _Window] = {}
        self.total = 0  # refusals seen since start, for /healthz and tests

    def record(self, refusal: Refusal, action: str, peer: str) -> bool:
        """Count one refusal; returns True when it was written (and logged) now, False when counted."""
        status, action = refusal.status.value, printable(action)
        detail = printable(f"{status} {refusal}", 1000)
        now = self._clock()
        with self._lock:
            self.total += 1
            window = self._windows.get(status)
            if window is not None and now - window.started_s >= self.interval_s:
                del self._windows[status]  # gone before writing: a failing write is not retried forever
                self._write_aggregate(status, window)
                window = None
            if window is not None:
                window.pending += 1
                window.action, window.detail = action, detail
                if peer in window.peers or len(window.peers) < MAX_PEERS_TRACKED:
                    window.peers[peer] += 1
                else:
                    window.peers["others"] += 1
                return False
            self._windows[status] = _Window(started_s=now)
            self.audit.record_event(self.source, action, "refused", detail, peer=peer)
        log.warning("%s refused %s from %s: %s (more %d refusals within %g s are counted, logged as one)",
                    self.source, action, peer, detail, status, self.interval_s)
        return True

    def report(self, refusal: Refusal, action: str, peer: str) -> None:
        """:meth:`record` for an HTTP layer: an audit failure is logged, the refusal is still answered."""
        try:
            self.record(refusal, action, peer)
        except AuditError as exc:
            log.error("%s: %s", self.source, exc)

    def flush_logged(self, *, everything: bool = False) -> None:
        """:meth:`flush`, with an audit failure logged instead of raised (a server's periodic task)."""
        try:
            self.flush(everything=everything)
        except AuditError as exc:
            log.error("%s: %s", self.source, exc)

    def flush(self, *, everything: bool = False) -> int:
        """Write the aggregate rows of intervals that ended (all of them with ``everything``, at
        shutdown); returns how many rows were written."""
        now = self._clock()
        written = 0
        with self._lock:
            for status, window in list(self._windows.items()):
                if everything or now - window.started_s >= self.interval_s:
                    del self._windows[status]  # gone before writing: a failing write is not retried forever
                    written += self._write_aggregate(status, window)
        return written

    def _write_aggregate(self, status: int, window: _Window) -> int:
        """One row for the refusals counted after the first; caller holds the lock."""
        if window.pending == 0:
            return 0
        busiest = ", ".join(f"{peer} x{n}" for peer, n in window.peers.most_common(MAX_PEERS_NAMED))
        more = len(window.peers) - MAX_PEERS_NAMED
        peers = busiest + (f" and {more} more" if more > 0 else "")
        elapsed = max(0.0, self._clock() - window.started_s)
        detail = f"{window.detail} (x{window.pending} more in {elapsed:.0f} s; from {peers})"
        sole_peer = next(iter(window.peers)) if len(window.peers) == 1 else None
        self.audit.record_event(self.source, window.action, "refused", detail, peer=sole_peer, count=window.pending)
        log.warning("%s refused %d more requests with %d within %.0f s (from %s)", self.source, window.pending, status,
                    elapsed, peers)
        return 1
