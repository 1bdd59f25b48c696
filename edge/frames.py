"""Frame types that cross module boundaries (DESIGN §3).

All are frozen dataclasses whose field names carry their units. Arrays are validated once, here, so
that every consumer can rely on dtype and shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of one stream, in pixels (librealsense's ``rs.intrinsics`` fields)."""

    width: int
    height: int
    fx: float
    fy: float
    ppx: float
    ppy: float
    model: str = "brown_conrady"
    coeffs: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same camera at another resolution (same field of view)."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(width, height, self.fx * sx, self.fy * sy, self.ppx * sx, self.ppy * sy,
                          self.model, self.coeffs)


@dataclass(frozen=True)
class Extrinsics:
    """Rigid transform from one stream's frame to another's: ``p_to = R @ p_from + t`` (metres)."""

    rotation: tuple[float, ...]  # 9 values, row-major 3x3
    translation_m: tuple[float, float, float]


@dataclass(frozen=True)
class FaceTruth:
    """Ground truth for one rendered face (synthetic sources only)."""

    box_xyxy: tuple[float, float, float, float]  # color pixels
    landmarks_xy: tuple[tuple[float, float], ...]  # 5 points: right eye, left eye, nose, mouth R, mouth L
    distance_m: float  # depth of the head's pose centre, not of the face: the face surface lies in front of it
    pai: str  # "" for a live face, else the attack species covering it


@dataclass(frozen=True)
class SceneTruth:
    """What a synthetic frame shows; absent (None) for real sources."""

    label: str  # "live", "spoof" or "none" (no face)
    pai: str  # attack species ("print", "replay", "mask", "cutout") or "" for live/none
    subject: int
    scenario: str
    faces: tuple[FaceTruth, ...] = ()
    face_mask: np.ndarray | None = None  # HxW bool, pixels of the primary face's inner region


@dataclass(frozen=True)
class FrameMeta:
    """Per-frame metadata reported by the sensor, kept so that gaps and replays can be spotted."""

    color_frame_number: int = -1
    depth_frame_number: int = -1
    color_sensor_t_ms: float = float("nan")
    depth_sensor_t_ms: float = float("nan")
    counter_non_monotonic: bool = False  # a frame counter went backwards: replay/injection sign
    # Host time spent turning the frameset into this frame (depth filters, alignment, copy-out), in ms;
    # 0 where the source does none. Measured for `edgefas bench`; left out of equality on purpose.
    host_process_ms: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class RGBDFrame:
    """One colour image with depth aligned to it.

    ``depth_raw`` is in the colour camera's pixel grid (aligned), in units of ``depth_scale_m``
    metres; 0 means "no data" and must never be read as a distance.
    """

    color_bgr: np.ndarray  # H x W x 3 uint8, BGR
    depth_raw: np.ndarray  # H x W uint16, aligned to color, 0 = no data
    depth_scale_m: float
    intrinsics: Intrinsics  # of the colour stream (depth is aligned to it)
    t_ms: float
    frame_number: int
    source_id: str
    meta: FrameMeta = field(default_factory=FrameMeta)
    truth: SceneTruth | None = None

    def __post_init__(self) -> None:
        check_color(self.color_bgr, "RGBDFrame.color_bgr")
        check_depth(self.depth_raw, "RGBDFrame.depth_raw")
        if self.depth_raw.shape != self.color_bgr.shape[:2]:
            raise ValueError(
                f"RGBDFrame.depth_raw has shape {self.depth_raw.shape} but color_bgr is "
                f"{self.color_bgr.shape[:2]}: depth must be aligned to color (same H x W)"
            )
        if not (self.depth_scale_m > 0 and np.isfinite(self.depth_scale_m)):
            raise ValueError(f"RGBDFrame.depth_scale_m must be a positive number, got {self.depth_scale_m}")

    @property
    def depth_mm(self) -> np.ndarray:
        """Depth in millimetres as float32; invalid pixels are 0."""
        return raw_depth_mm(self.depth_raw, self.depth_scale_m)

    @property
    def valid_depth(self) -> np.ndarray:
        return self.depth_raw > 0


def raw_depth_mm(depth_raw: np.ndarray, depth_scale_m: float) -> np.ndarray:
    """Raw depth units (of a whole frame or a crop of one) in millimetres as float32; 0 stays 0."""
    return depth_raw.astype(np.float32) * np.float32(depth_scale_m * 1000.0)


def check_color(color: np.ndarray, name: str) -> None:
    if not isinstance(color, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(color).__name__}")
    if color.dtype != np.uint8 or color.ndim != 3 or color.shape[2] != 3:
        raise ValueError(f"{name} must be H x W x 3 uint8 BGR, got {color.dtype} {color.shape}")


def check_depth(depth: np.ndarray, name: str) -> None:
    if not isinstance(depth, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(depth).__name__}")
    if depth.dtype != np.uint16 or depth.ndim != 2:
        raise ValueError(
            f"{name} must be H x W uint16 in depth units (0 = no data), got {depth.dtype} {depth.shape}"
        )
