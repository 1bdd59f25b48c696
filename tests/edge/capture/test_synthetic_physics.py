"""The synthetic world must keep its physics: these fail if relief, flatness or noise go wrong."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from edge.capture.synthetic import SCENARIOS, SyntheticWorld
from edge.capture.synthetic.sensor import (
    CORRELATION_PX_RANGE,
    SUBPIXEL_RANGE,
    DepthUnit,
    correlated_field,
    depth_sigma_m,
    quantise_disparity,
)
from edge.capture.synthetic.rig import SensorRig
from edge.errors import SourceError


def face_depth_mm(frame) -> tuple[np.ndarray, np.ndarray]:
    """Valid depth (mm) inside the rendered inner-face mask, with pixel coordinates."""
    mask = frame.truth.face_mask & (frame.depth_raw > 0)
    ys, xs = np.nonzero(mask)
    return frame.depth_mm[mask], np.stack([xs, ys], axis=1).astype(np.float64)


def relief_mm(frame) -> float:
    """Depth range inside the face after a 5x5 median (removes sensor noise, keeps the shape)."""
    smooth = cv2.medianBlur(frame.depth_raw, 5).astype(np.float32) * frame.depth_scale_m * 1000.0
    mask = frame.truth.face_mask & (frame.depth_raw > 0) & (smooth > 0)
    z = smooth[mask]
    return float(np.percentile(z, 98) - np.percentile(z, 2))


def plane_fit(z: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Least-squares plane z = a x + b y + c through depths ``z`` at pixels ``xy``: (a, b, c)."""
    coef, *_ = np.linalg.lstsq(np.c_[xy, np.ones(len(z))], z, rcond=None)
    return coef


def plane_fit_rms_mm(frame) -> float:
    z, xy = face_depth_mm(frame)
    coef = plane_fit(z, xy)
    return float(np.sqrt(np.mean((np.c_[xy, np.ones(len(z))] @ coef - z) ** 2)))


@pytest.mark.parametrize("seed", range(6))
def test_live_face_has_20_to_55_mm_of_relief(seed):
    # the photo world's live people, on real head meshes, measure 40-52 mm this way (8 seeds, 5 Dec 2026)
    frame = SyntheticWorld("live", seed).frame(seed * 5)
    assert frame.truth.face_mask.sum() > 2000
    assert 20.0 <= relief_mm(frame) <= 55.0


# lateral distances from the face's midline, in half eye spacings (the pupil is at 1)
SIDE_K = (2.0, 2.4)


def _behind_nose_mm(z_at, landmarks: np.ndarray) -> np.ndarray:
    """Depth behind the nose tip (mm) on the eye line at :data:`SIDE_K`, both sides averaged."""
    eye_y = (landmarks[0, 1] + landmarks[1, 1]) / 2
    half = abs(landmarks[1, 0] - landmarks[0, 0]) / 2
    cx = (landmarks[0, 0] + landmarks[1, 0]) / 2
    pts = np.array([[cx + sign * k * half, eye_y] for k in SIDE_K for sign in (1, -1)])
    nose = z_at(landmarks[2:3, :2])[0]
    return (z_at(pts).reshape(len(SIDE_K), 2).mean(axis=1) - nose) * 1000.0


def test_procedural_heads_curve_back_at_the_sides_as_real_head_meshes_do(shared_data):
    """The procedural head's sides against the photo world's four real meshes (MediaPipe's canonical
    face, three ICT light-stage scans): a head too flat there (as the world was before 5 Dec 2026) is
    a live face no real person has, and a depth-only network learns two kinds of live face."""
    from edge.capture.photo.lift import HEADS, _nearest, head_shape
    from edge.capture.synthetic import head as procedural

    real = []
    for name in HEADS:
        mesh = head_shape(str(shared_data / "meshes"), name).face
        v = mesh.vertices_m

        def z_at(p, v=v):  # inverse-distance mean of the three nearest vertices
            d, idx = _nearest(p, v[:, :2], 3)
            w = 1.0 / (d + 1e-5)
            return (v[idx, 2] * w).sum(axis=1) / w.sum(axis=1)

        real.append(_behind_nose_mm(z_at, mesh.landmarks_m()))
    real = np.array(real)
    rng = np.random.default_rng(0)
    x, y = procedural.texel_grid()
    ours = []
    for _ in range(12):
        shape = procedural.HeadShape.random(rng)
        h = procedural.height_grid(shape)
        landmarks = procedural.landmarks_3d(shape)
        landmarks[2, :2] = x.flat[h.argmin()], y.flat[h.argmin()]  # the nose tip: the nearest point

        def z_at(p, h=h):
            return np.array([h[row, col] for col, row in (procedural._to_px(px, py) for px, py in p)])

        ours.append(_behind_nose_mm(z_at, landmarks))
    mean = np.mean(ours, axis=0)
    # the procedural mean lies within the real meshes' range, give or take 5 mm
    assert np.all(mean >= real.min(axis=0) - 5.0) and np.all(mean <= real.max(axis=0) + 5.0), (mean, real)


@pytest.mark.parametrize("scenario", ["print", "replay"])
@pytest.mark.parametrize("seed", range(4))
def test_print_and_replay_are_flat_within_sensor_noise_at_half_a_metre(scenario, seed):
    frame = SyntheticWorld(scenario, seed, distance_m=0.5).frame(0)
    assert plane_fit_rms_mm(frame) < 4.0
    # and a live face at the same distance is clearly not flat
    live = SyntheticWorld("live", seed, distance_m=0.5).frame(0)
    assert plane_fit_rms_mm(live) > 5.0


@pytest.mark.parametrize("seed", range(4))
def test_masks_have_relief_but_not_the_colour_of_skin(seed):
    mask = SyntheticWorld("mask", seed, distance_m=0.5).frame(0)
    live = SyntheticWorld("live", seed, distance_m=0.5).frame(0)
    assert relief_mm(mask) > 12.0

    def saturation(frame):
        hsv = cv2.cvtColor(frame.color_bgr, cv2.COLOR_BGR2HSV)
        return float(np.median(hsv[..., 1][frame.truth.face_mask]))

    assert saturation(mask) < 0.8 * saturation(live)


def test_depth_noise_grows_with_distance_squared():
    residual = {}
    for d in (0.4, 0.9):
        rms = [plane_fit_rms_mm(SyntheticWorld("print", s, distance_m=d).frame(0)) for s in range(3)]
        residual[d] = float(np.median(rms))
    ratio = residual[0.9] / residual[0.4]
    expected = float(depth_sigma_m(0.9, SensorRig.d435()) / depth_sigma_m(0.4, SensorRig.d435()))
    assert ratio > 2.5, residual
    assert ratio < 1.5 * expected, residual


def test_frames_are_deterministic_per_seed_and_differ_across_seeds():
    a = SyntheticWorld("mixed", 7).frame(12)
    b = SyntheticWorld("mixed", 7).frame(12)
    c = SyntheticWorld("mixed", 8).frame(12)
    assert np.array_equal(a.color_bgr, b.color_bgr) and np.array_equal(a.depth_raw, b.depth_raw)
    assert not np.array_equal(a.color_bgr, c.color_bgr)


def test_every_scenario_renders_with_the_right_label():
    for scenario in SCENARIOS:
        truth = SyntheticWorld(scenario, 1).frame(0).truth
        if scenario == "empty":
            assert truth.label == "none" and truth.faces == ()
        elif scenario == "live":
            assert truth.label == "live" and truth.pai == ""
        elif scenario != "mixed":
            assert truth.label == "spoof" and truth.pai == scenario


def test_mixed_scenario_changes_scene_over_time():
    world = SyntheticWorld("mixed", 3)
    scenarios = {world.clip_for(i * 45).scenario for i in range(12)}
    assert len(scenarios) >= 3


def test_depth_holes_appear_left_of_a_near_face():
    """Stereo occlusion: the band of missing depth sits on the left of the head, not the right."""
    frame = SyntheticWorld("live", 2, distance_m=0.45).frame(0)
    x0, y0, x1, y1 = (int(v) for v in frame.truth.faces[0].box_xyxy)
    row = slice(y0 + (y1 - y0) // 3, y0 + 2 * (y1 - y0) // 3)
    left = (frame.depth_raw[row, max(x0 - 40, 0):x0] == 0).mean()
    right = (frame.depth_raw[row, x1:x1 + 40] == 0).mean()
    assert left > 0.2 and left > 3 * right


def test_unknown_scenario_lists_the_valid_ones():
    with pytest.raises(SourceError, match="live, print, replay, mask, cutout, empty, mixed"):
        SyntheticWorld("selfie", 0)


def face_mask_extent(frame) -> tuple[float, float]:
    ys, xs = np.nonzero(frame.truth.face_mask)
    return float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)


@pytest.mark.parametrize("size", [(848, 480), (1280, 720)])
def test_wide_modes_show_more_of_the_scene_not_a_stretched_face(size):
    # A D435's 16:9 modes keep the vertical field of view of 640x480 with square pixels: the same
    # head keeps its shape (and at 848x480 its size in pixels) instead of being squeezed sideways.
    rig = SensorRig.d435(*size)
    assert rig.color.fx == rig.color.fy and rig.depth.fx == rig.depth.fy
    base = SyntheticWorld("live", 3).render(0)
    wide = SyntheticWorld("live", 3, rig=rig).render(0)
    (w0, h0), (w1, h1) = face_mask_extent(base), face_mask_extent(wide)
    scale = size[1] / 480
    assert w1 / h1 == pytest.approx(w0 / h0, rel=0.05)
    assert h1 == pytest.approx(h0 * scale, rel=0.05)


@pytest.mark.parametrize("sigma", [0.0, 0.85, 1.2])
def test_the_depth_error_field_has_unit_variance_and_the_neighbour_correlation_asked(sigma):
    field = correlated_field(np.random.default_rng(5), (240, 320), sigma)
    neighbour = float(np.corrcoef(field[:, :-1].ravel(), field[:, 1:].ravel())[0, 1])
    assert float(field.std()) == pytest.approx(1.0, abs=0.03)
    expected = math.exp(-1.0 / (4.0 * sigma * sigma)) if sigma else 0.0  # blurred white noise, continuous limit
    assert neighbour == pytest.approx(expected, abs=0.04)


def test_depth_comes_in_disparity_levels():
    rig = SensorRig.d435()
    z = np.linspace(0.5, 2.5, 5001, dtype=np.float32)
    q = quantise_disparity(z, rig)
    assert np.array_equal(quantise_disparity(q, rig), q)  # levels are fixed points
    assert quantise_disparity(np.zeros(3, np.float32), rig).tolist() == [0.0, 0.0, 0.0]
    for metres, step_mm in ((1.0, 1.6), (2.2, 7.8)):  # the shared recording: about 2 mm and 8 mm apart
        levels = np.unique(q[np.abs(z - metres) < 0.05])
        assert float(np.median(np.diff(levels))) * 1000.0 == pytest.approx(step_mm, rel=0.1)


def test_each_clip_draws_its_own_depth_unit_within_the_recorded_ranges():
    units = [DepthUnit.draw(seed) for seed in range(40)]
    assert DepthUnit.draw(7) == units[7]
    subs = [u.subpixel for u in units]
    corr = [u.correlation_px for u in units]
    assert SUBPIXEL_RANGE[0] <= min(subs) < max(subs) <= SUBPIXEL_RANGE[1]
    assert CORRELATION_PX_RANGE[0] <= min(corr) < max(corr) <= CORRELATION_PX_RANGE[1]
    assert len(set(subs)) == 40


def test_rendered_depth_error_is_shared_by_neighbours_like_a_stereo_camera():
    # A flat print at 0.9 m: what is left after a plane fit is sensor error, and on a real D435 the
    # next pixel shares half or more of it (sensor.py); an independent-per-pixel error reads ~0.
    frame = SyntheticWorld("print", 3, distance_m=0.9).frame(0)
    depth = frame.depth_mm
    a, b, c = plane_fit(*face_depth_mm(frame))
    residual = depth - (a * np.arange(depth.shape[1])[None, :] + b * np.arange(depth.shape[0])[:, None] + c)
    mask = frame.truth.face_mask & (depth > 0)
    mask &= np.roll(mask, -1, axis=1)
    ys, xs = np.nonzero(mask)
    neighbour = float(np.corrcoef(residual[ys, xs], residual[ys, xs + 1])[0, 1])
    assert len(xs) > 2000
    assert neighbour > 0.5
