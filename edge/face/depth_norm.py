"""Face-relative depth normalisation: millimetres in, [0, 1] out, nearer = brighter (DESIGN §3).

Three modes, named in :data:`DEPTH_MODES`:

- ``window`` (default): reference = median of valid depth in the inner face region; a valid pixel at
  ``reference - window_mm`` maps to 1, at ``reference + window_mm`` to 0, clipped. Subtracting the
  face's own distance is what makes a face read the same at 40 cm and 90 cm.
- ``mad``: the robust normalisation of Idiap's RGB-D PAD baselines (bob.pad.face's
  ``auto_norm_image(n_sigma=3.0, norm_method='MAD')``, used for WMCA in George et al., "Biometric
  Face Presentation Attack Detection with Multi-Channel CNN", IEEE TIFS 2019): median ± n·MAD of the
  valid face pixels maps to [0, 1]. Idiap maps far = bright; here it is flipped to our nearer = brighter.
- ``passthrough``: for datasets that ship 8-bit face-cropped depth (CASIA-SURF, CeFA), where depth is
  already normalised by its publisher: value / 255; no millimetres, so no reference and no relief.

Invalid pixels (0 in the sensor's units) stay 0 in every mode; the fraction of valid pixels inside the
face box is reported so the quality gate can refuse a starved face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEPTH_MODES: tuple[str, ...] = ("window", "mad", "passthrough")
INNER_REGIONS: tuple[str, ...] = ("box", "landmarks")

# MAD below one RealSense depth unit (1 mm, depth_scale 0.001: D400 datasheet default) is quantisation,
# not shape; flooring there keeps a perfectly flat target from dividing by zero.
MIN_MAD_MM = 1.0
# 8-bit published depth maps (CASIA-SURF, CeFA) use 0..255.
PASSTHROUGH_MAX = 255.0


@dataclass(frozen=True)
class NormalisedDepth:
    """``depth01``: S x S float32 in [0, 1], invalid = 0. ``reference_mm`` NaN when no inner pixel was
    valid (or in passthrough mode); ``valid_fraction`` over the face box, in [0, 1]."""

    depth01: np.ndarray
    reference_mm: float
    valid_fraction: float


def check_depth_mm(depth_mm: np.ndarray, name: str = "depth_mm") -> None:
    """Depth handed to normalisation must be a finite float 2-D array with 0 for "no data"."""
    if not isinstance(depth_mm, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(depth_mm).__name__}")
    if depth_mm.ndim != 2 or not np.issubdtype(depth_mm.dtype, np.floating):
        raise ValueError(f"{name} must be H x W float millimetres (0 = no data), got {depth_mm.dtype} {depth_mm.shape}")
    if not np.isfinite(depth_mm).all():
        raise ValueError(f"{name} contains NaN or infinity; mark missing depth with 0, not NaN")
    if (depth_mm < 0).any():
        raise ValueError(f"{name} contains negative values; depth is a distance in millimetres, 0 = no data")


def check_mask(mask: np.ndarray, shape: tuple[int, ...], name: str) -> None:
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != shape:
        got = f"{mask.dtype} {mask.shape}" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise ValueError(f"{name} must be a bool array of shape {shape}, got {got}")


def valid_fraction_in(depth: np.ndarray, region: np.ndarray) -> float:
    """Fraction of ``region`` pixels whose depth is not 0 (0.0 for an empty region)."""
    count = int(region.sum())
    return float((depth[region] > 0).sum()) / count if count else 0.0


def normalise_window(depth_mm: np.ndarray, inner: np.ndarray, face_region: np.ndarray,
                     window_mm: float) -> NormalisedDepth:
    """Map reference ± ``window_mm`` to [0, 1] (nearer = brighter), reference = inner-region median."""
    check_depth_mm(depth_mm)
    check_mask(inner, depth_mm.shape, "inner")
    check_mask(face_region, depth_mm.shape, "face_region")
    if not window_mm > 0:
        raise ValueError(f"window_mm must be > 0, got {window_mm}")
    valid = depth_mm > 0
    samples = depth_mm[inner & valid]
    fraction = valid_fraction_in(depth_mm, face_region)
    if samples.size == 0:
        return NormalisedDepth(np.zeros(depth_mm.shape, np.float32), float("nan"), fraction)
    reference = float(np.median(samples))
    mapped = np.clip(0.5 + (reference - depth_mm) / (2.0 * window_mm), 0.0, 1.0)
    return NormalisedDepth(np.where(valid, mapped, 0.0).astype(np.float32), reference, fraction)


def normalise_mad(depth_mm: np.ndarray, inner: np.ndarray, face_region: np.ndarray, n_mad: float) -> NormalisedDepth:
    """Map median ± ``n_mad``·MAD of the valid face-box pixels to [0, 1] (nearer = brighter).

    As in Idiap's baseline the statistics come from the whole face box, not the inner region;
    ``reference_mm`` reports the inner-region median like the other metric mode.
    """
    check_depth_mm(depth_mm)
    check_mask(inner, depth_mm.shape, "inner")
    check_mask(face_region, depth_mm.shape, "face_region")
    if not n_mad > 0:
        raise ValueError(f"n_mad must be > 0, got {n_mad}")
    valid = depth_mm > 0
    face = depth_mm[face_region & valid]
    inner_samples = depth_mm[inner & valid]
    fraction = valid_fraction_in(depth_mm, face_region)
    reference = float(np.median(inner_samples)) if inner_samples.size else float("nan")
    if face.size == 0:
        return NormalisedDepth(np.zeros(depth_mm.shape, np.float32), reference, fraction)
    median = float(np.median(face))
    mad = max(MIN_MAD_MM, float(np.median(np.abs(face - median))))
    mapped = np.clip(0.5 + (median - depth_mm) / (2.0 * n_mad * mad), 0.0, 1.0)
    return NormalisedDepth(np.where(valid, mapped, 0.0).astype(np.float32), reference, fraction)


def normalise_passthrough(depth8: np.ndarray, face_region: np.ndarray) -> NormalisedDepth:
    """8-bit published depth (0..255 in a uint16 or float array) to [0, 1]; 0 stays "no data"."""
    if not isinstance(depth8, np.ndarray) or depth8.ndim != 2:
        got = getattr(depth8, "shape", type(depth8).__name__)
        raise ValueError(f"depth for passthrough must be an H x W array of 0..255, got {got}")
    values = depth8.astype(np.float32)
    if not np.isfinite(values).all():
        raise ValueError("depth for passthrough contains NaN or infinity; mark missing depth with 0")
    if values.min() < 0 or values.max() > PASSTHROUGH_MAX:
        raise ValueError(
            f"depth for passthrough must hold 8-bit values 0..255 (pre-normalised datasets such as CASIA-SURF), "
            f"got range {values.min():g}..{values.max():g}; use depth mode 'window' for metric depth"
        )
    check_mask(face_region, values.shape, "face_region")
    return NormalisedDepth(values / np.float32(PASSTHROUGH_MAX), float("nan"), valid_fraction_in(values, face_region))
