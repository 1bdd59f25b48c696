"""Every choice option of every command: a mistyped value is one line naming the option, never a traceback.

``edge.cli.app:main`` prints an :class:`EdgefasError` as one line and exits non-zero; here the app is
invoked through typer's CliRunner, which hands that exception back as ``result.exception``. The
table below is checked against the app itself, so a new command with a choice option, or a new
choice option on a command, fails this file until it has a row.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_commands import leaf_commands
from edge.cli.app import app
from edge.errors import EdgefasError

# Options whose value must be one of a fixed set (or, for --target, one of a few forms).
CHOICE_OPTIONS = {"--detector", "--split", "--preset", "--precision", "--mode", "--depth-filters", "--filters",
                  "--method", "--build", "--variant", "--format", "--scenario", "--target", "--roi", "--augment",
                  "--keep-fp32", "--species-mix", "--threshold-target", "--qat", "--lr-schedule"}

# How a message names an option when not by its flag: --target takes a form (calibration.threshold.parse_target).
NAMED_AS = {"--target": "threshold target", "--threshold-target": "threshold target"}

# A checkpoint that exists (outside the test's folder), for commands that check their inputs exist before anything else.
BUNDLED_PT = str(Path(__file__).resolve().parents[2] / "engines" / "models" / "edge-synthetic.pt")

# (command path, argv with the bad value, option, text every valid message must contain)
CASES: list[tuple[str, list[str], str, tuple[str, ...]]] = [
    ("faces", ["faces", "x.png", "--detector", "foo"], "--detector", ("auto", "yunet", "haar")),
    ("train", ["train", "--augment", "foo"], "--augment", ("standard", "wide", "glasses", "glasses-flat")),
    ("train", ["train", "--species-mix", "foo"], "--species-mix", ("even", "hard", "hard-door")),
    ("train", ["train", "--qat", "foo"], "--qat", ("off", "cpu", "tensorrt")),
    ("train", ["train", "--lr-schedule", "foo"], "--lr-schedule", ("constant", "cosine")),
    ("average", ["average", BUNDLED_PT, BUNDLED_PT, "--dataset", "synthetic:8", "--dev-dataset", "synthetic:8",
                 "--out", "o.pt", "--threshold-target", "foo"], "--threshold-target", ("bpcer@apcer=RATE", "eer")),
    ("average", ["average", BUNDLED_PT, BUNDLED_PT, "--dataset", "synthetic:8", "--dev-dataset", "synthetic:8",
                 "--out", "o.pt", "--detector", "foo"], "--detector", ("auto", "yunet", "haar")),
    ("live", ["live", "--headless", "--detector", "foo"], "--detector", ("auto", "yunet", "haar")),
    ("live", ["live", "--headless", "--depth-filters", "foo"], "--depth-filters", ("default", "decimate2", "raw")),
    ("live", ["live", "--headless", "--roi", "foo"], "--roi", ("on", "off")),
    ("bench", ["bench", "--roi", "foo"], "--roi", ("both", "on", "off")),
    ("kiosk", ["kiosk", "--config", "kiosk.toml", "--detector", "foo"], "--detector", ("auto", "yunet", "haar")),
    ("bench", ["bench", "--mode", "foo"], "--mode", ("sequential", "overlapped", "process")),
    ("bench", ["bench", "--detector", "foo"], "--detector", ("auto", "yunet", "haar")),
    ("bench", ["bench", "--depth-filters", "foo"], "--depth-filters", ("default", "decimate2", "raw")),
    ("bench", ["bench", "--filters", "foo"], "--filters", ("default", "decimate2", "raw")),  # its older name
    ("calibrate collect", ["calibrate", "collect", "--source", "synthetic:live", "--count", "1", "--out", "c.npz",
                           "--detector", "foo"], "--detector", ("auto", "yunet", "haar")),
    ("calibrate int8", ["calibrate", "int8", "--onnx", "m.onnx", "--calib", "c.npz", "--out", "q.onnx",
                        "--method", "foo"], "--method", ("minmax", "entropy", "percentile")),
    ("calibrate int8", ["calibrate", "int8", "--onnx", "m.onnx", "--calib", "c.npz", "--out", "q.onnx",
                        "--build", "foo"], "--build", ("tensorrt", "cpu")),
    ("calibrate int8", ["calibrate", "int8", "--onnx", "m.onnx", "--calib", "c.npz", "--out", "q.onnx",
                        "--keep-fp32", "foo"], "--keep-fp32", ("depth-entry", "depth-decoder", "decoders", "none")),
    ("calibrate threshold", ["calibrate", "threshold", "--model", "m.onnx", "--dataset", "synthetic:8",
                             "--detector", "foo"], "--detector", ("auto", "yunet", "haar")),
    ("calibrate threshold", ["calibrate", "threshold", "--model", "m.onnx", "--dataset", "synthetic:8",
                             "--target", "foo"], "--target", ("bpcer@apcer=RATE", "eer")),
    ("calibrate threshold", ["calibrate", "threshold", "--model", "m.onnx", "--dataset", "synthetic:8",
                             "--split", "foo"], "--split", ("train", "dev", "test")),
    ("eval", ["eval", "--split", "foo"], "--split", ("train", "dev", "test")),
    ("eval", ["eval", "--detector", "foo"], "--detector", ("auto", "yunet", "haar")),
    ("explain", ["explain", "--detector", "foo"], "--detector", ("auto", "yunet", "haar")),
    ("train", ["train", "--preset", "foo"], "--preset", ("edge", "paper")),
    ("train", ["train", "--detector", "foo"], "--detector", ("auto", "yunet", "haar")),
    ("export", ["export", "--model", "m.pt", "--out", "m.onnx", "--variant", "foo"], "--variant", ("score", "full")),
    ("build-engine", ["build-engine", "--onnx", "m.onnx", "--out", "engine", "--precision", "foo"], "--precision",
     ("fp32", "fp16", "int8")),
    ("synth", ["synth", "--out", "x", "--format", "foo"], "--format", ("folder", "bag")),
    ("synth", ["synth", "--out", "x.db3", "--format", "bag", "--scenario", "foo"], "--scenario",
     ("live", "print", "mixed")),
    ("collect", ["collect", "--source", "synthetic:live", "--out", "s", "--subject", "s01", "--label", "live",
                 "--site", "lab", "--detector", "foo"], "--detector", ("auto", "yunet", "haar")),
    ("dataset build", ["dataset", "build", "s", "--out", "ds", "--detector", "foo"], "--detector",
     ("auto", "yunet", "haar")),
]


def test_every_choice_option_of_every_command_has_a_case():
    present = {(path, opt) for path, command in leaf_commands()
               for param in command.params for opt in param.opts if opt in CHOICE_OPTIONS}
    covered = {(path, option) for path, _, option, _ in CASES}
    assert present - covered == set(), "add a row to CASES for each"
    assert covered - present == set(), "a row names an option the command does not have"


@pytest.mark.parametrize("path,argv,option,valid", CASES, ids=[" ".join(c[1][:2]) + " " + c[2] for c in CASES])
def test_a_bad_choice_is_one_line_naming_the_option_and_the_choices(tmp_path, monkeypatch, path, argv, option,
                                                                    valid):
    monkeypatch.chdir(tmp_path)  # relative output paths land here if a check ever came too late
    result = CliRunner().invoke(app, argv)
    assert result.exit_code != 0
    assert isinstance(result.exception, EdgefasError), (
        f"{path}: {type(result.exception).__name__}: {result.exception}\n{result.output}")
    message = str(result.exception)
    assert "\n" not in message and NAMED_AS.get(option, option) in message and "foo" in message, message
    for value in valid:
        assert value in message, message
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
