"""A watchdog around any :class:`~edge.capture.source.FrameSource`: bounded waits, reconnect, health.

A camera fault must never end the process (a door controller that exits is a door that stays
shut, or open) and must never look "live". The watchdog turns a source's :class:`SourceError`
(a frame wait that timed out, an unplugged camera, a failed open) into a health state that
downstream code reads, closes the source, waits with exponential backoff, and opens it again. After
``reset_after`` consecutive failures it asks the source for a hardware reset, if it has one (a
RealSense that stops streaming often recovers only after a USB power-cycle). While the state is
not ``ok`` no frame is delivered, so nothing downstream can decide on a stale or missing frame.

Only a :class:`SourceError` is a fault. Any other :class:`~edge.errors.EdgefasError` from opening or
reading (production mode refusing a camera, an unsupported camera mode, a missing extra) cannot be
fixed by reconnecting, so it passes through and ends the iteration with that error. A source that
never opened in its first ``first_open_attempts`` tries (no camera at all, a missing recording) is
not a fault either: nothing was lost, so :class:`~edge.errors.SourceUnavailableError` ends the
command with one line instead of a fault report every few seconds.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from edge.capture.source import ClosesOnExit, FrameSource, MetersExposure, SourceOptions, open_source
from edge.errors import SourceError, SourceUnavailableError
from edge.frames import RGBDFrame

log = logging.getLogger(__name__)


class Health(str, enum.Enum):
    OK = "ok"  # frames are arriving
    DEGRADED = "degraded"  # one failure; reconnecting (or not yet started)
    FAULT = "fault"  # repeated failures; the camera cannot be trusted until frames arrive again


@dataclass(frozen=True)
class WatchdogConfig:
    """How patiently to retry. Defaults: a replug takes ~2-5 s to re-enumerate (librealsense
    ``hardware_reset`` documentation), so backoff tops out above that and resets are rare."""

    fault_after: int = 2  # consecutive failures before "degraded" becomes "fault"
    reset_after: int = 3  # consecutive failures before a hardware reset (then again every N)
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    # opening attempts before a source that never opened is given up on (SourceUnavailableError);
    # 0 = retry for ever. A source that opened once is always reconnected, however long it takes.
    first_open_attempts: int = 0

    def __post_init__(self) -> None:
        for name in ("fault_after", "reset_after"):
            if getattr(self, name) < 1:
                raise ValueError(f"WatchdogConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.first_open_attempts < 0:
            raise ValueError(f"WatchdogConfig.first_open_attempts must be >= 0, got {self.first_open_attempts}")
        if not 0 < self.backoff_initial_s <= self.backoff_max_s:
            raise ValueError("WatchdogConfig needs 0 < backoff_initial_s <= backoff_max_s, got "
                             f"{self.backoff_initial_s} and {self.backoff_max_s}")

    def backoff_s(self, failures: int) -> float:
        return min(self.backoff_max_s, self.backoff_initial_s * 2 ** max(0, failures - 1))


@dataclass(frozen=True)
class HealthReport:
    """The watchdog's state as downstream code sees it (immutable snapshot; safe across threads)."""

    state: Health
    reason: str  # "" when ok; else the last failure's one-line message
    since_s: float  # time.monotonic() of the last state change
    consecutive_failures: int = 0
    reconnects: int = 0
    resets: int = 0
    frames: int = 0

    @property
    def ok(self) -> bool:
        return self.state is Health.OK


@runtime_checkable
class ResettableSource(FrameSource, Protocol):
    """A source whose hardware can be power-cycled (the watchdog's last resort)."""

    def reset_hardware(self) -> None: ...


class Watchdog(ClosesOnExit):
    """A :class:`FrameSource` that reopens ``opener()``'s source on failure and never raises a fault
    (a :class:`SourceError`); other errors pass through (see the module docstring).

    Iteration ends only when :meth:`close` is called or the wrapped source is exhausted (the end of
    a recording). ``health`` may be read from any thread; ``on_change`` is called on the iterating
    thread at every state change.
    """

    def __init__(self, opener: Callable[[], FrameSource], spec: str, config: WatchdogConfig | None = None,
                 on_change: Callable[[HealthReport], None] | None = None) -> None:
        self.opener, self.spec, self.config, self.on_change = opener, spec, config or WatchdogConfig(), on_change
        self._source: FrameSource | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._report = HealthReport(Health.DEGRADED, "not started", time.monotonic())

    @property
    def health(self) -> HealthReport:
        with self._lock:
            return self._report

    def describe(self) -> str:
        inner = self._source.describe() if self._source is not None else self.spec
        return f"{inner} watchdog=on"

    def _update(self, **changes: object) -> None:
        with self._lock:
            old = self._report
            new = replace(old, **changes)  # type: ignore[arg-type]
            if new.state is not old.state:
                new = replace(new, since_s=time.monotonic())
            self._report = new
        if new.state is not old.state:
            level = logging.INFO if new.state is Health.OK else logging.WARNING
            log.log(level, "camera health %s -> %s%s", old.state.value, new.state.value,
                    f": {new.reason}" if new.reason else "")
            if self.on_change is not None:
                self.on_change(new)

    def _fail(self, exc: SourceError) -> None:
        failures = self.health.consecutive_failures + 1
        state = Health.FAULT if failures >= self.config.fault_after else Health.DEGRADED
        self._update(state=state, reason=str(exc), consecutive_failures=failures)
        source, self._source = self._source, None
        if failures % self.config.reset_after == 0 and isinstance(source, ResettableSource):
            try:
                source.reset_hardware()
                self._update(resets=self.health.resets + 1)
            except (SourceError, RuntimeError) as reset_exc:  # the device may be gone entirely
                log.warning("hardware reset failed: %s", reset_exc)
        if source is not None:
            self._close_quietly(source)
        self._closed.wait(self.config.backoff_s(failures))

    @staticmethod
    def _close_quietly(source: FrameSource) -> None:
        try:
            source.close()
        except (SourceError, RuntimeError) as exc:  # closing a source whose device vanished
            log.debug("closing a failed source: %s", exc)

    def __iter__(self) -> Iterator[RGBDFrame]:
        frames: Iterator[RGBDFrame] | None = None
        opened = 0
        try:
            while not self._closed.is_set():
                if frames is None:
                    try:
                        self._source = self.opener()
                    except SourceError as exc:
                        failures = self.health.consecutive_failures + 1
                        if not opened and failures == self.config.first_open_attempts:
                            raise SourceUnavailableError(f"source '{self.spec}' could not be opened "
                                                         f"({failures} attempt{'s' if failures > 1 else ''}): "
                                                         f"{exc}") from None
                        self._fail(exc)
                        continue
                    opened += 1
                    if opened > 1:
                        self._update(reconnects=self.health.reconnects + 1)
                    frames = iter(self._source)
                try:
                    frame = next(frames)
                except StopIteration:
                    return
                except SourceError as exc:
                    frames = None
                    self._fail(exc)
                    continue
                if self._closed.is_set():
                    return
                self._update(state=Health.OK, reason="", consecutive_failures=0, frames=self.health.frames + 1)
                yield frame
        finally:
            if self._source is not None:
                self._close_quietly(self._source)
                self._source = None

    def set_exposure_roi(self, box_xyxy: tuple[float, float, float, float]) -> bool:
        """Pass face-metered exposure on to the current source when it has it; False otherwise."""
        source = self._source
        return isinstance(source, MetersExposure) and source.set_exposure_roi(box_xyxy)

    def close(self) -> None:
        """Stop retrying and end iteration (safe from another thread: it interrupts a backoff wait)."""
        self._closed.set()


def watch_source(spec: str, options: SourceOptions | None = None, config: WatchdogConfig | None = None,
                 on_change: Callable[[HealthReport], None] | None = None) -> Watchdog:
    """A watchdog that (re)opens ``spec`` through :func:`edge.capture.source.open_source`."""
    return Watchdog(lambda: open_source(spec, options), spec, config, on_change)
