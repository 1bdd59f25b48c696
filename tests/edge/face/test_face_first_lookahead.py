"""Detection views made ahead (edge.face.face_first.Lookahead) change nothing the finder decides.

A capture thread may make each frame's detection image and motion thumbnail while the pipeline works
on the previous frame. Here the same rendered frames go through two finders with the real YuNet, one
downscaling every frame itself, one taking views a producer thread made: every Found (boxes, scores,
track ids, scan kind, reason) must be equal, and the view must be the one of that very frame.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from edge.face.face_first import FaceFirstFinder, Lookahead, ScanPolicy, detection_view
from edge.face.tracker import FaceTracker

YUNET = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "models" / "face_detection_yunet.onnx"


@pytest.fixture(scope="module")
def frames():
    from edge.capture.synthetic import SyntheticWorld
    from edge.capture.synthetic.rig import SensorRig

    world = SyntheticWorld("mixed", 8, rig=SensorRig.d435(1280, 720))  # 16:9: the non-integer downscale
    return [world.render(i) for i in range(0, 48, 2)]


def found_key(found):
    return (found.scan, found.reason, found.faces_in_view,
            [(b.x0, b.y0, b.x1, b.y1, b.score, b.track_id, b.landmarks_xy.tobytes()) for b in found.boxes])


def test_views_made_on_another_thread_give_the_same_faces(frames):
    if not YUNET.is_file():
        pytest.skip(f"the YuNet model of the shared test data is missing ({YUNET})")
    from edge.face.yunet import YuNetFinder

    plain = FaceFirstFinder(YuNetFinder(YUNET), FaceTracker(), ScanPolicy())
    lookahead = Lookahead(plain.finder.detect_width_px, frames=len(frames))  # the producer may run far ahead
    ahead = FaceFirstFinder(YuNetFinder(YUNET), FaceTracker(), ScanPolicy(), lookahead)
    colors = [f.color_bgr for f in frames]
    ready = [threading.Event() for _ in colors]

    def produce() -> None:  # the capture thread: a view per frame, before the frame is handed over
        for color, event in zip(colors, ready):
            lookahead.prepare(color)
            event.set()

    producer = threading.Thread(target=produce)
    producer.start()
    scans, faces = set(), 0
    for frame, event in zip(frames, ready):
        assert event.wait(30.0)
        a, b = plain.find(frame.color_bgr, frame.t_ms), ahead.find(frame.color_bgr, frame.t_ms)
        assert found_key(a) == found_key(b)
        scans.add(a.scan)
        faces += len(a.boxes)
    producer.join()
    assert scans == {"full", "window"}  # both kinds of scan were compared
    assert faces > len(frames) // 2  # faces were found, so boxes were compared
    assert lookahead.used == len(frames) == lookahead.prepared


def test_a_view_belongs_to_its_own_frame_only():
    lookahead = Lookahead(320, frames=2)
    first = np.zeros((480, 640, 3), np.uint8)
    copy = first.copy()
    lookahead.prepare(first)
    assert lookahead.take(copy) is None  # equal pixels, another frame
    view = lookahead.take(first)
    assert view is not None and view.small.shape == (240, 320, 3) and view.factor == 2.0
    assert lookahead.take(first) is None  # taken once
    older, newer = [np.full((480, 640, 3), v, np.uint8) for v in (1, 2)]
    newest = np.full((480, 640, 3), 3, np.uint8)
    for image in (older, newer, newest):
        lookahead.prepare(image)
    assert lookahead.take(older) is None  # a dropped frame's view is forgotten, not kept forever
    expected = detection_view(newest, 320)
    got = lookahead.take(newest)
    assert np.array_equal(got.small, expected.small) and np.array_equal(got.thumb, expected.thumb)


def test_a_lookahead_of_another_width_is_refused():
    class Finder:
        name = "scripted"
        detect_width_px = 320

        def detect_downscaled(self, image, factor):
            return []

    with pytest.raises(ValueError, match="240 px"):
        FaceFirstFinder(Finder(), FaceTracker(), ScanPolicy(), Lookahead(240))
