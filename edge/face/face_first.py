"""Face-first detection: follow the tracked face in a window, scan the whole frame on a schedule.

A kiosk face fills a fifth of the frame, so running the detector on the whole downscaled frame every
frame spends most of its time on the room. :class:`FaceFirstFinder` runs the detector on a window of
:attr:`ScanPolicy.window_scale` x the tracked face around it, and on the whole frame (a *full scan*):

- when no face is tracked, or the window lost the face (the same frame is scanned again in full);
- at least every :attr:`ScanPolicy.full_scan_ms` of the pipeline's clock, whatever happens: this
  bounds how long a second face or a swapped presentation outside the window can go unseen
  (docs/face-first.md gives the bound in ms);
- at once when something moved outside the window since the previous frame (a cell of a 1/16-scale
  grey thumbnail changed by more than :attr:`ScanPolicy.motion_level` on average): a person
  stepping into view triggers a full scan on the frame they appear in.

The score rule (issue 15: YuNet scores a face lower in a cut-out window than in the whole frame, and
a lower threshold alone kept a cut-out print's face where the full scan finds none): a face is
**first** accepted only at the detector's own threshold (:data:`edge.face.yunet.SCORE_THRESHOLD`,
0.9) in a full scan or a window; in a window a face scoring at least :attr:`ScanPolicy.track_score`
may only *continue* the tracked face (overlap :data:`edge.face.tracker.IOU_MIN` with it), and the
next full scan must find it at 0.9 again or the track ends. So a lower window score can keep a face
for at most one full-scan interval, never start one; ``tools/face_first_agreement.py`` shows the
decisions agree with the full-frame path.

The tracker and the kiosk's choice of face (:func:`~edge.face.finder.primary_face`) are the ones the
full-frame path uses; a track change restarts the decision policy's K-of-N count as before.
Not thread-safe (one per pipeline), except :class:`Lookahead`: the thread that reads frames may make
each frame's detection image and motion thumbnail there (:meth:`Lookahead.prepare`) while the
pipeline works on the previous frame; they do not depend on the tracker, and a frame without them is
downscaled by the finder as before, so the result is the same either way.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from edge.face.detection_image import downscale_for_detection, place_face
from edge.face.finder import primary_face
from edge.face.tracker import IOU_MIN, FaceTracker, box_iou
from edge.face.yunet import SCORE_THRESHOLD
from edge.samples import FaceBox

# Full-scan interval: 200 ms is 6 frames at a D4xx's 30 fps, a third of the decision policy's shortest
# K-of-N window (docs/decision-policy.md), so a second face cannot stay unseen for a whole decision.
FULL_SCAN_MS = 200.0
# Window side / tracked box side: a face moves < 10 % of its width between frames at 30 fps (a head
# moving fast, ~1 m/s, at arm's length), so 2x (issue 15's prototype) leaves half a face of room on
# every side. 1.5x saved 0.4 ms of CPU per window scan but YuNet's box in the tighter window moved
# enough to change one score's class on the 300-frame photo:mixed recording (decisions agreed on
# 97.3 % of frames against 100 % at 2x, tools/face_first_agreement.py), so 2x stays.
WINDOW_SCALE = 2.0
# YuNet score that lets a window detection continue the tracked face. Measured in issue 15's prototype:
# the same face scores lower in a window (0.9 missed 16 % of face frames), 0.7 kept them.
TRACK_SCORE = 0.7
# Mean absolute change (grey levels, 0..255) of one thumbnail cell that counts as motion: a person or
# a printed photo entering changes a cell by tens of levels; sensor noise averaged over a cell (64 frame
# pixels at 640x480) is below 1 (D4xx colour noise is ~2-3 levels per pixel).
MOTION_LEVEL = 6.0
THUMB_FACTOR = 4  # thumbnail = detection image / 4 (80 x 60 at 640 x 480)
CELL_PX = 8  # thumbnail pixels per motion cell side
WINDOW_STEP_PX = 32  # window sides rounded up to this (YuNet pads its input to 32 anyway)
# Frames a Lookahead holds views for: a capture queue's worth and then some (the live and bench queues
# hold 2); a view whose frame was dropped is forgotten once this many newer ones exist.
LOOKAHEAD_FRAMES = 8


class DownscaledFinder(Protocol):
    """What the face-first finder needs of a detector: YuNet and Haar both have it."""

    name: str
    detect_width_px: int

    def detect_downscaled(self, image: np.ndarray, factor: float) -> list[FaceBox]: ...


@dataclass(frozen=True)
class ScanPolicy:
    full_scan_ms: float = FULL_SCAN_MS
    window_scale: float = WINDOW_SCALE
    track_score: float = TRACK_SCORE
    new_face_score: float = SCORE_THRESHOLD
    motion_level: float = MOTION_LEVEL

    def __post_init__(self) -> None:
        if not self.full_scan_ms >= 0:
            raise ValueError(f"ScanPolicy.full_scan_ms must be >= 0, got {self.full_scan_ms}")
        if not self.window_scale >= 1.0:
            raise ValueError(f"ScanPolicy.window_scale must be >= 1, got {self.window_scale}")
        if not 0.0 < self.track_score <= self.new_face_score <= 1.0:
            raise ValueError(f"ScanPolicy needs 0 < track_score <= new_face_score <= 1, got "
                             f"{self.track_score}, {self.new_face_score}")


@dataclass(frozen=True)
class DetectionView:
    """What detection starts from on every frame: the detection image, the factor from its pixels to
    the frame's (:func:`~edge.face.detection_image.downscale_for_detection`), and the grey thumbnail
    the motion test compares (int16, 1/:data:`THUMB_FACTOR` of the detection image)."""

    small: np.ndarray
    factor: float
    thumb: np.ndarray


def detection_view(color_bgr: np.ndarray, detect_width_px: int) -> DetectionView:
    """The :class:`DetectionView` of a frame: a function of the frame and the detector's width only."""
    small, factor = downscale_for_detection(color_bgr, detect_width_px)
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
    size = (max(1, small.shape[1] // THUMB_FACTOR), max(1, small.shape[0] // THUMB_FACTOR))
    thumb = cv2.resize(gray, size, interpolation=cv2.INTER_AREA).astype(np.int16)
    return DetectionView(small, factor, thumb)


class Lookahead:
    """Detection views made ahead of the pipeline, on the thread that reads frames. Thread-safe.

    The downscale is a resize of the whole frame (at 1280x720 a non-integer factor, the largest host
    step after the depth filters: docs/face-first-speed.md); the capture thread waits on the camera
    most of the time, so making it there takes it off the pipeline's thread. A view is matched to its
    frame by the colour array itself, never by a number a restarted recording could repeat.
    """

    def __init__(self, detect_width_px: int, frames: int = LOOKAHEAD_FRAMES) -> None:
        if frames < 1:
            raise ValueError(f"Lookahead needs room for at least one frame, got {frames}")
        self.detect_width_px = int(detect_width_px)
        self._frames = frames
        self._views: OrderedDict[int, tuple[np.ndarray, DetectionView]] = OrderedDict()
        self._lock = threading.Lock()
        self.prepared = 0
        self.used = 0

    def prepare(self, color_bgr: np.ndarray) -> None:
        """Make the view of ``color_bgr`` now (called by the reading thread for every frame it reads)."""
        view = detection_view(color_bgr, self.detect_width_px)
        with self._lock:
            self._views[id(color_bgr)] = (color_bgr, view)  # holding the array keeps its id unique
            while len(self._views) > self._frames:
                self._views.popitem(last=False)
            self.prepared += 1

    def take(self, color_bgr: np.ndarray) -> DetectionView | None:
        """The view made for ``color_bgr`` (and forget it), or None when none was made."""
        with self._lock:
            item = self._views.pop(id(color_bgr), None)
            if item is None or item[0] is not color_bgr:
                return None
            self.used += 1
            return item[1]


@dataclass(frozen=True)
class Found:
    """One frame's faces (tracked), the kiosk's primary one, and how they were found."""

    boxes: list[FaceBox]
    primary: FaceBox | None
    scan: str  # "full" or "window"
    reason: str  # why a full scan ran: "no track", "schedule", "motion", "window miss"; "" for a window
    faces_in_view: int  # faces of the last full scan, or more if the window found more


class FaceFirstFinder:
    """Finds the kiosk's face by tracking it in a window, with full scans as described in the module doc."""

    def __init__(self, finder: DownscaledFinder, tracker: FaceTracker, policy: ScanPolicy | None = None,
                 lookahead: Lookahead | None = None) -> None:
        if lookahead is not None and lookahead.detect_width_px != finder.detect_width_px:
            raise ValueError(f"the lookahead makes {lookahead.detect_width_px} px detection images, the "
                             f"{finder.name} finder detects at {finder.detect_width_px} px")
        self.finder, self.tracker = finder, tracker
        self.lookahead = lookahead
        self.policy = policy or ScanPolicy()
        set_threshold = getattr(finder, "set_score_threshold", None)
        if set_threshold is not None:  # the rule below needs the candidates between the two scores
            set_threshold(self.policy.track_score)
        self.name = finder.name
        self._tracked: FaceBox | None = None
        self._last_full_ms: float | None = None
        self._thumb: np.ndarray | None = None
        self._faces_in_view = 0
        self.full_scans = 0
        self.window_scans = 0
        # the longest time between two full scans (ms of the caller's clock): a face that appears
        # outside the window just after a full scan is found by the next one (docs/face-first.md)
        self.longest_full_scan_gap_ms = 0.0

    def reset(self) -> None:
        """Forget the tracked face (the next frame is scanned in full)."""
        self._tracked = None
        self._thumb = None

    def find(self, color_bgr: np.ndarray, t_ms: float) -> Found:
        """Faces in ``color_bgr`` at time ``t_ms`` (the pipeline's clock; any monotonic milliseconds)."""
        view = self.lookahead.take(color_bgr) if self.lookahead is not None else None
        if view is None:
            view = detection_view(color_bgr, self.finder.detect_width_px)
        small, factor = view.small, view.factor
        window = self._window(small.shape, factor) if self._tracked is not None else None
        moved = self._moved(view.thumb, window)
        reason = ""
        if window is None:
            reason = "no track"
        elif self._last_full_ms is None or t_ms - self._last_full_ms >= self.policy.full_scan_ms:
            reason = "schedule"
        elif moved:
            reason = "motion"
        boxes: list[FaceBox] = []
        if not reason:
            assert window is not None
            boxes = self._scan_window(small, factor, window)
            if not boxes:
                reason = "window miss"
        if reason:
            boxes = self._scan_full(small, factor, t_ms)
            scan = "full"
        else:
            scan = "window"
            self.window_scans += 1
        boxes = self.tracker.update(boxes)
        primary = primary_face(boxes, color_bgr.shape)
        self._tracked = primary
        if scan == "window":
            self._faces_in_view = max(self._faces_in_view, len(boxes))
        return Found(boxes, primary, scan, reason, self._faces_in_view)

    def _scan_full(self, small: np.ndarray, factor: float, t_ms: float) -> list[FaceBox]:
        self.full_scans += 1
        if self._last_full_ms is not None:
            self.longest_full_scan_gap_ms = max(self.longest_full_scan_gap_ms, t_ms - self._last_full_ms)
        self._last_full_ms = t_ms
        faces = [f for f in self.finder.detect_downscaled(small, factor) if f.score >= self.policy.new_face_score]
        self._faces_in_view = len(faces)
        return faces

    def _scan_window(self, small: np.ndarray, factor: float,
                     window: tuple[int, int, int, int]) -> list[FaceBox]:
        x0, y0, x1, y1 = window
        found = self.finder.detect_downscaled(np.ascontiguousarray(small[y0:y1, x0:x1]), 1.0)
        tracked = self._tracked
        assert tracked is not None
        kept = []
        for face in found:
            face = place_face(face, (x0, y0), factor)
            continues = face.score >= self.policy.track_score and box_iou(face, tracked) >= IOU_MIN
            if face.score >= self.policy.new_face_score or continues:
                kept.append(face)
        return kept

    def _window(self, shape: tuple[int, ...], factor: float) -> tuple[int, int, int, int]:
        """The window around the tracked face in detection-image pixels, sides rounded up to 32."""
        face = self._tracked
        assert face is not None
        height, width = int(shape[0]), int(shape[1])
        cx, cy = face.center[0] / factor, face.center[1] / factor
        side = self.policy.window_scale * max(face.width, face.height) / factor
        w = min(width, WINDOW_STEP_PX * -(-int(np.ceil(side)) // WINDOW_STEP_PX))
        h = min(height, WINDOW_STEP_PX * -(-int(np.ceil(side)) // WINDOW_STEP_PX))
        x0 = int(min(max(0, round(cx - w / 2)), width - w))
        y0 = int(min(max(0, round(cy - h / 2)), height - h))
        return x0, y0, x0 + w, y0 + h

    def _moved(self, thumb: np.ndarray, window: tuple[int, int, int, int] | None) -> bool:
        """Did a cell of ``thumb`` (:class:`DetectionView`) outside ``window`` change by more than the
        motion level since the last frame?"""
        previous, self._thumb = self._thumb, thumb
        if previous is None or previous.shape != thumb.shape or window is None:
            return previous is not None and window is not None
        change = np.abs(thumb - previous).astype(np.float32)
        rows, cols = change.shape[0] // CELL_PX, change.shape[1] // CELL_PX
        if rows == 0 or cols == 0:
            return False
        cells = change[:rows * CELL_PX, :cols * CELL_PX].reshape(rows, CELL_PX, cols, CELL_PX).mean(axis=(1, 3))
        # cells touching the window are the tracked face's own motion
        x0, y0, x1, y1 = (v / (THUMB_FACTOR * CELL_PX) for v in window)
        outside = np.ones_like(cells, dtype=bool)
        outside[max(0, int(y0)):int(np.ceil(y1)), max(0, int(x0)):int(np.ceil(x1))] = False
        return bool((cells[outside] > self.policy.motion_level).any())
