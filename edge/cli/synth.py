"""``edgefas synth``: write the synthetic RGB-D world to disk as a folder dataset or a recording."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def synth(
    out: Path = typer.Option(..., "--out", help="Folder to create (must not exist); gets labels.csv, color/, depth/."),
    count: int = typer.Option(200, "--count", min=1, help="Number of samples."),
    seed: int = typer.Option(0, "--seed", help="Dataset seed: the same seed writes byte-identical files."),
) -> None:
    """Render a labelled synthetic RGB-D dataset (every scenario, live and attacks) as a folder dataset."""
    from edge.capture.synthetic.dataset import write_synthetic_dataset

    stderr = Console(stderr=True)
    with Progress(TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=stderr, disable=not stderr.is_terminal) as bar:
        task = bar.add_task("synth", total=count)
        summary = write_synthetic_dataset(out, count, seed, on_sample=lambda i: bar.advance(task))
    parts = ", ".join(f"{k} {v}" for k, v in sorted(summary.per_scenario.items()))
    Console().print(f"wrote {summary.count} samples to {summary.path} ({parts})")


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
