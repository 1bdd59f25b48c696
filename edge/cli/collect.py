"""``edgefas collect``: one guided capture take of one subject at a site, into a session folder with its sidecar."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from edge.cli.options import detector_option, finite, frames_option, model_dir_option, seed_option, source_option
from edge.collect.sidecar import PRESENTATIONS
from edge.face.finder import check_detector

stdout = Console()
stderr = Console(stderr=True)


def _metres(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f} m"


def collect(
    source: str = source_option("realsense", note="A camera take is recorded raw (.db3); any other source is "
                                "written as a folder of frames (labels.csv, colour and 16-bit depth PNGs)."),
    out: Path = typer.Option(..., "--out", file_okay=False,
                             help="Session folder: new, or a session of the same subject and label to add a take to."),
    subject: str = typer.Option(..., "--subject", help="Subject id (letters, digits, . - _), e.g. s017; one subject "
                                "per session."),
    label: str = typer.Option(..., "--label", help="What the subject presents: " + ", ".join(PRESENTATIONS) + "."),
    site: str = typer.Option(..., "--site", help="Site id (letters, digits, . - _), e.g. lobby-door."),
    note: str = typer.Option("", "--note", help="Operator note kept with the take (one line)."),
    frames: int = frames_option(90, help="Frames to take (a camera delivers 30 a second)."),
    countdown: float = typer.Option(3.0, "--countdown", min=0.0, callback=finite(),
                                    help="Seconds to get ready before a camera take starts."),
    seed: int = seed_option(),
    detector: str = detector_option(note="Measures each frame."),
    model_dir: Path = model_dir_option(),
    json_out: bool = typer.Option(False, "--json", help="Print the take's summary as JSON."),
) -> None:
    """Take frames of one subject presenting one thing (live, or an attack species) into a session folder.

    The session's sidecar (session.json) names the subject, label, site and notes; each take is measured
    as it runs (faces found, distance, light, valid depth) and summarised at the end.
    """
    from edge.capture.source import SourceOptions, open_source, parse_spec
    from edge.collect.session import GUIDANCE, TakeMeter, take_camera, take_software
    from edge.collect.sidecar import new_session_info, open_session
    from edge.face.finder import open_face_finder
    from edge.face.preprocess import PreprocessConfig

    info = open_session(out, new_session_info(subject, label, site, note))  # refusals before any camera opens
    check_detector(detector)
    kind, argument = parse_spec(source)
    config = PreprocessConfig()
    meter = TakeMeter(open_face_finder(detector, model_dir, config.detect_width_px), config)
    stderr.print(f"[bold]{subject}[/] · {label} · take {len(info.takes) + 1} at {site}: {GUIDANCE[label]}",
                 soft_wrap=True, highlight=False)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("faces {task.fields[faces]} · {task.fields[distance]} · valid depth {task.fields[depth]}"))
    with Progress(*columns, console=stderr, disable=not stderr.is_terminal) as bar:
        task = bar.add_task("measuring" if kind.physical else "taking", total=frames, faces=0, distance="n/a",
                            depth="n/a")
        found = [0]

        def on_frame(count: int, m) -> None:
            found[0] += m.faces > 0
            distance = "no face" if not m.faces else _metres(None if math.isnan(m.distance_m) else m.distance_m)
            bar.update(task, completed=count, faces=found[0], distance=distance,
                       depth="n/a" if math.isnan(m.valid_depth) else f"{m.valid_depth:.0%}")

        if kind.physical:
            for left in range(math.ceil(countdown), 0, -1):
                stderr.print(f"starting in {left} s")
                time.sleep(min(1.0, countdown - (left - 1)))
            recording = bar.add_task("recording", total=frames / 30.0, faces="-", distance="-", depth="-")
            info, summary = take_camera(argument, out, info, frames, meter, note,
                                        on_record=lambda s: bar.update(recording, completed=s), on_frame=on_frame)
        else:
            with open_source(source, SourceOptions(seed=seed, max_frames=frames)) as frames_in:
                info, summary = take_software(frames_in, out, info, frames, meter, note, on_frame=on_frame)
    take = info.takes[-1]
    if json_out:
        typer.echo(json.dumps({"session": str(out), "take": take.name, "subject": info.subject, "label": label,
                               "site": info.site, **summary.to_json()}, indent=2))
        return
    s = summary.to_json()
    table = Table(title=escape(f"{out} / {take.name}"), show_header=False)
    table.add_row("subject · label · site", f"{info.subject} · {label} · {info.site}")
    table.add_row("faces found", f"{summary.faces} of {summary.frames} frames"
                  + (f" ({summary.several_faces} with more than one face)" if summary.several_faces else ""))
    d = s["distance_m"]
    table.add_row("distance", "n/a" if d["median"] is None else
                  f"median {d['median']:.2f} m ({d['min']:.2f}-{d['max']:.2f})")
    table.add_row("lighting", "n/a" if s["face_luma"] is None else
                  f"{summary.lighting} (face luma {s['face_luma']:.0f})")
    table.add_row("valid depth on the face", "n/a" if s["valid_depth"] is None else f"{s['valid_depth']:.0%} (median)")
    table.add_row("quality gates", ", ".join(f"{k} {v}" for k, v in sorted(summary.gated.items())) or "all passed")
    stdout.print(table)
    if summary.faces == 0:
        stderr.print("[yellow]warning:[/] no face was found in this take; check the camera's view and take it again")


def register(app: typer.Typer) -> None:
    app.command("collect")(collect)
