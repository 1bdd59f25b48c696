"""Quality gates before the model: face size, valid depth, pose, and depth relief (DESIGN §3).

A gate never removes a sample: the sample still reaches the model (a flat print is exactly what the
model must learn to call a spoof), but it carries the gate's reason in ``FaceSample.gate``, and a gated
sample is "unknown" downstream, never "live".

Geometry constants come from MediaPipe's canonical face mesh (shared/data/meshes/
canonical_face_model.obj; eye centre = mean of vertices 33/133 and 362/263, nose tip = vertex 1, mouth
corners = 61/291), scaled by the interocular distance (IOD, 63.0 mm on that mesh).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GATE_REASONS: tuple[str, ...] = ("face_small", "depth_starved", "pose_extreme", "depth_flat")

# Canonical mesh, in IOD units: the nose tip is 0.636 IOD in front of the eye centres and 0.595 IOD
# below them; the mouth corners are 1.106 IOD below and 0.130 IOD in front of the eye centres.
NOSE_FORWARD_IOD = 0.636
NOSE_DOWN_IOD = 0.595
MOUTH_DOWN_IOD = 1.106
MOUTH_FORWARD_IOD = 0.130


@dataclass(frozen=True)
class Pose:
    """Head pose estimated from five landmarks, degrees; 0/0/0 = facing the camera upright."""

    yaw_deg: float
    pitch_deg: float
    roll_deg: float


def estimate_pose(landmarks_xy: np.ndarray) -> Pose:
    """Weak-perspective pose from where the nose tip sits between the eyes and the mouth.

    Roll is the eye line's angle. After undoing it, the nose's sideways offset from the eye midpoint
    is NOSE_FORWARD·sin(yaw) against an IOD of cos(yaw); its height between eye line and mouth line
    is (NOSE_DOWN·cos p + NOSE_FORWARD·sin p) / (MOUTH_DOWN·cos p + MOUTH_FORWARD·sin p), solved for p.
    Box-estimated landmarks (Haar) always read frontal.
    """
    pts = np.asarray(landmarks_xy, dtype=np.float64).reshape(5, 2)
    right_eye, left_eye, nose, mouth_r, mouth_l = pts
    dx, dy = left_eye - right_eye
    roll = math.atan2(dy, dx)
    iod = math.hypot(dx, dy)
    if iod <= 0:
        return Pose(float("nan"), float("nan"), math.degrees(roll))
    cos_r, sin_r = math.cos(-roll), math.sin(-roll)
    eye_mid = 0.5 * (right_eye + left_eye)

    def level(p: np.ndarray) -> tuple[float, float]:
        x, y = p - eye_mid
        return (cos_r * x - sin_r * y) / iod, (sin_r * x + cos_r * y) / iod

    nose_x, nose_y = level(nose)
    mouth_y = 0.5 * (level(mouth_r)[1] + level(mouth_l)[1])
    yaw = math.degrees(math.atan2(nose_x, NOSE_FORWARD_IOD))
    if mouth_y <= 0:
        return Pose(yaw, float("nan"), math.degrees(roll))
    ratio = nose_y / mouth_y
    # tan p = (ratio·MOUTH_DOWN - NOSE_DOWN) / (NOSE_FORWARD - ratio·MOUTH_FORWARD); positive = chin down.
    pitch = math.degrees(math.atan2(ratio * MOUTH_DOWN_IOD - NOSE_DOWN_IOD,
                                    NOSE_FORWARD_IOD - ratio * MOUTH_FORWARD_IOD))
    return Pose(yaw, pitch, math.degrees(roll))


def patch_median_mm(depth_mm: np.ndarray, center_xy: tuple[float, float], radius_px: float) -> float:
    """Median of the valid depth in a disc; NaN when the disc holds no valid pixel."""
    h, w = depth_mm.shape
    cx, cy = center_xy
    r = max(1.0, radius_px)
    x0, x1 = max(0, int(math.floor(cx - r))), min(w, int(math.ceil(cx + r)) + 1)
    y0, y1 = max(0, int(math.floor(cy - r))), min(h, int(math.ceil(cy + r)) + 1)
    if x1 <= x0 or y1 <= y0:
        return float("nan")
    xx, yy = np.arange(x0, x1)[np.newaxis, :], np.arange(y0, y1)[:, np.newaxis]
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    values = depth_mm[y0:y1, x0:x1][disc]
    values = values[values > 0]
    return float(np.median(values)) if values.size else float("nan")


def measure_relief_mm(depth_mm: np.ndarray, landmarks_xy: np.ndarray, patch_radius_px: float) -> float:
    """How far the nose tip stands in front of the plane through eyes and mouth corners, millimetres.

    Patch medians at the five landmarks; a plane through the four outer ones is fitted in inverse
    depth, which is exactly affine in pixel coordinates for any world plane seen by a pinhole camera
    (z = d / (n·K⁻¹(u, v, 1))), so a tilted flat print reads ~0 however it is held. A live face reads
    tens of millimetres (canonical mesh: 36 mm). NaN when any patch has no valid depth.
    """
    pts = np.asarray(landmarks_xy, dtype=np.float64).reshape(5, 2)
    z = np.array([patch_median_mm(depth_mm, (float(x), float(y)), patch_radius_px) for x, y in pts])
    if not np.isfinite(z).all():
        return float("nan")
    outer = [0, 1, 3, 4]
    design = np.column_stack([pts[outer], np.ones(4)])
    coeffs, *_ = np.linalg.lstsq(design, 1.0 / z[outer], rcond=None)
    inverse_at_nose = float(coeffs @ np.array([pts[2, 0], pts[2, 1], 1.0]))
    if inverse_at_nose <= 0:
        return float("nan")
    return 1.0 / inverse_at_nose - float(z[2])


def gate_reason(face_width_px: float, valid_fraction: float, pose: Pose, relief_mm: float, *,
                min_face_width_px: float, min_valid_fraction: float, max_yaw_deg: float, max_pitch_deg: float,
                max_roll_deg: float, min_relief_mm: float, relief_applies: bool = True) -> str | None:
    """The first gate that fails, in :data:`GATE_REASONS` order, or None when all pass.

    An unmeasurable relief (NaN) fails ``depth_starved``: what cannot be checked cannot pass.
    ``relief_applies`` is False for depth without millimetres (passthrough datasets).
    """
    if not face_width_px >= min_face_width_px:
        return "face_small"
    if not valid_fraction >= min_valid_fraction:
        return "depth_starved"
    if any(not (abs(angle) <= limit) for angle, limit in
           ((pose.yaw_deg, max_yaw_deg), (pose.pitch_deg, max_pitch_deg), (pose.roll_deg, max_roll_deg))):
        return "pose_extreme"
    if relief_applies:
        if math.isnan(relief_mm):
            return "depth_starved"
        if relief_mm < min_relief_mm:
            return "depth_flat"
    return None
