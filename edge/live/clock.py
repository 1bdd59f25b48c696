"""The policy's clock: a camera is judged in wall time, a software source in its own stream time.

The decision policy's budgets (``max_latency_ms``, ``max_frame_age_ms``, the K-of-N window) are in
milliseconds of *one* clock, and every duration the live path hands it must come from that clock:

- a physical camera (:attr:`edge.capture.source.SourceKind.physical`) delivers frames in real time,
  so waiting for a frame, the frame's age in the queue and the time to score it are all wall time, and
  a board too slow for its budget fails closed;
- a software source (synthetic or photo world, recording, folder) is played as fast as this machine
  renders or reads it, so wall time measures this machine, not the scene: it is judged in the
  stream's own time, which stands at the timestamp of the frame being decided on and does not move
  while the frame is rendered, waited for or scored. Replayed scenes then get the same decisions on
  a loaded laptop and on a Jetson (the seams issue measured on a loaded 2-core machine: every
  ``synthetic:live`` frame came out ``over_latency`` when the wall-clock wait for the renderer was added
  to the 250 ms budget).

The clock is an input (:func:`clock_for` picks it from the spec; tests pass their own), so nothing
that judges time reads the machine's clock behind its back. One live loop owns a clock; only
``now_ms`` (a read) may also be called from the capture thread, which stamps arrivals with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from edge.capture.source import is_physical

STEP_MS = 1e-3  # a software frame whose timestamp repeats is placed just after the previous decision


class PolicyClock(Protocol):
    """Time in milliseconds as the decision policy sees it."""

    name: str  # "wall" or "stream", for logs

    def now_ms(self) -> float:
        """The clock's current reading; the difference of two readings is a duration the policy judges."""
        ...

    def frame_time(self, frame_t_ms: float, arrived_ms: float) -> tuple[float, float]:
        """(decision time, frame age) for a frame just taken from the capture queue; ``arrived_ms`` is
        when the capture thread received it (by :meth:`now_ms`)."""
        ...

    def stall_time(self, waited_ms: float) -> float:
        """Decision time of a fault after waiting ``waited_ms`` in vain for a frame."""
        ...

    def work_ms(self, wall_ms: float) -> float:
        """A frame's work measured elsewhere in wall time (a capture process staged it before it arrived),
        as a duration of this clock, to add to the frame's age."""
        ...


class WallClock:
    """A live camera's clock: monotonic wall time (``time.monotonic`` unless another is passed)."""

    name = "wall"

    def __init__(self, monotonic_s: Callable[[], float] = time.monotonic) -> None:
        self._monotonic_s = monotonic_s

    def now_ms(self) -> float:
        return self._monotonic_s() * 1000.0

    def frame_time(self, frame_t_ms: float, arrived_ms: float) -> tuple[float, float]:
        now = self.now_ms()
        return now, max(0.0, now - arrived_ms)

    def stall_time(self, waited_ms: float) -> float:
        return self.now_ms()

    def work_ms(self, wall_ms: float) -> float:
        return max(0.0, wall_ms)


class StreamClock:
    """A software source's clock: the timestamp of the newest frame (never backwards); a stall
    advances it by the time waited, since a stream that delivers nothing has no time of its own."""

    name = "stream"

    def __init__(self) -> None:
        self._t_ms = 0.0
        self._started = False

    def now_ms(self) -> float:
        return self._t_ms

    def frame_time(self, frame_t_ms: float, arrived_ms: float) -> tuple[float, float]:
        t = float(frame_t_ms)
        if self._started:
            t = max(t, self._t_ms + STEP_MS)
        self._t_ms, self._started = t, True
        return t, 0.0  # a software frame is as fresh as its timestamp says

    def stall_time(self, waited_ms: float) -> float:
        self._t_ms += waited_ms
        self._started = True
        return self._t_ms

    def work_ms(self, wall_ms: float) -> float:
        return 0.0  # stream time does not move while a frame is worked on


def clock_for(spec: str) -> PolicyClock:
    """The clock rule: wall time for a physical camera kind, stream time for everything else."""
    return WallClock() if is_physical(spec) else StreamClock()
