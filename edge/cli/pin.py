"""``edgefas pin``: point a kiosk.toml at a model and pin the model's sha256."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from edge.cli.options import model_option


def pin(
    # escaped: typer renders help as rich markup, which would swallow "[kiosk]" as a style tag
    config: Path = typer.Option(..., "--config", dir_okay=False, help=escape("kiosk.toml to update in place (only "
                                "its [kiosk] model and model_sha256 lines change).")),
    model: Path = model_option(..., help="The model the kiosk should run (ONNX with a threshold, or a TensorRT "
                               "engine)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Pin a model in kiosk.toml: the kiosk then starts only on a file with exactly this sha256."""
    from edge.kiosk.pin import pin_model

    result = pin_model(config, model)
    if json_out:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    was = f" (was {result.previous_model}, sha256 {(result.previous_sha256 or 'none')[:12]})" \
        if result.previous_model != result.model_text or result.previous_sha256 != result.sha256 else " (unchanged)"
    Console().print(f"{result.config}: model = {result.model_text}, model_sha256 = {result.sha256}{was}",
                    soft_wrap=True, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("pin")(pin)
