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
        """The rig at one stream mode, both cameras at ``width`` x ``height`` (see :func:`sensor_mode`)."""
        color = sensor_mode(Intrinsics(640, 480, 613.20, 613.20, 320.0, 240.0), width, height)
        depth = sensor_mode(Intrinsics(640, 480, 390.43, 390.43, 320.0, 240.0), width, height)
        return SensorRig(color=color, depth=depth,
                         depth_to_color=Extrinsics(IDENTITY_ROTATION, (0.015, 0.0, 0.0)))

    @property
    def depth_origin_m(self) -> tuple[float, float, float]:
        """Position of the depth camera's optical centre in the colour camera's frame."""
        return self.depth_to_color.translation_m


def sensor_mode(base: Intrinsics, width: int, height: int) -> Intrinsics:
    """``base`` (a centred 640x480 mode) at another stream mode of the same camera.

    The vertical field of view is kept and pixels stay square: a D435's colour sensor is 16:9 and its
    640x480 mode is a 4:3 window of it, so the 848x480 and 1280x720 modes show more at the sides, not
    the same picture stretched (Intel D400 datasheet: colour FOV 69 x 42 degrees at 16:9; 613.2 px at
    640x480 is 55 x 43 degrees, and 1280x720 comes out at 919.8 px, 69.6 x 42.7 degrees, where real
    D435s report about 920 px). The depth camera follows the same rule, which makes its 16:9 modes
    about 8 degrees wider than the datasheet's 87 x 58 degrees: the depth still covers the colour view.
    Scaling each axis by its own ratio (``Intrinsics.scaled``) would stretch faces horizontally by
    848/640 at 848x480.
    """
    f = base.fy * height / base.height
    return Intrinsics(width, height, f, f, width / 2.0, height / 2.0, base.model, base.coeffs)
