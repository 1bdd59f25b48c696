"""The simulated RealSense D435: two cameras, their intrinsics, the baseline, the depth unit.

Numbers follow the real D435 recording in the shared test data (depth 640x480 fx = fy = 390.43,
colour 640x480 fx = 613.20, depth units 1 mm) and Intel's D400 datasheet (stereo baseline 50 mm;
the RGB module sits about 15 mm from the left imager, which is the depth origin).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.frames import Extrinsics, Intrinsics

IDENTITY_ROTATION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class SensorRig:
    """A colour camera and a depth camera rigidly mounted together.

    The colour camera's frame is the world frame of the synthetic scene (x right, y down, z forward,
    metres). ``p_color = p_depth + t``, so the depth camera's optical centre sits at ``t`` in the
    colour frame; both look along +z.
    """

    color: Intrinsics
    depth: Intrinsics
    depth_to_color: Extrinsics
    depth_scale_m: float = 0.001
    stereo_baseline_m: float = 0.050  # D435 datasheet: 50 mm between the IR imagers
    subpixel: float = 0.08  # Intel depth-tuning white paper: typical RMS subpixel of a D4xx

    @staticmethod
    def d435(width: int = 640, height: int = 480) -> SensorRig:
        color = Intrinsics(640, 480, 613.20, 613.20, 320.0, 240.0).scaled(width, height)
        depth = Intrinsics(640, 480, 390.43, 390.43, 320.0, 240.0).scaled(width, height)
        return SensorRig(color=color, depth=depth,
                         depth_to_color=Extrinsics(IDENTITY_ROTATION, (0.015, 0.0, 0.0)))

    @property
    def depth_origin_m(self) -> tuple[float, float, float]:
        """Position of the depth camera's optical centre in the colour camera's frame."""
        return self.depth_to_color.translation_m
