"""The watchdog's state machine over a fake source that times out, fails to reopen, then recovers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from edge.capture.source import FrameSource
from edge.capture.watchdog import Health, HealthReport, Watchdog, WatchdogConfig
from edge.errors import SourceError
from edge.frames import Intrinsics, RGBDFrame

FAST = WatchdogConfig(fault_after=2, reset_after=3, backoff_initial_s=0.001, backoff_max_s=0.004)


def _frame(number: int) -> RGBDFrame:
    return RGBDFrame(np.zeros((4, 4, 3), np.uint8), np.full((4, 4), 500, np.uint16), 0.001,
                     Intrinsics(4, 4, 3.0, 3.0, 2.0, 2.0), float(number), number, "fake")


class ScriptedSource:
    """Each opening plays one script entry: frame numbers, then "timeout" (raises) or the end."""

    def __init__(self, script: list[int | str], log: list[tuple[str, object]]) -> None:
        self.spec, self.script, self.log, self.closed = "fake", script, log, False

    def describe(self) -> str:
        return "fake"

    def __iter__(self) -> Iterator[RGBDFrame]:
        for step in self.script:
            if step == "timeout":
                raise SourceError("fake camera sent no frame for 0.01 s")
            yield _frame(int(step))

    def reset_hardware(self) -> None:
        self.log.append(("reset", None))

    def close(self) -> None:
        self.closed = True


def _opener(openings: list[list[int | str] | str], log: list[tuple[str, object]], opened: list[ScriptedSource]):
    def open_next() -> FrameSource:
        entry = openings.pop(0)
        if entry == "unplugged":
            raise SourceError("no RealSense camera found")
        source = ScriptedSource(entry, log)  # type: ignore[arg-type]
        opened.append(source)
        return source
    return open_next


def test_fault_then_ok_with_no_frame_during_the_fault() -> None:
    log: list[tuple[str, object]] = []
    opened: list[ScriptedSource] = []
    openings: list[list[int | str] | str] = [[1, 2, "timeout"], "unplugged", ["timeout"], [10, 11]]
    dog = Watchdog(_opener(openings, log, opened), "fake", FAST,
                   on_change=lambda report: log.append(("health", report.state)))
    for frame in dog:
        log.append(("frame", frame.frame_number))
        assert dog.health.state is Health.OK  # nothing is delivered in any other state
    states = [value for kind, value in log if kind == "health"]
    assert states == [Health.OK, Health.DEGRADED, Health.FAULT, Health.OK]
    fault_at = log.index(("health", Health.FAULT))
    recovered_at = log.index(("health", Health.OK), fault_at)
    assert not [entry for entry in log[fault_at:recovered_at] if entry[0] == "frame"]
    assert [v for k, v in log if k == "frame"] == [1, 2, 10, 11]
    assert ("reset", None) in log[fault_at:recovered_at]  # third consecutive failure: hardware reset
    report = dog.health
    assert report.ok and report.consecutive_failures == 0 and report.frames == 4
    assert report.reconnects == 2 and report.resets == 1
    assert all(source.closed for source in opened)


def test_a_camera_that_never_comes_back_never_ends_the_process() -> None:
    """The watchdog keeps retrying in "fault" and ends only when closed, without raising."""
    attempts = []

    def always_unplugged() -> FrameSource:
        attempts.append(time.monotonic())
        raise SourceError("no RealSense camera found")

    dog = Watchdog(always_unplugged, "realsense", WatchdogConfig(backoff_initial_s=0.01, backoff_max_s=0.02))
    delivered: list[RGBDFrame] = []
    thread = threading.Thread(target=lambda: delivered.extend(dog))
    thread.start()
    time.sleep(0.3)
    assert thread.is_alive()
    assert dog.health.state is Health.FAULT and "no RealSense camera" in dog.health.reason
    dog.close()
    thread.join(timeout=2)
    assert not thread.is_alive()
    assert delivered == [] and len(attempts) >= 3
    gaps = np.diff(attempts)
    assert gaps[-1] >= 0.015  # backoff grew towards its cap


def test_initial_state_is_not_ok_and_end_of_a_recording_ends_the_watchdog() -> None:
    log: list[tuple[str, object]] = []
    dog = Watchdog(_opener([[1, 2, 3]], log, []), "fake", FAST)
    assert dog.health.state is Health.DEGRADED  # never "ok" before a frame arrived
    assert [f.frame_number for f in dog] == [1, 2, 3]


def test_backoff_and_config_checks() -> None:
    config = WatchdogConfig(backoff_initial_s=0.5, backoff_max_s=8.0)
    assert [config.backoff_s(n) for n in (1, 2, 3, 4, 5, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    with pytest.raises(ValueError, match="fault_after"):
        WatchdogConfig(fault_after=0)
    with pytest.raises(ValueError, match="backoff"):
        WatchdogConfig(backoff_initial_s=2.0, backoff_max_s=1.0)
    assert isinstance(HealthReport(Health.OK, "", 0.0).ok, bool)


def test_watchdog_is_a_frame_source() -> None:
    dog = Watchdog(lambda: ScriptedSource([], []), "fake", FAST)
    assert isinstance(dog, FrameSource)


def test_only_a_camera_spec_is_physical_and_a_bad_spec_fails_closed() -> None:
    from edge.capture.source import SOURCE_KINDS, is_physical

    assert [k.prefix for k in SOURCE_KINDS if k.physical] == ["realsense"]
    assert is_physical("realsense") and is_physical("realsense:123")
    for spec in ("bag:x.db3", "folder:/data", "synthetic:live", "photo:live", "not a spec", ""):
        assert not is_physical(spec), spec


def test_a_refusal_is_not_a_fault_it_passes_through() -> None:
    from edge.errors import ProductionError

    def refuse() -> FrameSource:
        raise ProductionError("production mode refuses this camera")

    changes: list[HealthReport] = []
    dog = Watchdog(refuse, "realsense", FAST, on_change=changes.append)
    with pytest.raises(ProductionError):
        list(dog)
    assert changes == []  # no degraded/fault loop: reconnecting cannot change the answer


def test_wraps_a_real_source_through_its_spec() -> None:
    pytest.importorskip("edge.capture.synthetic", reason="the synthetic renderer is not in this checkout")
    from edge.capture.source import SourceOptions
    from edge.capture.watchdog import watch_source

    changes: list[HealthReport] = []
    dog = watch_source("synthetic:live", SourceOptions(max_frames=3), FAST, on_change=changes.append)
    frames = list(dog)
    assert len(frames) == 3
    assert [c.state for c in changes] == [Health.OK] and dog.health.frames == 3


def test_a_source_that_never_opens_ends_after_its_first_attempts_one_that_opened_is_reconnected() -> None:
    """Never opened = nothing to reconnect to (no camera, a bad spec): SourceUnavailableError after
    ``first_open_attempts``. Opened once and then lost = a fault: the watchdog keeps reconnecting past
    that count."""
    from edge.errors import SourceUnavailableError

    patient = WatchdogConfig(fault_after=2, reset_after=3, backoff_initial_s=0.001, backoff_max_s=0.004,
                             first_open_attempts=3)
    attempts: list[float] = []

    def unplugged() -> FrameSource:
        attempts.append(time.monotonic())
        raise SourceError("no RealSense camera found")

    with pytest.raises(SourceUnavailableError, match=r"source 'realsense' could not be opened \(3 attempts\): no "):
        list(Watchdog(unplugged, "realsense", patient))
    assert len(attempts) == 3

    log: list[tuple[str, object]] = []
    dog = Watchdog(_opener([[1, "timeout"], "unplugged", "unplugged", "unplugged", "unplugged", [2, 3]], log, []),
                   "fake", patient)
    assert [f.frame_number for f in dog] == [1, 2, 3]  # four failed reopenings after the loss, then back
    assert dog.health.reconnects == 1


def test_first_open_attempts_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="first_open_attempts"):
        WatchdogConfig(first_open_attempts=-1)
