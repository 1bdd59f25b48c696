"""The live path fails closed: stalls, disconnects, runner errors and NaN scores never grant."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from edge.capture.synthetic import SyntheticWorld
from edge.errors import ModelError
from edge.face.finder import open_face_finder
from edge.live.capture_thread import CaptureThread
from edge.live.clock import StreamClock, WallClock, clock_for
from edge.live.pipeline import LivePipeline
from edge.live.session import LiveOptions, resolve_model
from edge.policy import PolicyConfig
from live_fakes import FailingSource, FiniteSource, ScriptedRunner, StallingSource, SteppingClock


@pytest.fixture(scope="module")
def live_frames():
    world = SyntheticWorld("live", 5, distance_m=0.5)
    return [world.frame(i) for i in range(14)]


@pytest.fixture(scope="module")
def finder():
    return open_face_finder("haar")  # always available; YuNet is tested with the face module


def test_capture_queue_drops_the_oldest_and_counts(live_frames):
    capture = CaptureThread(FiniteSource(live_frames[:10]), queue_size=2).start()
    capture.ended.wait(5)
    got = [capture.get(0.1) for _ in range(3)]
    assert [g.frame.frame_number for g in got[:2]] == [8, 9]
    assert got[2] is None and capture.finished
    assert capture.dropped == 8 and capture.captured == 10


def test_stall_returns_nothing_within_the_timeout(live_frames):
    source = StallingSource(live_frames[:3], before=1)
    capture = CaptureThread(source, queue_size=2).start()
    assert capture.get(1.0) is not None
    started = time.monotonic()
    assert capture.get(0.3) is None
    assert 0.25 < time.monotonic() - started < 1.5
    source.release.set()
    assert capture.get(2.0) is not None
    capture.stop()


def test_disconnect_is_reported_not_raised(live_frames):
    capture = CaptureThread(FailingSource(live_frames[:2]), queue_size=4).start()
    capture.ended.wait(5)
    assert capture.error and "disconnected" in capture.error
    assert capture.get(0.1) is not None


def run(pipeline, frames):
    return [pipeline.process(f, f.t_ms) for f in frames]


def stream_pipeline(runner, finder, policy=None):
    """The rendered frames here are judged in their stream time, so no test depends on machine speed."""
    return LivePipeline(runner, finder, policy, clock=StreamClock())


def test_low_scores_grant_only_after_k_frames(live_frames, finder):
    policy = PolicyConfig(k=5, n=6)
    pipeline = stream_pipeline(ScriptedRunner([0.1] * 20), finder, policy)
    results = run(pipeline, live_frames[:8])
    states = [r.decision.state for r in results]
    assert states[:4] == ["unknown"] * 4 and "live" in states[4:]
    assert all(r.face is not None and r.face.track_id >= 0 for r in results)


def test_high_scores_never_grant(live_frames, finder):
    pipeline = stream_pipeline(ScriptedRunner([0.9] * 20), finder, PolicyConfig(k=5, n=6))
    states = {r.decision.state for r in run(pipeline, live_frames)}
    assert "live" not in states and "spoof" in states


@pytest.mark.parametrize("bad", [RuntimeError("CUDA error: out of memory"), float("nan")])
def test_runner_error_or_nan_is_unknown_and_resets_evidence(live_frames, finder, bad):
    scores = [0.1] * 4 + [bad] + [0.1] * 10
    pipeline = stream_pipeline(ScriptedRunner(scores), finder, PolicyConfig(k=5, n=6))
    results = run(pipeline, live_frames[:10])
    assert results[4].decision.state == "unknown" and results[4].decision.code in ("fault", "bad_score")
    # the four good frames before the fault must not count: no grant until five new ones
    assert all(r.decision.state != "live" for r in results[4:9])


def test_fault_between_frames_is_unknown(live_frames, finder):
    pipeline = stream_pipeline(ScriptedRunner([0.1] * 20), finder, PolicyConfig(k=5, n=6))
    run(pipeline, live_frames[:4])
    result = pipeline.fault(live_frames[4].t_ms, "camera stalled: no frame for 2 s")
    assert result.decision.state == "unknown" and "stalled" in result.decision.reason


def test_the_clock_rule_camera_in_wall_time_software_in_stream_time():
    assert isinstance(clock_for("realsense"), WallClock) and isinstance(clock_for("realsense:123"), WallClock)
    for spec in ("synthetic:live", "photo:live", "bag:x.db3", "folder:/data", "test:finite"):
        assert isinstance(clock_for(spec), StreamClock), spec
    stream = StreamClock()
    assert stream.frame_time(100.0, arrived_ms=5e6) == (100.0, 0.0)  # age is zero: as fresh as its timestamp
    assert stream.frame_time(90.0, arrived_ms=0.0)[0] > 100.0  # never backwards
    assert stream.stall_time(2000.0) > 2100.0 and stream.now_ms() == stream.now_ms()


def test_a_slow_machine_fails_a_camera_closed_but_not_a_software_source(live_frames, finder):
    """The same frames and scores: on a clock that moves 300 ms at every reading (slower than the
    250 ms budget), a camera's frames are over latency; in stream time they are scored and granted."""
    policy = PolicyConfig(k=5, n=6)
    camera = LivePipeline(ScriptedRunner([0.1] * 20), finder, policy, clock=WallClock(SteppingClock(0.3)))
    assert {r.decision.code for r in run(camera, live_frames[:8])} == {"over_latency"}
    software = stream_pipeline(ScriptedRunner([0.1] * 20), finder, policy)
    results = run(software, live_frames[:8])
    assert all(r.score is not None for r in results)  # every frame was actually scored
    assert not {r.decision.code for r in results} & {"over_latency", "stale_frame", "fault"}
    assert any(r.decision.live for r in results)


def test_model_without_threshold_refuses_to_start(finder):
    runner = ScriptedRunner([0.1])
    runner.threshold = float("nan")
    with pytest.raises(ModelError, match="no decision threshold"):
        LivePipeline(runner, finder)


def test_pinned_hash_mismatch_refuses_to_start(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not the pinned model")
    with pytest.raises(ModelError, match="was pinned"):
        resolve_model(LiveOptions(model=model, expect_sha256="0" * 64))


def test_frame_result_json_has_the_contract_keys(live_frames, finder):
    pipeline = LivePipeline(ScriptedRunner([0.2] * 3), finder)
    row = pipeline.process(live_frames[0], 0.0).to_json(drops=3)
    for key in ("frame", "t_ms", "face", "score", "state", "reason", "stage_ms", "drops"):
        assert key in row
    assert row["state"] in ("live", "spoof", "unknown") and row["drops"] == 3
    assert math.isclose(row["score"], 0.2, rel_tol=1e-5)
    assert set(row["stage_ms"]) >= {"detect", "crop", "infer", "decide"}


def test_overlay_draws_state_and_map(live_frames, finder):
    from edge.live.overlay import draw_overlay

    pipeline = LivePipeline(ScriptedRunner([0.2]), finder)
    result = pipeline.process(live_frames[0], 0.0)
    img = draw_overlay(live_frames[0].color_bgr, result, 30.0, show_map=True)
    assert img.shape == live_frames[0].color_bgr.shape
    assert np.count_nonzero(np.any(img != live_frames[0].color_bgr, axis=2)) > 1000
    browser = draw_overlay(live_frames[0].color_bgr, result, 30.0, show_map=True, key_hints=False)
    keys_row = (slice(66, 88), slice(0, 240))  # the fourth text line: the window's keys
    assert np.any(img[keys_row] != browser[keys_row]) and np.array_equal(img[:60], browser[:60]), \
        "a browser picture has the same state lines and no key hints"


def test_a_face_the_quality_gates_reject_is_not_scored(live_frames, finder):
    """The policy does not count a gated crop's score, so the model must not spend a run on it."""
    import dataclasses

    no_depth = [dataclasses.replace(f, depth_raw=np.zeros_like(f.depth_raw)) for f in live_frames[:3]]
    runner = ScriptedRunner([0.1] * 10)
    results = run(stream_pipeline(runner, finder), no_depth + live_frames[3:5])
    gated = [r for r in results if r.sample is not None and r.sample.gate is not None]
    assert len(gated) == 3 and all(r.score is None and r.decision.code == "gated" for r in gated)
    assert runner.calls == sum(1 for r in results if r.sample is not None and r.sample.gate is None) == 2
