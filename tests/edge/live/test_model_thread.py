"""The model thread decides every frame, in order, exactly as the one-thread pipeline does."""

from __future__ import annotations

import pytest

from edge.capture.synthetic import SyntheticWorld
from edge.face.finder import open_face_finder
from edge.live.model_thread import ModelThread
from edge.live.pipeline import LivePipeline
from live_fakes import ScriptedRunner

SCORES = [0.1, 0.2, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]


@pytest.fixture(scope="module")
def frames():
    world = SyntheticWorld("live", 5, distance_m=0.5)
    return [world.frame(i) for i in range(10)]


def decide_in_line(frames):
    pipeline = LivePipeline(ScriptedRunner(SCORES), open_face_finder("haar"))
    return [pipeline.process(f, 33.0 * i) for i, f in enumerate(frames)]


def test_pipelined_decisions_equal_the_one_thread_decisions(frames):
    expected = decide_in_line(frames)
    runner = ScriptedRunner(SCORES)
    pipeline = LivePipeline(runner, open_face_finder("haar"))
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
