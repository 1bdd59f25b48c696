"""``edgefas kiosk``: run the door service from a kiosk.toml."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from edge.face.finder import check_detector, detectors_help


def kiosk(
    config: Path = typer.Option(..., "--config", help="kiosk.toml (see deploy/kiosk.example.toml); validated at start."),
    frames: int = typer.Option(None, "--frames", min=1, help="Stop after this many frames (testing)."),
    seed: int = typer.Option(0, "--seed", help="Seed of a synthetic source (testing, production = false)."),
    detector: str = typer.Option("auto", "--detector", help=detectors_help()),
    model_dir: Path = typer.Option(None, "--model-dir", help="Where the YuNet model is (see `edgefas models`)."),
) -> None:
    """Live pipeline + actuator + local signed-decision API + audit log, as a service."""
    from edge.kiosk.runtime import run_kiosk

    check_detector(detector)
    run = run_kiosk(config, frames=frames, seed=seed, detector=detector, model_dir=model_dir)
    Console(stderr=True).print(f"kiosk stopped after {run.decisions} decisions, {run.grants} grants, "
                               f"{run.drops} frames dropped")


def register(app: typer.Typer) -> None:
    app.command("kiosk")(kiosk)
