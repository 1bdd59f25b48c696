"""tools/experiments.py: each run's `edgefas train` command (worlds, protocol, budget, resume, extra
options), and a run stopped part-way is continued, not restarted."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from dataset_fixture_loader import load_tool


@pytest.fixture(scope="module")
def tool():
    return load_tool("experiments")


def command(tool, name: str, train_args: str = "") -> list[str]:
    args = argparse.Namespace(steps=1200, batch=16, lr=2e-4, threads=2, train_args=train_args)
    train_counts, eval_counts = {"procedural": "4000", "photo": "3000"}, {"procedural": "1200", "photo": "1200"}
    run = next(r for r in tool.runs(train_counts) if r[0] == name)
    return tool.train_command(Path("runs/x") / name, run[1], run[2], run[3], args, train_counts, eval_counts,
                              ["--cache-dir", "c"])


def value(cmd: list[str], option: str) -> str:
    return cmd[cmd.index(option) + 1]


def test_leave_one_out_holds_the_species_out_of_train_and_dev_of_the_worlds_that_have_it(tool):
    cmd = command(tool, "both-loo-silicone")  # the procedural world has no silicone mask: its grand test
    assert value(cmd, "--dataset") == "synthetic:4000+photo:3000#LOO_silicone"
    assert value(cmd, "--dev-dataset") == "synthetic:1200+photo:1200#LOO_silicone"
    assert value(command(tool, "both-loo-mask"), "--dataset") == "synthetic:4000#LOO_mask+photo:3000#LOO_mask"
    assert (value(cmd, "--steps"), value(cmd, "--batch"), value(cmd, "--threads")) == ("1200", "16", "2")


def test_the_photo_world_alone_has_a_leave_one_out_run_per_species_and_its_control(tool):
    counts = {"procedural": "4000", "photo": "3000"}
    names = {r[0] for r in tool.runs(counts)}
    assert {f"photo-loo-{s}" for s in tool.PHOTO_SPECIES} <= names and "photo-rgbd" in names
    cmd = command(tool, "photo-loo-print")  # print exists in both worlds: only the photo world is trained on
    assert value(cmd, "--dataset") == "photo:3000#LOO_print"
    assert value(cmd, "--dev-dataset") == "photo:1200#LOO_print"
    assert value(command(tool, "photo-rgbd"), "--dataset") == "photo:3000"


def test_every_run_resumes_and_takes_the_extra_options_after_its_own(tool):
    cmd = command(tool, "both-rgb", "--colour-blind 2 --species-mix hard")
    assert "--resume" in cmd
    assert cmd.index("--rgb-only") < cmd.index("--colour-blind") and value(cmd, "--species-mix") == "hard"
    assert cmd[-2:] == ["--cache-dir", "c"]
    assert "--colour-blind" not in command(tool, "both-rgb")


def test_the_extra_options_parse_as_the_train_command_does(tool, tmp_path):
    """What --train-args adds is parsed by `edgefas train` itself: a typo fails here, not after a long run."""
    import typer

    from edge.cli.app import app

    train = typer.main.get_command(app).commands["train"]
    # every LOO spec is one the train command takes
    for name in ("both-loo-silicone", "both-loo-mask", "photo-loo-glasses"):
        cmd = command(tool, name)
        cmd[cmd.index("--out") + 1] = str(tmp_path / "run")
        train.make_context("train", cmd[cmd.index("train") + 1:])
    good = command(tool, "both-loo-mask", "--colour-blind 2 --species-mix hard --augment glasses-flat --ema 0.99")
    good[good.index("--out") + 1] = str(tmp_path / "run")
    context = train.make_context("train", good[good.index("train") + 1:])
    assert context.params["colour_blind"] == 2 and context.params["resume"] is True
    bad = command(tool, "both-loo-mask", "--colour-blnd 2")
    bad[bad.index("--out") + 1] = str(tmp_path / "run")
    with pytest.raises(Exception, match="No such option: --colour-blnd"):  # click's UsageError, as typer ships it
        train.make_context("train", bad[bad.index("train") + 1:])
