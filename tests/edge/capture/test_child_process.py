"""``ChildProcessSource``: the same frames as in-process, one-line errors, a dead child is a SourceError."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from edge.capture.child_process import ChildProcessSource
from edge.capture.source import SourceOptions, open_source
from edge.errors import SourceError

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
D435_BAG = DATA / "realsense" / "single_depth_color_640x480.bag"


def test_child_delivers_exactly_the_in_process_frames_in_order():
    options = SourceOptions(max_frames=3, seed=2)
    with ChildProcessSource("synthetic:live", options) as source:
        child = list(source)
    here = list(open_source("synthetic:live", options))
    assert [f.frame_number for f in child] == [0, 1, 2]
    for a, b in zip(child, here, strict=True):
        np.testing.assert_array_equal(a.color_bgr, b.color_bgr)
        np.testing.assert_array_equal(a.depth_raw, b.depth_raw)
        assert a.truth.label == b.truth.label and a.t_ms == b.t_ms


def test_an_error_in_the_child_is_the_same_one_line_source_error(tmp_path):
    missing = tmp_path / "nope.bag"
    with pytest.raises(SourceError) as err:
        ChildProcessSource(f"bag:{missing}")
    assert str(err.value) == f"recording {missing} does not exist; give the path of a .bag or .db3 file"


def test_a_refusal_in_the_child_keeps_its_class(tmp_path, monkeypatch):
    """A ProductionError raised in the child is a ProductionError in the parent, never a SourceError
    (which a watchdog would retry forever)."""
    from edge.capture.child_process import _Failed
    from edge.errors import ChoiceError, ProductionError

    refusal = _Failed.of(ProductionError("production mode refuses device 0 (x): no hardware connection"))
    assert type(refusal.exception()) is ProductionError and str(refusal.exception()).startswith("production")
    assert type(_Failed.of(ChoiceError("--x must be one of a, got 'b'")).exception()) is ChoiceError
    assert type(_Failed("gone", "NotAnEdgefasError").exception()) is SourceError


def test_a_child_that_dies_mid_stream_is_a_source_error_not_a_hang():
    source = ChildProcessSource("synthetic:live", SourceOptions(seed=1), prefetch=1)
    frames = iter(source)
    next(frames)
    os.kill(source._process.pid, signal.SIGKILL)
    with pytest.raises(SourceError, match="capture process ended unexpectedly"):
        for _ in range(5):  # at most the prefetched frame is still in the pipe
            next(frames)
    source.close()
    assert source._process.returncode == -signal.SIGKILL


def test_close_mid_stream_stops_the_child():
    source = ChildProcessSource("synthetic:live", SourceOptions(seed=1))
    frames = iter(source)
    next(frames)
    source.close()
    assert source._process.returncode == 0  # it left its loop on the stop message, not by being killed


@pytest.mark.skipif(not D435_BAG.is_file(), reason="the shared D435 recording is absent")
def test_the_real_recording_plays_through_the_child_with_another_filter_chain():
    with ChildProcessSource(f"bag:{D435_BAG}", SourceOptions(timeout_s=1.0), filters="decimate2") as source:
        frames = list(source)
        assert "decimation x2" in source.describe()
    assert len(frames) == 1
    assert frames[0].color_bgr.shape == (480, 640, 3) and frames[0].depth_raw.shape == (480, 640)


def test_live_capture_process_gives_the_same_decisions(tmp_path):
    from typer.testing import CliRunner

    from edge.cli.app import app

    yunet = DATA / "models"
    base = ["live", "--camera", "synthetic:live", "--seed", "3", "--headless", "--frames", "12", "--threads", "1"]
    if (yunet / "face_detection_yunet.onnx").is_file():
        base += ["--model-dir", str(yunet)]
    runs = []
    for extra in ([], ["--capture-process"]):
        result = CliRunner().invoke(app, base + extra)
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        runs.append([(r["frame"], r["face"], r["score"] is None or round(r["score"], 4)) for r in rows])
    assert len(runs[0]) == 12 and runs[0] == runs[1]


@pytest.mark.skipif(not D435_BAG.is_file(), reason="the shared D435 recording is absent")
def test_close_stops_a_child_blocked_sending_a_frame_nobody_reads():
    # A looped recording plays fast: with credit outstanding the child is soon blocked writing a
    # 1.5 MB frame into the socket. close() must drain it so the child reads the stop message.
    source = ChildProcessSource(f"bag:{D435_BAG}", SourceOptions(loop=True), prefetch=2)
    frames = iter(source)
    next(frames)
    time.sleep(4.0)  # the child sends the granted frames; the parent reads none of them
    started = time.monotonic()
    source.close()
    assert source._process.returncode == 0  # it left on the stop message, not killed after the timeout
    assert time.monotonic() - started < 3.0


@pytest.mark.skipif(not D435_BAG.is_file(), reason="the shared D435 recording is absent")
def test_the_child_plays_the_chain_named_in_the_source_options():
    # `live --capture-process --depth-filters decimate2` hands the chain over in SourceOptions only
    with ChildProcessSource(f"bag:{D435_BAG}", SourceOptions(timeout_s=1.0, depth_filters="decimate2")) as source:
        assert "decimation x2" in source.describe()


def test_a_crashing_child_leaves_its_stack_on_stderr(capfd):
    # SIGSEGV stands for a crash inside librealsense: the parent reports a SourceError, and the
    # child's faulthandler has written where it was.
    source = ChildProcessSource("synthetic:live", SourceOptions(seed=1), prefetch=1)
    frames = iter(source)
    next(frames)
    os.kill(source._process.pid, signal.SIGSEGV)
    with pytest.raises(SourceError, match="capture process ended unexpectedly"):
        for _ in range(5):
            next(frames)
    source.close()
    assert source._process.returncode == -signal.SIGSEGV
    assert "Fatal Python error: Segmentation fault" in capfd.readouterr().err


def _staged(depth_window, depth):
    from edge.face.staging import Staged
    from edge.frames import Intrinsics, RGBDFrame

    color = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    frame = RGBDFrame(color, depth, 0.001, Intrinsics(64, 48, 50.0, 50.0, 32.0, 24.0), 12.5, 7, "test")
    return Staged(frame, {"detect": 1.0, "region": 2.0}, None, None, 1, "window", True, depth_window)


def test_a_staged_frame_crosses_with_only_its_window_of_depth():
    import pickle

    from edge.capture.child_process import StagedFrame

    depth = np.zeros((48, 64), np.uint16)
    depth[10:30, 20:40] = np.arange(400, dtype=np.uint16).reshape(20, 20) + 1
    packed = StagedFrame.pack(_staged((20, 10, 40, 30), depth))
    assert packed.depth_patch.shape == (20, 20)
    back = pickle.loads(pickle.dumps(packed)).unpack()
    np.testing.assert_array_equal(back.frame.depth_raw, depth)
    assert back.frame.t_ms == 12.5 and back.frame.frame_number == 7 and back.scan == "window"
    assert back.stage_ms == {"detect": 1.0, "region": 2.0} and back.depth_window == (20, 10, 40, 30)
    # a source that aligned the whole frame (no pending depth) sends all of it; a frame without depth sends none
    whole = np.full((48, 64), 900, np.uint16)
    np.testing.assert_array_equal(StagedFrame.pack(_staged(None, whole)).unpack().frame.depth_raw, whole)
    empty = StagedFrame.pack(_staged(None, np.zeros((48, 64), np.uint16)))
    assert empty.depth_patch is None and not empty.unpack().frame.depth_raw.any()


def test_staging_in_the_child_needs_raw_depth_and_a_detector(tmp_path):
    from edge.capture.child_process import StagingSpec
    from edge.errors import ModelError
    from edge.face.preprocess import PreprocessConfig

    spec = StagingSpec(PreprocessConfig(), detector="yunet", model_dir=tmp_path)
    with pytest.raises(ValueError, match="face_first=True"):
        ChildProcessSource("synthetic:live", SourceOptions(seed=1), staging=spec)
    with pytest.raises(ModelError, match="no YuNet model"):  # raised in the child, one line, its own class
        ChildProcessSource("synthetic:live", SourceOptions(seed=1, face_first=True), staging=spec)


def test_a_wall_clock_counts_the_childs_staging_in_the_frame_age_and_stream_time_does_not():
    from edge.live.clock import StreamClock, WallClock

    assert WallClock(lambda: 1.0).work_ms(7.5) == 7.5 and WallClock().work_ms(-1.0) == 0.0
    assert StreamClock().work_ms(7.5) == 0.0
