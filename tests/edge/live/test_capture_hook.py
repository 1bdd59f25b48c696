"""A capture thread's work for the pipeline (LivePipeline.capture_hook, CaptureThread(on_frame=...)).

On the face-first path the capture thread may make each frame's detection image and motion thumbnail
before queuing it; the decisions must be those of a pipeline that makes them itself.
"""

from __future__ import annotations

import pytest

from edge.capture.synthetic import SyntheticWorld
from edge.face.face_first import Lookahead, ScanPolicy
from edge.face.finder import open_face_finder
from edge.live.capture_thread import CaptureThread
from edge.live.clock import StreamClock
from edge.live.pipeline import LivePipeline
from live_fakes import FiniteSource, ScriptedRunner

SCORES = [0.1] * 40


@pytest.fixture(scope="module")
def frames():
    world = SyntheticWorld("live", 5, distance_m=0.5)
    return [world.frame(i) for i in range(12)]


def pipeline(face_first: bool) -> LivePipeline:
    return LivePipeline(ScriptedRunner(SCORES), open_face_finder("haar"), clock=StreamClock(),
                        face_first=ScanPolicy() if face_first else None)  # stream time: no latency faults


def test_the_full_frame_path_has_no_capture_work():
    assert pipeline(False).capture_hook() is None


def test_views_made_on_the_capture_thread_decide_alike(frames):
    plain = pipeline(True)
    expected = [plain.process(f, 33.0 * i) for i, f in enumerate(frames)]
    hooked = pipeline(True)
    # room for every frame: this capture thread reads them all before the first is processed
    hooked.face_first.lookahead = Lookahead(hooked.face_first.finder.detect_width_px, frames=len(frames))
    hook = hooked.capture_hook()
    assert hook is not None
    capture = CaptureThread(FiniteSource(frames), queue_size=len(frames), on_frame=hook).start()
    assert capture.ended.wait(30.0)
    got = []
    for i in range(len(frames)):
        item = capture.get(1.0)
        assert item is not None
        got.append(hooked.process(item.frame, 33.0 * i))
    lookahead = hooked.face_first.lookahead
    assert lookahead.prepared == lookahead.used == len(frames)  # every frame's view came from the thread
    assert [(r.frame_number, r.scan, r.score, r.decision.state, r.face is None or (r.face.x0, r.face.y1))
            for r in got] == \
        [(r.frame_number, r.scan, r.score, r.decision.state, r.face is None or (r.face.x0, r.face.y1))
         for r in expected]
    assert any(r.face is not None for r in expected)
