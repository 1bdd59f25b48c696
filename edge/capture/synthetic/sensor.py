"""What a D4xx sensor does to a perfect scene: depth noise, depth holes, colour noise and exposure.

Depth error model: Intel's depth-tuning white paper for the D400 series gives the RMS error of a
stereo depth camera as ``z^2 * subpixel / (focal_px * baseline)``; with subpixel 0.08, baseline
50 mm and focal 390 px that is 1.0 mm at 0.5 m and 4.1 mm at 1 m. Holes come from stereo
occlusion (a band on the left of near objects as wide as the disparity step, since the left imager
is the reference), from surfaces too dark to return the projector's pattern, and from glare.

The error is not independent per pixel: stereo matching compares windows, so neighbours share it.
On the shared D435 recording (``../shared/data/realsense/single_depth_color_640x480.bag``) the error
at 0.4-1.2 m correlates 0.49 with the next depth pixel (plane fits over 9 x 9 patches) to 0.68
(residual after a 2 px Gaussian over 64 x 64 windows); white noise blurred by a Gaussian of sigma
0.65-1.05 px does the same on those two measures (``correlated_field``). Each unit
(a clip: one camera in one scene) draws its subpixel and its correlation length (:class:`DepthUnit`).
Depth also comes in levels: the recording's values are 2 mm apart at 1 m, 4 mm at 1.5 m and 8 mm at
2.2 m, a disparity step of 1/32 px (:data:`DISPARITY_STEP_PX`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.capture.synthetic.rig import SensorRig

MIN_RANGE_M = 0.2  # closer than the D435's minimum Z at 640x480 gives no depth
MAX_RANGE_M = 6.0
DISPARITY_STEP_PX = 1.0 / 32.0  # the level spacing of the shared recording's depth (module docstring)
# Per-unit draws. The white paper's typical subpixel is 0.08; the shared recording's error at 0.5-1.7 m
# is that of 0.03-0.05 (tools/depth_texture.py: 0.6 mm at 0.52 m, 1.6 mm at 0.97 m, 3.4 mm at 1.74 m,
# residual after a 2 px mean, which keeps about three quarters of a field correlated over 1 px), so the
# draw spans both and a little above. The correlation length spans the recording's 0.65-1.05 px
# (module docstring) with a margin each side.
SUBPIXEL_RANGE = (0.03, 0.10)
CORRELATION_PX_RANGE = (0.55, 1.2)  # Gaussian sigma of the error field, in depth-camera pixels


@dataclass(frozen=True)
class DepthUnit:
    """How one depth camera in one scene errs: RMS subpixel and the error's correlation length."""

    subpixel: float = 0.08
    correlation_px: float = 0.85  # depth-camera pixels; 0 = independent per pixel

    @staticmethod
    def draw(seed: int) -> DepthUnit:
        """The unit of clip ``seed`` (its own random stream: the scene's draws are not shifted)."""
        rng = np.random.default_rng([int(seed), 23])
        return DepthUnit(float(rng.uniform(*SUBPIXEL_RANGE)), float(rng.uniform(*CORRELATION_PX_RANGE)))


def depth_sigma_m(z_m: np.ndarray | float, rig: SensorRig, subpixel: float | None = None) -> np.ndarray | float:
    """RMS depth error at distance ``z_m`` (white-paper formula above); ``subpixel`` defaults to the rig's."""
    sub = rig.subpixel if subpixel is None else subpixel
    return np.square(z_m) * sub / (rig.depth.fx * rig.stereo_baseline_m)


def correlated_field(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Unit-variance Gaussian noise shared by neighbours: white noise blurred by a Gaussian of ``sigma_px``."""
    white = rng.standard_normal(shape, dtype=np.float32)
    if sigma_px <= 0:
        return white
    radius = max(1, int(np.ceil(3.0 * sigma_px)))
    kernel = cv2.getGaussianKernel(2 * radius + 1, sigma_px, cv2.CV_32F)
    field = cv2.sepFilter2D(white, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REFLECT)
    # a separable blur of unit white noise has variance (sum of the 1-D kernel's squares) squared
    return field / np.float32(np.sum(np.square(kernel, dtype=np.float64)))


def quantise_disparity(z_m: np.ndarray, rig: SensorRig) -> np.ndarray:
    """Depth as a stereo camera reports it: disparity rounded to :data:`DISPARITY_STEP_PX` (0 stays 0)."""
    fb = rig.depth.fx * rig.stereo_baseline_m
    disparity = np.where(z_m > 0, fb / np.where(z_m > 0, z_m, 1.0), 0.0)
    levels = np.maximum(np.rint(disparity / DISPARITY_STEP_PX), 1.0) * DISPARITY_STEP_PX
    return np.where(z_m > 0, fb / levels, 0.0).astype(np.float32)


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
                rig: SensorRig, rng: np.random.Generator, unit: DepthUnit | None = None) -> np.ndarray:
    """Turn true depth (metres, inf = nothing) into a raw depth image (uint16, 0 = no data).

    ``grid_fx`` is the focal length of the pixel grid ``z`` is sampled on: occlusion bands are as
    wide as the disparity step expressed in that grid's pixels, and the error's correlation length
    (``unit``, in depth-camera pixels) is stretched to that grid. ``unit`` None: the rig's subpixel
    with the default correlation.
    """
    unit = unit or DepthUnit(rig.subpixel)
    h, w = z.shape
    finite = np.isfinite(z) & (z > MIN_RANGE_M) & (z < MAX_RANGE_M)
    zz = np.where(finite, z, 0.0).astype(np.float32)
    field = correlated_field(rng, (h, w), unit.correlation_px * grid_fx / rig.depth.fx)
    noisy = quantise_disparity(zz + field * depth_sigma_m(zz, rig, unit.subpixel).astype(np.float32), rig)
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
