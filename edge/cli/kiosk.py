"""``edgefas kiosk``: run the door service from a kiosk.toml."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from edge.cli.options import detector_option, frames_option, model_dir_option, seed_option
from edge.face.finder import check_detector


def kiosk(
    config: Path = typer.Option(..., "--config", help="kiosk.toml (see deploy/kiosk.example.toml); validated at start."),
    frames: int = frames_option(help="Stop after this many frames (testing)."),
    seed: int = seed_option(help="Seed of a synthetic source (testing, production = false)."),
    detector: str = detector_option(),
    model_dir: Path = model_dir_option(),
) -> None:
    """Live pipeline + actuator + local signed-decision API + audit log, as a service.

    SIGTERM (systemctl stop) or SIGINT locks the door, audits the stop and exits 0.
    """
    from edge.kiosk.runtime import run_kiosk
    from edge.kiosk.shutdown import stop_on_signals

    check_detector(detector)
    with stop_on_signals() as stop:
        run = run_kiosk(config, frames=frames, seed=seed, stop=stop, detector=detector, model_dir=model_dir)
    Console(stderr=True).print(f"kiosk stopped after {run.decisions} decisions, {run.grants} grants, "
                               f"{run.drops} frames dropped")


def register(app: typer.Typer) -> None:
    app.command("kiosk")(kiosk)
