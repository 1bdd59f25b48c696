"""A pyrealsense2 software device shaped like a D435: synthetic frames through the real frame path.

Tests and the demo exercise pyrealsense2 without a camera by pushing rendered colour and raw
(unaligned, depth-camera grid) depth into an ``rs.software_device``. The device registers what a
real camera reports and what ``rs.align`` needs: both intrinsics, the depth unit, and the
depth-to-colour extrinsics (without them ``rs.align`` silently assumes identity and the aligned depth
lands beside the face). It can record what it is fed, so a scenario becomes a ``.db3`` recording that
``bag:PATH`` plays back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.capture.recorder import RecordingSummary, check_output_path
from edge.capture.region_depth import from_intrinsics
from edge.capture.rs_pipeline import from_extrinsics
from edge.errors import import_optional
from edge.frames import check_color, check_depth

if TYPE_CHECKING:
    from edge.capture.synthetic.rig import SensorRig

log = logging.getLogger(__name__)

SYNTHETIC_SERIAL = "000000000000"  # 12 digits like a D4xx serial; all zeros never names a real camera
SYNTHETIC_NAME = "edgefas synthetic D435"


@dataclass(frozen=True)
class RawView:
    """One capture as a camera delivers it: colour, and depth in the depth camera's own grid."""

    color_bgr: np.ndarray  # H x W x 3 uint8, colour grid
    depth_raw: np.ndarray  # h x w uint16, depth grid (unaligned), units of the rig's depth_scale_m
    t_ms: float


class SoftwareCamera:
    """An ``rs.software_device`` with a depth sensor and a colour sensor matching ``rig``.

    Call :meth:`record_to` (optional) before :meth:`start`, then :meth:`push` frames; framesets come
    out of :attr:`syncer` (an ``rs.syncer``, which :class:`~edge.capture.rs_pipeline.FramesetReader`
    reads like a pipeline). :meth:`close` stops the sensors and finishes the recording.
    """

    def __init__(self, rig: SensorRig, fps: int = 30, serial: str = SYNTHETIC_SERIAL) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        rs = self.rs = import_optional("pyrealsense2", "realsense", "the RealSense software device")
        self.rig, self.fps = rig, fps
        self.device = rs.software_device()
        self.depth_sensor = self.device.add_sensor("Stereo Module")
        self.color_sensor = self.device.add_sensor("RGB Camera")
        self.depth_profile = self.depth_sensor.add_video_stream(
            self._stream(rs.stream.depth, 0, rig.depth, 2, rs.format.z16)).as_video_stream_profile()
        self.color_profile = self.color_sensor.add_video_stream(
            self._stream(rs.stream.color, 1, rig.color, 3, rs.format.bgr8)).as_video_stream_profile()
        self.depth_sensor.add_read_only_option(rs.option.depth_units, float(rig.depth_scale_m))
        self.depth_profile.register_extrinsics_to(self.color_profile, from_extrinsics(rs, rig.depth_to_color))
        for key, value in ((rs.camera_info.name, SYNTHETIC_NAME), (rs.camera_info.serial_number, serial),
                           (rs.camera_info.firmware_version, "0.0.0.0"), (rs.camera_info.product_line, "D400")):
            self.device.register_info(key, value)
        # dlr_c: the matcher of a D4xx with colour (depth, left, right, colour) in librealsense.
        self.device.create_matcher(rs.matchers.dlr_c)
        self.syncer = rs.syncer()
        self._recorder: Any = None
        self._started = False
        self._pushed = 0

    def _stream(self, kind: Any, uid: int, intrinsics: Any, bpp: int, fmt: Any) -> Any:
        stream = self.rs.video_stream()
        stream.type, stream.index, stream.uid = kind, 0, uid
        stream.width, stream.height, stream.fps, stream.bpp, stream.fmt = (
            intrinsics.width, intrinsics.height, self.fps, bpp, fmt)
        stream.intrinsics = from_intrinsics(self.rs, intrinsics)
        return stream

    def record_to(self, path: Path, compress: bool = True) -> None:
        """Record what is pushed to ``path``. ``compress``: librealsense's default, lossless PNG per
        frame (about half the size); without it playback copies frames instead of decoding them."""
        if self._started:
            raise ValueError("record_to() must be called before start()")
        self._recorder = self.rs.recorder(str(path), self.device, bool(compress))

    def start(self) -> None:
        self.depth_sensor.open(self.depth_profile)
        self.color_sensor.open(self.color_profile)
        self.depth_sensor.start(self.syncer)
        self.color_sensor.start(self.syncer)
        self._started = True

    def push(self, view: RawView) -> None:
        """Hand one capture to both sensors with the same timestamp and frame number."""
        if not self._started:
            raise ValueError("push() before start()")
        check_color(view.color_bgr, "RawView.color_bgr")
        check_depth(view.depth_raw, "RawView.depth_raw")
        expected = {"color_bgr": (self.rig.color.height, self.rig.color.width),
                    "depth_raw": (self.rig.depth.height, self.rig.depth.width)}
        for name, shape in expected.items():
            if getattr(view, name).shape[:2] != shape:
                raise ValueError(f"RawView.{name} is {getattr(view, name).shape[:2]}, the rig expects {shape}")
        self._pushed += 1
        rs = self.rs
        for sensor, profile, pixels, bpp in ((self.depth_sensor, self.depth_profile, view.depth_raw, 2),
                                             (self.color_sensor, self.color_profile, view.color_bgr, 3)):
            frame = rs.software_video_frame()
            frame.pixels = np.ascontiguousarray(pixels)
            frame.bpp, frame.stride = bpp, pixels.shape[1] * bpp
            frame.timestamp = float(view.t_ms)
            frame.domain = rs.timestamp_domain.hardware_clock
            frame.frame_number = self._pushed
            frame.profile = profile
            if bpp == 2:
                frame.depth_units = float(self.rig.depth_scale_m)
            sensor.on_video_frame(frame)

    def close(self) -> None:
        if self._started:
            self._started = False
            for sensor in (self.depth_sensor, self.color_sensor):
                sensor.stop()
                sensor.close()
        if self._recorder is not None:
            recorder, self._recorder = self._recorder, None
            recorder.pause()
            del recorder  # the file is finalised when librealsense releases the recorder


def record_views(views: Iterable[RawView], out_path: Path, rig: SensorRig, fps: int = 30,
                 compress: bool = True) -> RecordingSummary:
    """Record raw views through the software device into ``out_path`` (.db3; see recorder).

    ``compress`` (librealsense's default) stores every frame as a lossless PNG; a recording that is
    played to time the frame path (edge.bench.feed) is written without, since decoding two PNGs per
    frame on the playback thread is work a camera does not make (docs/face-first-speed.md).
    """
    rs = import_optional("pyrealsense2", "realsense", "recording through the RealSense software device")
    path = check_output_path(Path(out_path), rs.__version__)
    camera = SoftwareCamera(rig, fps=fps)
    camera.record_to(path, compress=compress)
    camera.start()
    count = 0
    try:
        for view in views:
            camera.push(view)
            camera.syncer.try_wait_for_frames(1)  # keep the syncer's queue short; recording is upstream of it
            count += 1
    finally:
        camera.close()
    log.info("recorded %d synthetic frames to %s", count, path)
    return RecordingSummary(path=path, frames=count, seconds=count / fps, serial=SYNTHETIC_SERIAL,
                            device=SYNTHETIC_NAME)


def record_synthetic(scenario: str, seed: int, frames: int, out_path: Path,
                     rig: SensorRig | None = None) -> RecordingSummary:
    """Write ``frames`` rendered frames of ``scenario`` as a RealSense recording (``edgefas synth --format bag``).

    The recording holds the raw depth (depth-camera grid) and colour with the rig's intrinsics,
    depth unit and extrinsics, exactly what a camera would have recorded, so playback runs the
    same filters and ``rs.align`` as a live camera.
    """
    if frames <= 0:
        raise ValueError(f"frames must be positive, got {frames}")
    from edge.capture.synthetic import SyntheticWorld
    from edge.capture.synthetic.rig import SensorRig

    rig = rig or SensorRig.d435()
    world = SyntheticWorld(scenario, seed, rig=rig)

    def views() -> Iterable[RawView]:
        for index in range(frames):
            rendered = world.render(index)
            yield RawView(rendered.color_bgr, rendered.depth_raw, float(rendered.t_ms))

    return record_views(views(), out_path, rig)
