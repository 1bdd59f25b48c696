"""``edgefas probe``, ``devices`` and ``record``: through the typer app and the installed script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge.capture.probe import count_gaps, probe_source
from edge.cli.app import app

rs = pytest.importorskip("pyrealsense2", reason="pyrealsense2 is not installed (extra 'realsense')")

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
D435_BAG = DATA / "realsense" / "single_depth_color_640x480.bag"
runner = CliRunner()


def _edgefas(*args: str) -> subprocess.CompletedProcess[str]:
    script = shutil.which("edgefas", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the edgefas console script is not installed in this environment")
    return subprocess.run([script, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def synthetic_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("edge.capture.synthetic", reason="the synthetic renderer is not in this checkout")
    from edge.capture.software_device import record_synthetic

    return record_synthetic("live", 5, 4, tmp_path_factory.mktemp("probe") / "live.db3").path


def test_count_gaps() -> None:
    assert count_gaps([1, 2, 3]) == (0, 0)
    assert count_gaps([1, 4, 5, 5, 2]) == (2, 2)
    assert count_gaps([-1, 7, 9]) == (1, 0)


def test_probe_report_of_a_synthetic_recording(synthetic_recording: Path) -> None:
    report = probe_source(f"bag:{synthetic_recording}", frames=10)
    assert report.frames_read == 4  # the file has 4; asking for 10 stops at its end
    assert report.color_size == (640, 480)
    assert report.raw_streams is not None and report.raw_streams.depth_format == "z16"
    assert report.frame_number_gaps == 0 and report.non_monotonic == 0
    assert report.sensor_interval_ms == pytest.approx(1000 / 30, abs=0.5)  # the software device runs at 30 fps
    assert report.software


def test_probe_json_on_the_real_recording() -> None:
    if not D435_BAG.is_file():
        pytest.skip(f"the real D435 recording is not at {D435_BAG.resolve()} (shared test data absent)")
    result = runner.invoke(app, ["probe", f"bag:{D435_BAG}", "--frames", "3", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{"):])
    assert data["frames_read"] >= 1
    assert data["color_size"] == [640, 480]
    assert data["raw_streams"]["depth"]["fx"] == pytest.approx(390.43, abs=0.01)
    assert data["depth_scale_m"] == pytest.approx(0.001, rel=1e-4)
    assert data["sensor_interval_ms"] is None or data["frames_read"] > 1


def test_probe_table_names_what_it_found(synthetic_recording: Path) -> None:
    result = runner.invoke(app, ["probe", f"bag:{synthetic_recording}", "-n", "2"])
    assert result.exit_code == 0, result.output
    for text in ("frames read", "2 of 2", "640x480", "depth scale", "frame-number gaps"):
        assert text in result.stdout


def test_probe_of_a_file_that_is_not_a_recording_is_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "notes.bag"
    fake.write_text("not a recording\n")
    result = _edgefas("probe", f"bag:{fake}")
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "notes.bag" in lines[0]
    assert "Traceback" not in result.stderr


def test_probe_unknown_prefix_lists_valid_forms() -> None:
    result = _edgefas("probe", "webcam:0")
    assert result.returncode != 0 and "bag:PATH" in result.stderr and "realsense[:SERIAL]" in result.stderr


def test_devices_without_a_camera_exits_zero() -> None:
    if len(rs.context().query_devices()):
        pytest.skip("a RealSense camera is connected; this checks the no-camera message")
    result = runner.invoke(app, ["devices"])
    assert result.exit_code == 0 and "no RealSense camera found" in result.stdout
    as_json = runner.invoke(app, ["devices", "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == []


def test_record_refuses_a_bag_name_and_a_non_camera_source(tmp_path: Path) -> None:
    bag_name = _edgefas("record", "--camera", "realsense", "--out", str(tmp_path / "take.bag"), "--seconds", "1")
    assert bag_name.returncode != 0 and ".db3" in bag_name.stderr
    not_camera = _edgefas("record", "--camera", f"bag:{tmp_path / 'x.db3'}", "--out", str(tmp_path / "y.db3"))
    assert not_camera.returncode != 0 and "live camera" in not_camera.stderr
