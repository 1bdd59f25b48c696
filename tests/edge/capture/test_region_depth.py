"""Face-first depth (edge/capture/region_depth.py) against librealsense's own full-frame path.

Rendered frames go through the software device twice: the full-frame reader (filters, then
``rs.align`` on the whole frame) and the region processor for a colour window. Without filters the
region's alignment must equal ``rs.align`` pixel for pixel; with the default chain the spatial
filter's row/column recursion can move a value by a rounding step (docs/face-first.md), so most
pixels are equal and the rest within a few mm.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

rs = pytest.importorskip("pyrealsense2", reason="pyrealsense2 (edgefas[realsense]) runs the depth filters")

from edge.capture.region_depth import (  # noqa: E402
    PendingDepthFrame,
    StreamGeometry,
    region_problem,
    window_bounds,
)
from edge.capture.rs_pipeline import (  # noqa: E402
    FILTER_CHAINS,
    DeviceInfo,
    FramesetReader,
    StreamInfo,
    source_chain,
)
from edge.capture.software_device import RawView, SoftwareCamera  # noqa: E402

WINDOWS = ((200, 120, 440, 360), (250, 300, 470, 480), (0, 0, 180, 200))  # centre, bottom edge, corner


@pytest.fixture(scope="module")
def rendered():
    from edge.capture.synthetic import SyntheticWorld
    from edge.capture.synthetic.rig import SensorRig

    rig = SensorRig.d435()
    world = SyntheticWorld("live", 3, rig=rig, distance_m=0.6)
    return rig, [world.render(i) for i in range(6)]


def stream_info(rig) -> StreamInfo:
    return StreamInfo(DeviceInfo("test", "0", "0", ""), rig.depth, rig.color, 30, 30, "z16", "bgr8",
                      rig.depth_scale_m, rig.depth_to_color)


def play(rig, views, chain: str, face_first: bool):
    """Frames of ``views`` through a software camera and a reader of ``chain``, by colour frame number.

    The syncer holds the first pushed pair until the second arrives, and may pair it with that
    one's neighbour; a pair it does not deliver is left out of both paths alike."""
    camera = SoftwareCamera(rig)
    camera.start()
    reader = FramesetReader(rs, camera.syncer, stream_info(rig), source_chain(chain, face_first), 2.0, "test")
    frames = []
    try:
        for view in views:
            camera.push(RawView(view.color_bgr, view.depth_raw, float(view.t_ms)))
            frame = reader.read()
            if frame is not None:
                frames.append(frame)
    finally:
        camera.close()
    assert len(frames) >= len(views) - 1
    return frames


@pytest.mark.parametrize("window", WINDOWS)
def test_region_alignment_equals_rs_align_inside_the_window(rendered, window):
    rig, views = rendered
    full = play(rig, views, "raw", face_first=False)
    pending = play(rig, views, "raw", face_first=True)
    assert [f.meta.color_frame_number for f in full] == [f.meta.color_frame_number for f in pending]
    for a, b in zip(full, pending):
        assert isinstance(b, PendingDepthFrame) and not isinstance(a, PendingDepthFrame)
        x0, y0, x1, y1 = window
        region = b.with_window_depth(window).depth_raw
        assert np.count_nonzero(a.depth_raw[y0:y1, x0:x1]) > 1000  # the window holds depth: a real comparison
        np.testing.assert_array_equal(region[y0:y1, x0:x1], a.depth_raw[y0:y1, x0:x1])
        outside = np.ones(region.shape, bool)
        outside[y0:y1, x0:x1] = False
        assert not region[outside].any()  # nothing is invented outside the window


def test_region_filters_match_the_full_frame_chain_within_a_rounding_step(rendered):
    rig, views = rendered
    full = play(rig, views, "default", face_first=False)
    pending = play(rig, views, "default", face_first=True)
    assert [f.meta.color_frame_number for f in full] == [f.meta.color_frame_number for f in pending]
    window = WINDOWS[0]
    x0, y0, x1, y1 = window
    equal, diffs = [], []
    for a, b in zip(full, pending):
        got = b.with_window_depth(window).depth_raw[y0:y1, x0:x1].astype(int)
        ref = a.depth_raw[y0:y1, x0:x1].astype(int)
        both = (got > 0) & (ref > 0)
        assert np.count_nonzero((got > 0) != (ref > 0)) <= 0.001 * got.size  # holes stay holes
        equal.append(np.mean(got[both] == ref[both]))
        diffs.append(np.abs(got - ref)[both])
    diffs = np.concatenate(diffs) * rig.depth_scale_m * 1000.0
    assert min(equal) > 0.9
    assert np.percentile(diffs, 99) <= 5.0  # mm: a D435's RMS error at 0.6 m is ~1.5 mm
    assert pending[0].region.stats.regions == len(pending)


def test_pending_depth_reads_as_no_data_until_the_window_is_aligned(rendered):
    rig, views = rendered
    frame = play(rig, views[:2], "default", face_first=True)[0]
    assert isinstance(frame, PendingDepthFrame)
    assert not frame.depth_raw.any() and not frame.depth_raw.flags.writeable
    assert frame.depth_grid.shape == (rig.depth.height, rig.depth.width) and frame.depth_grid.any()
    aligned = frame.with_window_depth(window_bounds((100.4, 80.2, 300.9, 260.0), 640, 480))
    assert type(aligned).__name__ == "RGBDFrame"
    ys, xs = np.nonzero(aligned.depth_raw)
    assert xs.min() >= 100 and xs.max() < 301 and ys.min() >= 80 and ys.max() < 260


def test_a_long_gap_in_frames_restarts_the_temporal_history(rendered):
    rig, views = rendered
    from edge.capture.region_depth import MAX_GAP_FRAMES

    frames = play(rig, views, "default", face_first=True)
    region = frames[0].region
    frames[0].with_window_depth(WINDOWS[0])
    frames[2].with_window_depth(WINDOWS[0])  # one frame without a face between: the history holds
    assert region.stats.history_resets == 0
    late = dataclasses.replace(frames[4], frame_number=frames[2].frame_number + MAX_GAP_FRAMES + 2)
    object.__setattr__(late, "depth_grid", frames[4].depth_grid)
    object.__setattr__(late, "region", region)
    late.with_window_depth(WINDOWS[0])  # longer than the tracker keeps a face: start again
    assert region.stats.history_resets == 1


def test_a_stream_the_aligner_cannot_reproduce_keeps_the_full_frame_path(rendered, caplog):
    rig, views = rendered
    distorted = dataclasses.replace(rig.color, model="inverse_brown_conrady", coeffs=(0.1, 0.0, 0.0, 0.0, 0.0))
    geometry = StreamGeometry(rig.depth, distorted, rig.depth_to_color, rig.depth_scale_m, 30)
    assert "lens distortion" in region_problem(geometry)
    assert "extrinsics" in region_problem(dataclasses.replace(geometry, depth_to_color=None))
    assert "decimates" in region_problem(StreamGeometry(rig.depth, rig.color, rig.depth_to_color, 0.001, 30), 2)
    info = dataclasses.replace(stream_info(rig), color=distorted)
    camera = SoftwareCamera(rig)
    camera.start()
    try:
        reader = FramesetReader(rs, camera.syncer, info, source_chain("default", True), 2.0, "test")
        for view in views[:2]:
            camera.push(RawView(view.color_bgr, view.depth_raw, float(view.t_ms)))
            frame = reader.read()
    finally:
        camera.close()
    assert frame is not None and not isinstance(frame, PendingDepthFrame) and frame.depth_raw.any()
    assert "face-first depth off" in caplog.text


def test_the_chain_keeps_its_meaning_on_the_region():
    config = source_chain("default", True)
    assert (config.spatial, config.temporal, config.hole_filling, config.region) == (True, True, False, True)
    assert config.describe().startswith(FILTER_CHAINS["default"].describe())
    assert "face region" in config.describe()
