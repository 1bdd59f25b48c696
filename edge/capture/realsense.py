"""The ``realsense[:SERIAL]`` source: a live Intel RealSense D4xx camera.

Configured per model at the resolution Intel recommends for depth quality, emitter on,
auto-exposure on and metered on the face the live session finds (``set_exposure_roi``), depth
filtered in the recommended order and aligned to colour by :mod:`edge.capture.rs_pipeline`. Everything a reviewer needs to trust a
capture (serial, firmware, USB link, depth scale, intrinsics, extrinsics) is read from the device
and logged at start. A USB 2 link or an old firmware is a loud warning, and an error in production
mode (``SourceOptions.production``), because both silently lower depth quality (USB 2 cannot carry
848x480 depth with colour at 30 fps). Production mode also refuses a device that reports no hardware
connection: a software device behind a ``realsense`` spec is an injection path, not a camera.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from edge.capture.rs_pipeline import (
    DepthFilterConfig,
    DeviceInfo,
    FramesetReader,
    StreamInfo,
    check_timeout,
    read_device_info,
    read_stream_info,
    source_chain,
)
from edge.capture.source import ClosesOnExit, SourceOptions
from edge.errors import ConfigError, ProductionError, SourceError, import_optional
from edge.frames import RGBDFrame

log = logging.getLogger(__name__)

COLOR_SIZES = ((640, 480), (1280, 720))  # the two colour modes the face pipeline is tuned for
CAMERA_FPS = (15, 30)  # D4xx datasheet: both depth and colour offer these at the sizes above

# Depth resolution with the best depth quality per model: Intel, "Best-Known-Methods for Tuning
# Intel RealSense D400 Depth Cameras" (Grunnet-Jepsen et al., 2018), "use the optimal resolution":
# 848x480 for the D435/D455 family, 1280x720 for the D415.
DEPTH_SIZE_BY_MODEL: dict[str, tuple[int, int]] = {
    "D415": (1280, 720),
    "D435": (848, 480),
    "D455": (848, 480),
}
ROI_MIN_INTERVAL_S = 0.5  # each set_region_of_interest is a USB control transfer; at most twice a second


@dataclass(frozen=True)
class CameraProfile:
    model: str  # key of DEPTH_SIZE_BY_MODEL that was used
    assumed: bool  # True when the device's model is not in the table and the D435 settings were used
    depth_width: int
    depth_height: int
    color_width: int
    color_height: int
    fps: int


@dataclass(frozen=True)
class RealSenseSettings:
    """Deployment settings of a live camera (beyond :class:`SourceOptions`)."""

    filters: DepthFilterConfig = DepthFilterConfig()
    min_firmware: str = ""  # "" = the version librealsense itself recommends for the device
    emitter: bool = True  # the IR projector adds texture: depth on plain skin and walls needs it


def check_camera_mode(width: int, height: int, fps: int) -> None:
    """An unsupported colour size or rate is a ConfigError listing the valid ones."""
    if (width, height) not in COLOR_SIZES:
        sizes = ", ".join(f"{w}x{h}" for w, h in COLOR_SIZES)
        raise ConfigError(f"unsupported color resolution {width}x{height} for a RealSense camera; use one of {sizes}")
    if fps not in CAMERA_FPS:
        raise ConfigError(f"unsupported frame rate {fps} for a RealSense camera; use one of "
                          + ", ".join(map(str, CAMERA_FPS)))


def camera_profile(device_name: str, width: int, height: int, fps: int) -> CameraProfile:
    """Stream sizes for a model at a checked colour mode (see :func:`check_camera_mode`)."""
    check_camera_mode(width, height, fps)
    model = next((m for m in DEPTH_SIZE_BY_MODEL if m in device_name.upper()), None)
    if model is None:
        log.warning("camera model %r is not one edgefas was tuned for (%s); using the D435 settings",
                    device_name, ", ".join(DEPTH_SIZE_BY_MODEL))
    depth_w, depth_h = DEPTH_SIZE_BY_MODEL[model or "D435"]
    return CameraProfile(model or "D435", model is None, depth_w, depth_h, width, height, fps)


def version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.strip().split("."))
    except ValueError:
        raise ValueError(f"unreadable firmware version {version!r}") from None


def link_problems(device: DeviceInfo, min_firmware: str) -> list[str]:
    """The reasons this camera will deliver worse depth than it should (USB 2, old firmware)."""
    problems = []
    if device.usb2:
        problems.append(f"camera {device.serial} is on a USB {device.usb_type} link; plug it into a USB 3 port "
                        "with a USB 3 cable")
    minimum = min_firmware or device.recommended_firmware
    if minimum and device.firmware and version_tuple(device.firmware) < version_tuple(minimum):
        problems.append(f"camera {device.serial} runs firmware {device.firmware}, older than {minimum}; "
                        "update it with rs-fw-update or the RealSense Viewer")
    return problems


def check_device(device: DeviceInfo, min_firmware: str, production: bool) -> tuple[str, ...]:
    """The camera's deployment problems (:func:`link_problems`), logged at WARNING; in production
    mode each is a :class:`ProductionError` instead, and so is a device without a hardware link."""
    problems = link_problems(device, min_firmware)
    if production and not device.hardware_link:
        raise ProductionError(f"production mode refuses device {device.serial or '?'} ({device.name or 'unnamed'}): "
                              "it reports no USB or other hardware connection, so it is a software or virtual "
                              "device whose frames cannot be told from an injection attack; connect a RealSense "
                              "camera")
    if problems and production:
        raise ProductionError("production mode refuses this camera: " + "; ".join(problems))
    for problem in problems:
        log.warning("%s", problem)
    return tuple(problems)


def list_devices(rs: ModuleType | None = None, context: Any = None) -> tuple[DeviceInfo, ...]:
    """Connected cameras of ``context`` (a new ``rs.context()`` when None); empty when none."""
    rs = rs or import_optional("pyrealsense2", "realsense", "listing RealSense cameras")
    context = context if context is not None else rs.context()
    return tuple(read_device_info(rs, device) for device in context.query_devices())


def select_device(rs: ModuleType, serial: str) -> DeviceInfo:
    """The camera with ``serial`` (first found when empty); an unknown serial lists the connected ones."""
    devices = list_devices(rs)
    return choose_device(devices, serial)


def choose_device(devices: tuple[DeviceInfo, ...], serial: str) -> DeviceInfo:
    if not devices:
        if serial:
            raise SourceError(f"no RealSense with serial {serial}; connected: none (check the cable, then: "
                              "edgefas devices)")
        raise SourceError("no RealSense camera found; connect one (USB 3) and check it with: edgefas devices")
    if not serial:
        return devices[0]
    for device in devices:
        if device.serial == serial:
            return device
    connected = ", ".join(f"{d.serial} ({d.name})" for d in devices)
    raise SourceError(f"no RealSense with serial {serial}; connected: {connected}")


class RealSenseSource(ClosesOnExit):
    """A live camera as a :class:`~edge.capture.source.FrameSource` (a physical kind: judged in wall time).

    A frame wait longer than ``timeout_s``, or the camera being unplugged (seen through the
    context's device-change callback), raises :class:`SourceError` from the iterator; wrap the
    source in :class:`edge.capture.watchdog.Watchdog` to reconnect instead of ending.
    """

    def __init__(self, serial: str, options: SourceOptions, settings: RealSenseSettings | None = None) -> None:
        self.rs = rs = import_optional("pyrealsense2", "realsense", "the RealSense camera source")
        self.options = options
        self.settings = settings or RealSenseSettings(filters=source_chain(options.depth_filters, options.face_first))
        self.timeout_s = check_timeout(options.timeout_s)
        check_camera_mode(options.width, options.height, options.fps)
        self.context = rs.context()
        device = choose_device(list_devices(rs, self.context), serial)
        self.serial = device.serial
        self.spec = f"realsense:{self.serial}"
        problems = check_device(device, self.settings.min_firmware, options.production)
        self.camera = camera_profile(device.name, options.width, options.height, options.fps)
        self._removed = threading.Event()
        self.pipeline = rs.pipeline(self.context)
        config = rs.config()
        config.enable_device(self.serial)
        config.enable_stream(rs.stream.depth, self.camera.depth_width, self.camera.depth_height, rs.format.z16,
                             self.camera.fps)
        config.enable_stream(rs.stream.color, self.camera.color_width, self.camera.color_height, rs.format.bgr8,
                             self.camera.fps)
        try:
            profile = self.pipeline.start(config)
        except RuntimeError as exc:
            raise SourceError(f"cannot start camera {self.serial}: {exc}; check the cable and that no other "
                              "program (realsense-viewer, another edgefas) uses it") from None
        self._running = True
        self.stream_info: StreamInfo = read_stream_info(rs, profile, f"camera {self.serial}")
        self.device = profile.get_device()
        self.context.set_devices_changed_callback(self._devices_changed)  # after self.device exists
        self._configure_sensors()
        self._last_roi_s = float("-inf")
        self.problems = tuple(problems)
        info = self.stream_info
        log.info("camera %s: depth %s; color %s; depth_to_color %s; depth_scale %g m", self.serial, info.depth,
                 info.color, info.depth_to_color, info.depth_scale_m)

    def _configure_sensors(self) -> None:
        rs = self.rs
        depth_sensor = self.device.first_depth_sensor()
        if depth_sensor.supports(rs.option.emitter_enabled):
            depth_sensor.set_option(rs.option.emitter_enabled, 1.0 if self.settings.emitter else 0.0)
        for sensor in self.device.query_sensors():
            if sensor.supports(rs.option.enable_auto_exposure):
                sensor.set_option(rs.option.enable_auto_exposure, 1.0)

    def _devices_changed(self, event: Any) -> None:
        # Runs on a librealsense thread: only set a flag, the reading thread acts on it.
        try:
            if event.was_removed(self.device):
                self._removed.set()
        except RuntimeError as exc:
            log.debug("device-change event for %s: %s", self.serial, exc)

    def set_exposure_roi(self, box_xyxy: tuple[float, float, float, float]) -> bool:
        """Meter auto-exposure on a face box (colour pixels); returns False when rate-limited.

        The box is scaled into each ROI-capable sensor's stream size: the depth imagers see the face
        at a slightly different place (baseline ~15-50 mm), close enough to meter exposure on.
        """
        now = time.monotonic()
        if now - self._last_roi_s < ROI_MIN_INTERVAL_S:
            return False
        self._last_roi_s = now
        info = self.stream_info
        for sensor, intr in ((self.device.first_depth_sensor(), info.depth),
                             (self.device.first_color_sensor(), info.color)):
            if not sensor.is_roi_sensor():
                continue
            sx, sy = intr.width / info.color.width, intr.height / info.color.height
            roi = self.rs.region_of_interest()
            roi.min_x = max(0, int(box_xyxy[0] * sx))
            roi.min_y = max(0, int(box_xyxy[1] * sy))
            roi.max_x = min(intr.width - 1, int(box_xyxy[2] * sx))
            roi.max_y = min(intr.height - 1, int(box_xyxy[3] * sy))
            if roi.max_x > roi.min_x and roi.max_y > roi.min_y:
                try:
                    sensor.as_roi_sensor().set_region_of_interest(roi)
                except RuntimeError as exc:  # the sensor refuses while auto-exposure converges; next call retries
                    log.debug("exposure ROI on %s: %s", self.serial, exc)
        return True

    def describe(self) -> str:
        profile = f"profile={self.camera.model}" + (" (assumed)" if self.camera.assumed else "")
        return f"{self.stream_info.describe()} {profile} filters={self.settings.filters.describe()}"

    def __iter__(self) -> Iterator[RGBDFrame]:
        reader = FramesetReader(self.rs, self.pipeline, self.stream_info, self.settings.filters, self.timeout_s,
                                self.spec)
        delivered = 0
        while self._running:
            if self.options.max_frames is not None and delivered >= self.options.max_frames:
                return
            if self._removed.is_set():
                raise SourceError(f"camera {self.serial} was disconnected; reconnect it")
            frame = reader.read()
            if frame is None:
                if not self._running:
                    return
                raise SourceError(f"camera {self.serial} sent no frame for {self.timeout_s:g} s; "
                                  "check the cable and the USB power")
            delivered += 1
            yield frame

    def reset_hardware(self) -> None:
        """Power-cycle the camera over USB (the watchdog's last resort); it re-enumerates in ~2-5 s."""
        for device in self.rs.context().query_devices():
            if read_device_info(self.rs, device).serial == self.serial:
                log.warning("hardware reset of camera %s", self.serial)
                device.hardware_reset()
                return
        log.warning("hardware reset of camera %s skipped: it is not connected", self.serial)

    def close(self) -> None:
        if self._running:
            self._running = False
            try:
                self.pipeline.stop()
            except RuntimeError as exc:  # already stopped by an unplug
                log.debug("stopping camera %s: %s", self.serial, exc)


def open_realsense(argument: str, options: SourceOptions) -> RealSenseSource:
    """Opener registered in ``SOURCE_KINDS`` for ``realsense[:SERIAL]``."""
    return RealSenseSource(argument.strip(), options)
