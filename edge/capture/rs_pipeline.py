"""The frame path every pyrealsense2 source shares: depth filters, frameset matching, align, copy-out.

A live camera (:mod:`edge.capture.realsense`), a recording (:mod:`edge.capture.playback`) and the
software device (:mod:`edge.capture.software_device`) all hand their framesets to one
:class:`FramesetReader`, so a recording replays through exactly the filter chain and alignment the
camera would have used.

Ownership: librealsense frames live in a fixed pool and are recycled once released, so every array
that leaves this module is a copy. Nothing here imports pyrealsense2 at module level; the ``rs``
module is passed in by the source that imported it (``import_optional`` in the source's opener).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

import cv2
import numpy as np

from edge.capture.region_depth import RegionDepth, StreamGeometry, pending_frame, region_problem
from edge.errors import SourceError
from edge.frames import Extrinsics, FrameMeta, Intrinsics, RGBDFrame

log = logging.getLogger(__name__)

POLL_S = 0.05  # slice of a bounded wait: short enough that end-of-file is noticed within 50 ms
# After the producer says it has ended, frames already read from the file can still be inside the
# syncer; measured on pyrealsense2 2.59.1 they arrive within a few ms on an idle machine. 1.5 s leaves
# room for a loaded machine and is paid once, at the end of a recording. (A pair lost at the *start*
# of playback was a different race, fixed in BagSource by starting the playback paused.)
END_GRACE_S = 1.5


@dataclass(frozen=True)
class DepthFilterConfig:
    """The depth post-processing chain, applied in the order Intel recommends.

    Order (Intel, *Depth Post-Processing for Intel RealSense D400 Depth Cameras*, 2018, §"Filter
    order"): decimation, depth-to-disparity, spatial, temporal, disparity-to-depth, hole filling.
    Hole filling is off by default: it invents depth, and invented depth must not feed a security
    decision; consumers read the validity mask (depth 0) instead.
    """

    decimation: int = 1  # 1 = off; 2..8 shrink depth by that factor before the other filters
    spatial: bool = True
    temporal: bool = True
    hole_filling: bool = False
    # Face first (docs/face-first.md): the same chain, run later on the face window only
    # (edge.capture.region_depth); the reader hands out raw depth and the region processor.
    region: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.decimation <= 8:  # librealsense decimation_filter filter_magnitude range
            raise ValueError(f"DepthFilterConfig.decimation must be 1..8, got {self.decimation}")

    def describe(self) -> str:
        names = [f"decimation x{self.decimation}"] if self.decimation > 1 else []
        names.append("disparity")
        names += [n for n, on in (("spatial", self.spatial), ("temporal", self.temporal)) if on]
        names.append("depth")
        if self.hole_filling:
            names.append("hole-filling")
        return ">".join(names) + (" (face region only)" if self.region else "")


RAW = DepthFilterConfig(decimation=1, spatial=False, temporal=False, hole_filling=False)

# The named chains a user can pick (`--depth-filters` of `edgefas live` and `edgefas bench`, kiosk.toml
# `depth_filters`): the product default (spatial + temporal in disparity space), the same after 2x decimation
# (Intel's white paper recommends decimating first when CPU is short: every later filter then sees a
# quarter of the pixels; measured 18.6 -> 8.1 ms per 640x480 frame, docs/benchmarks.md), and none.
# Only `default` has been the chain of every decision so far; the others are not validated on real faces.
FILTER_CHAINS: dict[str, DepthFilterConfig] = {"default": DepthFilterConfig(),
                                               "decimate2": DepthFilterConfig(decimation=2), "raw": RAW}


class DepthChain(str):
    """A name of :data:`FILTER_CHAINS` already checked where the user wrote it.

    A chain can be named on the command line (``--depth-filters``), in kiosk.toml (``depth_filters``)
    or by library code, and travels through ``LiveOptions``, ``SourceOptions`` and the bench's options
    to the source that applies it. It is checked once per start, by :func:`depth_chain`, at the place
    it was written, so the message names that place; everything below takes a ``DepthChain`` as
    checked. A plain ``str`` (library code, tests) is checked by
    :func:`edge.capture.source.check_source` before anything opens. A ``str`` subclass, so the name
    still compares, prints, logs and pickles (to a capture child process) as the plain name.
    """

    __slots__ = ()

    @property
    def config(self) -> DepthFilterConfig:
        return FILTER_CHAINS[self]


def depth_chain(name: str, option: str = "depth filters") -> DepthChain:
    """``name`` as a checked :class:`DepthChain`; an unknown name is a ChoiceError (a ConfigError)
    naming ``option`` (as the user wrote it: ``--depth-filters``, ``[kiosk] depth_filters``) and the
    choices. A ``DepthChain`` passes through unchecked: it was checked where it was written."""
    if isinstance(name, DepthChain):
        return name
    from edge.errors import check_choice

    return DepthChain(check_choice(name, FILTER_CHAINS, option))


def filter_chain(name: str, option: str = "depth filters") -> DepthFilterConfig:
    """The chain called ``name`` (checked by :func:`depth_chain` unless it is a :class:`DepthChain`)."""
    return depth_chain(name, option).config


def source_chain(name: str, face_first: bool) -> DepthFilterConfig:
    """The chain a librealsense source runs: ``name`` (see :func:`filter_chain`), on the face region
    only when ``face_first`` (``SourceOptions.face_first``, set by ``--roi on``)."""
    config = filter_chain(name)
    return dataclasses.replace(config, region=True) if face_first else config


def depth_filters_help() -> str:
    """Help text for a ``--depth-filters`` option, rendered from :data:`FILTER_CHAINS`."""
    chains = "; ".join(f"{name} = {config.describe()}" for name, config in FILTER_CHAINS.items())
    return (f"librealsense depth filter chain of a camera or recording (align always runs): {chains}. "
            f"Only {next(iter(FILTER_CHAINS))} is validated on real faces (docs/benchmarks.md).")


@dataclass(frozen=True)
class DeviceInfo:
    """What librealsense reports about one device (live camera, recording or software device)."""

    name: str
    serial: str
    firmware: str
    usb_type: str  # "3.2", "2.1", ... ; "" where the device does not report it (recordings, software devices)
    product_line: str = ""
    recommended_firmware: str = ""
    # librealsense's camera_info.connection_type: "USB", "GMSL" (D457 over MIPI), "DDS" (Ethernet);
    # "" where the device does not report it (recordings, software devices, librealsense < 2.54)
    connection_type: str = ""

    @property
    def usb2(self) -> bool:
        return self.usb_type.startswith("2")

    @property
    def hardware_link(self) -> bool:
        """The device reports a hardware connection. Every D4xx camera reports its USB type (or, on
        GMSL/Ethernet models, its connection type); a software device or a recording reports neither."""
        return bool(self.usb_type or self.connection_type)


@dataclass(frozen=True)
class StreamInfo:
    """The resolved streams of a started pipeline, read from the device (never assumed)."""

    device: DeviceInfo
    depth: Intrinsics  # of the raw depth stream, before decimation and alignment
    color: Intrinsics
    depth_fps: int
    color_fps: int
    depth_format: str
    color_format: str
    depth_scale_m: float
    depth_to_color: Extrinsics | None  # None where the device has none registered

    def describe(self) -> str:
        return (f"{self.device.name} serial={self.device.serial} "
                f"depth {self.depth.width}x{self.depth.height}@{self.depth_fps} {self.depth_format} "
                f"color {self.color.width}x{self.color.height}@{self.color_fps} {self.color_format} "
                f"depth_scale={self.depth_scale_m:g} fw={self.device.firmware or '?'} "
                f"usb={self.device.usb_type or '-'}")


class FrameWaiter(Protocol):
    """What a reader pulls framesets from: ``rs.pipeline`` and ``rs.syncer`` both fit."""

    def try_wait_for_frames(self, timeout_ms: int = ...) -> tuple[bool, Any]: ...


def read_device_info(rs: ModuleType, device: Any) -> DeviceInfo:
    def info(key: Any) -> str:
        return str(device.get_info(key)) if device.supports(key) else ""

    ci = rs.camera_info
    connection = getattr(ci, "connection_type", None)  # added in librealsense 2.54
    return DeviceInfo(name=info(ci.name), serial=info(ci.serial_number), firmware=info(ci.firmware_version),
                      usb_type=info(ci.usb_type_descriptor), product_line=info(ci.product_line),
                      recommended_firmware=info(ci.recommended_firmware_version),
                      connection_type=info(connection) if connection is not None else "")


def to_intrinsics(rs_intrinsics: Any) -> Intrinsics:
    i = rs_intrinsics
    return Intrinsics(int(i.width), int(i.height), float(i.fx), float(i.fy), float(i.ppx), float(i.ppy),
                      i.model.name, tuple(float(c) for c in i.coeffs))


def to_extrinsics(rs_extrinsics: Any) -> Extrinsics:
    """librealsense stores the rotation column-major; ``Extrinsics`` is row-major."""
    r = [float(v) for v in rs_extrinsics.rotation]
    row_major = tuple(r[col * 3 + row] for row in range(3) for col in range(3))
    return Extrinsics(row_major, tuple(float(v) for v in rs_extrinsics.translation))  # type: ignore[arg-type]


def from_extrinsics(rs: ModuleType, extrinsics: Extrinsics) -> Any:
    """The inverse of :func:`to_extrinsics`, for registering a software device's extrinsics."""
    r = extrinsics.rotation
    out = rs.extrinsics()
    out.rotation = [r[row * 3 + col] for col in range(3) for row in range(3)]
    out.translation = list(extrinsics.translation_m)
    return out


def read_stream_info(rs: ModuleType, profile: Any, origin: str) -> StreamInfo:
    """Read streams, intrinsics, extrinsics and depth scale of a resolved/started pipeline profile.

    A recording or device without a depth or a colour stream is a :class:`SourceError` naming
    ``origin`` (the file or camera), because every consumer needs both.
    """
    streams = {s.stream_type(): s for s in profile.get_streams()}
    for kind, label in ((rs.stream.depth, "depth"), (rs.stream.color, "color")):
        if kind not in streams:
            found = ", ".join(sorted(s.stream_type().name for s in streams.values())) or "none"
            raise SourceError(f"{origin} has no {label} stream (found: {found}); "
                              "edgefas needs both depth and color, record with both enabled")
    depth = streams[rs.stream.depth].as_video_stream_profile()
    color = streams[rs.stream.color].as_video_stream_profile()
    device = profile.get_device()
    try:
        extrinsics: Extrinsics | None = to_extrinsics(depth.get_extrinsics_to(color))
    except RuntimeError:
        extrinsics = None
    return StreamInfo(device=read_device_info(rs, device), depth=to_intrinsics(depth.get_intrinsics()),
                      color=to_intrinsics(color.get_intrinsics()), depth_fps=int(depth.fps()),
                      color_fps=int(color.fps()), depth_format=depth.format().name,
                      color_format=color.format().name,
                      depth_scale_m=float(device.first_depth_sensor().get_depth_scale()),
                      depth_to_color=extrinsics)


def build_filters(rs: ModuleType, config: DepthFilterConfig) -> list[Any]:
    """The processing blocks of ``config`` in Intel's recommended order (see DepthFilterConfig)."""
    blocks: list[Any] = []
    if config.decimation > 1:
        decimation = rs.decimation_filter()
        decimation.set_option(rs.option.filter_magnitude, float(config.decimation))
        blocks.append(decimation)
    if config.spatial or config.temporal:
        # Spatial and temporal filtering work in disparity space, where stereo error is uniform
        # (same white paper, "Disparity domain").
        blocks.append(rs.disparity_transform(True))
        if config.spatial:
            blocks.append(rs.spatial_filter())
        if config.temporal:
            blocks.append(rs.temporal_filter())
        blocks.append(rs.disparity_transform(False))
    if config.hole_filling:
        blocks.append(rs.hole_filling_filter())
    return blocks


class FramesetMatcher:
    """Keeps framesets that pair a new depth frame with a new colour frame.

    The pipeline's syncer also emits mixed pairs: a new frame of one stream with the previous frame
    of the other. Such a frameset repeats a frame the consumer has already seen and is dropped.
    A frame counter going backwards (how a replayed or injected stream looks) is flagged.
    """

    def __init__(self) -> None:
        self.last: tuple[int, int] | None = None  # (depth, colour) frame numbers last kept
        self.dropped_mixed = 0

    def accept(self, depth_number: int, color_number: int) -> tuple[bool, bool]:
        """(keep, non_monotonic) for a frameset with these frame numbers."""
        if self.last is not None and (depth_number == self.last[0] or color_number == self.last[1]):
            self.dropped_mixed += 1
            return False, False
        non_monotonic = self.last is not None and (depth_number < self.last[0] or color_number < self.last[1])
        self.last = (depth_number, color_number)
        return True, non_monotonic


def color_to_bgr(rs: ModuleType, frame: Any, origin: str) -> np.ndarray:
    data = np.asanyarray(frame.get_data())
    fmt = frame.get_profile().format()
    if fmt == rs.format.bgr8:
        return data.copy()
    if fmt == rs.format.rgb8:
        return cv2.cvtColor(data, cv2.COLOR_RGB2BGR)
    raise SourceError(f"{origin} has color format {fmt.name}; edgefas reads bgr8 or rgb8, "
                      "record the color stream in one of those")


class FramesetReader:
    """Pulls framesets, drops mixed pairs, filters depth, aligns it to colour, copies frames out.

    Every wait is bounded: :meth:`read` returns None when no matched frameset arrived within
    ``timeout_s`` or as soon as ``finished()`` says the producer has ended (end of a recording).
    Not thread-safe; one reader per source.
    """

    def __init__(self, rs: ModuleType, waiter: FrameWaiter, info: StreamInfo, filters: DepthFilterConfig,
                 timeout_s: float, source_id: str, finished: Callable[[], bool] | None = None,
                 first_number: int = 0) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.rs, self.waiter, self.info, self.filters = rs, waiter, info, filters
        self.timeout_s, self.source_id, self.finished = timeout_s, source_id, finished
        self.blocks = build_filters(rs, filters)
        self.align = rs.align(rs.stream.color)
        self.matcher = FramesetMatcher()
        self.delivered = 0
        self.first_number = first_number  # RGBDFrame.frame_number of the first frame (continues across loops)
        self.region = open_region(rs, info, filters, source_id) if filters.region else None

    def read(self) -> RGBDFrame | None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ok, frameset = self.waiter.try_wait_for_frames(max(1, int(min(remaining, POLL_S) * 1000)))
            if not ok:
                if self.finished is not None and self.finished():
                    deadline = min(deadline, time.monotonic() + END_GRACE_S)
                continue
            frame = self.convert(frameset)
            if frame is not None:
                return frame

    def convert(self, frameset: Any) -> RGBDFrame | None:
        """One frameset to an aligned frame, or None for a mixed pair or a frameset missing a stream."""
        frameset = frameset.as_frameset()
        depth, color = frameset.get_depth_frame(), frameset.get_color_frame()
        if not depth or not color:
            return None
        keep, non_monotonic = self.matcher.accept(depth.get_frame_number(), color.get_frame_number())
        if not keep:
            return None
        meta = FrameMeta(color_frame_number=int(color.get_frame_number()),
                         depth_frame_number=int(depth.get_frame_number()),
                         color_sensor_t_ms=float(color.get_timestamp()),
                         depth_sensor_t_ms=float(depth.get_timestamp()),
                         counter_non_monotonic=non_monotonic)
        if non_monotonic:
            log.warning("%s: frame counter went backwards (depth %d, color %d): replayed or injected stream?",
                        self.source_id, meta.depth_frame_number, meta.color_frame_number)
        started = time.perf_counter()  # filters + align + copy-out, reported as meta.host_process_ms
        if self.region is not None:
            return self._pending(depth, color, meta, started)
        processed = frameset
        for block in self.blocks:
            processed = block.process(processed)
        aligned = self.align.process(processed.as_frameset())
        color_bgr = color_to_bgr(self.rs, aligned.get_color_frame(), self.source_id)
        depth_raw = np.asanyarray(aligned.get_depth_frame().get_data()).copy()
        meta = dataclasses.replace(meta, host_process_ms=(time.perf_counter() - started) * 1000.0)
        frame = RGBDFrame(color_bgr=color_bgr, depth_raw=depth_raw, depth_scale_m=self.info.depth_scale_m,
                          intrinsics=self.info.color, t_ms=meta.color_sensor_t_ms,
                          frame_number=self.first_number + self.delivered, source_id=self.source_id, meta=meta)
        self.delivered += 1
        return frame


    def _pending(self, depth: Any, color: Any, meta: FrameMeta, started: float) -> RGBDFrame:
        """Face first: copies of colour and raw depth, and the region processor that aligns and
        filters the face window later (edge.capture.region_depth)."""
        color_bgr = color_to_bgr(self.rs, color, self.source_id)
        depth_grid = np.asanyarray(depth.get_data()).copy()
        meta = dataclasses.replace(meta, host_process_ms=(time.perf_counter() - started) * 1000.0)
        assert self.region is not None
        frame = pending_frame(dict(color_bgr=color_bgr, depth_scale_m=self.info.depth_scale_m,
                                   intrinsics=self.info.color, t_ms=meta.color_sensor_t_ms,
                                   frame_number=self.first_number + self.delivered, source_id=self.source_id,
                                   meta=meta), depth_grid, self.region)
        self.delivered += 1
        return frame


def open_region(rs: ModuleType, info: StreamInfo, filters: DepthFilterConfig, source_id: str) -> RegionDepth | None:
    """The face-first depth processor of a stream, or None (with a WARNING saying why) where the region
    aligner cannot reproduce ``rs.align`` for it: that stream keeps the full-frame path."""
    geometry = StreamGeometry(info.depth, info.color, info.depth_to_color, info.depth_scale_m, info.depth_fps)
    problem = region_problem(geometry, filters.decimation)
    if problem:
        log.warning("%s: face-first depth off, %s; filtering and aligning the whole frame", source_id, problem)
        return None
    region_filters = dataclasses.replace(filters, region=False)
    return RegionDepth(rs, geometry, lambda: build_filters(rs, region_filters))


def check_timeout(timeout_s: float) -> float:
    if not (timeout_s > 0 and math.isfinite(timeout_s)):
        raise ValueError(f"SourceOptions.timeout_s must be a positive number of seconds, got {timeout_s}")
    return timeout_s
