"""``edgefas synth``: write the synthetic RGB-D world to disk as a folder dataset or a recording."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from edge.cli.options import seed_option
from edge.errors import check_choice

FORMATS = ("folder", "bag")


def synth(
    out: Path = typer.Option(..., "--out", help="folder: a new folder (labels.csv, color/, depth/); "
                             "bag: a RealSense recording file (.db3 with pyrealsense2 2.58+)."),
    count: int = typer.Option(200, "--count", min=1, help="folder: number of samples; bag: number of frames."),
    seed: int = seed_option(0, help="Seed (0 or more): the same seed writes byte-identical files."),
    fmt: str = typer.Option("folder", "--format", help="folder (labelled dataset of every scenario) or bag "
                            "(a recording of one scenario through a software RealSense device)."),
    scenario: str = typer.Option("mixed", "--scenario", help="bag, or folder with --stream: live, print, replay, "
                                 "mask, cutout, empty, mixed."),
    stream: bool = typer.Option(False, "--stream", help="folder only: write --count consecutive frames of one "
                                "--scenario scene (a video the live pipeline can play with folder:) instead of "
                                "independent samples."),
) -> None:
    """Render the synthetic RGB-D world: a labelled folder dataset, or a RealSense recording of one scenario."""
    from edge.capture.synthetic.scene import SCENARIOS

    check_choice(fmt, FORMATS, "--format")
    if fmt == "bag" or stream:
        check_choice(scenario, SCENARIOS, "--scenario")
    stderr = Console(stderr=True)
    if fmt == "bag":
        from edge.capture.software_device import record_synthetic
        from edge.capture.synthetic.dataset import check_seed

        check_seed(seed, count, scene=scenario)
        summary = record_synthetic(scenario, seed, count, out)
        Console().print(f"wrote {summary.frames} frames of synthetic:{scenario} to {summary.path}")
        return
    from edge.capture.synthetic.dataset import write_synthetic_dataset

    with Progress(TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=stderr, disable=not stderr.is_terminal) as bar:
        task = bar.add_task("synth", total=count)
        summary = write_synthetic_dataset(out, count, seed, on_sample=lambda i: bar.advance(task),
                                          stream=scenario if stream else None)
    parts = ", ".join(f"{k} {v}" for k, v in sorted(summary.per_scenario.items()))
    Console(soft_wrap=True).print(f"wrote {summary.count} samples to {summary.path} ({parts})")


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
