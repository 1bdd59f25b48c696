"""The region aligner's fast path against the plain rule it implements, on many depth patches.

``align_depth_to_color`` draws rectangles of one size at once and spreads them with a minimum filter
(edge/capture/region_depth.py); the reference below writes every rectangle's pixels one offset at a
time, the nearest winning, which is how the aligner worked when tests/edge/capture/test_region_depth.py
showed it equal to ``rs.align``. Both must give the same array, bit for bit, for straight and rotated
extrinsics, windows cut by the frame's edges, holes, repeated depths and mirrored rectangles. No
pyrealsense2 needed: this is numpy and OpenCV only.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.capture.region_depth import (
    RegionDepth,
    StreamGeometry,
    _corner_pixels,
    _draw_nearest,
    _Geometry,
    _nearest_raw,
    align_depth_to_color,
)
from edge.capture.synthetic.rig import SensorRig
from edge.frames import Extrinsics


def reference_align(depth_raw: np.ndarray, origin_xy: tuple[int, int], geo: _Geometry,
                    window: tuple[int, int, int, int]) -> np.ndarray:
    """Every depth pixel's rectangle written pixel offset by pixel offset, nearest last (the aligner as
    it was when it was first compared with rs.align)."""
    x0, y0, x1, y1 = window
    out = np.full((y1 - y0, x1 - x0), np.iinfo(np.uint16).max, np.uint16)
    ys, xs = np.nonzero(depth_raw)
    if ys.size == 0:
        return np.zeros_like(out)
    raw = depth_raw[ys, xs]
    z = geo.scale * raw.astype(np.float32)
    xs, ys = xs + origin_xy[0], ys + origin_xy[1]
    with np.errstate(invalid="ignore"):
        u0, v0 = _corner_pixels(geo, xs, ys, z, -0.5)
        u1, v1 = _corner_pixels(geo, xs, ys, z, 0.5)
    inside = (u1 >= x0) & (u0 < x1) & (v1 >= y0) & (v0 < y1)
    if not inside.any():
        return np.zeros_like(out)
    order = np.flatnonzero(inside)[np.argsort(raw[inside], kind="stable")[::-1]]
    width, height = x1 - x0, y1 - y0
    cu0, cv0 = np.maximum(u0[order] - x0, 0), np.maximum(v0[order] - y0, 0)
    su, sv = np.minimum(u1[order] - x0, width - 1) - cu0, np.minimum(v1[order] - y0, height - 1) - cv0
    base, raw = (cv0 * width + cu0).astype(np.intp), raw[order]
    flat = out.reshape(-1)
    flat[base] = raw
    layer = np.empty_like(flat)
    top = np.iinfo(np.uint16).max
    for dv in range(max(int(sv.max()), 0) + 1):
        for du in range(max(int(su.max()), 0) + 1):
            if du == 0 and dv == 0:
                continue
            keep = (su >= du) & (sv >= dv)
            layer.fill(top)
            layer[base[keep] + (dv * width + du)] = raw[keep]
            np.minimum(flat, layer, out=flat)
    out[out == top] = 0
    return out


def rotation_z(degrees: float) -> tuple[float, ...]:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)


RIG = SensorRig.d435()
EXTRINSICS = {
    "rig": RIG.depth_to_color,  # the rendered worlds' rig: identity rotation, 15 mm baseline
    "rotated": Extrinsics(rotation_z(1.5), (0.015, 0.002, -0.001)),  # a real D4xx is a little off square
    "mirrored": Extrinsics(rotation_z(180.0), (0.015, 0.0, 0.0)),  # rectangles come out mirrored
}


def geometry(name: str) -> _Geometry:
    return _Geometry.of(RIG.depth, RIG.color, EXTRINSICS[name], RIG.depth_scale_m)


def depth_patch(rng: np.random.Generator, shape: tuple[int, int], repeated: bool) -> np.ndarray:
    """A head-like bump in front of a wall, with sensor noise, holes, and a near occluder's edge."""
    rows, cols = shape
    yy, xx = np.mgrid[0:rows, 0:cols]
    bump = 80.0 * np.exp(-(((xx - cols / 2) / (cols / 4)) ** 2 + ((yy - rows / 2) / (rows / 3)) ** 2))
    depth = rng.uniform(450, 900) - bump + rng.normal(0, 2.0, shape)
    depth[:, : cols // 5] = rng.uniform(250, 400)  # an occluder nearer than the face
    if repeated:
        depth = np.round(depth / 25.0) * 25.0  # many rectangles share a depth and a corner
    holes = rng.random(shape) < 0.15
    depth[holes] = 0
    return np.clip(depth, 0, 65534).astype(np.uint16)


CASES = [(name, seed) for name in EXTRINSICS for seed in range(6)]


@pytest.mark.parametrize(("extrinsics", "seed"), CASES)
def test_fast_alignment_equals_the_rectangle_by_rectangle_rule(extrinsics, seed):
    rng = np.random.default_rng(seed)
    geo = geometry(extrinsics)
    rows, cols = int(rng.integers(40, 160)), int(rng.integers(40, 160))
    origin = (int(rng.integers(0, RIG.depth.width - cols)), int(rng.integers(0, RIG.depth.height - rows)))
    depth = depth_patch(rng, (rows, cols), repeated=seed % 2 == 1)
    ys, xs = np.nonzero(depth)  # where the patch lands in colour: the windows are placed around it
    u, v = _corner_pixels(geo, xs + origin[0], ys + origin[1], geo.scale * depth[ys, xs].astype(np.float32), 0.0)
    cx, cy = float(np.median(u)), float(np.median(v))
    cols, rows = int(u.max() - u.min()), int(v.max() - v.min())
    compared = 0
    for w, h, dx, dy in ((cols, rows, 0, 0), (cols // 2, rows // 2, 5, -7), (cols * 2, rows * 2, 0, 0),
                         (cols, rows, -cols // 2, rows // 3)):
        x0 = int(np.clip(cx - w / 2 + dx, 0, RIG.color.width - 1))
        y0 = int(np.clip(cy - h / 2 + dy, 0, RIG.color.height - 1))
        window = (x0, y0, min(RIG.color.width, x0 + w), min(RIG.color.height, y0 + h))
        expected = reference_align(depth, origin, geo, window)
        got = align_depth_to_color(depth, origin, geo, window)
        assert got.dtype == np.uint16 and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
        compared += int(np.count_nonzero(expected))
    assert compared > 500  # the windows held depth: a real comparison


def test_windows_cut_by_the_frame_edges_and_empty_patches():
    rng = np.random.default_rng(11)
    geo = geometry("rig")
    depth = depth_patch(rng, (120, 160), repeated=True)
    for origin, window in (((0, 0), (0, 0, 90, 70)), ((480, 360), (500, 380, 640, 480)),
                           ((0, 360), (0, 400, 200, 480)), ((300, 200), (0, 0, 10, 10))):
        np.testing.assert_array_equal(align_depth_to_color(depth, origin, geo, window),
                                      reference_align(depth, origin, geo, window))
    empty = np.zeros((50, 60), np.uint16)
    assert not align_depth_to_color(empty, (100, 100), geo, (100, 100, 180, 160)).any()


def test_nearest_raw_is_the_smallest_nonzero_value():
    rng = np.random.default_rng(3)
    for _ in range(300):
        patch = rng.integers(0, 4, (int(rng.integers(0, 7)), int(rng.integers(0, 7)))).astype(np.uint16)
        patch *= np.uint16(rng.choice([1, 700, 30000]))
        if patch.size and rng.random() < 0.2:
            patch.flat[0] = 65535
        valid = patch[patch > 0]
        assert _nearest_raw(patch) == (int(valid.min()) if valid.size else 0)
    assert _nearest_raw(np.zeros((4, 4), np.uint16)) == 0
    assert _nearest_raw(np.full((2, 2), 65535, np.uint16)) == 65535


def reference_reach(region: RegionDepth, depth_grid: np.ndarray, window: tuple[int, int, int, int]):
    """The reach as first written: a rectangle per nearest depth, corners recomputed every pass."""
    def depth_rect(nearest_m: float):
        x0, y0, x1, y1 = window
        cx = np.array([x0, x1, x0, x1], np.float32) - 0.5
        cy = np.array([y0, y0, y1, y1], np.float32) - 0.5
        us, vs = [], []
        for z_m in (nearest_m, 1e4):
            u, v = _corner_pixels(region._to_depth, cx, cy, np.full(4, z_m, np.float32), 0.0)
            us.append(u)
            vs.append(v)
        u, v = np.concatenate(us), np.concatenate(vs)
        d = region.info.depth
        return (max(0, int(u.min()) - 2), max(0, int(v.min()) - 2),
                min(d.width, int(u.max()) + 3), min(d.height, int(v.max()) + 3))

    rect = depth_rect(1e4)
    for _ in range(2):
        patch = depth_grid[rect[1]:rect[3], rect[0]:rect[2]]
        valid = patch[patch > 0]
        nearest = float(valid.min()) * region.info.depth_scale_m if valid.size else 0.2
        rect = depth_rect(max(nearest, 1e-3))
    return rect


@pytest.mark.parametrize("extrinsics", ["rig", "rotated"])
def test_reach_equals_the_first_written_rule(extrinsics):
    rng = np.random.default_rng(5)
    info = StreamGeometry(RIG.depth, RIG.color, EXTRINSICS[extrinsics], RIG.depth_scale_m, 30)
    region = RegionDepth(None, info, lambda: [])  # no filters: pyrealsense2 is never called
    grid = depth_patch(rng, (RIG.depth.height, RIG.depth.width), repeated=False)
    grid[:40] = 0
    for window in ((200, 120, 440, 360), (0, 0, 120, 90), (560, 400, 640, 480), (300, 0, 330, 30)):
        assert region._reach(grid, window) == reference_reach(region, grid, window)
    assert region._reach(np.zeros_like(grid), (200, 120, 440, 360)) == \
        reference_reach(region, np.zeros_like(grid), (200, 120, 440, 360))


def test_drawing_rectangles_of_any_size_keeps_the_nearest():
    """Brute force against the drawing step, with rectangles far wider than a D4xx makes (a corrupt
    depth value) and many sharing a corner: the canvas clips those, the window pixels stay right."""
    rng = np.random.default_rng(8)
    window = (50, 40, 130, 100)
    count = 400
    u0 = rng.integers(20, 140, count).astype(np.int32)
    v0 = rng.integers(10, 110, count).astype(np.int32)
    u0[:50], v0[:50] = 60, 50  # one shared corner
    u1 = u0 + rng.choice([0, 1, 2, 3, 40, 5000], count, p=[0.1, 0.3, 0.3, 0.2, 0.05, 0.05]).astype(np.int32)
    v1 = v0 + rng.choice([0, 1, 2, 60, 3000], count, p=[0.1, 0.4, 0.4, 0.05, 0.05]).astype(np.int32)
    raw = rng.integers(300, 900, count).astype(np.uint16)
    x0, y0, x1, y1 = window
    reach = (u1 >= x0) & (u0 < x1) & (v1 >= y0) & (v0 < y1)  # the aligner draws only these
    u0, v0, u1, v1, raw = u0[reach], v0[reach], u1[reach], v1[reach], raw[reach]
    assert reach.sum() > 100 and (u1 - u0).max() > 1000
    expected = np.full((y1 - y0, x1 - x0), np.iinfo(np.uint16).max, np.uint16)
    for a, b, c, d, r in zip(u0, v0, u1, v1, raw):
        rows = slice(max(b, y0) - y0, min(d, y1 - 1) - y0 + 1)
        cols = slice(max(a, x0) - x0, min(c, x1 - 1) - x0 + 1)
        if rows.stop > rows.start and cols.stop > cols.start:
            expected[rows, cols] = np.minimum(expected[rows, cols], r)
    np.testing.assert_array_equal(_draw_nearest(raw, u0, v0, u1, v1, window), expected)
