"""``edgefas dataset build``: capture sessions into a folder dataset with subject-disjoint splits."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from edge.cli.options import detector_option, finite, model_dir_option, seed_option

dataset_app = typer.Typer(help="Datasets made from capture sessions (edgefas collect).", no_args_is_help=True)
stdout = Console()
stderr = Console(stderr=True)


def _new_folder(value: Path) -> Path:
    """``--out``: a dataset is built whole, into a new (or empty) folder, checked before any frame is read."""
    if value.exists() and (not value.is_dir() or any(value.iterdir())):
        raise typer.BadParameter(f"'{value}' exists and is not an empty folder; give a new folder for the dataset")
    return value


@dataset_app.command("build")
def build(
    sessions: list[Path] = typer.Argument(..., help="Session folders made by edgefas collect."),
    out: Path = typer.Option(..., "--out", callback=_new_folder, help="New folder for the dataset (labels.csv with a "
                             "split column, colour and depth PNGs, report.json); read it as folder:OUT."),
    dev_share: float = typer.Option(0.2, "--dev-share", callback=finite(), help="Share of frames for dev (whole "
                                    "subjects: the shares come out near it)."),
    test_share: float = typer.Option(0.2, "--test-share", callback=finite(), help="Share of frames for test."),
    assign: list[str] = typer.Option([], "--assign", help="Put a subject in a split: SUBJECT=SPLIT (repeatable)."),
    every: int = typer.Option(1, "--every", min=1, help="Keep every N-th frame of a take (neighbouring frames at "
                              "30 fps are near copies)."),
    seed: int = seed_option(help="Seed of the split assignment's tie-breaks."),
    detector: str = detector_option(note="Finds the face in every frame (frames without one are dropped)."),
    model_dir: Path = model_dir_option(),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Build a folder dataset from capture sessions: every frame through the runtime's preprocessing, whole
    subjects to train, dev or test, every presentation balanced across the splits; a report of counts."""
    from edge.datasets.build import build_dataset, check_sessions, check_shares, parse_assignments, read_sessions
    from edge.face.finder import check_detector, open_face_finder
    from edge.face.preprocess import PreprocessConfig

    shares = check_shares(dev_share, test_share)
    pins = parse_assignments(assign)
    check_detector(detector)
    found = read_sessions(sessions)
    check_sessions(found, pins)
    config = PreprocessConfig()
    finder = open_face_finder(detector, model_dir, config.detect_width_px)
    with Progress(TextColumn("preprocessing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=stderr, disable=not stderr.is_terminal) as bar:
        task = bar.add_task("build", total=None)
        report = build_dataset(found, out, finder, config, shares, seed, pins, every,
                               on_frame=lambda i, n: bar.update(task, completed=i, total=n))
    if json_out:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    presentations = sorted({p for per in report.per_split().values() for p in per})
    table = Table("split", "subject", *presentations, title=escape(f"{report.out} (frames with a face)"))
    for split, subjects in report.counts.items():
        for subject, per in subjects.items():
            table.add_row(split, subject, *(str(per.get(p, 0)) for p in presentations))
        total = report.per_split()[split]
        table.add_row(f"[bold]{split}[/]", "[bold]all[/]", *(f"[bold]{total.get(p, 0)}[/]" for p in presentations))
    stdout.print(table)
    gated = ", ".join(f"{k} {v}" for k, v in sorted(report.gated.items())) or "none"
    stdout.print(escape(f"{report.frames_read} frames read, {report.no_face} without a face (dropped); faces failing "
                        f"a quality gate (kept): {gated}; read it as folder:{report.out}"), soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")
