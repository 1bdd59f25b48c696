"""The ``bag:PATH`` source: a RealSense recording replayed through the camera's own frame path.

Playback is non-real-time and deterministic: the playback device is switched to non-real-time
*before* ``pipeline.start()``, so librealsense waits for the reader instead of dropping frames, and
the same file gives the same frames on every run. The end of the file shows as a wait that times
out (librealsense has no end-of-file event in the pipeline API); the reader also polls the playback
status, so a finished file ends the stream within ~50 ms and a stalled one within ``timeout_s``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge.capture.rs_pipeline import (
    DepthFilterConfig,
    FramesetReader,
    StreamInfo,
    check_timeout,
    read_stream_info,
    source_chain,
)
from edge.capture.source import ClosesOnExit, SourceOptions
from edge.errors import SourceError, import_optional
from edge.frames import RGBDFrame

log = logging.getLogger(__name__)

# A looped file that played before but gives nothing after a restart (under heavy load librealsense's
# reader can reach the end of a short file before the restarted pipeline takes its frames) is
# restarted again, up to this many empty passes in a row; a file that never delivered ends at once.
LOOP_EMPTY_PASSES = 3
RECORDING_SUFFIXES = (".bag", ".db3")  # ROS1 bag (librealsense < 2.58 records it), ROS2 sqlite (2.58+)


def check_recording_path(path: Path) -> Path:
    if not path.is_file():
        raise SourceError(f"recording {path} does not exist; give the path of a .bag or .db3 file")
    if path.suffix.lower() not in RECORDING_SUFFIXES:
        raise SourceError(f"{path} is not a RealSense recording (expected .bag or .db3); "
                          "record one with: edgefas record --camera realsense --out FILE.db3")
    return path


class BagSource(ClosesOnExit):
    """A recording as a :class:`~edge.capture.source.FrameSource` (a software kind: production mode refuses it).

    ``stream_info`` is read from the file at open time, so a file without a depth or colour
    stream, or one librealsense cannot parse, fails in the constructor with a one-line
    :class:`SourceError` naming the file.
    """

    def __init__(self, path: Path, options: SourceOptions, filters: DepthFilterConfig | None = None) -> None:
        self.path = check_recording_path(Path(path))
        self.options = options
        self.timeout_s = check_timeout(options.timeout_s)
        self.filters = filters or source_chain(options.depth_filters, options.face_first)
        self.spec = f"bag:{self.path}"
        self.rs = import_optional("pyrealsense2", "realsense", "playing a RealSense recording")
        self._pipeline: Any = None
        self._closed = False
        self.ended_by_timeout = False  # True when the last pass ended on a stall, not at the end of the file
        self.stream_info: StreamInfo = self._start()

    def _start(self) -> StreamInfo:
        """Resolve, switch to non-real-time, start; returns what the file holds."""
        rs = self.rs
        pipeline, config = rs.pipeline(), rs.config()
        config.enable_device_from_file(str(self.path), repeat_playback=False)
        try:
            profile = config.resolve(pipeline)
            info = read_stream_info(rs, profile, f"recording {self.path}")
            playback = profile.get_device().as_playback()
            playback.set_real_time(False)
            # Paused until the pipeline is fully started: otherwise the file reader can push the first
            # frames before the pipeline's syncer is attached, and they are lost (measured on 2.59.1:
            # the shared one-pair D435 recording delivered nothing in ~1 of 4 idle runs; 0 of 60 with
            # the pause, 20 of them under a three-process CPU load).
            playback.pause()
            started = pipeline.start(config)
            self._playback = started.get_device().as_playback()
            self._playback.resume()
        except RuntimeError as exc:
            raise SourceError(f"cannot read recording {self.path}: {_first_line(exc)}; "
                              "the file is truncated, corrupt or not a RealSense recording") from None
        self._pipeline = pipeline
        return info

    def _finished(self) -> bool:
        return self._playback.current_status() == self.rs.playback_status.stopped

    def _stop(self) -> None:
        if self._pipeline is not None:
            pipeline, self._pipeline = self._pipeline, None
            try:
                pipeline.stop()
            except RuntimeError as exc:  # stop() after the device went away; nothing left to release
                log.debug("stopping playback of %s: %s", self.path, exc)

    def describe(self) -> str:
        return f"path={self.path} {self.stream_info.describe()} filters={self.filters.describe()} realtime=no"

    def __iter__(self) -> Iterator[RGBDFrame]:
        delivered = 0
        empty_passes = 0  # looped passes in a row that delivered nothing
        try:
            while not self._closed:
                if self._pipeline is None:
                    self._start()
                reader = FramesetReader(self.rs, self._pipeline, self.stream_info, self.filters, self.timeout_s,
                                        self.spec, finished=self._finished, first_number=delivered)
                while not self._closed:
                    if self.options.max_frames is not None and delivered >= self.options.max_frames:
                        return
                    frame = reader.read()
                    if frame is None:
                        break
                    delivered += 1
                    yield frame
                self.ended_by_timeout = not self._closed and not self._finished()
                if self.ended_by_timeout:
                    log.warning("recording %s stalled: no frame in %.1f s, ending playback", self.path, self.timeout_s)
                else:
                    log.info("end of recording %s after %d frames (%d mixed pairs dropped)", self.path,
                             reader.delivered, reader.matcher.dropped_mixed)
                self._stop()
                empty_passes = 0 if reader.delivered else empty_passes + 1
                if not self.options.loop or delivered == 0 or empty_passes >= LOOP_EMPTY_PASSES:
                    return
                if empty_passes:
                    log.warning("recording %s delivered nothing after a restart (%d of %d); restarting again",
                                self.path, empty_passes, LOOP_EMPTY_PASSES)
        finally:
            self._stop()

    def close(self) -> None:
        self._closed = True
        self._stop()


def _first_line(exc: BaseException) -> str:
    """librealsense's own reason, without its "Failed to resolve request..." preamble."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    return text.rpartition("Reason: ")[2].splitlines()[0]


def open_with_filters(spec: str, options: SourceOptions, filters: str | None = None):
    """``open_source(spec)`` with the depth filter chain ``filters`` (a name of :data:`FILTER_CHAINS`),
    or with ``options.depth_filters`` when None. A chain other than ``default`` on a source without
    librealsense's filters (synthetic, folder) is a ConfigError (:func:`edge.capture.source.open_source`)."""
    from edge.capture.source import open_source

    return open_source(spec, options if filters is None else dataclasses.replace(options, depth_filters=filters))


def open_bag(argument: str, options: SourceOptions) -> BagSource:
    """Opener registered in ``SOURCE_KINDS`` for ``bag:PATH`` (depth chain: ``options.depth_filters``).
    Production mode never gets here: ``bag`` is not a physical kind, so
    :func:`edge.capture.source.check_source` refuses it before any opener runs (DESIGN §7)."""
    return BagSource(Path(argument).expanduser(), options)
