"""``FaceTracker``: keeps one ``track_id`` per face across frames by box overlap (IoU).

The decision policy counts K of N frames *of the same tracked face* (DESIGN §7), so a face that
leaves and a new one that arrives must never share an id. Matching is greedy on IoU, highest first,
as in SORT (Bewley et al., ICIP 2016, "Simple Online and Realtime Tracking"), without its motion
model: at 30 fps a face moves little between frames.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from edge.samples import FaceBox

# SORT's IoU_min (Bewley et al. 2016, §3.3).
IOU_MIN = 0.3
# A face may go undetected this many consecutive frames and keep its id (~100 ms at 30 fps): one-frame
# detector misses are common; a person cannot be swapped in front of the camera that fast.
MAX_MISSED_FRAMES = 3


def box_iou(a: FaceBox, b: FaceBox) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = ix * iy
    union = max(0.0, a.width) * max(0.0, a.height) + max(0.0, b.width) * max(0.0, b.height) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Track:
    track_id: int
    box: FaceBox
    missed: int = 0


class FaceTracker:
    """Assigns ``track_id`` to the boxes of successive frames; one tracker per camera, not thread-safe."""

    def __init__(self, iou_min: float = IOU_MIN, max_missed_frames: int = MAX_MISSED_FRAMES) -> None:
        if not 0.0 < iou_min <= 1.0:
            raise ValueError(f"iou_min must be in (0, 1], got {iou_min}")
        if max_missed_frames < 0:
            raise ValueError(f"max_missed_frames must be >= 0, got {max_missed_frames}")
        self.iou_min = iou_min
        self.max_missed_frames = max_missed_frames
        self._tracks: list[_Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget every face (ids keep increasing, so an old id is never reused)."""
        self._tracks.clear()

    def update(self, boxes: Sequence[FaceBox]) -> list[FaceBox]:
        """Return ``boxes`` (same order) with ``track_id`` set; call once per frame, also with no boxes."""
        pairs = sorted(
            ((box_iou(track.box, box), t, b) for t, track in enumerate(self._tracks) for b, box in enumerate(boxes)),
            key=lambda pair: -pair[0],
        )
        ids: dict[int, int] = {}
        used_tracks: set[int] = set()
        for iou, t, b in pairs:
            if iou < self.iou_min:
                break
            if t in used_tracks or b in ids:
                continue
            ids[b] = self._tracks[t].track_id
            used_tracks.add(t)
            self._tracks[t].box = boxes[b]
            self._tracks[t].missed = 0
        survivors = []
        for t, track in enumerate(self._tracks):
            if t not in used_tracks:
                track.missed += 1
            if track.missed <= self.max_missed_frames:
                survivors.append(track)
        self._tracks = survivors
        for b, box in enumerate(boxes):
            if b not in ids:
                ids[b] = self._next_id
                self._tracks.append(_Track(self._next_id, box))
                self._next_id += 1
        return [dataclasses.replace(box, track_id=ids[b]) for b, box in enumerate(boxes)]
