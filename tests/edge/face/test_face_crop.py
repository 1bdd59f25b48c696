"""The square crop: same window on colour and depth, padding, interpolation, roll alignment."""

from __future__ import annotations

import numpy as np
import pytest

from edge.face.crop import crop_color, crop_depth, crop_window, eye_roll_deg
from edge.samples import FaceBox


def face_at(x0: float, y0: float, x1: float, y1: float, landmarks=None) -> FaceBox:
    if landmarks is None:
        w, h = x1 - x0, y1 - y0
        landmarks = np.array([[x0 + 0.3 * w, y0 + 0.4 * h], [x0 + 0.7 * w, y0 + 0.4 * h], [x0 + 0.5 * w, y0 + 0.6 * h],
                              [x0 + 0.3 * w, y0 + 0.8 * h], [x0 + 0.7 * w, y0 + 0.8 * h]], np.float32)
    return FaceBox(x0, y0, x1, y1, 1.0, np.asarray(landmarks, np.float32), "test")


def test_crop_outside_the_frame_pads_colour_black_and_depth_invalid():
    color = np.full((100, 100, 3), 200, np.uint8)
    depth = np.full((100, 100), 700, np.uint16)
    window = crop_window(face_at(-20, -20, 40, 40), 1.0, 60)  # the upper-left third lies outside
    c, d = crop_color(color, window), crop_depth(depth, window)
    assert c.shape == (60, 60, 3) and d.shape == (60, 60) and d.dtype == np.uint16
    assert (c[:20, :20] == 0).all() and (d[:20, :20] == 0).all()
    assert (c[30:, 30:] == 200).all() and (d[30:, 30:] == 700).all()


def test_depth_is_never_blended_across_holes():
    rng = np.random.default_rng(0)
    depth = np.where(rng.random((300, 300)) < 0.5, 0, 800 + rng.integers(0, 3, (300, 300))).astype(np.uint16)
    window = crop_window(face_at(50, 50, 250, 250), 1.2, 64)  # a 3.75x downscale
    out = crop_depth(depth, window)
    assert set(np.unique(out)) <= set(np.unique(depth))
    # Colour, by contrast, is area-averaged: a fine checkerboard becomes its mean grey.
    checker = np.indices((300, 300)).sum(axis=0) % 2 * 255
    color = np.repeat(checker[:, :, None], 3, axis=2).astype(np.uint8)
    grey = crop_color(color, crop_window(face_at(50, 50, 250, 250), 1.0, 50))  # exactly 4x
    assert np.abs(grey.astype(int) - 128).max() <= 1


def test_same_window_on_colour_and_depth():
    yy, xx = np.mgrid[0:240, 0:320]
    color = np.zeros((240, 320, 3), np.uint8)
    color[..., 0] = (xx // 2).astype(np.uint8)
    depth = (xx * 3 + 1000).astype(np.uint16)
    window = crop_window(face_at(100, 60, 180, 140), 1.5, 120)  # 120 px window: scale 1
    c, d = crop_color(color, window), crop_depth(depth, window)
    np.testing.assert_array_equal((d.astype(int) - 1000) // 3 // 2, c[..., 0])


def test_roll_alignment_levels_the_eyes_on_both_streams():
    color = np.zeros((400, 400, 3), np.uint8)
    depth = np.zeros((400, 400), np.uint16)
    angle = np.radians(25)
    centre = np.array([200.0, 200.0])
    offsets = np.array([[-40, -30], [40, -30], [0, 10], [-30, 50], [30, 50]], np.float64)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = (offsets @ rot.T + centre).astype(np.float32)
    for x, y in landmarks[:2]:
        color[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4] = 255
        depth[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4] = 500
    face = face_at(120, 120, 280, 280, landmarks)
    assert eye_roll_deg(landmarks) == pytest.approx(25, abs=0.01)
    window = crop_window(face, 1.3, 208, align_roll=True)
    mapped = window.map_points(landmarks)
    assert mapped[0, 1] == pytest.approx(mapped[1, 1], abs=1e-3) and mapped[0, 0] < mapped[1, 0]
    for image in (crop_color(color, window)[..., 0], crop_depth(depth, window)):
        ys, xs = np.nonzero(image)
        left, right = ys[xs < 104].mean(), ys[xs >= 104].mean()
        assert abs(left - right) < 1.5  # the two eye dots now lie on one row
        assert abs(left - mapped[0, 1]) < 1.5


def test_bad_window_arguments_name_the_field():
    with pytest.raises(ValueError, match="crop_scale"):
        crop_window(face_at(0, 0, 10, 10), 0.0, 64)
    with pytest.raises(ValueError, match="positive width and height"):
        crop_window(face_at(10, 10, 10, 20), 1.5, 64)


@pytest.mark.parametrize("side", [64, 100])  # the crop size itself (no resize) and a downscale
def test_a_crop_inside_the_frame_is_exact_and_never_a_view_of_it(side):
    """Inside the frame the window is cut without a padded copy; the result still owns its memory."""
    rng = np.random.default_rng(3)
    color = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    depth = rng.integers(0, 4000, (120, 160), dtype=np.uint16)
    face = face_at(40, 20, 40 + side / 1.5, 20 + side / 1.5)
    window = crop_window(face, 1.5, 64)
    got_color, got_depth = crop_color(color, window), crop_depth(depth, window)
    x0, y0 = int(-window.native_from_frame[0, 2]), int(-window.native_from_frame[1, 2])
    assert window.side_px == side and x0 >= 0 and y0 >= 0
    if side == 64:
        assert np.array_equal(got_color, color[y0:y0 + 64, x0:x0 + 64])
        assert np.array_equal(got_depth, depth[y0:y0 + 64, x0:x0 + 64])
    assert not np.shares_memory(got_color, color) and not np.shares_memory(got_depth, depth)
    got_color[:] = 0
    got_depth[:] = 0
    assert color.any() and depth.any()
