"""Face-first decides as the full-frame path does, on short recordings of both rendered worlds.

``edge.bench.agreement.compare_paths`` plays each recording through both paths in lockstep with the
bundled model ONNX Runtime runs fastest on a CPU (`engines.bundled.cpu_model_path`: its INT8 CPU flavour
when that shipped, else fp32; a real threshold, so the decision classes mean something) and YuNet. The full
statistics over longer recordings come from tools/face_first_agreement.py (docs/face-first.md).
"""

from __future__ import annotations

import math

import pytest

pytest.importorskip("pyrealsense2", reason="pyrealsense2 (edgefas[realsense]) plays the recordings")

CLIPS = {"synthetic:mixed": 30, "photo:mixed": 16}  # seed 8: mixed opens with a live face, then a print


@pytest.mark.parametrize("scene", list(CLIPS))
def test_decisions_and_depth_agree_on_a_rendered_clip(scene, yunet_dir, tmp_path_factory):
    from edge.bench.agreement import compare_paths
    from edge.bench.feed import FeedOptions, prepare_feed
    from engines.bundled import cpu_model_path

    if scene.startswith("photo:"):
        from edge.capture.photo.library import open_library

        try:
            open_library()
        except Exception as exc:  # noqa: BLE001 - any reason the photo library cannot open is a skip here
            pytest.skip(f"the photo world's library is not available: {exc}")
    frames = CLIPS[scene]
    played = prepare_feed(scene, FeedOptions(seed=8, frames=frames), tmp_path_factory.mktemp("clips"))
    result = compare_paths(played, cpu_model_path(), frames, detector="yunet", model_dir=yunet_dir)
    assert result.frames == frames
    # the subject ran: faces found, the model scored on both paths, the window path was used
    assert min(result.face_frames) > frames // 2 and result.both_scored > 0 and result.window_scans > 0
    assert result.decision_agreement >= 0.99
    assert result.score_class_agreement >= 0.99
    med, p99, _ = result.depth_diff_mm
    assert result.depth_pixels > 10_000 and med == 0.0 and p99 <= 5.0
    assert result.one_sided < 0.01
    assert result.longest_full_scan_gap_ms <= 200.0 + 1000.0 / 30 + 1e-6  # the documented bound
    assert not math.isnan(result.max_score_diff)


def test_a_slow_machine_does_not_change_the_comparison(yunet_dir, tmp_path_factory, monkeypatch):
    """Both paths are judged in the recording's own time: a wall clock that runs 400 ms per reading
    (a frame scored slower than the policy's 250 ms latency budget) changes no decision."""
    from edge.bench.agreement import compare_paths
    from edge.bench.feed import FeedOptions, prepare_feed
    from edge.live.clock import WallClock
    from engines.bundled import cpu_model_path

    frames = 12
    played = prepare_feed("synthetic:mixed", FeedOptions(seed=8, frames=frames), tmp_path_factory.mktemp("slow"))
    args = (played, cpu_model_path(), frames)
    normal = compare_paths(*args, detector="yunet", model_dir=yunet_dir)
    ticks = iter(range(0, 10**9, 400))
    monkeypatch.setattr(WallClock, "now_ms", lambda self: float(next(ticks)))
    slow = compare_paths(*args, detector="yunet", model_dir=yunet_dir)
    assert normal.states == slow.states and "live" in normal.states
    assert normal.decision_agreement == slow.decision_agreement
