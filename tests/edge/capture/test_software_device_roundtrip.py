"""Synthetic frames through a pyrealsense2 software device, recorded, then played back through ``bag:``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from edge.capture.playback import BagSource
from edge.capture.source import SourceOptions
from edge.frames import Extrinsics

rs = pytest.importorskip("pyrealsense2", reason="pyrealsense2 is not installed (extra 'realsense')")
synthetic = pytest.importorskip("edge.capture.synthetic", reason="the synthetic renderer is not in this checkout")

from edge.capture.software_device import RawView, record_synthetic, record_views  # noqa: E402

FRAMES = 5
SCENARIO, SEED = "live", 3
NEAR_MARGIN_MM = 150.0  # a head is ~20 cm deep (Farkas 1994); anything this near the face is "the head"


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_synthetic(SCENARIO, SEED, FRAMES, tmp_path_factory.mktemp("sw") / "live.db3").path


@pytest.fixture(scope="module")
def world() -> object:
    return synthetic.SyntheticWorld(SCENARIO, SEED)


def _near(depth_mm: np.ndarray, face_distance_m: float) -> np.ndarray:
    return (depth_mm > 0) & (depth_mm < face_distance_m * 1000.0 + NEAR_MARGIN_MM)


def test_recording_plays_back_exactly_n_aligned_pairs_every_time(recording: Path) -> None:
    counts = []
    for _ in range(20):
        frames = list(BagSource(recording, SourceOptions(timeout_s=1.0)))
        counts.append(len(frames))
        assert all(f.depth_raw.shape == f.color_bgr.shape[:2] == (480, 640) for f in frames)
        assert [f.meta.color_frame_number for f in frames] == [f.meta.depth_frame_number for f in frames]
    assert counts == [FRAMES] * 20


def test_aligned_depth_of_the_face_lands_on_the_face(recording: Path, world: object) -> None:
    frames = list(BagSource(recording, SourceOptions(timeout_s=1.0)))
    assert len(frames) == FRAMES
    for index, frame in enumerate(frames):
        views = world.render(index)  # type: ignore[attr-defined]
        np.testing.assert_array_equal(frame.color_bgr, views.color_bgr)  # colour passes through untouched
        assert frame.t_ms == pytest.approx(views.t_ms, abs=1e-3)
        face = views.truth.face_mask
        distance_m = views.truth.faces[0].distance_m
        near = _near(frame.depth_mm, distance_m)
        assert (near & face).sum() / face.sum() >= 0.95
        # Against the renderer's own aligned depth: the head lands where the renderer put it.
        expected = _near(views.depth_aligned.astype(np.float32), distance_m)  # rig units are 1 mm
        iou = (near & expected).sum() / (near | expected).sum()
        assert iou >= 0.85, f"frame {index}: aligned head IoU {iou:.3f}"


def test_extrinsics_matter(tmp_path: Path, world: object) -> None:
    """Registering identity extrinsics (what rs.align assumes without them) misplaces the head."""
    rig = synthetic.SensorRig.d435()
    wrong = dataclasses.replace(rig, depth_to_color=Extrinsics((1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0), (0.0, 0.0, 0.0)))
    views = [world.render(i) for i in range(2)]  # type: ignore[attr-defined]
    ious = {}
    for name, registered in (("right", rig), ("identity", wrong)):
        path = record_views([RawView(v.color_bgr, v.depth_raw, v.t_ms) for v in views], tmp_path / f"{name}.db3",
                            registered).path
        frames = list(BagSource(path, SourceOptions(timeout_s=1.0)))
        v = views[0]
        near = _near(frames[0].depth_mm, v.truth.faces[0].distance_m)
        expected = _near(v.depth_aligned.astype(np.float32), v.truth.faces[0].distance_m)
        ious[name] = (near & expected).sum() / (near | expected).sum()
    assert ious["right"] > ious["identity"] + 0.05


def test_recorded_calibration_is_the_rig(recording: Path) -> None:
    rig = synthetic.SensorRig.d435()
    source = BagSource(recording, SourceOptions(timeout_s=1.0))
    info = source.stream_info
    source.close()
    assert info.depth.fx == pytest.approx(rig.depth.fx, abs=1e-3)
    assert info.color.fx == pytest.approx(rig.color.fx, abs=1e-3)
    assert info.depth_scale_m == pytest.approx(rig.depth_scale_m, rel=1e-5)
    assert info.depth_to_color is not None
    np.testing.assert_allclose(info.depth_to_color.translation_m, rig.depth_to_color.translation_m, atol=1e-6)


def test_asymmetric_rotation_survives_the_column_major_round_trip(tmp_path: Path) -> None:
    """librealsense stores rotations column-major; a transposed matrix would come back transposed."""
    rig = synthetic.SensorRig.d435()
    c, s = np.cos(0.02), np.sin(0.02)
    rotation = (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)  # row-major, not symmetric
    rotated = dataclasses.replace(rig, depth_to_color=Extrinsics(rotation, (0.015, 0.001, 0.0)))
    blank = RawView(np.zeros((480, 640, 3), np.uint8), np.full((480, 640), 800, np.uint16), 0.0)
    path = record_views([blank], tmp_path / "rot.db3", rotated).path
    source = BagSource(path, SourceOptions(timeout_s=1.0))
    source.close()
    np.testing.assert_allclose(source.stream_info.depth_to_color.rotation, rotation, atol=1e-6)


def test_wrong_view_size_is_refused(tmp_path: Path) -> None:
    rig = synthetic.SensorRig.d435()
    bad = RawView(np.zeros((480, 640, 3), np.uint8), np.zeros((240, 320), np.uint16), 0.0)
    with pytest.raises(ValueError, match="depth_raw"):
        record_views([bad], tmp_path / "bad.db3", rig)


def test_an_uncompressed_recording_plays_the_same_frames(tmp_path: Path, world: object) -> None:
    """The bench's recordings are stored without librealsense's PNG compression (edge.bench.feed):
    the same pixels and depth come back, only the file is larger and playback does not decode."""
    rig = synthetic.SensorRig.d435()
    rendered = [world.render(i) for i in range(3)]  # type: ignore[attr-defined]
    views = [RawView(v.color_bgr, v.depth_raw, v.t_ms) for v in rendered]
    played, sizes = {}, {}
    for compress in (True, False):
        path = record_views(views, tmp_path / f"c{int(compress)}.db3", rig, compress=compress).path
        sizes[compress] = path.stat().st_size
        played[compress] = list(BagSource(path, SourceOptions(timeout_s=1.0, depth_filters="raw")))
    assert len(played[True]) == len(played[False]) == len(views)
    for a, b, view in zip(played[True], played[False], views):
        np.testing.assert_array_equal(a.color_bgr, b.color_bgr)
        np.testing.assert_array_equal(a.depth_raw, b.depth_raw)
        np.testing.assert_array_equal(b.color_bgr, view.color_bgr)
    assert sizes[False] > 1.2 * sizes[True]  # the flag reached the recorder
