"""primary_face (the kiosk's choice) and FaceTracker (same face, same id; new face, new id)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.face import FaceTracker, box_iou, primary_face
from edge.samples import FaceBox

FRAME = (480, 640, 3)


def box(x0: float, y0: float, side: float) -> FaceBox:
    return FaceBox(x0, y0, x0 + side, y0 + side, 0.99, np.zeros((5, 2), np.float32), "test")


def test_box_iou():
    assert box_iou(box(0, 0, 10), box(0, 0, 10)) == pytest.approx(1.0)
    assert box_iou(box(0, 0, 10), box(5, 0, 10)) == pytest.approx(50 / 150)
    assert box_iou(box(0, 0, 10), box(20, 20, 10)) == 0.0


def test_primary_face_prefers_large_and_central():
    central = box(270, 190, 100)
    big_at_edge = box(520, 0, 120)
    small_central = box(300, 220, 40)
    assert primary_face([small_central, big_at_edge, central], FRAME) is central
    assert primary_face([small_central], FRAME) is small_central
    assert primary_face([], FRAME) is None


def test_tracker_keeps_ids_while_a_face_moves_and_gives_new_ids_to_new_faces():
    tracker = FaceTracker()
    ids = [tracker.update([box(100 + 5 * i, 100, 120)])[0].track_id for i in range(10)]
    assert len(set(ids)) == 1 and ids[0] > 0
    both = tracker.update([box(400, 100, 100), box(150, 100, 120)])
    assert both[1].track_id == ids[0] and both[0].track_id not in (ids[0], -1)


def test_tracker_forgets_after_missed_frames_and_never_reuses_an_id():
    tracker = FaceTracker(max_missed_frames=2)
    first = tracker.update([box(100, 100, 120)])[0].track_id
    tracker.update([])
    assert tracker.update([box(102, 100, 120)])[0].track_id == first  # one missed frame: same face
    for _ in range(3):
        tracker.update([])
    again = tracker.update([box(102, 100, 120)])[0].track_id
    assert again != first
    tracker.reset()
    assert tracker.update([box(102, 100, 120)])[0].track_id not in (first, again)


def test_tracker_rejects_bad_parameters():
    with pytest.raises(ValueError, match="iou_min"):
        FaceTracker(iou_min=0)
    with pytest.raises(ValueError, match="max_missed_frames"):
        FaceTracker(max_missed_frames=-1)
