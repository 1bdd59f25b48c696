"""The image a face detector sees: a downscaled copy of the frame, and the way back to frame pixels.

Detection cost grows with pixel count while a kiosk face is large (DESIGN §3), so every finder
(:mod:`edge.face.yunet`, :mod:`edge.face.haar`) detects on a copy downscaled by
:func:`downscale_for_detection` and maps its boxes and landmarks back with :func:`scale_face`.
The finders and their table (:mod:`edge.face.finder`) both build on this module, which imports
neither.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from edge.frames import check_color
from edge.samples import FaceBox

# YuNet's published input is 320 x 320 (opencv_zoo models/face_detection_yunet README); a kiosk face at
# 640 x 480 stays >= 40 px wide at half width, well above YuNet's smallest anchor (10 px, stride 8).
DEFAULT_DETECT_WIDTH_PX = 320

# Bumped when the image a detector sees changes for the same frame and contract (sample caches key on it).
# 2: frames wider than 4:3 keep the 4:3 detection height (see downscale_for_detection).
DETECTION_GEOMETRY = 2


def downscale_for_detection(color_bgr: np.ndarray, detect_width_px: int) -> tuple[np.ndarray, float]:
    """Return the image a detector sees and the factor from its pixels back to ``color_bgr`` pixels.

    ``detect_width_px`` is the detector's width for a 4:3 frame (320 x 240 for 640 x 480). A wider
    frame keeps that height instead of that width: a RealSense's 16:9 modes (848 x 480, 1280 x 720)
    have the vertical field of view of its 640 x 480 mode, so a face at a given distance then reaches
    the detector at the same size in every mode (424 x 240, 427 x 240; fixed at 320 px wide, a face
    in an 848 x 480 frame came out 0.75x as large and a print at ~1 m went unfound). A frame
    narrower than 4:3 keeps the width rule, so no frame is detected at a coarser scale than before.
    Never upscales (``detect_width_px <= 0`` or an image already that small is used as is):
    enlarging invents no detail and costs time. Area interpolation, as for the model crop (DESIGN §3).
    """
    check_color(color_bgr, "color_bgr")
    height, width = color_bgr.shape[:2]
    if detect_width_px <= 0:
        return color_bgr, 1.0
    factor = min(width / detect_width_px, height / (detect_width_px * 0.75))
    if factor <= 1.0:
        return color_bgr, 1.0
    size = (max(1, int(round(width / factor))), max(1, int(round(height / factor))))
    small = cv2.resize(color_bgr, size, interpolation=cv2.INTER_AREA)
    return small, width / size[0]


def scale_face(face: FaceBox, factor: float) -> FaceBox:
    """Map a box found on the downscaled image back to the full frame (multiply every coordinate)."""
    if factor == 1.0:
        return face
    return dataclasses.replace(
        face,
        x0=face.x0 * factor, y0=face.y0 * factor, x1=face.x1 * factor, y1=face.y1 * factor,
        landmarks_xy=(face.landmarks_xy * np.float32(factor)).astype(np.float32),
    )


def place_face(face: FaceBox, offset_xy: tuple[float, float], factor: float) -> FaceBox:
    """Map a box found in a window cut from the detection image at ``offset_xy`` back to the frame."""
    ox, oy = offset_xy
    shift = np.array([ox, oy], dtype=np.float32)
    moved = dataclasses.replace(face, x0=face.x0 + ox, y0=face.y0 + oy, x1=face.x1 + ox, y1=face.y1 + oy,
                                landmarks_xy=(face.landmarks_xy + shift).astype(np.float32))
    return scale_face(moved, factor)
