"""Production mode, end to end through ``edgefas kiosk``: every refusal fires, each as one line.

Production mode is the kiosk's default (``[kiosk] production = true``) and travels in
``SourceOptions.production`` to every source. Software kinds (``bag:``, ``synthetic:``, ``photo:``,
``folder:``) are refused from the spec before the model loads or anything is opened; a camera is
refused when it opens, from its device description: a software device (no hardware link), a USB 2
link, firmware older than librealsense recommends. The camera cases replace the device list with a
stand-in :class:`DeviceInfo` (as tests/edge/capture/test_realsense_camera.py does), so they need
pyrealsense2 but no camera.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge.capture.rs_pipeline import DeviceInfo
from edge.errors import EdgefasError, ProductionError
from kiosk_toml import write_kiosk_toml

SERIAL = "832112070001"
FIRMWARE = "5.16.0.1"  # what librealsense 2.59 recommends for a D435
USB2 = DeviceInfo("Intel RealSense D435", SERIAL, FIRMWARE, "2.1", "D400", FIRMWARE)
OLD_FIRMWARE = DeviceInfo("Intel RealSense D435", SERIAL, "5.9.14.0", "3.2", "D400", FIRMWARE)
# what edge.capture.software_device registers: no USB type, no connection type
SOFTWARE_DEVICE = DeviceInfo("edgefas synthetic D435", "000000000000", "0.0.0.0", "", "D400")
GOOD = DeviceInfo("Intel RealSense D435", SERIAL, FIRMWARE, "3.2", "D400", FIRMWARE, "USB")


def run_kiosk_command(config: Path):
    from edge.cli.app import app

    return CliRunner().invoke(app, ["kiosk", "--config", str(config), "--frames", "5", "--detector", "haar"])


def assert_one_line_refusal(result, *needles: str) -> str:
    assert result.exit_code != 0
    assert isinstance(result.exception, ProductionError), result.output
    message = str(result.exception)
    assert "\n" not in message and message.startswith("production mode refuses")
    for needle in needles:
        assert needle in message, message
    return message


def software_specs(folder: Path) -> list[str]:
    take = folder / "take.db3"
    take.write_bytes(b"")
    (folder / "set").mkdir()
    return [f"bag:{take}", "synthetic:live", "photo:live", f"folder:{folder / 'set'}"]


@pytest.mark.parametrize("kind", ["bag", "synthetic", "photo", "folder"])
def test_production_kiosk_refuses_every_software_kind_before_opening_anything(tmp_path, kind):
    spec = next(s for s in software_specs(tmp_path) if s.startswith(kind + ":"))
    result = run_kiosk_command(write_kiosk_toml(tmp_path, spec, production=True))
    assert_one_line_refusal(result, f"'{spec}'", "realsense")
    assert not (tmp_path / "audit.sqlite").exists()  # refused before the audit log, the door or the model opened


def test_the_console_entry_prints_a_refusal_as_one_line(tmp_path, monkeypatch, capsys):
    from edge.cli.app import main

    config = write_kiosk_toml(tmp_path, "synthetic:live", production=True)
    monkeypatch.setattr(sys, "argv", ["edgefas", "kiosk", "--config", str(config)])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == ProductionError.exit_code != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: production mode refuses the source 'synthetic:live'")
    assert "Traceback" not in err


@pytest.fixture
def stand_in_camera(monkeypatch):
    """Replace the connected-device list that RealSenseSource reads with one stand-in description."""
    pytest.importorskip("pyrealsense2", reason="pyrealsense2 is not installed (extra 'realsense')")
    import edge.capture.realsense as realsense

    def plug(device: DeviceInfo) -> None:
        monkeypatch.setattr(realsense, "list_devices", lambda rs=None, context=None: (device,))

    return plug


@pytest.mark.parametrize("device,needle", [
    (SOFTWARE_DEVICE, "no USB or other hardware connection"),
    (USB2, "USB 2.1 link"),
    (OLD_FIRMWARE, "firmware 5.9.14.0, older than 5.16.0.1"),
], ids=["software-device", "usb2", "old-firmware"])
def test_production_kiosk_refuses_an_unfit_camera_when_it_opens(tmp_path, stand_in_camera, device, needle):
    stand_in_camera(device)
    result = run_kiosk_command(write_kiosk_toml(tmp_path, "realsense", production=True))
    message = assert_one_line_refusal(result, needle)
    # the refusal stopped the service (no reconnect loop, no "camera fault" that ends with exit 0): audited, door locked
    with sqlite3.connect(tmp_path / "audit.sqlite") as db:
        events = db.execute("SELECT source, action, outcome, detail FROM events").fetchall()
    assert ("service", "pipeline", "failed", message) in events
    assert events[-1][:2] == ("service", "stop")


def test_without_production_an_unfit_camera_is_only_a_warning(stand_in_camera, caplog):
    """The same stand-ins pass the check outside production mode (a bench, a lab), with a WARNING."""
    from edge.capture.realsense import check_device

    with caplog.at_level("WARNING", logger="edge.capture.realsense"):
        assert check_device(USB2, "", production=False)
        assert check_device(SOFTWARE_DEVICE, "", production=False) == ()
    assert any("USB 2.1" in r.getMessage() for r in caplog.records)
    assert check_device(GOOD, "", production=True) == ()
    with pytest.raises(EdgefasError):
        check_device(OLD_FIRMWARE, "", production=True)
