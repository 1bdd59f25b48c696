"""The console's window onto the door's loop: the newest decided frame, held by reference, encoded on demand.

The door's loop calls :meth:`LiveFeed.offer` for every decided frame (through
:class:`edge.kiosk.sink.KioskSink`); that stores two references and a timestamp under a lock and
never encodes, so the door pays the same whether anybody watches or not. Pictures are made only when
a viewer asks (:meth:`LiveFeed.jpeg`, on the console's worker threads): at most ``max_fps`` encodes a
second per view whatever the number of viewers and however fast they ask, and one encode of a frame
is shared by every viewer. Frames are never modified after capture, so holding a reference is safe.

``clock`` (monotonic seconds) is an input: the frame rate, the encode cap and "is a viewer
connected" are tested without waiting.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from edge.live.overlay import STATE_BGR, draw_overlay
from edge.live.sinks import LiveEvent

VIEWS = ("colour", "depth")
JPEG_QUALITY = 80  # OpenCV IMWRITE_JPEG_QUALITY: the box and the map read clearly at about a third of q=95's size
FPS_WINDOW = 60  # frames over which the door's frame rate is measured (two seconds at 30 fps)
VIEWER_TIMEOUT_S = 3.0  # a viewer that asked for no frame this long is gone (the page asks several times a second)
DEPTH_WINDOW_M = (0.2, 2.0)  # the depth view's colour range: a D4xx's useful range for a face at a door


@dataclass(frozen=True)
class FeedStatus:
    """What the live page prints beside the pictures."""

    frame: int  # the number of decisions offered so far (0: none yet)
    state: str
    code: str
    reason: str
    score: float | None
    threshold: float | None
    attempt_id: int
    fps: float
    drops: int
    viewers: int
    encodes: int  # JPEGs made since start: stays 0 while nobody watches


@dataclass
class _Picture:
    frame: int = -1
    at_s: float = float("-inf")
    jpeg: bytes = b""


def depth_picture(depth_raw: np.ndarray, depth_scale_m: float) -> np.ndarray:
    """Aligned depth as a BGR picture: near is warm, far is cold, no data is black."""
    near, far = DEPTH_WINDOW_M
    metres = depth_raw.astype(np.float32) * depth_scale_m
    level = np.clip((far - metres) / (far - near), 0.0, 1.0)
    picture = cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_JET)
    picture[depth_raw == 0] = 0
    return picture


class LiveFeed:
    """Thread-safe: one writer (the door's loop), any number of readers (the console's threads)."""

    def __init__(self, max_fps: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not max_fps > 0:
            raise ValueError(f"max_fps must be positive, got {max_fps}")
        self.max_fps = max_fps
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: LiveEvent | None = None
        self._count = 0
        self._times: deque[float] = deque(maxlen=FPS_WINDOW)
        self._viewers: dict[str, float] = {}
        self._pictures = {view: _Picture() for view in VIEWS}
        self._encode_locks = {view: threading.Lock() for view in VIEWS}
        self.encodes = 0

    # -- the door's side -------------------------------------------------------------------------------

    def offer(self, event: LiveEvent) -> None:
        """Keep ``event`` as the newest frame; O(1), no copy, no encode."""
        now = self._clock()
        with self._lock:
            self._latest = event
            self._count += 1
            self._times.append(now)

    # -- the viewers' side -----------------------------------------------------------------------------

    @property
    def fps(self) -> float:
        with self._lock:
            times = list(self._times)
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def seen(self, viewer: str) -> None:
        """``viewer`` (a login session) asked for a picture now."""
        with self._lock:
            self._viewers[viewer] = self._clock()

    @property
    def viewers(self) -> int:
        now = self._clock()
        with self._lock:
            for viewer, at in list(self._viewers.items()):
                if now - at > VIEWER_TIMEOUT_S:
                    del self._viewers[viewer]
            return len(self._viewers)

    @property
    def frame(self) -> int:
        with self._lock:
            return self._count

    def status(self) -> FeedStatus:
        with self._lock:
            event, count = self._latest, self._count
        drops, fps, viewers = (event.drops if event else 0), self.fps, self.viewers
        if event is None:
            return FeedStatus(0, "unknown", "starting", "no frame decided yet", None, None, 0, fps, drops, viewers,
                              self.encodes)
        d, score = event.result.decision, event.result.score
        return FeedStatus(count, d.state, d.code, d.reason,
                          score if score is not None and math.isfinite(score) else None,
                          d.threshold if math.isfinite(d.threshold) else None,  # NaN: a fault has no threshold
                          d.attempt_id, fps, drops, viewers, self.encodes)

    def jpeg(self, view: str) -> tuple[int, bytes] | None:
        """(frame number, JPEG) of ``view`` for the newest frame, or None before the first frame.

        A new picture is encoded only when the newest frame is newer than the last picture and the
        last encode of this view is at least ``1 / max_fps`` old; otherwise the last picture is shared.
        """
        if view not in VIEWS:
            raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
        with self._encode_locks[view]:  # one encoder per view: concurrent viewers wait for its picture
            with self._lock:
                event, count = self._latest, self._count
            if event is None or event.frame is None:
                return None
            picture, now = self._pictures[view], self._clock()
            if picture.frame != count and now - picture.at_s >= 1.0 / self.max_fps:
                if view == "colour":
                    image = draw_overlay(event.frame.color_bgr, event.result, self.fps, show_map=True, key_hints=False)
                else:
                    image = self._depth(event)
                ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if ok:
                    self._pictures[view] = picture = _Picture(count, now, encoded.tobytes())
                    with self._lock:
                        self.encodes += 1
            return picture.frame, picture.jpeg

    @staticmethod
    def _depth(event: LiveEvent) -> np.ndarray:
        picture = depth_picture(event.frame.depth_raw, event.frame.depth_scale_m)
        face = event.result.face
        if face is not None:
            colour = STATE_BGR.get(event.result.decision.state, (200, 200, 200))
            cv2.rectangle(picture, (int(face.x0), int(face.y0)), (int(face.x1), int(face.y1)), colour, 2)
        return picture
