"""``edgefas kiosk`` as systemd runs it: a real process stopped by a signal, and start-ups that fail.

The kiosk runs on ``synthetic:live`` with production off, the bundled model, the API on a free port
and the ``command`` actuator appending its action (``lock``/``unlock``) to a file, so the test sees
exactly which door commands ran and when. Timeouts are generous (a loaded 2-core machine takes
seconds to load the model); nothing asserts a speed.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk_toml import write_kiosk_toml

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 180.0  # model load and the first frames on a loaded machine
STOP_TIMEOUT_S = 60.0  # the service aims at well under 5 s; systemd waits 90 s (TimeoutStopSec)
DOOR_SCRIPT = """import os, sys
with open(sys.argv[1], "a") as door:
    door.write(os.environ["EDGEFAS_ACTION"] + "\\n")
"""  # the door: appends "lock" or "unlock" to the file it is given


def write_config(folder: Path, *, port: int = 0, actuator: str | None = None) -> Path:
    door, script = folder / "door.log", folder / "door.py"
    script.write_text(DOOR_SCRIPT)
    argv = f'["{sys.executable}", "{script}", "{door}"]'
    actuator = actuator or f'type = "command"\nunlock = {argv}\nlock = {argv}\ntimeout_s = 30'
    return write_kiosk_toml(folder, "synthetic:live", production=False, actuator=actuator, api=f"port = {port}")


def start_kiosk(config: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "edge.cli.app", "kiosk", "--config", str(config),
                             "--detector", "haar"], cwd=REPO, env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def events(audit: Path) -> list[tuple]:
    try:
        with sqlite3.connect(f"file:{audit}?mode=ro", uri=True) as db:
            return db.execute("SELECT source, action, outcome, detail FROM events ORDER BY id").fetchall()
    except sqlite3.Error:
        return []  # not created yet


def wait_until_started(process: subprocess.Popen, audit: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not any(e[:3] == ("service", "start", "ok") for e in events(audit)):
        if process.poll() is not None:
            pytest.fail(f"the kiosk exited before it started: {process.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the kiosk did not start within {START_TIMEOUT_S:g} s")
        time.sleep(0.2)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_locks_the_door_audits_and_exits_zero(tmp_path, signum):
    config = write_config(tmp_path)
    process = start_kiosk(config)
    wait_until_started(process, tmp_path / "audit.sqlite")
    door = tmp_path / "door.log"
    before = door.read_text().splitlines()
    assert before[0] == "lock"  # locked at start
    with door.open("a") as marker:
        marker.write("-- signal --\n")
    process.send_signal(signum)
    try:
        _, stderr = process.communicate(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"{signum.name} did not stop the kiosk within {STOP_TIMEOUT_S:g} s")
    assert process.returncode == 0, stderr[-2000:]
    after_signal = door.read_text().split("-- signal --\n", 1)[1].splitlines()
    assert after_signal and set(after_signal) == {"lock"}  # locked after the signal, nothing opened
    rows = events(tmp_path / "audit.sqlite")
    assert rows[-1] == ("service", "stop", "ok", f"stopped: {signum.name} received; door locked")
    assert "Traceback" not in stderr
    assert stat_mode(tmp_path / "audit.sqlite") == 0o600


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_api_port_in_use_is_one_line_and_closes_what_it_opened(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = write_config(tmp_path, port=taken.getsockname()[1])
        process = start_kiosk(config)
        _, stderr = process.communicate(timeout=START_TIMEOUT_S)
    assert process.returncode == 1, stderr[-2000:]
    assert len(error_lines(stderr)) == 1 and "change [api] port" in error_lines(stderr)[0]
    assert "Traceback" not in stderr and "RuntimeError" not in stderr
    rows = events(tmp_path / "audit.sqlite")
    assert ("service", "start", "failed") in [r[:3] for r in rows]  # the failed start is audited
    assert (tmp_path / "door.log").read_text().splitlines() == ["lock"]  # locked, never opened


def test_missing_paho_for_an_mqtt_actuator_is_one_line(tmp_path):
    hidden = tmp_path / "no_paho"
    hidden.mkdir()
    (hidden / "paho.py").write_text("raise ImportError('No module named paho (hidden by the test)')\n")
    config = write_config(tmp_path, actuator='type = "mqtt"\nhost = "127.0.0.1"\ntopic = "site/door1/command"')
    process = start_kiosk(config, env={"PYTHONPATH": f"{hidden}{os.pathsep}{REPO}"})
    _, stderr = process.communicate(timeout=START_TIMEOUT_S)
    assert process.returncode == 2, stderr[-2000:]  # MissingExtraError.exit_code
    assert len(error_lines(stderr)) == 1 and "pip install 'edgefas[kiosk]'" in error_lines(stderr)[0]
    assert "Traceback" not in stderr and "RuntimeError" not in stderr
