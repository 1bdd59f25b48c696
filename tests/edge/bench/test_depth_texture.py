"""The depth-texture measure tells shared error from independent error, and the recording has the former."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.bench.depth_texture import depth_texture
from edge.capture.synthetic.sensor import correlated_field

ROOT = Path(__file__).resolve().parents[3]
RECORDING = ROOT.parent / "shared/data/realsense/single_depth_color_640x480.bag"


def test_shared_error_reads_correlated_and_independent_error_does_not():
    rng = np.random.default_rng(3)
    plane = 800.0 + np.linspace(0, 40, 320, dtype=np.float32)[None, :]  # a tilted wall: shape, not texture
    independent = depth_texture(plane + 2.0 * correlated_field(rng, (240, 320), 0.0))
    shared = depth_texture(plane + 2.0 * correlated_field(rng, (240, 320), 1.0))
    assert abs(independent.neighbour_corr) < 0.1
    assert shared.neighbour_corr > 0.5
    assert 1.5 < independent.rms_mm < 2.1  # the 2 px mean leaves most of an independent error
    assert independent.median_mm == pytest.approx(820.0, abs=1.0)


def test_a_hole_is_neither_measured_nor_pulls_its_neighbours():
    depth = np.full((60, 60), 900.0, np.float32)
    depth[30, 30] = 0.0
    t = depth_texture(depth)
    assert t.rms_mm == pytest.approx(0.0, abs=1e-3)  # a flat wall: nothing left once its mean is removed
    # every pixel but the hole's 7 x 7 block, less the last column and the block's left neighbours
    assert t.pixels == 60 * 60 - 49 - 60 - 7
    assert depth_texture(np.zeros((60, 60), np.float32)) is None
    with pytest.raises(ValueError, match="H x W"):
        depth_texture(np.zeros((4, 4, 1), np.float32))


def test_the_shared_recordings_depth_error_is_shared_by_neighbours():
    pytest.importorskip("pyrealsense2", reason="pyrealsense2 (edgefas[realsense]) plays the recording")
    if not RECORDING.is_file():
        pytest.skip(f"shared recording {RECORDING} not present")
    from dataset_fixture_loader import load_tool

    depth = load_tool("depth_texture").first_depth_mm(RECORDING)
    near = depth_texture(depth, (depth > 400) & (depth < 1200))
    assert near.pixels > 10_000
    assert near.neighbour_corr > 0.5  # what edge/capture/synthetic/sensor.py's correlation range is built on
    assert 0.5 < near.rms_mm < 4.0
