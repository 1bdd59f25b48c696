"""One option per concept with the same name in every command (edge/cli/options.py), help rendered
from the tables, the depth filter chain checked once per start, and a `live` command that stays thin.

The checks read the app itself (every leaf command's click parameters), so a new command that
spells a shared concept its own way fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge.capture.rs_pipeline import FILTER_CHAINS, DepthChain, depth_chain
from edge.capture.source import SOURCE_KINDS, SourceOptions, check_source
from cli_commands import leaf_commands
from edge.cli.app import app
from edge.face.finder import DETECTOR_NAMES

REPO = Path(__file__).resolve().parents[2]

# shared name -> older names a command may keep as extra names of the same option
SHARED = {"--source": {"--camera", "--input"}, "--dataset": set(), "--detector": set(), "--model": set(),
          "--model-dir": set(), "--depth-filters": {"--filters"}, "--threads": set(), "--seed": set(),
          "--frames": {"-n"}}
OLD_NAMES = {old: shared for shared, olds in SHARED.items() for old in olds}

# documented commands that must keep working (README, DESIGN §1, docs)
DOCUMENTED = [("live", ["--camera", "realsense"], "source", "realsense"),
              ("bench", ["--filters", "raw"], "depth_filters", "raw"),
              ("explain", ["--input", "synthetic:mask"], "source", "synthetic:mask"),
              ("record", ["--camera", "realsense:123", "--out", "x.db3"], "source", "realsense:123")]


def shared_params(command):
    """(shared name, click parameter) for every parameter of ``command`` that is a shared concept."""
    for param in command.params:
        for opt in param.opts:
            if opt in SHARED or opt in OLD_NAMES:
                yield OLD_NAMES.get(opt, opt), param
                break


def test_every_shared_concept_is_spelled_the_same_in_every_command():
    wrong = [(path, param.opts) for path, command in leaf_commands() for shared, param in shared_params(command)
             if param.opts[0] != shared or not set(param.opts[1:]) <= SHARED[shared]]
    assert wrong == [], "the shared name first; older names only as extra names of the same option"
    used = {shared for _, command in leaf_commands() for shared, _ in shared_params(command)}
    assert used == set(SHARED)  # every concept is in use, so the table above stays true


def test_every_commands_help_shows_the_shared_names():
    for path, command in leaf_commands():
        names = {shared for shared, _ in shared_params(command)}
        if not names:
            continue
        result = CliRunner().invoke(app, [*path.split(), "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        for name in names:
            assert f" {name}" in result.output, (path, name)


def test_help_is_rendered_from_the_tables():
    for path, command in leaf_commands():
        for shared, param in shared_params(command):
            if shared == "--source":
                kinds = [k for k in SOURCE_KINDS if k.physical] if path == "record" else SOURCE_KINDS
                assert all(k.form in param.help for k in kinds), (path, param.help)
            elif shared == "--detector":
                assert all(f"{name} = " in param.help for name in DETECTOR_NAMES), (path, param.help)
            elif shared == "--depth-filters":
                assert all(f"{name} = " in param.help for name in FILTER_CHAINS), (path, param.help)


@pytest.mark.parametrize("path,argv,param,value", DOCUMENTED, ids=[d[0] + " " + d[1][0] for d in DOCUMENTED])
def test_documented_older_names_still_reach_the_shared_option(path, argv, param, value):
    command = dict(leaf_commands())[path]
    ctx = command.make_context(path, list(argv))  # parses (and runs option callbacks) without running the command
    assert ctx.params[param] == value


def test_the_depth_chain_from_the_command_line_is_a_checked_chain():
    command = dict(leaf_commands())["live"]
    chain = command.make_context("live", ["--depth-filters", "decimate2"]).params["depth_filters"]
    assert isinstance(chain, DepthChain) and chain == "decimate2" and chain.config.decimation == 2
    default = command.make_context("live", []).params["depth_filters"]
    assert isinstance(default, DepthChain) and default == "default"  # the default passes the same check


def count_chain_checks(monkeypatch) -> list[str]:
    import edge.errors

    calls: list[str] = []
    real = edge.errors.check_choice

    def counting(value, choices, option):
        if tuple(choices) == tuple(FILTER_CHAINS):
            calls.append(option)
        return real(value, choices, option)

    monkeypatch.setattr(edge.errors, "check_choice", counting)
    return calls


def test_a_checked_chain_is_not_checked_again_below(monkeypatch):
    calls = count_chain_checks(monkeypatch)
    chain = depth_chain("raw", "--depth-filters")
    check_source("bag:x.db3", SourceOptions(depth_filters=chain))
    depth_chain(chain)
    assert calls == ["--depth-filters"]
    check_source("bag:x.db3", SourceOptions(depth_filters="raw"))  # a plain name (library code) is checked there
    assert calls == ["--depth-filters", "depth filters"]


def test_the_kiosk_checks_its_chain_once_when_it_reads_kiosk_toml(monkeypatch):
    from edge.kiosk.config import _depth_filters
    from edge.kiosk.toml_table import TomlTable

    calls = count_chain_checks(monkeypatch)
    chain = _depth_filters(TomlTable("kiosk.toml", "kiosk", {"depth_filters": "decimate2"}))
    check_source("bag:x.db3", SourceOptions(depth_filters=chain))
    assert isinstance(chain, DepthChain) and calls == ["kiosk.toml: [kiosk] depth_filters"]


def test_live_checks_the_depth_chain_once_per_start(monkeypatch):
    """From the option to the bag opener that applies it: one check, where the user wrote it."""
    pytest.importorskip("pyrealsense2", reason="pyrealsense2 (edgefas[realsense]) plays recordings")
    bag = REPO / ".." / "shared" / "data" / "realsense" / "single_depth_color_640x480.bag"
    if not bag.is_file():
        pytest.skip(f"the real D435 recording is not at {bag.resolve()}")
    calls = count_chain_checks(monkeypatch)
    result = CliRunner().invoke(app, ["live", "--headless", "--frames", "1", "--threads", "1", "--detector", "haar",
                                      "--source", f"bag:{bag}", "--depth-filters", "decimate2"])
    assert result.exit_code == 0, result.output
    assert '"frame": ' in result.stdout
    assert calls == ["--depth-filters"]


def test_live_command_body_stays_at_most_25_lines():
    """STYLE: a command parses options, builds a config, opens source and sinks, calls the loop, renders
    a summary. Counted without the docstring, blank lines included."""
    tree = ast.parse((REPO / "edge" / "cli" / "live.py").read_text(encoding="utf-8"))
    live = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "live")
    body = live.body[1:] if ast.get_docstring(live) is not None else live.body
    lines = body[-1].end_lineno - body[0].lineno + 1
    assert 0 < lines <= 25, f"`live` has {lines} lines; move work into edge/live (loop, sinks, session)"
