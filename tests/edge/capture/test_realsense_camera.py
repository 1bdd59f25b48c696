"""The live-camera source: model profiles, device choice, link checks, recording paths, lazy imports.

The parts that need a camera are written against the real API and skip here; everything they are
built from is tested without one.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from edge.capture.realsense import (
    RealSenseSettings,
    camera_profile,
    check_camera_mode,
    choose_device,
    link_problems,
)
from edge.capture.recorder import check_output_path, recording_suffix
from edge.capture.rs_pipeline import DepthFilterConfig, DeviceInfo, FramesetMatcher
from edge.capture.source import SourceOptions, is_physical, open_source
from edge.errors import ConfigError, SourceError

REPO = Path(__file__).resolve().parents[3]
D435 = DeviceInfo("Intel RealSense D435", "832112070001", "5.16.0.1", "3.2", "D400", "5.16.0.1")


def test_model_profiles_use_the_optimal_depth_resolution() -> None:
    assert (camera_profile("Intel RealSense D435I", 640, 480, 30).depth_width,
            camera_profile("Intel RealSense D435I", 640, 480, 30).depth_height) == (848, 480)
    assert camera_profile("Intel RealSense D455", 1280, 720, 30).depth_width == 848
    d415 = camera_profile("Intel RealSense D415", 1280, 720, 30)
    assert (d415.depth_width, d415.depth_height, d415.color_width, d415.assumed) == (1280, 720, 1280, False)
    unknown = camera_profile("Intel RealSense D405", 640, 480, 30)
    assert unknown.assumed and unknown.model == "D435"


@pytest.mark.parametrize("width,height,fps", [(320, 240, 30), (1920, 1080, 30), (640, 480, 60)])
def test_unsupported_mode_is_a_one_line_config_error(width: int, height: int, fps: int) -> None:
    with pytest.raises(ConfigError) as err:
        check_camera_mode(width, height, fps)
    assert "\n" not in str(err.value) and "use one of" in str(err.value)


def test_unknown_serial_lists_the_connected_cameras() -> None:
    other = DeviceInfo("Intel RealSense D415", "727212070002", "5.15.1.0", "3.2")
    assert choose_device((D435, other), "") is D435
    assert choose_device((D435, other), "727212070002") is other
    with pytest.raises(SourceError) as err:
        choose_device((D435, other), "123")
    message = str(err.value)
    assert "123" in message and "832112070001" in message and "727212070002" in message
    with pytest.raises(SourceError, match="no RealSense camera found"):
        choose_device((), "")
    with pytest.raises(SourceError, match="no RealSense with serial 123; connected: none"):
        choose_device((), "123")


def test_usb2_and_old_firmware_are_reported() -> None:
    assert link_problems(D435, "") == []
    usb2 = DeviceInfo("Intel RealSense D435", "1", "5.16.0.1", "2.1", "D400", "5.16.0.1")
    assert any("USB 2.1" in p for p in link_problems(usb2, ""))
    old = DeviceInfo("Intel RealSense D435", "1", "5.9.14.0", "3.2", "D400", "5.16.0.1")
    assert any("older than 5.16.0.1" in p for p in link_problems(old, ""))
    assert link_problems(old, "5.9.0.0") == []  # a configured minimum overrides librealsense's advice
    assert RealSenseSettings().filters.hole_filling is False  # invented depth never feeds a decision


def test_filter_chain_order_and_hole_filling_off_by_default() -> None:
    assert DepthFilterConfig().describe() == "disparity>spatial>temporal>depth"
    assert DepthFilterConfig(decimation=2, hole_filling=True).describe().startswith("decimation x2>disparity")
    with pytest.raises(ValueError, match="decimation"):
        DepthFilterConfig(decimation=0)


def test_mixed_pairs_dropped_and_backward_counters_flagged() -> None:
    matcher = FramesetMatcher()
    assert matcher.accept(10, 20) == (True, False)
    assert matcher.accept(11, 20) == (False, False)  # new depth with the previous colour
    assert matcher.accept(11, 21) == (True, False)
    assert matcher.accept(5, 6) == (True, True)  # a counter went backwards: replay/injection sign
    assert matcher.dropped_mixed == 1


def test_recording_extension_follows_the_installed_version(tmp_path: Path) -> None:
    assert recording_suffix("2.59.1") == ".db3" and recording_suffix("2.57.0") == ".bag"
    assert check_output_path(tmp_path / "take", "2.59.1") == tmp_path / "take.db3"
    with pytest.raises(ConfigError) as err:
        check_output_path(tmp_path / "take.bag", "2.59.1")
    assert "take.db3" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "take.db3", "2.59.1")


def _connected() -> int:
    rs = pytest.importorskip("pyrealsense2", reason="pyrealsense2 is not installed (extra 'realsense')")
    return len(rs.context().query_devices())


def test_without_a_camera_the_source_says_so() -> None:
    if _connected():
        pytest.skip("a RealSense camera is connected; this checks the no-camera message")
    with pytest.raises(SourceError, match="no RealSense camera found"):
        open_source("realsense", SourceOptions())
    with pytest.raises(ConfigError, match="unsupported color resolution"):
        open_source("realsense", SourceOptions(width=800, height=600))


@pytest.mark.hardware
def test_live_camera_delivers_aligned_frames() -> None:
    if not _connected():
        pytest.skip("needs a connected RealSense D4xx camera (none found)")
    source = open_source("realsense", SourceOptions(max_frames=10))
    try:
        frames = list(source)
        assert source.set_exposure_roi((200, 120, 440, 360)) in (True, False)
    finally:
        source.close()
    assert len(frames) == 10
    assert all(f.depth_raw.shape == f.color_bgr.shape[:2] for f in frames)
    assert is_physical(source.spec)


def test_pyrealsense2_is_imported_only_inside_edge_capture() -> None:
    pattern = re.compile(r"^\s*(import pyrealsense2|from pyrealsense2)|import_optional\(\s*[\"']pyrealsense2", re.M)
    offenders = [str(path.relative_to(REPO)) for folder in ("edge", "engines", "calibration", "train")
                 for path in (REPO / folder).rglob("*.py")
                 if pattern.search(path.read_text(encoding="utf-8"))
                 and not path.is_relative_to(REPO / "edge" / "capture")]
    assert offenders == []


def test_cli_and_capture_modules_import_without_pyrealsense2() -> None:
    code = ("import sys; import edge.cli.app, edge.capture.playback, edge.capture.realsense, "
            "edge.capture.watchdog, edge.capture.probe, edge.capture.software_device; "
            "print(sorted(m for m in ('pyrealsense2', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
