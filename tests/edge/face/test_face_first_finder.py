"""FaceFirstFinder: when it scans the whole frame, what a window may keep, and the bound on unscanned time.

The detector is a scripted stand-in that records every image it was handed (whole detection image or
a window cut from it) and answers with boxes placed in that image's pixels, so each rule of
edge/face/face_first.py is driven directly; the clock is an argument, so nothing depends on speed.
The real YuNet runs in tests/edge/bench/test_face_first_agreement.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.face.face_first import FULL_SCAN_MS, FaceFirstFinder, ScanPolicy
from edge.face.tracker import FaceTracker
from edge.samples import FaceBox

FRAME = (480, 640)  # a 640 x 480 frame: detection image 320 x 240, factor 2


def box(x0: float, y0: float, x1: float, y1: float, score: float = 0.95) -> FaceBox:
    """A face in frame pixels."""
    w, h = x1 - x0, y1 - y0
    lms = np.array([[x0 + 0.3 * w, y0 + 0.4 * h], [x0 + 0.7 * w, y0 + 0.4 * h], [x0 + 0.5 * w, y0 + 0.6 * h],
                    [x0 + 0.35 * w, y0 + 0.8 * h], [x0 + 0.65 * w, y0 + 0.8 * h]], np.float32)
    return FaceBox(x0, y0, x1, y1, score, lms, "scripted")


class ScriptedDetector:
    """Answers from a list of frame-pixel faces per call, translated into the image it was given."""

    name = "scripted"
    detect_width_px = 320

    def __init__(self) -> None:
        self.faces: list[FaceBox] = []  # what is in the scene now (frame pixels)
        self.calls: list[tuple[int, int]] = []  # (width, height) of every image detected on
        self.window_score: float | None = None  # a window scores faces this much (YuNet scores lower there)
        self.threshold = None

    def set_score_threshold(self, score: float) -> None:
        self.threshold = score

    def detect_downscaled(self, image: np.ndarray, factor: float) -> list[FaceBox]:
        self.calls.append((image.shape[1], image.shape[0]))
        whole = image.shape[:2] == (FRAME[0] // 2, FRAME[1] // 2)
        out = []
        for f in self.faces:
            score = f.score if whole or self.window_score is None else self.window_score
            # a window reports faces in its own pixels; the finder places them back. The window's
            # offset is not known here, so whole-image answers only, or windows found via _window.
            if whole:
                out.append(FaceBox(f.x0 / 2, f.y0 / 2, f.x1 / 2, f.y1 / 2, score, f.landmarks_xy / 2, self.name))
                out[-1] = _scaled(out[-1], factor)
            else:
                x0, y0 = self.window_origin
                shifted = FaceBox(f.x0 / 2 - x0, f.y0 / 2 - y0, f.x1 / 2 - x0, f.y1 / 2 - y0, score,
                                  f.landmarks_xy / 2 - np.array([x0, y0], np.float32), self.name)
                if shifted.x1 > 0 and shifted.y1 > 0 and shifted.x0 < image.shape[1] and shifted.y0 < image.shape[0]:
                    out.append(_scaled(shifted, factor))
        return [f for f in out if self.threshold is None or f.score >= self.threshold]


def _scaled(face: FaceBox, factor: float) -> FaceBox:
    return FaceBox(face.x0 * factor, face.y0 * factor, face.x1 * factor, face.y1 * factor, face.score,
                   (face.landmarks_xy * factor).astype(np.float32), face.detector)


class Harness:
    """A finder over the scripted detector; ``step(t_ms)`` runs one frame and returns its Found."""

    def __init__(self, policy: ScanPolicy | None = None) -> None:
        self.detector = ScriptedDetector()
        self.tracker = FaceTracker()
        self.finder = FaceFirstFinder(self.detector, self.tracker, policy)
        self.image = np.full(FRAME + (3,), 90, np.uint8)

    def step(self, t_ms: float):
        if self.finder._tracked is not None:  # tell the stand-in where the window will be cut
            x0, y0, _, _ = self.finder._window((FRAME[0] // 2, FRAME[1] // 2), 2.0)
            self.detector.window_origin = (x0, y0)
        return self.finder.find(self.image, t_ms)


def test_first_frame_is_a_full_scan_then_windows_until_the_schedule_says_full():
    h = Harness()
    h.detector.faces = [box(250, 150, 390, 310)]
    first = h.step(0.0)
    assert (first.scan, first.reason) == ("full", "no track")
    assert h.detector.calls[-1] == (320, 240)  # the whole detection image
    scans = [h.step(t) for t in (33.0, 66.0, 100.0, 133.0, 166.0)]
    assert [s.scan for s in scans] == ["window"] * 5
    assert all(call != (320, 240) for call in h.detector.calls[1:])  # windows only: smaller images
    due = h.step(200.0)
    assert (due.scan, due.reason) == ("full", "schedule")
    assert h.finder.longest_full_scan_gap_ms == pytest.approx(200.0)
    # the tracked face kept one id through windows and the scheduled scan
    assert len({s.primary.track_id for s in [first, *scans, due]}) == 1


def test_a_face_that_appears_outside_the_window_is_found_within_the_full_scan_interval():
    """A still newcomer (no motion cue: the image does not change) is found by the next scheduled scan."""
    h = Harness()
    h.detector.faces = [box(250, 150, 390, 310)]
    h.step(0.0)
    bystander = box(40, 60, 120, 160)
    h.detector.faces.append(bystander)
    seen_at = None
    for k in range(1, 20):
        found = h.step(33.0 * k)
        if any(b.x0 < 200 for b in found.boxes):
            seen_at = 33.0 * k
            break
    assert seen_at is not None and seen_at - 0.0 <= FULL_SCAN_MS + 33.0
    assert found.scan == "full" and found.faces_in_view == 2


def test_motion_outside_the_window_triggers_a_full_scan_on_that_frame():
    h = Harness()
    h.detector.faces = [box(250, 150, 390, 310)]
    h.step(0.0)
    assert h.step(33.0).scan == "window"
    h.image[20:140, 20:140] = 250  # something bright enters the top-left corner, far from the face
    found = h.step(66.0)
    assert (found.scan, found.reason) == ("full", "motion")


def test_motion_inside_the_window_does_not():
    h = Harness()
    h.detector.faces = [box(250, 150, 390, 310)]
    h.step(0.0)
    h.step(33.0)
    h.image[200:260, 290:350] = 250  # the face itself changes
    assert h.step(66.0).scan == "window"


def test_a_window_miss_is_scanned_again_in_full_on_the_same_frame():
    h = Harness()
    h.detector.faces = [box(250, 150, 390, 310)]
    h.step(0.0)
    h.detector.faces = []
    found = h.step(33.0)
    assert (found.scan, found.reason) == ("full", "window miss")
    assert found.primary is None
    assert h.detector.calls[-1] == (320, 240)


def test_a_lower_window_score_continues_the_tracked_face_but_never_starts_one():
    h = Harness()
    h.detector.faces = [box(250, 150, 390, 310)]
    h.step(0.0)
    h.detector.window_score = 0.75  # between track_score (0.7) and the detector's 0.9
    kept = h.step(33.0)
    assert kept.scan == "window" and kept.primary is not None and kept.primary.score == pytest.approx(0.75)
    # the same low score on a face the window did not track: refused, so the window misses -> full scan
    h.detector.faces = [box(250, 150, 390, 310), box(330, 250, 390, 320, 0.95)]
    h.finder._tracked = None
    h.step(66.0)  # full scan: both faces at 0.95
    h.detector.faces = [box(330, 250, 390, 320)]  # the tracked face left; a different one sits in the window
    found = h.step(99.0)
    assert found.reason == "window miss"  # the untracked face at 0.75 did not count in the window
    assert [b.score for b in found.boxes] == [pytest.approx(0.95)]


def test_a_full_scan_keeps_only_faces_at_the_detectors_own_threshold():
    h = Harness()
    h.detector.faces = [box(250, 150, 390, 310, score=0.8)]
    found = h.step(0.0)
    assert found.scan == "full" and found.boxes == [] and found.primary is None
    assert h.detector.threshold == pytest.approx(0.7)  # the detector was opened up for the window rule


def test_a_new_face_in_the_tracked_place_gets_a_new_track_after_a_miss():
    """A swapped presentation: the face leaves (a miss), another appears; the K-of-N count restarts."""
    h = Harness()
    h.detector.faces = [box(250, 150, 390, 310)]
    first = h.step(0.0).primary
    h.detector.faces = []
    for k in range(1, 6):  # gone longer than the tracker keeps a missed face (MAX_MISSED_FRAMES = 3)
        h.step(33.0 * k)
    h.detector.faces = [box(252, 150, 392, 310)]
    again = h.step(200.0).primary
    assert again is not None and again.track_id != first.track_id


@pytest.mark.parametrize("bad", [dict(full_scan_ms=-1.0), dict(window_scale=0.5), dict(track_score=0.95),
                                 dict(track_score=0.0)])
def test_scan_policy_refuses_values_that_open_a_door(bad):
    with pytest.raises(ValueError, match="ScanPolicy"):
        ScanPolicy(**bad)
