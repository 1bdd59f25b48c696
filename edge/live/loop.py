"""The one consumer loop of the live path: every decided frame to every sink, sinks closed in ``finally``.

``edgefas live`` (JSON lines, recording, window) and the kiosk (actuator, signed-decision API, audit
log) differ only in their sinks, so both run this loop. It owns no camera and no model: the
:class:`~edge.live.session.LiveSession` does, and its owner closes it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, get_args

from edge.frames import RGBDFrame
from edge.live.pipeline import FrameResult
from edge.live.sinks import LiveEvent, Sink, close_sinks
from edge.policy import DecisionState


class DecisionStream(Protocol):
    """What the loop reads: a :class:`~edge.live.session.LiveSession` (or a test's stand-in)."""

    last_frame: RGBDFrame | None

    @property
    def drops(self) -> int: ...

    def __iter__(self) -> Iterator[FrameResult]: ...


@dataclass(frozen=True)
class LoopSummary:
    """How a run ended: decisions per state and the frames the capture queue dropped."""

    counts: dict[str, int]
    drops: int

    @property
    def frames(self) -> int:
        return sum(self.counts.values())

    def describe(self) -> str:
        states = ", ".join(f"{state} {n}" for state, n in self.counts.items())
        return f"{self.frames} frames: {states}; {self.drops} dropped by the capture queue"


def run_loop(stream: DecisionStream, sinks: Sequence[Sink], stop: threading.Event | None = None) -> LoopSummary:
    """Hand every decided frame of ``stream`` to every sink until the stream ends (the source ended or
    its ``frames`` were decided), a sink asks to stop, or ``stop`` is set.

    The loop owns ``sinks`` from the call on: each is closed exactly once, in ``finally``, and told
    the error that ended the loop, if one did (re-raised after the sinks are closed).
    """
    counts = dict.fromkeys(get_args(DecisionState), 0)  # live, spoof, unknown: the summary's order
    failure: BaseException | None = None
    try:
        for result in stream:
            counts[result.decision.state] += 1
            event = LiveEvent(result, stream.last_frame, stream.drops)
            go_on = [sink.write(event) for sink in sinks]  # every sink sees every frame, even the last
            if not all(go_on) or (stop is not None and stop.is_set()):
                break
    except BaseException as exc:
        failure = exc
        raise
    finally:
        close_sinks(sinks, failure)
    return LoopSummary(counts, stream.drops)
