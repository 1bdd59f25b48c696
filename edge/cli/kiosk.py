"""``edgefas kiosk``: run the door service from a kiosk.toml; ``edgefas kiosk-password``: the console's login."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from edge.cli.options import detector_option, frames_option, model_dir_option, seed_option
from edge.errors import ConfigError
from edge.face.finder import check_detector

MIN_PASSWORD_CHARS = 8  # NIST SP 800-63B §5.1.1.2: memorized secrets of at least 8 characters


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


def kiosk_password(
    stdin: bool = typer.Option(False, "--stdin", help="Read the password from the first line of standard input "
                                                      "(scripts) instead of asking twice without echo."),
) -> None:
    """Make the installer console's password hash (scrypt) for kiosk.toml.

    Prints one line, `password_hash = "scrypt$..."`, to paste under \\[console] in kiosk.toml.
    """
    from edge.kiosk.console.password import hash_password

    if stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Console password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_CHARS:
        source = "standard input" if stdin else "the prompt"
        raise ConfigError(f"the console password from {source} has {len(password)} characters; use at least "
                          f"{MIN_PASSWORD_CHARS}")
    typer.echo(f'password_hash = "{hash_password(password)}"')
    Console(stderr=True).print("paste this line under [console] in kiosk.toml, with enabled = true", markup=False)


def register(app: typer.Typer) -> None:
    app.command("kiosk")(kiosk)
    app.command("kiosk-password")(kiosk_password)
