"""The pipelined bench mode books a looped recording's restart wait on the restarted frame only.

In ``--mode pipelined`` a frame's decision is booked when the next frame has been read, so the wait for
the frame after a recording's loop point used to land in the interval of the frame before it: two
restarts of ~1.5 s in 180 frames halved the mode's fps. Everything here is a stand-in except
``run_stream``'s own loop and the real model thread; the clock is a fake that only moves when told.
"""

from __future__ import annotations

from types import SimpleNamespace

RESTART_WAIT_S = 10.0  # far longer than any booked interval may be
STEP_S = 0.004  # what every other clock reading advances


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += STEP_S
        return self.now


def test_restart_wait_is_not_booked_on_the_frame_before(monkeypatch):
    import edge.bench.stream as stream

    clock = FakeClock()
    loop = 5  # the recording's frame numbers 0..4, then it starts again

    class Source:
        def __iter__(self):
            n = 0
            while True:
                yield SimpleNamespace(meta=SimpleNamespace(color_frame_number=n % loop, host_process_ms=0.0),
                                      t_ms=33.0 * n)
                n += 1

        def describe(self) -> str:
            return "fake looping recording"

        def close(self) -> None:
            pass

    class Prefetcher:  # synchronous, on the caller's thread: the loop point costs RESTART_WAIT_S
        def __init__(self, frames, size, on_frame=None) -> None:
            self.frames, self.error = frames, None

        def get(self, timeout_s):
            frame = next(self.frames)
            if frame.meta.color_frame_number == 0 and frame.t_ms > 0:
                clock.now += RESTART_WAIT_S
            return frame

        def stop(self) -> None:
            pass

    decided = []

    class Pipeline:
        face_first = None  # no detection view to make ahead

        def prepare(self, frame, t_ms, capture_ms, crop=True):
            return frame

        def infer(self, prepared):
            return None

        def finish(self, prepared, inferred):
            decided.append(prepared.meta.color_frame_number)
            return SimpleNamespace(faces_in_view=1, stage_ms={"detect": 1.0}, face=object())

    monkeypatch.setattr(stream, "open_bench_source", lambda *a, **k: Source())
    monkeypatch.setattr(stream, "_Prefetcher", Prefetcher)
    monkeypatch.setattr(stream, "_pipelines", lambda contestants, options: [Pipeline()])
    monkeypatch.setattr(stream.time, "perf_counter", clock)
    contestant = SimpleNamespace(label="fake", face_first=True)
    options = stream.StreamOptions(frames=12, warmup=2, mode="pipelined", block=20)
    run = stream.run_stream("bag:fake.db3", [contestant], options)

    assert len(decided) >= 14, "the model thread decided the frames"
    assert run.restarts >= 2, "the recording looped while timed"
    intervals = [t.interval_ms for t in run.timings["fake"]]
    assert len(intervals) + run.restarts == 12
    assert max(intervals) < 1000.0 * RESTART_WAIT_S / 2, intervals
