"""Face-first depth: librealsense's filters and the alignment to colour, for one region of the frame.

The full-frame path (:class:`~edge.capture.rs_pipeline.FramesetReader` without a region) filters and
aligns all 307 k depth pixels of a 640x480 frame (~19 ms on a laptop core, docs/benchmarks.md) although
only the face window is ever read. Here the reader hands out the raw depth (a copy of the depth
camera's grid) with a :class:`RegionDepth` beside it, and the live pipeline, once it knows where the
face is, asks for aligned, filtered depth of that colour window only (docs/face-first.md):

- the depth-grid rectangle that can land in the colour window is found from the intrinsics and
  extrinsics and the nearest depth in it (a near object shifts further across the baseline), widened
  by :data:`FILTER_MARGIN_PX` so the spatial filter's recursion sees the same neighbours it would in
  the whole frame;
- that rectangle goes through a software device of its size and **the same librealsense filter
  blocks in the same order** (:func:`~edge.capture.rs_pipeline.build_filters`; hole filling off
  unless the chain says otherwise). The region is anchored: it stays put while the window fits in
  it, so the temporal filter's per-pixel history stays on the same pixels; when the face leaves it
  the region moves and the temporal history starts again (as after a camera restart);
- the filtered region is aligned to colour by :func:`align_depth_to_color`, which performs
  ``rs.align``'s projection (each depth pixel's corners to colour, the nearest depth wins) for those
  pixels only; tests/edge/capture/test_region_depth.py shows it equals ``rs.align`` there.

Thread-safety: one :class:`RegionDepth` per stream, used by one consumer thread (the live loop);
the capture thread only makes the raw copies.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from types import ModuleType
from typing import Any

import cv2
import numpy as np

from edge.frames import Extrinsics, Intrinsics, RGBDFrame

log = logging.getLogger(__name__)

# Depth pixels of context on each side of the region for the spatial filter. librealsense's spatial
# filter is a recursive edge-preserving filter along whole rows and columns, so a region's values
# can differ from the whole frame's by a rounding step however wide the margin: measured on the
# 90-frame synthetic:mixed bench recording, pixels differing in the face windows went 4.5 % -> 4.4 %
# -> 3.5 % with 16, 32, 64 px (99th percentile 4 mm in each), while the region's cost grows with its
# area; 16 px keeps the nearest neighbours, the rest is measured by tools/face_first_agreement.py.
FILTER_MARGIN_PX = 16
# Region sides are rounded up to this step, so a face that grows or shrinks by a few pixels keeps the
# same software stream (and the temporal filter its history); 32 px is a tenth of a kiosk face's window.
REGION_STEP_PX = 32
# Frames the region path may skip (no face, or frames the live loop's queue dropped) and keep the
# temporal filter's history: ~100 ms at 30 fps, the face tracker's own bound (edge.face.tracker
# MAX_MISSED_FRAMES: a person cannot be swapped in front of the camera that fast). A longer gap
# starts the history again, so another moment's depth is never blended into this one.
MAX_GAP_FRAMES = 3
# Nearest depth assumed when the region holds no depth at all (nothing to align then anyway): the
# D4xx minimum range at 640x480 is ~0.2 m (Intel D400 datasheet, "Minimum-Z").
NEAREST_M = 0.2
# Colour pixels the alignment's canvas reaches beyond the window (edge.capture.region_depth._draw_nearest):
# room for the widest rectangle a depth pixel makes on a D4xx (3 px: the colour lens is ~1.5x narrower),
# with a bound so a corrupt depth value cannot make a canvas the size of its projection.
CANVAS_MARGIN_PX = 8


def from_intrinsics(rs: ModuleType, intrinsics: Intrinsics) -> Any:
    """``intrinsics`` as an ``rs.intrinsics`` (for registering a software device's streams)."""
    out = rs.intrinsics()
    out.width, out.height = intrinsics.width, intrinsics.height
    out.fx, out.fy, out.ppx, out.ppy = intrinsics.fx, intrinsics.fy, intrinsics.ppx, intrinsics.ppy
    out.model = getattr(rs.distortion, intrinsics.model)
    out.coeffs = list(intrinsics.coeffs)
    return out


def is_pinhole(intrinsics: Intrinsics) -> bool:
    """True when the stream has no lens distortion to apply: every coefficient is zero (what a D4xx
    depth stream reports, and the rendered worlds' rig); the region aligner handles only these."""
    return all(c == 0.0 for c in intrinsics.coeffs)


@dataclass(frozen=True)
class _Geometry:
    """float32 copies of what the projection needs, in the order librealsense evaluates it."""

    depth: Intrinsics
    color: Intrinsics
    rotation: np.ndarray  # 3 x 3 float32, row-major
    translation: np.ndarray  # 3 float32
    scale: np.float32  # metres per depth unit

    @cached_property
    def identity(self) -> bool:
        return bool((self.rotation == np.eye(3, dtype=np.float32)).all())

    @classmethod
    def of(cls, depth: Intrinsics, color: Intrinsics, extrinsics: Extrinsics, depth_scale_m: float) -> _Geometry:
        return cls(depth, color, np.asarray(extrinsics.rotation, np.float32).reshape(3, 3),
                   np.asarray(extrinsics.translation_m, np.float32), np.float32(depth_scale_m))


def _corner_pixels(geo: _Geometry, xs: np.ndarray, ys: np.ndarray, z: np.ndarray,
                   offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Colour pixel (rounded as ``rs.align`` rounds: ``int(p + 0.5)``) of each depth pixel's corner.

    float32 throughout, in librealsense's order of operations (rsutil: deproject, transform, project),
    so the rounding matches ``rs.align``'s.
    """
    f32 = np.float32
    d, c, r, t = geo.depth, geo.color, geo.rotation, geo.translation
    px = (xs.astype(f32) + f32(offset) - f32(d.ppx)) / f32(d.fx)
    py = (ys.astype(f32) + f32(offset) - f32(d.ppy)) / f32(d.fy)
    p0, p1, p2 = z * px, z * py, z
    if geo.identity:  # 1*p + 0*q + 0*r is p exactly in IEEE arithmetic: the same bits, a third of the work
        q0, q1, q2 = p0 + t[0], p1 + t[1], p2 + t[2]
    else:
        q0 = r[0, 0] * p0 + r[0, 1] * p1 + r[0, 2] * p2 + t[0]
        q1 = r[1, 0] * p0 + r[1, 1] * p1 + r[1, 2] * p2 + t[1]
        q2 = r[2, 0] * p0 + r[2, 1] * p1 + r[2, 2] * p2 + t[2]
    u = (q0 / q2) * f32(c.fx) + f32(c.ppx)
    v = (q1 / q2) * f32(c.fy) + f32(c.ppy)
    # C's static_cast<int> truncates toward zero; for the values that survive the bounds check below
    # (u + 0.5 >= 0) that is the floor
    return np.trunc(u + f32(0.5)).astype(np.int32), np.trunc(v + f32(0.5)).astype(np.int32)


def _axis_factors(count: int, origin: int, offset: float, pp: float, f: float) -> np.ndarray:
    """``(x + offset - pp) / f`` for every column (or row) ``x`` of a region, float32: the per-pixel
    deprojection of :func:`_corner_pixels`, which depends on the column (row) alone."""
    f32 = np.float32
    return ((np.arange(count) + origin).astype(f32) + f32(offset) - f32(pp)) / f32(f)


def _project_corners(geo: _Geometry, px: np.ndarray, py: np.ndarray, z: np.ndarray,
                     q2: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_corner_pixels` for deprojection factors already computed, with the same float32
    operations in the same order (so the same bits), in place where it can: an array of a 640x480
    region's pixels is larger than the allocator's cache, and a fresh one costs page faults."""
    f32 = np.float32
    c, r, t = geo.color, geo.rotation, geo.translation
    p0 = z * px
    p1 = z * py
    if q2 is None:  # rotated: the depth of this corner's point
        q2 = r[2, 0] * p0
        q2 += r[2, 1] * p1
        q2 += r[2, 2] * z
        q2 += t[2]
    if geo.identity:
        p0 += t[0]
        p1 += t[1]
        q0, q1 = p0, p1
    else:
        q0 = r[0, 0] * p0
        q0 += r[0, 1] * p1
        q0 += r[0, 2] * z
        q0 += t[0]
        q1 = r[1, 0] * p0
        q1 += r[1, 1] * p1
        q1 += r[1, 2] * z
        q1 += t[1]
    pixels = []
    for q, focal, principal in ((q0, c.fx, c.ppx), (q1, c.fy, c.ppy)):
        q /= q2
        q *= f32(focal)
        q += f32(principal)
        q += f32(0.5)
        pixels.append(q.astype(np.int32))  # the cast truncates toward zero, as np.trunc then astype did
    return pixels[0], pixels[1]


def align_depth_to_color(depth_raw: np.ndarray, origin_xy: tuple[int, int], geo: _Geometry,
                         window: tuple[int, int, int, int]) -> np.ndarray:
    """Depth aligned to the colour pixels of ``window`` (x0, y0, x1, y1; x1, y1 exclusive), from a
    region of the depth grid whose top-left pixel is ``origin_xy``; 0 where no depth lands.

    ``rs.align``'s rule for depth (librealsense src/proc/align.cpp): every depth pixel with data maps
    its top-left and bottom-right corners into colour, and each colour pixel of that rectangle takes
    the pixel's depth, the nearest winning. A rectangle that crosses the image border is clipped to
    it (pyrealsense2 2.59.1 keeps those pixels; the reference loop in the same file would drop the
    whole rectangle: tests/edge/capture/test_region_depth.py checks the windows at the frame's edges).

    How, cheaply: a depth pixel's rectangle is 1-4 colour pixels a side (the colour lens is ~1.5x
    narrower than the depth lens). Rectangles of one size are written at their top-left corner
    (the nearest of those sharing a corner kept) and spread over their size by a minimum filter
    (``cv2.erode`` with the rectangle as its kernel, anchored at the bottom-right), one image per
    size; the nearest of all sizes wins. That is the same minimum over the same rectangles as
    writing every rectangle's pixels (tests/edge/capture/test_region_alignment_reference.py
    compares both, bit for bit).
    """
    x0, y0, x1, y1 = window
    width, height = x1 - x0, y1 - y0
    top = np.iinfo(np.uint16).max
    valid = depth_raw != 0
    if not valid.any():
        return np.zeros((height, width), np.uint16)
    # every pixel of the region at once (a row's and a column's factors broadcast); the pixels without
    # depth give inf or NaN here and are dropped with the rest outside the window below
    z = geo.scale * depth_raw.astype(np.float32)
    d = geo.depth
    rows, cols = depth_raw.shape
    q2 = z + geo.translation[2] if geo.identity else None  # 1*z + 0 + 0 is z: shared by both corners
    corners = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for offset in (-0.5, 0.5):
            px = _axis_factors(cols, origin_xy[0], offset, d.ppx, d.fx)[np.newaxis, :]
            py = _axis_factors(rows, origin_xy[1], offset, d.ppy, d.fy)[:, np.newaxis]
            corners.append(_project_corners(geo, px, py, z, q2))
    (u0, v0), (u1, v1) = corners
    # only rectangles that reach the window matter here
    inside = valid & (u1 >= x0) & (u0 < x1) & (v1 >= y0) & (v0 < y1)
    if not inside.any():
        return np.zeros((height, width), np.uint16)
    raw, u0, v0, u1, v1 = depth_raw[inside], u0[inside], v0[inside], u1[inside], v1[inside]
    flipped = (u1 < u0) | (v1 < v0)
    if flipped.any():  # a mirrored rectangle writes one pixel: its top-left corner clipped to the window
        keep = ~flipped
        single = (np.maximum(v0[flipped] - y0, 0), np.maximum(u0[flipped] - x0, 0), raw[flipped])
        raw, u0, v0, u1, v1 = raw[keep], u0[keep], v0[keep], u1[keep], v1[keep]
    out = _draw_nearest(raw, u0, v0, u1, v1, window)
    if flipped.any():
        np.minimum.at(out, single[:2], single[2])
    out[out == top] = 0
    return out


def _draw_nearest(raw: np.ndarray, u0: np.ndarray, v0: np.ndarray, u1: np.ndarray, v1: np.ndarray,
                  window: tuple[int, int, int, int]) -> np.ndarray:
    """The window with each pixel the smallest ``raw`` of the rectangles [u0, u1] x [v0, v1] (colour
    pixels, inclusive, u1 >= u0, v1 >= v0, each reaching the window) that cover it; uint16 max where
    none does.

    The rectangles are drawn on a canvas that reaches :data:`CANVAS_MARGIN_PX` beyond the window
    (at most), clipped to it: a rectangle clipped to a canvas that holds the window covers the same
    window pixels, and with room for the widest rectangle none is clipped at all, so they fall into
    a handful of sizes (2x2 to 3x3 colour pixels between a D4xx's depth and colour lenses).
    """
    x0, y0, x1, y1 = window
    width, height = x1 - x0, y1 - y0
    top = np.iinfo(np.uint16).max
    if raw.size == 0:
        return np.full((height, width), top, np.uint16)
    mu = min(int((u1 - u0).max()), CANVAS_MARGIN_PX)
    mv = min(int((v1 - v0).max()), CANVAS_MARGIN_PX)
    cx0, cy0 = x0 - mu, y0 - mv  # the canvas's top-left pixel, in colour pixels
    canvas_w, canvas_h = width + 2 * mu, height + 2 * mv
    cu0, cv0 = np.maximum(u0, cx0) - cx0, np.maximum(v0, cy0) - cy0
    su = np.minimum(u1 - cx0, canvas_w - 1) - cu0
    sv = np.minimum(v1 - cy0, canvas_h - 1) - cv0
    columns = int(su.max()) + 1
    size = sv * columns + su
    order = np.argsort(size.astype(np.uint8) if int(size.max()) < 256 else size, kind="stable")
    corner = (cv0 * canvas_w + cu0).astype(np.intp)[order]
    raw = raw[order]
    out = np.full((canvas_h, canvas_w), top, np.uint16)
    layer = np.empty_like(out)
    flat = layer.reshape(-1)
    start = 0
    for kind, count in enumerate(np.bincount(size).tolist()):
        if not count:
            continue
        at, depth = corner[start:start + count], raw[start:start + count]
        start += count
        extent_v, extent_u = divmod(kind, columns)
        layer.fill(top)
        flat[at] = depth
        lost = flat[at] > depth  # rectangles sharing a corner: one write landed, the nearest must stay
        if lost.any():
            np.minimum.at(flat, at[lost], depth[lost])
        if extent_u or extent_v:
            spread = cv2.erode(layer, np.ones((extent_v + 1, extent_u + 1), np.uint8), anchor=(extent_u, extent_v),
                               borderType=cv2.BORDER_CONSTANT, borderValue=top)
            np.minimum(out, spread, out=out)
        else:
            np.minimum(out, layer, out=out)
    return out[mv:mv + height, mu:mu + width].copy()


def _nearest_raw(patch: np.ndarray) -> int:
    """The smallest non-zero value of a uint16 ``patch`` (0 when it has none), without a boolean copy:
    subtracting 1 wraps "no data" round to the largest value."""
    if patch.size == 0:
        return 0
    return (int((patch - np.uint16(1)).min()) + 1) & 0xFFFF


def _round_up(value: int, step: int) -> int:
    return step * -(-value // step)


@dataclass
class _Stream:
    """A software depth sensor of one region size and the filter blocks that have seen its frames."""

    sensor: Any
    profile: Any
    queue: Any
    blocks: list[Any]
    device: Any  # kept alive: the sensor belongs to it
    pushed: int = 0


@dataclass
class RegionStats:
    """What the region path did, for logs and tests: regions processed and times the region moved."""

    regions: int = 0
    moves: int = 0
    history_resets: int = 0  # temporal history dropped after skipped frames
    last_region: tuple[int, int, int, int] = (0, 0, 0, 0)  # depth grid x0, y0, x1, y1
    sizes: set[tuple[int, int]] = field(default_factory=set)


@dataclass(frozen=True)
class StreamGeometry:
    """What the region path needs to know about a stream (read from the device by the reader)."""

    depth: Intrinsics  # of the raw depth stream
    color: Intrinsics
    depth_to_color: Extrinsics | None
    depth_scale_m: float
    fps: int


class RegionDepth:
    """Filters and aligns depth for a colour window, one stream's worth of state (see the module doc).

    ``rs`` is pyrealsense2 (passed in by the reader that imported it); ``make_blocks()`` returns a
    fresh list of the chain's processing blocks in order (``rs_pipeline.build_filters``), an empty
    list for no filtering. Raises ``ValueError`` for a stream the region aligner cannot reproduce
    exactly (:func:`region_problem`); the reader then keeps the full-frame path.
    """

    def __init__(self, rs: ModuleType, geometry: StreamGeometry, make_blocks: Callable[[], list[Any]]) -> None:
        problem = region_problem(geometry)
        if problem:
            raise ValueError(problem)
        assert geometry.depth_to_color is not None  # region_problem checked it
        self.rs, self.info, self.make_blocks = rs, geometry, make_blocks
        self.geo = _Geometry.of(geometry.depth, geometry.color, geometry.depth_to_color, geometry.depth_scale_m)
        inverse = _invert(geometry.depth_to_color)
        self._to_depth = _Geometry.of(geometry.color, geometry.depth, inverse, geometry.depth_scale_m)
        self._streams: dict[tuple[int, int], _Stream] = {}
        self._anchor: tuple[int, int, int, int] | None = None
        self._filters_on = bool(make_blocks())
        self._last_frame_number: int | None = None
        self.stats = RegionStats()

    # -- which depth pixels ---------------------------------------------------------------------
    def _reach(self, depth_grid: np.ndarray, window: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """The depth pixels that can land in ``window`` (depth-grid x0, y0, x1, y1): the window's corners
        seen from the nearest depth in the rectangle to far away (a near object shifts further across
        the baseline), widened by the pixel a depth pixel's corner rectangle reaches either way."""
        x0, y0, x1, y1 = window
        cx = np.array([x0, x1, x0, x1], np.float32) - 0.5
        cy = np.array([y0, y0, y1, y1], np.float32) - 0.5
        far = _corner_pixels(self._to_depth, cx, cy, np.full(4, 1e4, np.float32), 0.0)  # the same every pass
        rect = self._bounds(far, far)
        for _ in range(2):  # the nearest depth sets the baseline shift, which can widen the rectangle
            nearest = _nearest_raw(depth_grid[rect[1]:rect[3], rect[0]:rect[2]])
            nearest_m = nearest * self.info.depth_scale_m if nearest else NEAREST_M
            near = _corner_pixels(self._to_depth, cx, cy, np.full(4, max(nearest_m, 1e-3), np.float32), 0.0)
            rect = self._bounds(near, far)
        return rect

    def _bounds(self, near: tuple[np.ndarray, np.ndarray],
                far: tuple[np.ndarray, np.ndarray]) -> tuple[int, int, int, int]:
        """Depth-grid bounds of both sets of corner pixels, widened by the pixel a depth pixel's corner
        rectangle reaches either way."""
        pad = 2
        d = self.info.depth
        u_min, u_max = min(int(near[0].min()), int(far[0].min())), max(int(near[0].max()), int(far[0].max()))
        v_min, v_max = min(int(near[1].min()), int(far[1].min())), max(int(near[1].max()), int(far[1].max()))
        return (max(0, u_min - pad), max(0, v_min - pad), min(d.width, u_max + pad + 1), min(d.height, v_max + pad + 1))

    def _anchored(self, need: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """The region to filter: the current anchor while ``need`` fits inside it (and the face has not
        shrunk to well inside it: a far face should not pay for a near one's region), else a new one."""
        a = self._anchor
        d = self.info.depth
        width = min(d.width, _round_up(need[2] - need[0] + REGION_STEP_PX // 2, REGION_STEP_PX))
        height = min(d.height, _round_up(need[3] - need[1] + REGION_STEP_PX // 2, REGION_STEP_PX))
        if (a is not None and a[0] <= need[0] and a[1] <= need[1] and need[2] <= a[2] and need[3] <= a[3]
                and a[2] - a[0] <= width + REGION_STEP_PX and a[3] - a[1] <= height + REGION_STEP_PX):
            return a  # it still holds the face, and is not much larger than it needs to be
        cx, cy = (need[0] + need[2]) // 2, (need[1] + need[3]) // 2
        x0 = min(max(0, cx - width // 2), d.width - width)
        y0 = min(max(0, cy - height // 2), d.height - height)
        region = (x0, y0, x0 + width, y0 + height)
        if a is not None:
            self.stats.moves += 1
            moved = self._streams.pop((a[2] - a[0], a[3] - a[1]), None)  # its history belongs to other pixels
            if moved is not None:
                _stop(moved)
        self._anchor = region
        return region

    # -- the filters ------------------------------------------------------------------------------
    def _stream(self, width: int, height: int) -> _Stream:
        key = (width, height)
        stream = self._streams.get(key)
        if stream is not None:
            return stream
        rs = self.rs
        device = rs.software_device()
        sensor = device.add_sensor("Stereo Module")
        d = self.info.depth
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid = rs.stream.depth, 0, 0
        vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = width, height, max(1, self.info.fps), 2, rs.format.z16
        # same focal length as the camera's depth stream: the disparity transform converts with it
        vs.intrinsics = from_intrinsics(rs, Intrinsics(width, height, d.fx, d.fy, d.ppx, d.ppy, d.model, d.coeffs))
        profile = sensor.add_video_stream(vs).as_video_stream_profile()
        sensor.add_read_only_option(rs.option.depth_units, float(self.info.depth_scale_m))
        queue = rs.frame_queue(2)
        sensor.open(profile)
        sensor.start(queue)
        stream = _Stream(sensor, profile, queue, self.make_blocks(), device)
        self._streams[key] = stream
        self.stats.sizes.add(key)
        return stream

    def _filter(self, patch: np.ndarray, t_ms: float, fresh: bool) -> np.ndarray:
        if not self._filters_on:
            return patch
        rs = self.rs
        stream = self._stream(patch.shape[1], patch.shape[0])
        if fresh:  # frames were skipped: the temporal history would be another moment's depth
            stream.blocks = self.make_blocks()
            self.stats.history_resets += 1
        stream.pushed += 1
        frame = rs.software_video_frame()
        frame.pixels = np.ascontiguousarray(patch)
        frame.bpp, frame.stride = 2, patch.shape[1] * 2
        frame.timestamp = float(t_ms)
        frame.domain = rs.timestamp_domain.hardware_clock
        frame.frame_number = stream.pushed
        frame.profile = stream.profile
        frame.depth_units = float(self.info.depth_scale_m)
        stream.sensor.on_video_frame(frame)
        processed = stream.queue.wait_for_frame(5000)
        for block in stream.blocks:
            processed = block.process(processed)
        return np.asanyarray(processed.get_data()).copy()

    # -- the one entry point -------------------------------------------------------------------------
    def aligned(self, depth_grid: np.ndarray, window: tuple[int, int, int, int], t_ms: float,
                frame_number: int) -> np.ndarray:
        """Filtered depth aligned to the colour ``window`` (x0, y0, x1, y1 in colour pixels, x1/y1
        exclusive, clipped to the frame by the caller), ``window``-sized uint16, 0 = no data.

        ``frame_number`` tells consecutive frames from a gap (frames without a face are never asked
        for, the live queue may drop some): after more than :data:`MAX_GAP_FRAMES` skipped frames the
        temporal filter starts again instead of blending a stale moment's depth (another presentation
        may stand there now) into this one.
        """
        reach = self._reach(depth_grid, window)
        d, m = self.info.depth, FILTER_MARGIN_PX
        need = (max(0, reach[0] - m), max(0, reach[1] - m), min(d.width, reach[2] + m), min(d.height, reach[3] + m))
        region = self._anchored(need)
        x0, y0, x1, y1 = region
        last = self._last_frame_number
        fresh = last is not None and not 0 < frame_number - last <= MAX_GAP_FRAMES + 1
        self._last_frame_number = frame_number
        filtered = self._filter(depth_grid[y0:y1, x0:x1], t_ms, fresh)
        self.stats.regions += 1
        self.stats.last_region = region
        # only the reach is aligned: the filter's context cannot land in the window
        rx0, ry0, rx1, ry1 = reach
        return align_depth_to_color(filtered[ry0 - y0:ry1 - y0, rx0 - x0:rx1 - x0], (rx0, ry0), self.geo, window)

    def close(self) -> None:
        for stream in self._streams.values():
            _stop(stream)
        self._streams.clear()


def _stop(stream: _Stream) -> None:
    try:
        stream.sensor.stop()
        stream.sensor.close()
    except RuntimeError as exc:  # already stopped by librealsense's own teardown
        log.debug("region stream: %s", exc)


def _invert(extrinsics: Extrinsics) -> Extrinsics:
    r = np.asarray(extrinsics.rotation, np.float64).reshape(3, 3)
    t = np.asarray(extrinsics.translation_m, np.float64)
    inverse = r.T
    return Extrinsics(tuple(float(v) for v in inverse.reshape(-1)),
                      tuple(float(v) for v in -inverse @ t))  # type: ignore[arg-type]


def region_problem(geometry: StreamGeometry, decimation: int = 1) -> str:
    """Why this stream cannot take the face-first depth path ('' when it can)."""
    if geometry.depth_to_color is None:
        return "the device registers no depth-to-colour extrinsics"
    if decimation > 1:
        return f"the chain decimates depth (x{decimation}); the region path keeps full-resolution depth"
    for name, intrinsics in (("depth", geometry.depth), ("colour", geometry.color)):
        if not is_pinhole(intrinsics):
            return (f"the {name} stream reports lens distortion ({intrinsics.model}, coefficients "
                    f"{', '.join(f'{c:g}' for c in intrinsics.coeffs)}), which the region aligner does not model")
    return ""


def window_bounds(window_xyxy: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """Integer colour-pixel bounds (x1, y1 exclusive) covering a float window, clipped to the frame."""
    x0, y0, x1, y1 = window_xyxy
    return (max(0, int(math.floor(x0))), max(0, int(math.floor(y0))),
            min(width, int(math.ceil(x1))), min(height, int(math.ceil(y1))))


class PendingDepthFrame(RGBDFrame):
    """A colour frame whose depth is aligned later, for the face window only (face-first path).

    ``depth_raw`` is a read-only all-zero placeholder ("no data" everywhere), so anything that reads
    it before :meth:`with_window_depth` sees no depth, never a wrong one. ``depth_grid`` is the raw
    depth in the depth camera's own grid; ``region`` the stream's :class:`RegionDepth`.
    """

    depth_grid: np.ndarray
    region: RegionDepth

    def with_window_depth(self, window: tuple[int, int, int, int]) -> RGBDFrame:
        """A plain :class:`RGBDFrame` whose depth is filtered and aligned inside ``window`` (clipped,
        x1/y1 exclusive) and 0 elsewhere."""
        x0, y0, x1, y1 = window
        depth = np.zeros(self.color_bgr.shape[:2], np.uint16)
        if x1 > x0 and y1 > y0:
            depth[y0:y1, x0:x1] = self.region.aligned(self.depth_grid, window, self.t_ms, self.frame_number)
        return RGBDFrame(self.color_bgr, depth, self.depth_scale_m, self.intrinsics, self.t_ms, self.frame_number,
                         self.source_id, self.meta, self.truth)


def pending_frame(frame_fields: dict[str, Any], depth_grid: np.ndarray, region: RegionDepth) -> PendingDepthFrame:
    """Build a :class:`PendingDepthFrame` (a frozen dataclass subclass: the extra fields are set once here)."""
    height, width = frame_fields["color_bgr"].shape[:2]
    placeholder = np.broadcast_to(np.uint16(0), (height, width))
    frame = PendingDepthFrame(depth_raw=placeholder, **frame_fields)
    object.__setattr__(frame, "depth_grid", depth_grid)
    object.__setattr__(frame, "region", region)
    return frame
