"""The face-first path end to end: a recording played through ``LiveSession`` with ``--roi on`` and ``off``.

A short ``synthetic:live`` recording (face at 0.6 m, raw depth in the depth camera's grid, as a
camera records it) is decided twice with the bundled model and YuNet: face first (window detection,
depth filtered and aligned for the crop window only) and full frame. The decisions must be the
same, and the face-first frames must show that the subject ran: window scans, a ``region`` stage,
and depth only inside the crop window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyrealsense2", reason="pyrealsense2 (edgefas[realsense]) plays the recording")

from edge.face.crop import crop_window  # noqa: E402
from edge.live.session import LiveOptions, LiveSession  # noqa: E402

YUNET_DIR = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "models"
FRAMES = 24


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    if not (YUNET_DIR / "face_detection_yunet.onnx").is_file():
        pytest.skip(f"the YuNet model of the shared test data is missing ({YUNET_DIR})")
    from edge.capture.software_device import RawView, record_views
    from edge.capture.synthetic import SyntheticWorld
    from edge.capture.synthetic.rig import SensorRig

    rig = SensorRig.d435()
    world = SyntheticWorld("live", 2, rig=rig, distance_m=0.6)
    views = (RawView(r.color_bgr, r.depth_raw, float(r.t_ms)) for r in map(world.render, range(FRAMES)))
    path = tmp_path_factory.mktemp("face-first") / "live.db3"
    record_views(views, path, rig)
    return path


def decide(recording: Path, face_first: bool):
    options = LiveOptions(spec=f"bag:{recording}", detector="yunet", model_dir=YUNET_DIR, face_first=face_first,
                          queue_size=64, threads=1)
    with LiveSession(options) as session:
        return list(session), session.pipeline


def test_face_first_decides_as_the_full_frame_path(recording):
    full, _ = decide(recording, face_first=False)
    first, pipeline = decide(recording, face_first=True)
    assert len(full) == len(first) >= FRAMES - 2
    assert [r.decision.state for r in first] == [r.decision.state for r in full]
    assert sum(r.score is not None for r in first) >= len(first) // 2  # the model ran: a real comparison
    assert {r.scan for r in full} == {"full"}
    assert "window" in {r.scan for r in first}
    assert pipeline.face_first is not None and pipeline.face_first.window_scans > 0
    lookahead = pipeline.face_first.lookahead  # the session's capture thread made the detection images
    assert lookahead is not None and lookahead.used == len(first)


def test_face_first_frames_carry_depth_only_in_the_crop_window(recording):
    first, pipeline = decide(recording, face_first=True)
    with_face = [r for r in first if r.face is not None]
    assert with_face
    p = pipeline.preprocess
    for result in with_face:
        assert "region" in result.stage_ms and result.stage_ms["region"] > 0
        x0, y0, x1, y1 = crop_window(result.face, p.crop_scale, p.size_px).frame_bounds()
        depth = result.frame.depth_raw
        ys, xs = np.nonzero(depth)
        assert xs.size > 0
        assert xs.min() >= int(x0) - 1 and xs.max() <= x1 and ys.min() >= int(y0) - 1 and ys.max() <= y1
    full, _ = decide(recording, face_first=False)
    assert all("region" not in r.stage_ms for r in full)
    assert all(np.count_nonzero(r.frame.depth_raw) > 0.3 * r.frame.depth_raw.size for r in full[:3])


def test_face_first_staged_in_the_capture_process_is_the_in_process_path(recording):
    """``--capture-process`` with face first: the child finds the face, aligns the window's depth and
    crops; the parent gets the same boxes, crops, depth and scores, and so the same decisions."""
    here, _ = decide(recording, face_first=True)
    options = LiveOptions(spec=f"bag:{recording}", detector="yunet", model_dir=YUNET_DIR, face_first=True,
                          queue_size=64, threads=1, capture_process=True)
    with LiveSession(options) as session:
        child = list(session)
        finder = session.pipeline.face_first
        assert finder is not None and finder.window_scans == finder.full_scans == 0, "the parent found no face itself"
    assert len(child) == len(here) >= FRAMES - 2
    assert [r.decision.state for r in child] == [r.decision.state for r in here]
    assert sum(r.score is not None for r in child) >= len(child) // 2  # the model ran on the child's crops
    assert "window" in {r.scan for r in child}
    for a, b in zip(child, here, strict=True):
        assert (a.face is None) == (b.face is None) and a.scan == b.scan
        if a.face is None:
            continue
        assert "region" in a.stage_ms, "the child aligned the face window itself"
        assert (a.face.x0, a.face.y0, a.face.track_id) == (b.face.x0, b.face.y0, b.face.track_id)
        np.testing.assert_array_equal(a.frame.depth_raw, b.frame.depth_raw)
        np.testing.assert_array_equal(a.sample.rgb, b.sample.rgb)
        np.testing.assert_array_equal(a.sample.depth, b.sample.depth)
        assert a.score == b.score
