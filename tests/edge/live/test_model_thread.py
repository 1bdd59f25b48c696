"""The model thread decides every frame, in order, exactly as the one-thread pipeline does.

The pipelines judge in stream time (edge.live.clock.StreamClock): on the wall clock a loaded machine
pushed frames over the policy's latency budget and the comparison depended on the load.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.capture.synthetic import SyntheticWorld
from edge.face.finder import open_face_finder
from edge.live.clock import StreamClock
from edge.live.model_thread import ModelThread
from edge.live.pipeline import LivePipeline
from live_fakes import ScriptedRunner

SCORES = [0.1, 0.2, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]


@pytest.fixture(scope="module")
def frames():
    world = SyntheticWorld("live", 5, distance_m=0.5)
    return [world.frame(i) for i in range(10)]


def decide_in_line(frames):
    pipeline = LivePipeline(ScriptedRunner(SCORES), open_face_finder("haar"), clock=StreamClock())
    return [pipeline.process(f, 33.0 * i) for i, f in enumerate(frames)]


def test_pipelined_decisions_equal_the_one_thread_decisions(frames):
    expected = decide_in_line(frames)
    runner = ScriptedRunner(SCORES)
    pipeline = LivePipeline(runner, open_face_finder("haar"), clock=StreamClock())
    thread = ModelThread(pipeline)
    got = []
    try:
        for i, frame in enumerate(frames):
            done = thread.submit(pipeline.prepare(frame, 33.0 * i))
            if done is not None:
                got.append(done)
        assert len(got) == len(frames) - 1  # one frame behind
        last = thread.drain()
        assert last is not None and thread.drain() is None
        got.append(last)
    finally:
        thread.close()
    assert [r.frame_number for r in got] == [f.frame_number for f in frames]
    assert [(r.score, r.decision.state, r.decision.code) for r in got] == \
        [(r.score, r.decision.state, r.decision.code) for r in expected]
    assert runner.calls == sum(r.score is not None for r in expected) > 0
    assert all("infer" in r.stage_ms for r in got if r.score is not None)


def test_a_runner_error_on_the_model_thread_fails_closed(frames):
    pipeline = LivePipeline(ScriptedRunner([RuntimeError("device lost")] * 4), open_face_finder("haar"))
    thread = ModelThread(pipeline)
    try:
        thread.submit(pipeline.prepare(frames[0], 0.0))
        result = thread.drain()
    finally:
        thread.close()
    assert result is not None and result.decision.state == "unknown" and "device lost" in result.decision.reason


def test_the_crop_made_on_the_model_thread_gives_the_same_decisions(frames):
    expected = decide_in_line(frames)
    pipeline = LivePipeline(ScriptedRunner(SCORES), open_face_finder("haar"), clock=StreamClock())
    thread = ModelThread(pipeline)
    got = []
    try:
        for i, frame in enumerate(frames):
            prepared = pipeline.prepare(frame, 33.0 * i, crop=False)
            assert prepared.sample is None and prepared.cropped == (prepared.face is None)
            done = thread.submit(prepared)
            if done is not None:
                got.append(done)
        got.append(thread.drain())
    finally:
        thread.close()
    assert [(r.frame_number, r.score, r.decision.state, r.decision.code) for r in got] == \
        [(r.frame_number, r.score, r.decision.state, r.decision.code) for r in expected]
    faced = [(a, b) for a, b in zip(got, expected) if b.sample is not None]
    assert faced  # frames with a face were compared
    for a, b in faced:
        assert a.sample is not None and a.sample.gate == b.sample.gate
        np.testing.assert_array_equal(a.sample.rgb, b.sample.rgb)
        np.testing.assert_array_equal(a.sample.depth, b.sample.depth)
        assert "crop" in a.stage_ms
