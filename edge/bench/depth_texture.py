"""The fine texture of a depth image: how large its error is and how much neighbours share it.

A stereo camera's depth error is shared by neighbouring pixels (the matcher compares windows); a
renderer that draws it independently per pixel teaches a network a texture no camera has
(docs/synthetic-world.md, "Sensor"). :func:`depth_texture` measures both on any depth image in mm:
the residual after a Gaussian mean of ``sigma_px`` over valid pixels (which removes the scene's
shape), over pixels whose whole 7 x 7 neighbourhood has depth, its RMS and its correlation with the
next pixel to the right.
``tools/depth_texture.py`` reads a recording and the rendered worlds side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_PIXELS = 100  # fewer measured pixels than this give no reading


@dataclass(frozen=True)
class Texture:
    rms_mm: float  # RMS of the residual
    neighbour_corr: float  # correlation of the residual with the next pixel to the right
    pixels: int  # pixels measured
    median_mm: float  # median depth of the measured pixels


def depth_texture(depth_mm: np.ndarray, mask: np.ndarray | None = None, sigma_px: float = 2.0) -> Texture | None:
    """The texture of ``depth_mm`` (H x W, 0 = no depth) inside ``mask``; None if too few pixels."""
    if depth_mm.ndim != 2:
        raise ValueError(f"depth_mm must be H x W, got shape {depth_mm.shape}")
    depth = depth_mm.astype(np.float32)
    valid = (depth > 0).astype(np.float32)
    full = cv2.erode(valid, np.ones((7, 7), np.uint8)) > 0
    if mask is not None:
        full &= mask
    # the local mean over valid pixels only: a hole nearby must not pull the mean towards 0
    weight = cv2.GaussianBlur(valid, (0, 0), sigma_px)
    mean = cv2.GaussianBlur(depth * valid, (0, 0), sigma_px) / np.maximum(weight, 1e-6)
    residual = depth - mean
    pair = full.copy()
    pair[:, -1] = False
    pair &= np.roll(full, -1, axis=1)
    here = residual[pair]
    if here.size < MIN_PIXELS:
        return None
    right = np.roll(residual, -1, axis=1)[pair]
    return Texture(float(np.sqrt(np.mean(here ** 2))), float(np.corrcoef(here, right)[0, 1]), int(here.size),
                   float(np.median(depth[pair])))
