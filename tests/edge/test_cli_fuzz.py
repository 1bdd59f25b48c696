"""Every option of every command with bad values: one clear line, never a traceback, a hang or exit 0.

A user's mistake (a wrong type, a count of 0, a file that is missing, a directory, empty, corrupt or
unreadable, an output path that cannot be written, a source or dataset spec that does not parse) must
end the command with a non-zero exit and one line that names the option or the file (STYLE rule 5):
either click's usage error (exit 2, naming the option) or an :class:`EdgefasError`, whose one line
``edge.cli.app:main`` prints. Each case runs one command from a minimal valid command line (``BASE``)
with one option made bad, in an empty working directory that must stay empty.

``RULES`` is checked against the app itself (every leaf command's click parameters, as in
test_cli_choices.py), so a new option on any command fails this file until it has a rule or an
exemption with its reason. The bad values of a rule come from its kind (``bad_values``).
"""

from __future__ import annotations

import importlib.util
import math
import os
import traceback
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_commands import leaf_commands
from edge.cli.app import app
from edge.errors import EdgefasError, MissingExtraError
from test_cli_choices import CHOICE_OPTIONS

# --- what every option is -----------------------------------------------------------------------


def exemption(option: str, param) -> str | None:
    """Why an option has no rule here, or None when it needs one. Not walked at all: ``--help`` (click's
    own) and the root's ``--verbose`` (a flag of the group, not of a leaf command)."""
    if getattr(param, "is_flag", False):
        return "a flag: on or off, no value to get wrong"
    if option in CHOICE_OPTIONS:
        return "one of a fixed set: every command x every such option is test_cli_choices.py"
    return None


# (command path, option's first name or an argument's name) -> kind of value (see bad_values). An
# out_file's folder must exist; a made_file's folder is made by the command (bench --json, export --out,
# calibrate collect --out and calibrate int8 --out create it on purpose), so only a directory in the file's
# place is bad there.
RULES: dict[tuple[str, str], str] = {
    ("faces", "paths"): "file:.png", ("faces", "--crops"): "out_dir", ("faces", "--model-dir"): "in_dir",
    ("models", "--model-dir"): "in_dir",
    ("synth", "--out"): "out_dir", ("synth", "--count"): "count", ("synth", "--seed"): "seed",
    ("probe", "spec"): "source", ("probe", "--frames"): "count", ("probe", "--timeout"): "seconds",
    ("record", "--source"): "camera", ("record", "--out"): "out_file:.db3", ("record", "--seconds"): "seconds",
    ("train", "--dataset"): "dataset", ("train", "--out"): "out_dir", ("train", "--steps"): "count",
    ("train", "--batch"): "count", ("train", "--seed"): "seed", ("train", "--lr"): "positive",
    ("train", "--time-limit"): "positive", ("train", "--checkpoint-every"): "count",
    ("train", "--dev-dataset"): "dataset", ("train", "--model-dir"): "in_dir", ("train", "--cache-dir"): "out_dir",
    ("train", "--threads"): "count", ("train", "--init"): "file:.pt", ("train", "--ema"): "fraction",
    ("train", "--colour-blind"): "tolerance", ("train", "--partial"): "fraction",
    ("train", "--exposure-mean"): "fraction", ("train", "--exposure-contrast"): "fraction",
    ("average", "models"): "file:.pt", ("average", "--dataset"): "dataset", ("average", "--dev-dataset"): "dataset",
    ("average", "--out"): "out_file:.pt", ("average", "--seed"): "seed", ("average", "--model-dir"): "in_dir",
    ("average", "--cache-dir"): "out_dir", ("average", "--weight"): "positive",
    ("live", "--source"): "source", ("live", "--model"): "file:.onnx", ("live", "--engine"): "file:.engine",
    ("live", "--frames"): "count", ("live", "--record"): "out_file:.jsonl", ("live", "--sink"): "sink",
    ("live", "--seed"): "seed", ("live", "--model-dir"): "in_dir", ("live", "--threads"): "count",
    ("live", "--expect-sha256"): "sha256",
    ("eval", "--model"): "file:.onnx", ("eval", "--dataset"): "dataset", ("eval", "--protocol"): "protocol",
    ("eval", "--json"): "out_file:.json", ("eval", "--plot"): "out_file:.png", ("eval", "--threshold"): "threshold",
    ("eval", "--model-dir"): "in_dir", ("eval", "--cache-dir"): "out_dir",
    ("explain", "--model"): "file:.onnx", ("explain", "--source"): "source", ("explain", "--out"): "out_dir",
    ("explain", "--frames"): "count", ("explain", "--seed"): "seed", ("explain", "--model-dir"): "in_dir",
    ("kiosk", "--config"): "file:.toml", ("kiosk", "--frames"): "count", ("kiosk", "--seed"): "seed",
    ("kiosk", "--model-dir"): "in_dir",
    ("export", "--model"): "file:.pt", ("export", "--out"): "made_file:.onnx",
    ("build-engine", "--onnx"): "file:.onnx", ("build-engine", "--out"): "out_dir",
    ("build-engine", "--calib"): "file:.npz", ("build-engine", "--workspace-mib"): "count",
    ("build-engine", "--max-batch"): "count",
    ("bench", "--source"): "source", ("bench", "--model"): "file:.onnx", ("bench", "--frames"): "count",
    ("bench", "--warmup"): "count0", ("bench", "--json"): "made_file:.json", ("bench", "--threads"): "count",
    ("bench", "--cv-threads"): "count", ("bench", "--torch-checkpoint"): "file:.pt", ("bench", "--model-dir"): "in_dir",
    ("bench", "--seed"): "seed", ("bench", "--width"): "size", ("bench", "--height"): "size",
    ("bench", "--record-frames"): "count", ("bench", "--extra-faces"): "count0", ("bench", "--cache-dir"): "out_dir",
    ("bench", "--target-fps"): "positive", ("bench", "--max-host-share"): "fraction", ("bench", "--block"): "count",
    ("bench", "--stall-timeout"): "positive",
    ("calibrate collect", "--source"): "source", ("calibrate collect", "--count"): "count",
    ("calibrate collect", "--out"): "made_file:.npz", ("calibrate collect", "--model"): "file:.onnx",
    ("calibrate collect", "--seed"): "seed",
    ("calibrate int8", "--onnx"): "file:.onnx", ("calibrate int8", "--calib"): "file:.npz",
    ("calibrate int8", "--out"): "made_file:.onnx", ("calibrate int8", "--threshold"): "threshold",
    ("calibrate int8", "--max-abs"): "tolerance", ("calibrate int8", "--median-abs"): "tolerance",
    ("calibrate int8", "--min-agreement"): "fraction",
    ("calibrate threshold", "--model"): "file:.onnx", ("calibrate threshold", "--dataset"): "dataset",
    ("calibrate threshold", "--out"): "out_file:.onnx", ("calibrate threshold", "--det-plot"): "out_file:.png",
    ("calibrate threshold", "--model-dir"): "in_dir", ("calibrate threshold", "--cache-dir"): "out_dir",
    ("collect", "--source"): "source", ("collect", "--out"): "out_dir", ("collect", "--subject"): "id",
    ("collect", "--label"): "presentation", ("collect", "--site"): "id", ("collect", "--note"): "note",
    ("collect", "--frames"): "count", ("collect", "--countdown"): "tolerance", ("collect", "--seed"): "seed",
    ("collect", "--model-dir"): "in_dir",
    ("dataset build", "sessions"): "session", ("dataset build", "--out"): "new_dir",
    ("dataset build", "--dev-share"): "share", ("dataset build", "--test-share"): "share",
    ("dataset build", "--assign"): "assign", ("dataset build", "--every"): "count", ("dataset build", "--seed"): "seed",
    ("dataset build", "--model-dir"): "in_dir",
    ("pin", "--config"): "file:.toml", ("pin", "--model"): "file:.onnx",
}

# Bad values beyond a kind's, where an option has its own bounds: (label, value).
EXTRA: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("train", "--batch"): [("below 2", "1"), ("huge", "1000000000")],
    ("train", "--colour-blind"): [("above 10", "11")], ("train", "--exposure-mean"): [("above 0.95", "0.99")],
    ("train", "--exposure-contrast"): [("above 0.45", "0.46")],
    ("train", "--threads"): [("huge", "100000")], ("live", "--threads"): [("huge", "100000")],
    ("bench", "--threads"): [("huge", "100000")], ("bench", "--cv-threads"): [("huge", "100000")],
    ("bench", "--block"): [("below 4", "3")],
    ("bench", "--extra-faces"): [("above 6", "7")],
}

# Words added to the base for one option, where its value only matters with another option set: the
# eager row reads --torch-checkpoint, an INT8 build reads --calib.
WITH: dict[tuple[str, str], list[str]] = {
    ("bench", "--torch-checkpoint"): ["--eager"],
    ("build-engine", "--calib"): ["--precision", "int8"],
}

# Cases only an optional module can judge, and which: where it is not installed, the one line names the
# extra to install (a MissingExtraError), which is the first thing the user must fix anyway.
NEEDS_MODULE = {("live", "--engine", "corrupt"): "tensorrt"}  # only TensorRT can read an engine file

# Command lines that are valid apart from the option under test (test_every_base_command_line_parses);
# "{name}" is a file of the inputs fixture, "{new}" the case's folder outside the working directory, which
# a valid run could write into. record needs a camera and build-engine TensorRT to get further than that:
# their cases pass only if the bad value is refused before either is looked for.
BASE: dict[str, list[str]] = {
    "faces": ["faces", "{png}", "--detector", "haar"],
    "models": ["models"],
    "synth": ["synth", "--out", "{new}/set", "--count", "1"],
    "probe": ["probe", "synthetic:live", "--frames", "1"],
    "record": ["record", "--out", "{new}/rec.db3", "--seconds", "1"],
    "train": ["train", "--dataset", "synthetic:8", "--steps", "1", "--batch", "2", "--out", "{new}/run",
              "--detector", "haar", "--threads", "1", "--cache-dir", "{new}/cache"],
    "average": ["average", "{pt}", "{pt}", "--dataset", "synthetic:8", "--dev-dataset", "synthetic:8", "--out",
                "{new}/soup.pt", "--detector", "haar", "--cache-dir", "{new}/cache"],
    "live": ["live", "--headless", "--frames", "1", "--detector", "haar", "--threads", "1"],
    "eval": ["eval", "--model", "{onnx}", "--dataset", "synthetic:8", "--detector", "haar",
             "--cache-dir", "{new}/cache"],
    "explain": ["explain", "--frames", "1", "--detector", "haar", "--out", "{new}/explain"],
    "kiosk": ["kiosk", "--config", "{toml}", "--frames", "1", "--detector", "haar"],
    "export": ["export", "--model", "{pt}", "--out", "{new}/m.onnx"],
    "build-engine": ["build-engine", "--onnx", "{onnx}", "--out", "{new}/engine"],
    # --no-reference: the reference network's build and timing (tests/edge/bench/test_reference_model.py) would only
    # slow every case that gets past its option
    "bench": ["bench", "--frames", "1", "--warmup", "0", "--mode", "sequential", "--no-eager", "--no-reference",
              "--detector", "haar", "--record-frames", "4", "--block", "4", "--threads", "1", "--cache-dir", "{new}/cache"],
    "calibrate collect": ["calibrate", "collect", "--source", "synthetic:live", "--count", "1",
                          "--out", "{new}/c.npz", "--detector", "haar"],
    "calibrate int8": ["calibrate", "int8", "--onnx", "{onnx}", "--calib", "{npz}", "--out", "{new}/q.onnx"],
    "calibrate threshold": ["calibrate", "threshold", "--model", "{onnx}", "--dataset", "synthetic:8",
                            "--out", "{new}/t.onnx", "--detector", "haar", "--cache-dir", "{new}/cache"],
    "collect": ["collect", "--source", "synthetic:live", "--out", "{new}/session", "--subject", "s01", "--label", "live",
                "--site", "lab", "--frames", "1", "--countdown", "0", "--detector", "haar"],
    # no session exists among the inputs: every option is checked before the sessions are read, so each case is
    # refused for its own value (a check that came later would name the session folder instead)
    "dataset build": ["dataset", "build", "{in}/empty-folder", "--out", "{new}/ds", "--detector", "haar"],
    "pin": ["pin", "--config", "{toml}", "--model", "{onnx}"],
}

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def bad_values(kind: str) -> list[tuple[str, str]]:
    """(label, value) of every bad value of a kind: "{in}" is the inputs folder, shared by every case (so no
    case may write there: only folders and existing files of it are named), "{new}" the case's own folder
    (where what is missing is named, in case a command makes it), "{ext}" the kind's suffix."""
    numbers = {
        "count": [("not a number", "abc"), ("zero", "0"), ("negative", "-1")],
        "count0": [("not a number", "abc"), ("negative", "-1")],
        "seed": [("not a number", "abc"), ("negative", "-1")],
        "size": [("not a number", "abc"), ("zero", "0"), ("negative", "-1"), ("huge", "1000000")],
        "seconds": [("not a number", "abc"), ("zero", "0"), ("negative", "-1"), ("nan", "nan"), ("inf", "inf")],
        "positive": [("not a number", "abc"), ("zero", "0"), ("negative", "-1"), ("nan", "nan"), ("inf", "inf")],
        "tolerance": [("not a number", "abc"), ("negative", "-1"), ("nan", "nan"), ("inf", "inf")],
        "fraction": [("not a number", "abc"), ("negative", "-0.5"), ("above 1", "1.5"), ("nan", "nan")],
        "threshold": [("not a number", "abc"), ("negative", "-1"), ("nan", "nan"), ("inf", "inf")],
        "sha256": [("not hex", "xyz"), ("empty", ""), ("short", "abc123")],
        "protocol": [("unknown protocol", "nope")],
        "id": [("not an id", "two words"), ("empty", ""), ("a path", "../x")],
        "presentation": [("unknown", "puppet")],
        "note": [("two lines", "a\nb")],
        "share": [("not a number", "abc"), ("zero", "0"), ("negative", "-0.5"), ("one", "1"), ("nan", "nan")],
        "assign": [("no split", "s01"), ("unknown split", "s01=later"), ("no subject", "=dev")],
        "session": [("missing", "{new}/missing-session"), ("a file", "{in}/a-file.txt"),
                    ("not a session", "{in}/empty-folder")],
        "new_dir": [("a file", "{in}/a-file.txt"), ("a folder with files", "{in}")],
    }
    if kind in numbers:
        return numbers[kind]
    if kind.startswith("file:"):
        return [("missing", "{new}/missing{ext}"), ("a directory", "{in}/folder{ext}"), ("empty", "{in}/empty{ext}"),
                ("corrupt", "{in}/corrupt{ext}"), ("unreadable", "{in}/unreadable{ext}")]
    if kind.startswith("out_file:"):
        return [("parent missing", "{new}/no-such-folder/out{ext}"), ("a directory", "{in}/folder{ext}")]
    if kind.startswith("made_file:"):
        return [("a directory", "{in}/folder{ext}")]
    if kind == "out_dir":
        return [("a file", "{in}/a-file.txt")]
    if kind == "in_dir":
        return [("missing", "{new}/no-such-folder"), ("a file", "{in}/a-file.txt")]
    if kind in ("source", "camera"):
        values = [("unknown kind", "nope:x"), ("no argument", "bag"), ("empty", "")]
        if kind == "camera":
            return values + [("not a camera", "synthetic:live")]
        return values + [("unknown scenario", "synthetic:nope"), ("missing bag", "bag:{new}/missing.db3"),
                         ("corrupt bag", "bag:{in}/corrupt.db3"), ("missing folder", "folder:{new}/no-such-folder"),
                         ("folder is a file", "folder:{in}/a-file.txt")]
    if kind == "dataset":
        return [("unknown kind", "nope:8"), ("no argument", "synthetic:"), ("a source spec", "synthetic:live"),
                ("zero count", "synthetic:0"), ("unknown protocol", "synthetic:8#nope"),
                ("missing folder", "folder:{new}/no-such-folder"), ("folder is a file", "folder:{in}/a-file.txt"),
                ("empty folder", "folder:{in}/empty-folder"), ("no protocol", "cefa:{in}/empty-folder"),
                ("empty part", "synthetic:8+")]
    if kind == "sink":
        return [("unknown kind", "nope"), ("no argument", "record"), ("parent missing",
                "record:{new}/no-such-folder/x.jsonl"), ("a directory", "json:{in}/folder.jsonl")]
    raise AssertionError(f"no bad values for kind {kind}")


# --- the cases ------------------------------------------------------------------------------------


def app_options() -> dict[tuple[str, str], object]:
    """(command path, option's first name or argument's name) -> its click parameter."""
    return {(path, param.opts[0]): param for path, command in leaf_commands()
            for param in command.params}


PARAMS = app_options()


def cases() -> list[tuple[str, str, str, str, str]]:
    """(command path, option, kind, label, value) of every case."""
    out = []
    for (path, option), kind in RULES.items():
        for label, value in bad_values(kind) + EXTRA.get((path, option), []):
            if ":" in kind:
                value = value.replace("{ext}", kind.partition(":")[2])
            out.append((path, option, kind, label, value))
    return out


CASES = cases()


def test_every_option_of_every_command_has_a_rule_or_an_exemption():
    needed = {key for key, param in PARAMS.items() if exemption(key[1], param) is None}
    assert needed - set(RULES) == set(), "add a rule (or an exemption with its reason) for each"
    assert set(RULES) - needed == set(), "a rule names an option the command does not have, or an exempt one"
    assert {path for path, _ in RULES} <= set(BASE), "every command with a rule needs a base command line"


def test_every_base_command_line_parses(inputs, tmp_path):
    """Each base passes click's parsing and every option check that runs then (files that must exist,
    source and dataset specs), so a case's error comes from its one bad value."""
    files = {"in": str(inputs), "new": str(tmp_path), "png": str(inputs / "image.png"),
             "onnx": str(inputs / "model.onnx"), "npz": str(inputs / "calib.npz"), "toml": str(inputs / "kiosk.toml"),
             "pt": str(inputs / "model.onnx")}  # export's checkpoint is only read when the command runs
    leaves = dict(leaf_commands())
    for path, argv in BASE.items():
        words = [a.format(**files) for a in argv][len(path.split()):]
        leaves[path].make_context(path, words)  # raises on a bad value
    for (path, _), more in WITH.items():
        leaves[path].make_context(path, [a.format(**files) for a in BASE[path]][len(path.split()):] + more)


# --- inputs: good and bad files, outside the working directory ---------------------------------------


SUFFIXES = (".png", ".onnx", ".engine", ".toml", ".pt", ".npz", ".db3", ".jsonl", ".json")
SIZE = 16  # the mean-score model's input side


def write_model(path: Path, threshold: float | None = 0.5, alpha: float | None = None) -> Path:
    """The torch-free mean-score model (tests/mean_score_model.py) with a stored threshold and alpha."""
    import onnx
    from onnx import helper

    from mean_score_model import write_mean_score_model

    write_mean_score_model(path, size_px=SIZE, depth_mode="window")
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    for key, value in (("edgefas.threshold", threshold), ("edgefas.alpha", alpha)):
        if value is not None:
            props[key] = repr(float(value))
    helper.set_model_props(model, props)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Good files for the base command lines and bad ones for the cases, in one folder that is not the
    working directory: a real image, the torch-free mean-score model with a threshold, a calibration set
    and a kiosk.toml for it; for every suffix a directory, an empty file, random bytes and a file nobody
    may read (and no file called missing*)."""
    import secrets

    import cv2
    import numpy as np

    from calibration.calibset import CalibItem, build_calibration_set, save_calibration_set
    from edge.face.preprocess import PreprocessConfig

    root = tmp_path_factory.mktemp("inputs")
    cv2.imwrite(str(root / "image.png"), np.full((48, 64, 3), 128, np.uint8))
    write_model(root / "model.onnx")
    contract = PreprocessConfig(size_px=SIZE).to_metadata()
    item = CalibItem(np.full((3, SIZE, SIZE), 0.5, np.float32), np.full((1, SIZE, SIZE), 0.5, np.float32))
    save_calibration_set(build_calibration_set([item], 1, "test", contract), root / "calib.npz")
    key = root / "token.key"
    key.write_text(secrets.token_hex(32))
    key.chmod(0o600)
    (root / "kiosk.toml").write_text(
        f'[kiosk]\nsource = "synthetic:live"\nmodel = "{root / "model.onnx"}"\nproduction = false\n'
        f'[api]\nenabled = false\n[token]\nalgorithm = "hmac-sha256"\nsecret_file = "{key}"\n'
        f'[audit]\npath = "{root / "audit.sqlite"}"\n[actuator]\ntype = "none"\n')
    rng = np.random.default_rng(0)
    for suffix in SUFFIXES:
        (root / f"folder{suffix}").mkdir()
        (root / f"empty{suffix}").write_bytes(b"")
        (root / f"corrupt{suffix}").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
        unreadable = root / f"unreadable{suffix}"
        unreadable.write_bytes(rng.integers(0, 256, 64, dtype=np.uint8).tobytes())
        unreadable.chmod(0)
    (root / "a-file.txt").write_text("not a folder\n")
    (root / "empty-folder").mkdir()
    return root


@pytest.fixture(scope="module")
def checkpoint(inputs) -> Path:
    """A real (untrained) edge checkpoint, made only when a case needs one (export's base)."""
    torch = pytest.importorskip("torch", reason="torch (edgefas[train]) writes checkpoints")
    from edge.face.preprocess import PreprocessConfig
    from train.checkpoint import CheckpointExtra, save_checkpoint
    from train.model.network import build_model
    from train.model.objective import TrainConfig
    from train.model.presets import get_preset

    torch.manual_seed(0)
    config = get_preset("edge")
    contract = PreprocessConfig(size_px=config.input_size_px).to_metadata()
    return save_checkpoint(inputs / "model.pt", build_model(config).eval(), config, TrainConfig(), step=0,
                           extra=CheckpointExtra(preprocess=contract, threshold=0.5))


@pytest.fixture(scope="module", autouse=True)
def memory_ceiling():
    """A case that allocates without bound (a frame of 10^6 x 10^6 pixels) must fail as MemoryError in
    this process, not take the machine's memory: address space is capped while the cases run."""
    resource = pytest.importorskip("resource", reason="address-space limits are POSIX")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    ceiling = 8 << 30  # torch, ONNX Runtime and OpenCV reserve a few GiB of address space (the cases run in 6)
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    yield
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def argv_of(path: str, option: str, value: str, files: dict[str, str]) -> list[str]:
    """``BASE[path]`` (plus ``WITH``'s words) with ``option``, or the argument it names, set to ``value``."""
    argv = [a.format(**files) for a in BASE[path]] + WITH.get((path, option), [])
    param = PARAMS[(path, option)]
    if param.param_type_name == "argument":  # the base's one positional value
        words = len(path.split())
        return argv[:words] + [value] + argv[words + 1:]
    names = set(param.opts) | set(param.secondary_opts)
    out, skip = [], False
    for word in argv:  # drop the base's own value of the option
        if skip:
            skip = False
        elif word in names:
            skip = True
        else:
            out.append(word)
    return out + [option, value]


def names_it(text: str, param, value: str) -> bool:
    """Whether the message names the option (any of its names; an argument by its metavar), the value as
    written (quoted), or, for a path, the path or its file name."""
    names = [*param.opts, *param.secondary_opts]
    if param.param_type_name == "argument":
        names.append(param.name.upper())
    if any(name in text for name in names):
        return True
    if value and (f"'{value}'" in text or f"'{value.rpartition(':')[2]}'" in text):
        return True  # the spec as written, or the part of it that is wrong (synthetic:nope -> 'nope')
    path = value.partition(":")[2] if not value.startswith("/") else value  # bag:/x/y.db3 -> /x/y.db3
    return "/" in path and (path in text or Path(path).name in text)


def run_case(argv: list[str], work: Path):
    """Invoke the app in the empty folder ``work``; (result, the text a user would read)."""
    result = CliRunner().invoke(app, argv, env={"COLUMNS": "400"})
    text = result.output
    if isinstance(result.exception, EdgefasError):
        text += "\n" + str(result.exception)  # what edge.cli.app:main prints
    return result, text


def check_refused(result, text: str, argv: list[str], work: Path) -> str:
    """The shared assertions: non-zero exit, a usage error or one EdgefasError line, nothing in ``work``.
    Returns the outcome's name for the tally."""
    exc = result.exception
    assert result.exit_code != 0, f"exit 0 on a mistake: {argv}\n{text}"
    usage = isinstance(exc, SystemExit) and result.exit_code == 2
    if not usage:
        trace = "".join(traceback.format_exception(exc)) if exc is not None else ""
        assert isinstance(exc, EdgefasError), f"{argv}: {type(exc).__name__}: {exc}\n{text}\n{trace}"
        assert "\n" not in str(exc), f"more than one line: {exc!r}"
    assert list(work.iterdir()) == [], f"{argv} wrote into the working directory: {list(work.iterdir())}"
    return "usage error" if usage else type(exc).__name__


TALLY: Counter = Counter()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path,option,kind,label,value", CASES, ids=[f"{c[0]} {c[1]} {c[3]}" for c in CASES])
def test_a_bad_value_is_one_line_naming_the_option_or_file(tmp_path, monkeypatch, inputs, request, path, option,
                                                           kind, label, value):
    if label == "unreadable" and ROOT:
        pytest.skip("running as root: chmod 000 does not stop root from reading")
    work, new = tmp_path / "cwd", tmp_path / "new"
    work.mkdir()
    new.mkdir()
    files = {"in": str(inputs), "new": str(new), "png": str(inputs / "image.png"), "onnx": str(inputs / "model.onnx"),
             "npz": str(inputs / "calib.npz"), "toml": str(inputs / "kiosk.toml"), "pt": "{pt}"}
    if "{pt}" in BASE[path] and option != "--model":
        files["pt"] = str(request.getfixturevalue("checkpoint"))
    value = value.format(**files)
    argv = argv_of(path, option, value, files)
    monkeypatch.chdir(work)  # relative outputs land here if a check ever came too late
    result, text = run_case(argv, work)
    outcome = check_refused(result, text, argv, work)
    module = NEEDS_MODULE.get((path, option, label))
    if not (module and isinstance(result.exception, MissingExtraError) and importlib.util.find_spec(module) is None):
        assert names_it(text, PARAMS[(path, option)], value), f"{argv}: the message names neither:\n{text}"
    TALLY[(kind.partition(":")[0], outcome)] += 1


# A stored operating point outside the score's range (engines/metadata.py, TRACE_ENERGY_MAX): refused with one
# line naming the file when the model is opened, by every command that opens one.
BAD_MODELS = [("threshold above the score range", 5.0, None), ("negative threshold", -1.0, None),
              ("nan threshold", math.nan, None), ("above 1 + 2 alpha", 1.6, 0.25), ("negative alpha", 0.5, -1.0)]
MODEL_COMMANDS = {"live": ["live", "--headless", "--frames", "1", "--detector", "haar", "--model", "{model}"],
                  "eval": ["eval", "--model", "{model}", "--dataset", "synthetic:8", "--detector", "haar",
                           "--cache-dir", "{new}/cache"],
                  "calibrate int8": ["calibrate", "int8", "--onnx", "{model}", "--calib", "{npz}", "--out",
                                     "{new}/q.onnx"]}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", list(MODEL_COMMANDS))
@pytest.mark.parametrize("label,threshold,alpha", BAD_MODELS, ids=[m[0] for m in BAD_MODELS])
def test_a_model_with_an_impossible_threshold_is_refused_when_opened(tmp_path, monkeypatch, inputs, command, label,
                                                                    threshold, alpha):
    work, new = tmp_path / "cwd", tmp_path / "new"
    work.mkdir()
    new.mkdir()
    model = write_model(new / "odd.onnx", threshold, alpha)
    argv = [a.format(model=model, new=new, npz=inputs / "calib.npz") for a in MODEL_COMMANDS[command]]
    monkeypatch.chdir(work)
    result, text = run_case(argv, work)
    outcome = check_refused(result, text, argv, work)
    assert isinstance(result.exception, EdgefasError) and str(model) in str(result.exception), text
    assert ("threshold" if alpha is None or alpha >= 0 else "alpha") in str(result.exception), text
    TALLY[("model metadata", outcome)] += 1


def test_the_score_range_admits_every_bundled_model():
    """The bound is not tighter than what training and calibration produce: every shipped model opens."""
    from engines.bundled import MODELS_DIR
    from engines.metadata import read_metadata

    for path in sorted(MODELS_DIR.glob("*.onnx")):
        assert read_metadata(path).threshold is not None, path


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    """At the end of the module, the count on the terminal: the cases refused cleanly, by kind of value and
    by outcome; a traceback, a hang (the timeout) or a zero exit is a failed case, counted apart."""
    failed_before = request.session.testsfailed
    yield
    if not TALLY:
        return
    kinds, outcomes = Counter(), Counter()
    for (kind, outcome), n in TALLY.items():
        kinds[kind] += n
        outcomes[outcome] += n
    failed = request.session.testsfailed - failed_before
    line = (f"CLI fuzz: {sum(TALLY.values())} bad inputs refused with one line "
            f"(by kind: {', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}; "
            f"by outcome: {', '.join(f'{k} {n}' for k, n in sorted(outcomes.items()))}); {failed} failed")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # teardown output is captured otherwise
            reporter.write_line("")
            reporter.write_line(line)
