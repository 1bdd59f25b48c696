"""Composite people: one person's inner face blended onto another person's head and body.

The photo world has few people (a split holds a handful), and a model that sees seven faces learns
those seven faces. A composite keeps the head photo's hair, ears, neck, clothes, lighting and skin
tone and takes eyes, brows, nose and mouth from a donor photo of another person, aligned on the
five landmarks (a similarity transform) and blended in with OpenCV's Poisson seamless cloning, so
the face shape, features and skin detail come from one person and everything around them from
another. Each composite is a new face that no split holds, made only from photos of one split.

Live faces and attacks are both drawn from the same composite photo, so the blend's own marks
(a soft seam, a light mismatch) are on both classes and tell the model nothing about liveness.
"""

from __future__ import annotations

import cv2
import numpy as np

# Bumped when a composite of the same two photos has other pixels, so no cached card is reused.
COMPOSITE_VERSION = 1
# The blended region: an ellipse centred between the eye and mouth midpoints, in eye distances
# (eye centres to mouth corners covers brows to lower lip at these sizes; the jaw line and the
# cheeks' outline stay the head's, so the head photo's segmentation and hair line still fit).
HALF_WIDTH_EYES = 0.95
HALF_HEIGHT_EYES = 1.25


def blend_region(landmarks_px: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """uint8 mask (255 inside) of the region a donor's face replaces, for YuNet's five landmarks."""
    lms = np.asarray(landmarks_px, np.float64)
    eye_mid = lms[:2].mean(axis=0)
    mouth_mid = lms[3:5].mean(axis=0)
    eye_d = float(np.linalg.norm(lms[1] - lms[0]))
    centre = 0.5 * (eye_mid + mouth_mid)
    angle = float(np.degrees(np.arctan2(lms[1, 1] - lms[0, 1], lms[1, 0] - lms[0, 0])))
    mask = np.zeros(shape, np.uint8)
    axes = (max(1, int(round(HALF_WIDTH_EYES * eye_d))), max(1, int(round(HALF_HEIGHT_EYES * eye_d))))
    cv2.ellipse(mask, (int(round(centre[0])), int(round(centre[1]))), axes, angle, 0, 360, 255, -1)
    return mask


def composite_face(head: np.ndarray, head_lms: np.ndarray, donor: np.ndarray, donor_lms: np.ndarray) -> np.ndarray:
    """``head`` (BGR uint8) with the donor's inner face put on it; same size as ``head``."""
    matrix, _ = cv2.estimateAffinePartial2D(np.asarray(donor_lms, np.float32), np.asarray(head_lms, np.float32))
    if matrix is None:
        raise ValueError("the two faces' landmarks do not give a similarity transform")
    h, w = head.shape[:2]
    warped = cv2.warpAffine(donor, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    mask = blend_region(head_lms, (h, w))
    # seamlessClone centres the masked source on ``centre``: the bounding box's centre keeps it in place
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("the face is too small to blend")
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    if x0 < 1 or y0 < 1 or x1 > w - 2 or y1 > h - 2:
        raise ValueError("the face is too close to the photo's edge to blend")
    centre = (int((x0 + x1 + 1) // 2), int((y0 + y1 + 1) // 2))
    return cv2.seamlessClone(warped, head, mask, centre, cv2.NORMAL_CLONE)
