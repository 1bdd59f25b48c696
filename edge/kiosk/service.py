"""The kiosk service: decisions in, door commands, audit lines and API answers out (DESIGN §7).

The live pipeline (``edge/live``) owns the camera, the runner and the :class:`~edge.policy.DecisionPolicy`;
the live loop (:func:`edge.live.loop.run_loop`) hands its decisions to the service through
:class:`edge.kiosk.sink.KioskSink` (``begin``, ``handle`` per decision, ``finish``), and
:meth:`KioskService.run` does the same for any iterable of ``(Decision, DecisionContext)`` pairs,
so the service is tested with plain lists. Rules kept here:

- a grant drives the actuator at most once per attempt, whatever happens (a failed unlock is not
  retried: the person starts a new attempt, which the policy rate-limits);
- every change of (attempt, state, reason code) is audited *before* the actuator is driven, so
  nothing opens without its audit row; an audit failure stops the service (systemd restarts it);
- the API hands out the newest decision only while it is fresh (``decision_max_age_ms``), else a
  signed "unknown"; when the pipeline ends or fails, the door is locked and the API says "unknown";
- a stop request (``stop``: SIGTERM/SIGINT through :mod:`edge.kiosk.shutdown`) ends grants at once:
  a decision handled after it is audited but opens nothing; the door is locked and the stop row
  names the signal;
- an actuator command that was sent but not confirmed is audited ``unknown``, never ``failed``
  (:class:`~edge.kiosk.actuators.actuator.OutcomeUnknownError`): the door may have opened;
- ``/healthz`` is 503 when any part the door depends on is down: the pipeline, the actuator
  (its ``health().ready``), the audit log;
- a start that fails half-way (the API or console port taken) audits the failure and closes what it
  opened, so the process exits with one line and nothing left running;
- the installer console (``[console] enabled``, :mod:`edge.kiosk.console`) sees the loop only through
  :attr:`KioskService.feed`, which keeps a reference to the newest frame and encodes nothing itself;
- the service never sees a source: production mode (refusing recordings, rendered and software
  sources and unfit cameras, DESIGN §7) is enforced where sources are opened, through
  ``SourceOptions.production`` (see :mod:`edge.kiosk.runtime`).

One KioskService per DecisionPolicy: attempt ids are unique only within one policy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from edge.errors import EdgefasError
from edge.kiosk.actuators.actuator import Actuator, ActuatorError, OutcomeUnknownError, open_actuator
from edge.kiosk.api import HealthReport, KioskApi
from edge.kiosk.audit import AuditLog
from edge.kiosk.config import KioskConfig
from edge.kiosk.console.app import KioskConsole
from edge.kiosk.console.feed import LiveFeed
from edge.kiosk.console.health import DoorFacts
from edge.kiosk.shutdown import stop_reason
from edge.kiosk.tokens import TokenClaims
from edge.policy import Decision

log = logging.getLogger(__name__)

GRANTED_MEMORY = 4096  # attempt ids remembered as granted; far more than attempts per lockout window
JPEG_QUALITY = 90  # OpenCV IMWRITE_JPEG_QUALITY; a face crop stays recognisable for review


@dataclass(frozen=True)
class DecisionContext:
    """What the pipeline knows alongside a decision, for tokens and the audit log."""

    model_sha256: str
    camera_serial: str
    face_crop_bgr: np.ndarray | None = None  # stored only when [audit] store_face_images is true


@dataclass(frozen=True)
class PipelineHealth:
    """The pipeline's own view for ``/healthz``: camera and runner lines, and the policy's state."""

    ok: bool
    camera: str
    runner: str
    policy: str


class KioskService:
    """Owns the actuator, the audit log and the API for its lifetime (use as a context manager).

    ``stop``, when set (by a signal handler, another thread), means: grant nothing more, and when the
    pipeline finishes, say why in the audit. Clocks are inputs (the API's rate limit uses ``mono_clock``).
    """

    def __init__(self, config: KioskConfig, *, actuator: Actuator, audit: AuditLog,
                 health: Callable[[], PipelineHealth], mono_clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time, stop: threading.Event | None = None,
                 facts: Callable[[], DoorFacts] | None = None) -> None:
        """``facts`` tells the console's health page about the camera, model and runner (the runtime
        knows them); without it the page shows the pipeline's health lines."""
        self.config = config
        self.stop = stop
        self.actuator = actuator
        self.audit = audit
        self._pipeline_health = health
        self._mono = mono_clock
        self._wall = wall_clock
        self._lock = threading.Lock()
        self._latest: tuple[Decision, DecisionContext, float] | None = None
        self._stopped_reason: str | None = "the pipeline has not started"
        self._last_audited: tuple[int, str, str] | None = None
        self._granted: set[int] = set()
        self._granted_order: deque[int] = deque()
        self.api: KioskApi | None = None
        if config.api.enabled:
            self.api = KioskApi(config.api, config.token.key(), self.claims_for, self.health, audit,
                                clock=mono_clock)
        self.feed: LiveFeed | None = None
        self.console: KioskConsole | None = None
        if config.console.enabled:
            self.feed = LiveFeed(config.console.max_fps, mono_clock)
            self.console = KioskConsole(config, audit, self.feed, facts or self._pipeline_facts, self.health,
                                        clock=mono_clock)

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> KioskService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Lock, start the API, audit the start (with the config's warnings). If the API cannot start,
        the failure is audited and everything opened so far is closed before the error goes on."""
        # An unreachable door controller cannot unlock either: run on (every grant will fail and be
        # audited), so the door recovers by itself when the controller comes back.
        self._lock_door("at start")
        try:
            if self.api is not None:
                self.api.start()
            if self.console is not None:
                self.console.start()
        except EdgefasError as exc:
            self.audit.record_event("service", "start", "failed", str(exc))
            self._stop_servers()
            self._release()
            raise
        detail = (f"source={self.config.kiosk.source} production={self.config.kiosk.production} "
                  f"actuator={self.actuator.kind}")
        if self.config.warnings:
            detail += "; warnings: " + " | ".join(self.config.warnings)
        self.audit.record_event("service", "start", "ok", detail)

    def close(self) -> None:
        """Stop the console and the API, lock and release the actuator, close the audit log (in that order)."""
        self._stop_servers()
        locked = self._lock_door("on shutdown")
        reason = self._stopped_reason or "stopped"
        self._release(f"{reason}; door {'locked' if locked == 'ok' else 'lock ' + locked}")

    def _stop_servers(self) -> None:
        if self.console is not None:
            self.console.stop()
        if self.api is not None:
            self.api.stop()

    def _release(self, stop_detail: str | None = None) -> None:
        try:
            self.actuator.close()
        except ActuatorError as exc:
            log.warning("releasing the actuator failed: %s", exc)
            self.audit.record_event("actuator", "close", "failed", str(exc))
        if stop_detail is not None:
            self.audit.record_event("service", "stop", "ok", stop_detail)
        self.audit.close()

    def _lock_door(self, when: str) -> str:
        """Lock; a failure is logged and audited, never raised. Returns the outcome (ok/failed/unknown)."""
        try:
            self.actuator.lock()
        except OutcomeUnknownError as exc:
            log.warning("locking %s: outcome unknown: %s", when, exc)
            self.audit.record_event("actuator", "lock", "unknown", str(exc))
            return "unknown"
        except ActuatorError as exc:
            log.warning("locking %s failed: %s", when, exc)
            self.audit.record_event("actuator", "lock", "failed", str(exc))
            return "failed"
        return "ok"

    # -- the decision stream -----------------------------------------------------------------------

    def run(self, decisions: Iterable[tuple[Decision, DecisionContext]],
            stop: threading.Event | None = None) -> int:
        """Consume decisions until the iterable ends or ``stop`` (default: the service's) is set;
        returns how many were handled. ``stop`` is checked before each decision (none is handled
        after it) and after it (no wait for the next frame).

        A pipeline error (an :class:`EdgefasError` from the iterable) is audited and re-raised after
        the door is locked, so the service exits non-zero and systemd restarts it.
        """
        stop = stop if stop is not None else self.stop
        handled = 0
        self.begin()
        try:
            for decision, context in decisions:
                if stop is not None and stop.is_set():
                    break
                self.handle(decision, context)
                handled += 1
                if stop is not None and stop.is_set():
                    break
        except EdgefasError as exc:
            self.finish(exc)
            raise
        if stop is not None and stop.is_set() and stop is not self.stop:
            self._halt_on_request(stop)
        else:
            self.finish()
        return handled

    def begin(self) -> None:
        """The pipeline starts: from now on the API hands out its fresh decisions."""
        with self._lock:
            self._stopped_reason = None

    def finish(self, failure: BaseException | None = None) -> None:
        """The pipeline ended (``failure`` None) or failed: lock the door and say so on the API. A
        pipeline error (an :class:`EdgefasError`) is also audited; the caller re-raises it."""
        if failure is None and self._stopping():
            self._halt_on_request(self.stop)
        elif failure is None:
            self._halt("the pipeline ended")
        elif isinstance(failure, EdgefasError):
            self._halt(f"pipeline failed: {failure}")
            self.audit.record_event("service", "pipeline", "failed", str(failure))

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _halt_on_request(self, stop: threading.Event) -> None:
        reason = stop_reason(stop)
        log.info("%s: locking the door", reason)
        self._halt(reason)

    def _halt(self, reason: str) -> None:
        with self._lock:
            self._stopped_reason = reason
        self._lock_door("after the pipeline stopped")

    def handle(self, decision: Decision, context: DecisionContext) -> None:
        """Record one decision; drive the actuator on the first live decision of an attempt."""
        if not isinstance(decision, Decision):
            raise TypeError(f"decision must be an edge.policy.Decision, got {type(decision).__name__}")
        if not isinstance(context, DecisionContext):
            raise TypeError(f"context must be a DecisionContext, got {type(context).__name__}")
        with self._lock:
            self._latest = (decision, context, self._mono())
        key = (decision.attempt_id, decision.state, decision.code)
        if key != self._last_audited:
            self._last_audited = key
            self.audit.record_attempt(decision, model_sha256=context.model_sha256,
                                      camera_serial=context.camera_serial, face_jpeg=self._face_jpeg(decision, context))
        if decision.live and decision.attempt_id > 0 and decision.attempt_id not in self._granted:
            if self._stopping():
                log.info("attempt %d not granted: %s", decision.attempt_id, stop_reason(self.stop))
                return
            self._remember_grant(decision.attempt_id)
            self._grant(decision)

    def _grant(self, decision: Decision) -> None:
        duration_s = self.config.kiosk.unlock_s
        try:
            self.actuator.unlock(duration_s, decision)
        except OutcomeUnknownError as exc:
            log.warning("unlock for attempt %d: outcome unknown: %s", decision.attempt_id, exc)
            self.audit.record_event("actuator", "unlock", "unknown", str(exc), attempt_id=decision.attempt_id)
            return
        except ActuatorError as exc:
            log.warning("unlock for attempt %d failed: %s", decision.attempt_id, exc)
            self.audit.record_event("actuator", "unlock", "failed", str(exc), attempt_id=decision.attempt_id)
            return
        log.info("unlocked for %.1f s: attempt %d (%s)", duration_s, decision.attempt_id, decision.reason)
        self.audit.record_event("actuator", "unlock", "ok", f"{self.actuator.kind} for {duration_s:g} s",
                                attempt_id=decision.attempt_id)

    def _remember_grant(self, attempt_id: int) -> None:
        self._granted.add(attempt_id)
        self._granted_order.append(attempt_id)
        if len(self._granted_order) > GRANTED_MEMORY:
            self._granted.discard(self._granted_order.popleft())

    def _face_jpeg(self, decision: Decision, context: DecisionContext) -> bytes | None:
        if not self.audit.store_face_images or context.face_crop_bgr is None or decision.state == "unknown":
            return None
        import cv2

        ok, encoded = cv2.imencode(".jpg", context.face_crop_bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        return encoded.tobytes() if ok else None

    # -- providers for the API ---------------------------------------------------------------------

    def claims_for(self, nonce: str) -> TokenClaims:
        """The newest decision bound to ``nonce``; "unknown" when there is none, it is stale, or the
        pipeline stopped. Thread-safe (called from API threads)."""
        with self._lock:
            latest, stopped = self._latest, self._stopped_reason
        now = self._wall()
        model_sha256 = camera_serial = ""
        state, reason, score, threshold, attempt_id = "unknown", "no decision yet", None, None, 0
        if latest is not None:
            decision, context, received = latest
            model_sha256, camera_serial = context.model_sha256, context.camera_serial
            age_ms = (self._mono() - received) * 1000.0
            if stopped is not None:
                reason = stopped
            elif age_ms > self.config.kiosk.decision_max_age_ms:
                reason = f"newest decision is {age_ms:.0f} ms old (limit {self.config.kiosk.decision_max_age_ms:g} ms)"
            else:
                state, reason, score = decision.state, decision.reason, decision.score
                threshold, attempt_id = decision.threshold, decision.attempt_id
        elif stopped is not None:
            reason = stopped
        return TokenClaims(nonce=nonce, state=state, reason=reason, score=score, threshold=threshold,
                           attempt_id=attempt_id, model_sha256=model_sha256, camera_serial=camera_serial,
                           issued_at_s=now, expires_at_s=now + self.config.token.ttl_s)

    def _pipeline_facts(self) -> DoorFacts:
        pipeline = self._pipeline_health()
        return DoorFacts(source=self.config.kiosk.source, watchdog=pipeline.camera,
                         model_path=str(self.config.kiosk.model), model_sha256=self.config.kiosk.model_sha256 or "-",
                         runner=pipeline.runner)

    def health(self) -> HealthReport:
        """Every part the door depends on; ``down`` names those that are not ready. Thread-safe."""
        pipeline = self._pipeline_health()
        actuator = self.actuator.health()
        audit_failure = self.audit.failure
        with self._lock:
            stopped = self._stopped_reason
        parts = (("pipeline", pipeline.ok and stopped is None), ("actuator", actuator.ready),
                 ("audit", audit_failure is None))
        down = tuple(name for name, ready in parts if not ready)
        return HealthReport(ok=not down, camera=pipeline.camera, runner=pipeline.runner,
                            policy=stopped or pipeline.policy, actuator=actuator.line,
                            audit=audit_failure or f"ok ({self.audit.path.name})", down=down)


def build_kiosk_service(config: KioskConfig, health: Callable[[], PipelineHealth],
                        stop: threading.Event | None = None,
                        facts: Callable[[], DoorFacts] | None = None) -> KioskService:
    """Open the configured audit log and actuator and wire them into a service (not started yet);
    ``stop`` is the service's stop request (:class:`~edge.kiosk.shutdown.StopRequest`)."""
    audit = AuditLog(config.audit.path, store_face_images=config.audit.store_face_images,
                     retention_days=config.audit.retention_days)
    try:
        actuator = open_actuator(config.actuator)
    except EdgefasError:
        audit.close()
        raise
    return KioskService(config, actuator=actuator, audit=audit, health=health, stop=stop, facts=facts)
