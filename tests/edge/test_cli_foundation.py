"""The `edgefas` entry point: help, the error boundary, lazy imports, source spec parsing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edge.capture.source import SOURCE_KINDS, parse_spec
from edge.errors import SourceError


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli.app", *args], capture_output=True, text=True,
                          timeout=120)


def test_help_lists_commands_and_imports_no_torch():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom edge.cli.app import app\n"
            "r = CliRunner().invoke(app, ['--help'])\nassert r.exit_code == 0, r.output\n"
            "print(r.output)\nprint('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "NO-TORCH" in out.stdout
    assert "synth" in out.stdout


def test_user_error_is_one_line_without_traceback(tmp_path):
    target = tmp_path / "exists"
    target.mkdir()
    out = run_cli("synth", "--out", str(target), "--count", "1")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "already exists" in lines[0]


def test_usage_error_exits_2():
    out = run_cli("synth", "--count", "zero")
    assert out.returncode == 2 and "Traceback" not in out.stderr


@pytest.mark.parametrize("spec", ["webcam:0", "synthetic", "bag:", ""])
def test_bad_spec_lists_valid_forms(spec):
    with pytest.raises(SourceError) as err:
        parse_spec(spec)
    message = str(err.value)
    assert "\n" not in message
    if spec.startswith("webcam") or not spec:
        for kind in SOURCE_KINDS:
            assert kind.form in message


def test_spec_parsing_picks_the_kind():
    kind, arg = parse_spec("realsense:123456")
    assert (kind.prefix, arg) == ("realsense", "123456")
    kind, arg = parse_spec("bag:/tmp/a.bag")
    assert (kind.prefix, arg) == ("bag", "/tmp/a.bag")
    kind, arg = parse_spec("realsense")
    assert (kind.prefix, arg) == ("realsense", "")
