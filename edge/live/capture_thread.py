"""Capture in its own thread, handing frames over through a small queue that drops the oldest.

A slow model must never make the camera's driver queue overflow (frames then arrive late and
stale), and a decision must be made on the newest frame, not on a backlog: so the queue is bounded
and the oldest frame is discarded when a new one arrives, and every discard is counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from edge.capture.source import FrameSource
from edge.errors import EdgefasError
from edge.frames import RGBDFrame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Captured:
    """A frame and the time (ms, by the thread's ``arrival_ms`` clock) at which the capture thread received it."""

    frame: RGBDFrame
    arrived_ms: float


class CaptureThread:
    """Iterates ``source`` on a daemon thread; :meth:`get` returns the newest frames in order.

    ``ended`` is set when the source is exhausted (end of a recording) or failed; ``failure`` then
    holds the :class:`EdgefasError` and ``error`` its message. ``arrival_ms`` stamps each frame
    (default: monotonic milliseconds; the live session passes its policy clock's ``now_ms``) when it
    arrives, before ``on_frame`` (if given) does its work on it here.
    Thread-safe: one producer (the thread), one consumer.
    """

    def __init__(self, source: FrameSource, queue_size: int = 2, pace_fps: float | None = None,
                 arrival_ms: Callable[[], float] | None = None,
                 on_frame: Callable[[RGBDFrame], None] | None = None) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.source = source
        self.pace_fps = pace_fps  # software sources can be paced to camera speed; None = as fast as they come
        self._arrival_ms = arrival_ms or (lambda: time.monotonic() * 1000.0)
        # work done on this thread for every frame before it is queued, off the consumer's thread
        # (LivePipeline.capture_hook: face first's detection view); it must not touch the consumer's state
        self._on_frame = on_frame
        self._queue: deque[Captured] = deque(maxlen=queue_size)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.ended = threading.Event()
        self.failure: EdgefasError | None = None
        self.error: str | None = None
        self.dropped = 0
        self.captured = 0
        self._thread = threading.Thread(target=self._run, name="edgefas-capture", daemon=True)

    def start(self) -> CaptureThread:
        self._thread.start()
        return self

    def _run(self) -> None:
        period = 1.0 / self.pace_fps if self.pace_fps else 0.0
        next_due = time.monotonic()
        try:
            for frame in self.source:
                if self._stop.is_set():
                    break
                if period:
                    next_due += period
                    delay = next_due - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                arrived = self._arrival_ms()
                if self._on_frame is not None:
                    self._on_frame(frame)
                item = Captured(frame, arrived)
                with self._cond:
                    if len(self._queue) == self._queue.maxlen:
                        self.dropped += 1
                    self._queue.append(item)
                    self.captured += 1
                    self._cond.notify()
        except EdgefasError as exc:
            self.failure, self.error = exc, str(exc)
            log.warning("capture ended: %s", exc)
        finally:
            self.ended.set()
            with self._cond:
                self._cond.notify_all()

    def get(self, timeout_s: float) -> Captured | None:
        """The oldest queued frame, waiting up to ``timeout_s``; None on a stall or after the end."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self._queue:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.ended.is_set() and not self._queue):
                    return None
                self._cond.wait(remaining)
            return self._queue.popleft()

    @property
    def finished(self) -> bool:
        """The source ended and every frame it gave has been taken."""
        with self._cond:
            return self.ended.is_set() and not self._queue

    def stop(self) -> None:
        self._stop.set()
        close = getattr(self.source, "close", None)
        if close is not None:
            close()
        if self._thread.ident is not None:  # a session closed before it was iterated never started it
            self._thread.join(timeout=5.0)
