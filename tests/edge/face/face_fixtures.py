"""Fixtures for the face tests: an analytic RGB-D face, and where the shared real data lives.

The analytic face stands in for the synthetic renderer: an ellipsoidal head with a nose bump and
recessed eyes, its landmarks placed as on MediaPipe's canonical face mesh (IOD 63 mm; nose 37.5 mm and
mouth 69.7 mm below the eyes), seen by a D435-like colour camera (640 x 480, fx = 613 px: the shared
recording's intrinsics) with depth noise growing with z² (Intel, "Tuning depth cameras for best
performance": RMS = z²·subpixel / (fx·baseline), subpixel 0.08, fx 390 px, baseline 50 mm).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.frames import Intrinsics, RGBDFrame
from edge.samples import FaceBox

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
FACES = DATA / "faces"
MODELS = DATA / "models"

WIDTH, HEIGHT, FX = 640, 480, 613.0
INTRINSICS = Intrinsics(WIDTH, HEIGHT, FX, FX, WIDTH / 2, HEIGHT / 2)

# Face geometry, millimetres, X right in the image, Y down, origin between the eyes' midline and nose.
HEAD_A, HEAD_B, HEAD_C, HEAD_Y = 75.0, 100.0, 90.0, 5.0  # ellipsoid semi-axes and centre
EYES_Y, NOSE_Y, MOUTH_Y, HALF_IOD, HALF_MOUTH = -30.0, 7.5, 39.7, 31.5, 24.6
NOSE_MM, NOSE_SIGMA = 25.0, 12.0
EYE_RECESS_MM, EYE_SIGMA = 8.0, 8.0
BOX_MM = (-70.0, -80.0, 70.0, 90.0)  # brow to chin, cheek to cheek
BACKGROUND_MM = 600.0  # a wall this far behind the face


def require_dir(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"shared test data not found at {path} (expected beside the repository as ../shared/data)")
    return path


def face_relief_mm(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """How far each point of the analytic face stands in front of its outline (0 outside the head)."""
    inside = 1.0 - (x / HEAD_A) ** 2 - ((y - HEAD_Y) / HEAD_B) ** 2
    head = HEAD_C * np.sqrt(np.clip(inside, 0.0, None)) - 0.6 * HEAD_C  # a face, not a full half-ellipsoid
    nose = NOSE_MM * np.exp(-((x ** 2 + (y - NOSE_Y) ** 2) / (2 * NOSE_SIGMA ** 2)))
    eyes = sum(EYE_RECESS_MM * np.exp(-(((x - sx) ** 2 + (y - EYES_Y) ** 2) / (2 * EYE_SIGMA ** 2)))
               for sx in (-HALF_IOD, HALF_IOD))
    return np.where(inside > 0, np.clip(head, 0.0, None) + nose - eyes, np.nan)


def face_pixels(distance_m: float) -> np.ndarray:
    """H x W bool: the analytic head's pixels at ``distance_m`` (what "inside the face" means in tests)."""
    z0 = distance_m * 1000.0
    uu, vv = np.meshgrid(np.arange(WIDTH) + 0.5, np.arange(HEIGHT) + 0.5)
    return np.isfinite(face_relief_mm((uu - WIDTH / 2) * z0 / FX, (vv - HEIGHT / 2) * z0 / FX))


def make_face_frame(distance_m: float, *, flat: bool = False, hole_fraction: float = 0.0, seed: int = 0,
                    yaw_nose_shift_mm: float = 0.0) -> tuple[RGBDFrame, FaceBox]:
    """One frame with the analytic face (or a flat print of it) at ``distance_m``, and its true box."""
    rng = np.random.default_rng(seed)
    z0 = distance_m * 1000.0
    uu, vv = np.meshgrid(np.arange(WIDTH) + 0.5, np.arange(HEIGHT) + 0.5)
    x = (uu - WIDTH / 2) * z0 / FX
    y = (vv - HEIGHT / 2) * z0 / FX
    relief = face_relief_mm(x, y)
    on_face = np.isfinite(relief)
    depth = np.full((HEIGHT, WIDTH), z0 + BACKGROUND_MM)
    depth[on_face] = z0 if flat else z0 - relief[on_face]  # the head outline sits at z0
    sigma = depth ** 2 * 0.08 / (390.0 * 50.0)
    depth = depth + rng.normal(0.0, 1.0, depth.shape) * sigma
    depth_raw = np.round(depth).astype(np.uint16)
    if hole_fraction > 0:
        depth_raw[rng.random(depth_raw.shape) < hole_fraction] = 0
    color = np.full((HEIGHT, WIDTH, 3), (60, 70, 80), np.uint8)
    color[on_face] = (120, 150, 200)
    frame = RGBDFrame(color, depth_raw, 0.001, INTRINSICS, 0.0, 0, "analytic")

    def px(xm: float, ym: float) -> tuple[float, float]:
        return (xm * FX / z0 + WIDTH / 2, ym * FX / z0 + HEIGHT / 2)

    landmarks = np.array([px(-HALF_IOD, EYES_Y), px(HALF_IOD, EYES_Y), px(yaw_nose_shift_mm, NOSE_Y),
                          px(-HALF_MOUTH, MOUTH_Y), px(HALF_MOUTH, MOUTH_Y)], dtype=np.float32)
    (x0, y0), (x1, y1) = px(BOX_MM[0], BOX_MM[1]), px(BOX_MM[2], BOX_MM[3])
    return frame, FaceBox(x0, y0, x1, y1, 1.0, landmarks, "truth")


