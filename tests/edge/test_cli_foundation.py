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


def test_no_module_under_edge_imports_torch():
    """DESIGN §2: the runtime never imports torch, not even lazily (training-side code lives in train/)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "edge"
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                    "import_optional", "import_module") and node.args and isinstance(node.args[0], ast.Constant):
                names = [str(node.args[0].value)]
            offenders += [f"{path.relative_to(root.parent)}:{node.lineno}" for n in names
                          if n == "torch" or n.startswith("torch.")]
    assert root.is_dir() and offenders == []


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


def test_synth_bag_writes_a_recording_that_plays_back(tmp_path):
    pytest.importorskip("pyrealsense2", reason="pyrealsense2 (edgefas[realsense]) plays recordings")
    from typer.testing import CliRunner

    from edge.capture.source import SourceOptions, open_source
    from edge.cli.app import app

    out = tmp_path / "scene.db3"
    result = CliRunner().invoke(app, ["synth", "--format", "bag", "--scenario", "print", "--count", "3",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    with open_source(f"bag:{out}", SourceOptions(timeout_s=1.0)) as source:
        frames = list(source)
    assert len(frames) == 3 and frames[0].depth_raw.shape == (480, 640)


def test_synth_rejects_an_unknown_format(tmp_path):
    out = run_cli("synth", "--format", "mp4", "--out", str(tmp_path / "x"))
    assert out.returncode == 1 and "--format must be one of folder, bag" in out.stderr


def test_a_command_whose_extra_is_missing_names_the_extra_and_exits_2():
    """`train` without torch used to end in a ModuleNotFoundError traceback."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None\n"
            "from edge.cli.app import main\n"
            "sys.argv = ['edgefas', 'train', '--steps', '1', '--dataset', 'synthetic:10']\n"
            "main()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "needs the Python module 'torch'" in done.stderr and "pip install 'edgefas[train]'" in done.stderr
