"""Recording a live camera to a file, raw: no depth filter, no alignment.

The recording stays raw so that it can be replayed later through any filter chain (``bag:PATH``
applies the chain at playback). pyrealsense2 2.58 and newer write only ROS2 ``.db3`` files (and
still play ROS1 ``.bag``); older versions write only ``.bag``. The output path's extension is checked
against the installed version up front, with a message that says which one to use, instead of
letting librealsense fail after the camera has started.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.errors import ConfigError, SourceError, import_optional

log = logging.getLogger(__name__)

DB3_SINCE = (2, 58)  # librealsense 2.58.0 release notes: the recorder writes ROS2 .db3 only


@dataclass(frozen=True)
class RecordingSummary:
    """What a recording run wrote."""

    path: Path
    frames: int  # framesets seen while recording (colour and depth each recorded raw)
    seconds: float
    serial: str
    device: str

    def to_dict(self) -> dict[str, object]:
        return {"path": str(self.path), "frames": self.frames, "seconds": round(self.seconds, 3),
                "serial": self.serial, "device": self.device}


def recording_suffix(rs_version: str) -> str:
    """``.db3`` for pyrealsense2 2.58+, ``.bag`` before."""
    try:
        major, minor = (int(part) for part in rs_version.split(".")[:2])
    except ValueError:
        raise ValueError(f"unreadable pyrealsense2 version {rs_version!r}") from None
    return ".db3" if (major, minor) >= DB3_SINCE else ".bag"


def check_output_path(path: Path, rs_version: str) -> Path:
    """The path to record to; an extension the installed pyrealsense2 cannot write is a ConfigError.

    A path without an extension gets the right one (logged); a wrong one is refused rather than
    rewritten, so the file a user asked for is never silently a different file.
    """
    suffix = recording_suffix(rs_version)
    if path.suffix == "":
        path = path.with_suffix(suffix)
        log.info("recording to %s (pyrealsense2 %s writes %s files)", path, rs_version, suffix)
    elif path.suffix.lower() != suffix:
        raise ConfigError(f"pyrealsense2 {rs_version} records only {suffix} files, not {path.suffix}; "
                          f"use --out {path.with_suffix(suffix)}"
                          + (" (it still plays .bag recordings)" if suffix == ".db3" else ""))
    if not path.parent.is_dir():
        raise ConfigError(f"folder {path.parent} does not exist; create it or choose another --out")
    return path


def record_camera(serial: str, out_path: Path, seconds: float, fps: int = 30, width: int = 640,
                  height: int = 480, timeout_s: float = 2.0,
                  progress: Callable[[float], None] | None = None) -> RecordingSummary:
    """Record ``seconds`` of raw depth and colour from a live camera (first found when ``serial`` is "").

    ``progress`` is called with the elapsed seconds after each frameset (for a progress bar).
    A camera that delivers nothing for ``timeout_s`` ends the recording with a SourceError.
    """
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"--seconds must be a positive number, got {seconds}")
    from edge.capture.realsense import camera_profile, select_device

    rs = import_optional("pyrealsense2", "realsense", "recording a RealSense camera")
    path = check_output_path(Path(out_path), rs.__version__)
    device = select_device(rs, serial)
    profile = camera_profile(device.name, width, height, fps)
    pipeline, config = rs.pipeline(), rs.config()
    config.enable_device(device.serial)
    config.enable_stream(rs.stream.depth, profile.depth_width, profile.depth_height, rs.format.z16, profile.fps)
    config.enable_stream(rs.stream.color, profile.color_width, profile.color_height, rs.format.bgr8, profile.fps)
    config.enable_record_to_file(str(path))
    try:
        pipeline.start(config)
    except RuntimeError as exc:
        raise SourceError(f"cannot start camera {device.serial} for recording: {exc}; "
                          "check the cable and that no other program uses the camera") from None
    frames, start = 0, time.monotonic()
    try:
        while (elapsed := time.monotonic() - start) < seconds:
            ok, _ = pipeline.try_wait_for_frames(int(timeout_s * 1000))
            if not ok:
                raise SourceError(f"camera {device.serial} sent no frame for {timeout_s:g} s while recording; "
                                  f"{path} holds what came before")
            frames += 1
            if progress is not None:
                progress(elapsed)
    finally:
        pipeline.stop()
    log.info("recorded %d framesets in %.1f s to %s", frames, time.monotonic() - start, path)
    return RecordingSummary(path=path, frames=frames, seconds=time.monotonic() - start, serial=device.serial,
                            device=device.name)
