"""Depth normalisation and its quality gates on the analytic face (distance, print, holes, bad input)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from face_fixtures import INTRINSICS, face_pixels, make_face_frame

from edge.face import PreprocessConfig, crop_and_normalise
from edge.face.crop import crop_depth, crop_window
from edge.face.depth_norm import normalise_mad, normalise_passthrough, normalise_window
from edge.face.preprocess import face_regions
from edge.frames import RGBDFrame

CONFIG = PreprocessConfig()


def inner_face_mask(distance_m: float, face, config: PreprocessConfig = CONFIG) -> np.ndarray:
    """Crop pixels inside both the face box and the analytic head: "inside the face"."""
    window = crop_window(face, config.crop_scale, config.size_px)
    region, _ = face_regions(window, face, config)
    head = crop_depth(face_pixels(distance_m).astype(np.uint16), window) > 0
    return region & head


def test_same_face_reads_the_same_at_40_and_90_cm():
    near, near_box = make_face_frame(0.4, seed=1)
    far, far_box = make_face_frame(0.9, seed=2)
    a = crop_and_normalise(near, near_box, CONFIG)
    b = crop_and_normalise(far, far_box, CONFIG)
    mask = inner_face_mask(0.4, near_box) & inner_face_mask(0.9, far_box)
    assert mask.sum() > 0.2 * mask.size
    # The reference tracks the face's own distance, so the maps differ only by noise and sampling.
    assert abs(a.reference_mm - b.reference_mm) > 400
    difference = np.abs(a.depth[0] - b.depth[0])[mask].mean()
    assert difference < 0.05
    # ...and the face is not trivially flat: the map has relief inside the face.
    assert a.depth[0][mask].std() > 0.05


def test_flat_print_gives_a_flat_map_and_is_gated_flat():
    frame, box = make_face_frame(0.6, flat=True, seed=3)
    sample = crop_and_normalise(frame, box, CONFIG)
    mask = inner_face_mask(0.6, box)
    assert sample.depth[0][mask].std() < 0.02
    assert sample.gate == "depth_flat"
    assert abs(sample.relief_mm) < CONFIG.min_relief_mm
    # The print still reaches the model as a sample of the right shape.
    assert sample.depth.shape == (1, CONFIG.size_px, CONFIG.size_px)


def test_live_face_passes_every_gate_with_nose_relief():
    frame, box = make_face_frame(0.6, seed=4)
    sample = crop_and_normalise(frame, box, CONFIG)
    assert sample.gate is None and sample.passed
    assert sample.relief_mm > 20  # the fixture's nose stands 25 mm out of the cheeks' curve
    # Nearer is brighter: the nose tip (landmark 2) is brighter than the reference level 0.5.
    window = crop_window(box, CONFIG.crop_scale, CONFIG.size_px)
    nx, ny = np.round(window.map_points(box.landmarks_xy[2:3])[0]).astype(int)
    assert sample.depth[0, ny, nx] > 0.6


def test_face_with_30_percent_holes_still_normalises():
    frame, box = make_face_frame(0.6, hole_fraction=0.3, seed=5)
    sample = crop_and_normalise(frame, box, CONFIG)
    assert sample.valid_fraction == pytest.approx(0.7, abs=0.02)
    assert sample.gate is None
    holes = crop_and_normalise(frame, box, CONFIG).depth[0] == 0
    assert holes[inner_face_mask(0.6, box)].mean() == pytest.approx(0.3, abs=0.03)


def test_face_with_80_percent_holes_is_depth_starved():
    frame, box = make_face_frame(0.6, hole_fraction=0.8, seed=6)
    sample = crop_and_normalise(frame, box, CONFIG)
    assert sample.valid_fraction == pytest.approx(0.2, abs=0.03)
    assert sample.gate == "depth_starved"


def test_mad_mode_is_distance_invariant_and_keeps_holes_zero():
    config = dataclasses.replace(CONFIG, depth_mode="mad")
    near, near_box = make_face_frame(0.45, hole_fraction=0.1, seed=7)
    far, far_box = make_face_frame(0.85, hole_fraction=0.1, seed=8)
    a = crop_and_normalise(near, near_box, config)
    b = crop_and_normalise(far, far_box, config)
    mask = inner_face_mask(0.45, near_box) & (a.depth[0] > 0) & (b.depth[0] > 0)
    assert np.abs(a.depth[0] - b.depth[0])[mask].mean() < 0.08
    raw_holes = near.depth_raw == 0
    assert raw_holes.any() and a.depth.min() == 0.0


def test_passthrough_maps_8bit_depth_and_refuses_metric_depth():
    depth8 = np.zeros((4, 4), np.uint16)
    depth8[1:3, 1:3] = 255
    region = np.ones((4, 4), bool)
    out = normalise_passthrough(depth8, region)
    assert out.depth01.max() == 1.0 and out.valid_fraction == pytest.approx(0.25)
    with pytest.raises(ValueError, match="0..255"):
        normalise_passthrough(depth8 + 600, region)


def test_nan_in_float_depth_is_refused_naming_the_field():
    depth = np.full((8, 8), 500.0, np.float32)
    depth[2, 3] = np.nan
    mask = np.ones((8, 8), bool)
    with pytest.raises(ValueError, match=r"depth_mm .*NaN.*0"):
        normalise_window(depth, mask, mask, 100.0)
    with pytest.raises(ValueError, match="depth_mm"):
        normalise_mad(depth, mask, mask, 3.0)


def test_depth_of_the_wrong_form_is_refused():
    mask = np.ones((8, 8), bool)
    with pytest.raises(ValueError, match="H x W float millimetres"):
        normalise_window(np.zeros((8, 8), np.uint16), mask, mask, 100.0)
    with pytest.raises(ValueError, match="inner must be a bool array of shape"):
        normalise_window(np.zeros((8, 8), np.float32), mask[:4], mask, 100.0)


@pytest.mark.parametrize(
    ("color", "depth", "pattern"),
    [
        (np.zeros((48, 64, 3), np.float32), np.zeros((48, 64), np.uint16), r"color_bgr must be H x W x 3 uint8"),
        (np.zeros((48, 64), np.uint8), np.zeros((48, 64), np.uint16), r"color_bgr must be H x W x 3 uint8"),
        (np.zeros((48, 64, 3), np.uint8), np.zeros((48, 64), np.float32), r"depth_raw must be H x W uint16"),
        (np.zeros((48, 64, 3), np.uint8), np.zeros((24, 32), np.uint16), r"depth must be aligned to color"),
    ],
)
def test_frames_of_the_wrong_form_name_the_field(color, depth, pattern):
    with pytest.raises(ValueError, match=pattern):
        RGBDFrame(color, depth, 0.001, INTRINSICS, 0.0, 0, "test")
