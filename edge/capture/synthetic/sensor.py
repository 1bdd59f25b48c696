"""What a D4xx sensor does to a perfect scene: depth noise, depth holes, colour noise and exposure.

Depth error model: Intel's depth-tuning white paper for the D400 series gives the RMS error of a
stereo depth camera as ``z^2 * subpixel / (focal_px * baseline)``; with subpixel 0.08, baseline
50 mm and focal 390 px that is 1.0 mm at 0.5 m and 4.1 mm at 1 m. Holes come from stereo
occlusion (a band on the left of near objects as wide as the disparity step, since the left imager
is the reference), from surfaces too dark to return the projector's pattern, and from glare.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.capture.synthetic.rig import SensorRig

MIN_RANGE_M = 0.2  # closer than the D435's minimum Z at 640x480 gives no depth
MAX_RANGE_M = 6.0


def depth_sigma_m(z_m: np.ndarray | float, rig: SensorRig) -> np.ndarray | float:
    """RMS depth error at distance ``z_m`` (white-paper formula above)."""
    return np.square(z_m) * rig.subpixel / (rig.depth.fx * rig.stereo_baseline_m)


def _blotches(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """A smooth random field in [0, 1]: holes come in blobs, not salt-and-pepper."""
    h, w = shape
    small = rng.random((max(2, int(h / scale_px)), max(2, int(w / scale_px))), dtype=np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def occlusion_mask(z: np.ndarray, focal_px: float, baseline_m: float) -> np.ndarray:
    """Pixels the right imager cannot see because something nearer hides them (H x W bool)."""
    h, w = z.shape
    valid = np.isfinite(z)
    disp = np.where(valid, focal_px * baseline_m / np.where(valid, z, 1.0), 0.0).astype(np.float32)
    xr = np.arange(w, dtype=np.float32)[None, :] - disp
    col = np.clip(np.rint(xr), 0, w - 1).astype(np.int64)
    key = (np.arange(h, dtype=np.int64)[:, None] * w + col).ravel()
    best = np.zeros(h * w, np.float32)
    np.maximum.at(best, key, disp.ravel())
    return valid & (disp < best[key].reshape(h, w) - 0.75)


def sense_depth(z: np.ndarray, albedo_luma: np.ndarray, dropout: np.ndarray, grid_fx: float,
                rig: SensorRig, rng: np.random.Generator) -> np.ndarray:
    """Turn true depth (metres, inf = nothing) into a raw depth image (uint16, 0 = no data).

    ``grid_fx`` is the focal length of the pixel grid ``z`` is sampled on: occlusion bands are as
    wide as the disparity step expressed in that grid's pixels.
    """
    h, w = z.shape
    finite = np.isfinite(z) & (z > MIN_RANGE_M) & (z < MAX_RANGE_M)
    zz = np.where(finite, z, 0.0).astype(np.float32)
    noisy = zz + rng.standard_normal((h, w), dtype=np.float32) * depth_sigma_m(zz, rig).astype(np.float32)
    holes = ~finite
    holes |= occlusion_mask(np.where(finite, z, np.inf), grid_fx, rig.stereo_baseline_m)
    blob = _blotches(rng, (h, w), 6.0)
    dark = np.clip((0.16 - albedo_luma) / 0.16, 0.0, 1.0) * 0.9
    holes |= blob < dark
    holes |= _blotches(rng, (h, w), 3.0) < np.clip(dropout, 0.0, 1.0)
    holes |= rng.random((h, w), dtype=np.float32) < 0.002  # isolated speckle dropouts
    # depth edges: a pixel straddling a jump of more than 5 cm returns nothing (edge invalidation)
    grad = np.maximum(np.abs(np.diff(zz, axis=1, prepend=zz[:, :1])), np.abs(np.diff(zz, axis=0, prepend=zz[:1])))
    holes |= grad > 0.05
    raw = np.rint(noisy / rig.depth_scale_m)
    raw[holes] = 0
    return np.clip(raw, 0, 65535).astype(np.uint16)


def sense_color(radiance: np.ndarray, exposure: float, white_balance: np.ndarray, noise_sigma: float,
                rng: np.random.Generator) -> np.ndarray:
    """Exposure, white balance, shot/read noise and 8-bit quantisation of a BGR radiance image."""
    img = radiance * (exposure * white_balance)[None, None, :]
    img = img + noise_sigma * rng.standard_normal(img.shape, dtype=np.float32) * np.sqrt(np.clip(img, 0.02, 1.0))
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
