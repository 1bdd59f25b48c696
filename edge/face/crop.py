"""The square face crop: one window, applied identically to colour and aligned depth (DESIGN §3).

A :class:`CropWindow` is the affine map from frame pixels to the ``size_px`` x ``size_px`` output. The
window is ``crop_scale`` x the longer side of the face box, centred on the box; optionally rotated so
the eyes lie level (roll alignment). Where the window leaves the frame, colour is padded with zeros
(black) and depth with 0, which means "no data", never a distance.

Colour is resampled with area interpolation (it averages, so a downscale does not alias); depth with
nearest neighbour, so every output depth is a value the sensor measured and a hole is never blended
into its neighbour as a fake distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edge.frames import check_color, check_depth
from edge.samples import FaceBox


@dataclass(frozen=True)
class CropWindow:
    """Where a crop comes from. ``native_from_frame`` maps frame pixels to the window at frame
    resolution (``side_px`` square); the output is that window resized to ``size_px``."""

    native_from_frame: np.ndarray  # 2 x 3 float64
    side_px: int  # window side at frame resolution
    size_px: int  # output side
    roll_deg: float  # rotation applied (0 = axis-aligned crop)

    @property
    def scale(self) -> float:
        """Output pixels per frame pixel."""
        return self.size_px / self.side_px

    def frame_bounds(self) -> tuple[float, float, float, float]:
        """The frame rectangle the window reads (x0, y0, x1, y1; x1, y1 exclusive): where depth must be
        aligned for this crop (face-first path). A rotated window's box is widened by a pixel for the
        interpolation's neighbours."""
        m = self.native_from_frame
        if self.roll_deg == 0.0:
            x0, y0 = float(-m[0, 2]), float(-m[1, 2])
            return x0, y0, x0 + self.side_px, y0 + self.side_px
        inverse = cv2.invertAffineTransform(m)
        side = float(self.side_px)
        corners = np.array([[0.0, 0.0], [side, 0.0], [0.0, side], [side, side]]) @ inverse[:, :2].T + inverse[:, 2]
        return (float(corners[:, 0].min()) - 1.0, float(corners[:, 1].min()) - 1.0,
                float(corners[:, 0].max()) + 2.0, float(corners[:, 1].max()) + 2.0)

    def map_points(self, points_xy: np.ndarray) -> np.ndarray:
        """Frame pixel coordinates (N x 2) to output pixel coordinates (N x 2 float32)."""
        pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
        native = pts @ self.native_from_frame[:, :2].T + self.native_from_frame[:, 2]
        return (native * self.scale).astype(np.float32)


def eye_roll_deg(landmarks_xy: np.ndarray) -> float:
    """Angle of the line from the right eye (image left) to the left eye, degrees, y down = positive."""
    (rx, ry), (lx, ly) = np.asarray(landmarks_xy, dtype=np.float64)[:2]
    return math.degrees(math.atan2(ly - ry, lx - rx))


def crop_window(face: FaceBox, crop_scale: float, size_px: int, align_roll: bool = False) -> CropWindow:
    """The window for ``face``: square, ``crop_scale`` x its longer side, centred on the box."""
    if not crop_scale > 0:
        raise ValueError(f"crop_scale must be > 0, got {crop_scale}")
    if size_px < 1:
        raise ValueError(f"size_px must be >= 1, got {size_px}")
    if not (face.width > 0 and face.height > 0):
        raise ValueError(f"face box must have positive width and height, got {face.width} x {face.height}")
    cx, cy = face.center
    side = max(1, int(round(crop_scale * max(face.width, face.height))))
    roll = eye_roll_deg(face.landmarks_xy) if align_roll else 0.0
    if roll == 0.0:
        # Integer offsets: the axis-aligned crop is a plain copy, exact and cheap.
        x0 = int(round(cx - side / 2.0))
        y0 = int(round(cy - side / 2.0))
        matrix = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]], dtype=np.float64)
    else:
        # cv2.getRotationMatrix2D turns by +angle counter-clockwise on screen, which undoes a face
        # rolled by +angle (eye line sloping down to the right in y-down coordinates).
        matrix = cv2.getRotationMatrix2D((cx, cy), roll, 1.0)
        matrix[:, 2] += (side / 2.0 - cx, side / 2.0 - cy)
    return CropWindow(native_from_frame=matrix, side_px=side, size_px=int(size_px), roll_deg=roll)


def _cut(image: np.ndarray, window: CropWindow, interpolation: int) -> np.ndarray:
    """The window at frame resolution, zero outside the frame (a read-only use: may be a view of ``image``)."""
    side = window.side_px
    if window.roll_deg == 0.0:
        x0 = int(-window.native_from_frame[0, 2])
        y0 = int(-window.native_from_frame[1, 2])
        h, w = image.shape[:2]
        if x0 >= 0 and y0 >= 0 and x0 + side <= w and y0 + side <= h:
            return image[y0:y0 + side, x0:x0 + side]  # inside the frame: a view, resized without a copy
        out = np.zeros((side, side) + image.shape[2:], dtype=image.dtype)
        sx0, sy0 = max(0, x0), max(0, y0)
        sx1, sy1 = min(w, x0 + side), min(h, y0 + side)
        if sx1 > sx0 and sy1 > sy0:
            out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
        return out
    return cv2.warpAffine(image, window.native_from_frame, (side, side), flags=interpolation,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def crop_color(color_bgr: np.ndarray, window: CropWindow) -> np.ndarray:
    """``size_px`` x ``size_px`` x 3 uint8 BGR; area interpolation (bilinear for the rotation step)."""
    check_color(color_bgr, "color_bgr")
    native = _cut(color_bgr, window, cv2.INTER_LINEAR)
    if window.side_px == window.size_px:
        return native.copy()  # never a view into the caller's frame
    return cv2.resize(native, (window.size_px, window.size_px), interpolation=cv2.INTER_AREA)


def crop_depth(depth_raw: np.ndarray, window: CropWindow) -> np.ndarray:
    """``size_px`` x ``size_px`` uint16 in the frame's depth units, 0 = no data; nearest neighbour only."""
    check_depth(depth_raw, "depth_raw")
    native = _cut(depth_raw, window, cv2.INTER_NEAREST)
    if window.side_px == window.size_px:
        return native.copy()  # never a view into the caller's frame
    return cv2.resize(native, (window.size_px, window.size_px), interpolation=cv2.INTER_NEAREST)
