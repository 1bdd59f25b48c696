"""Capture commands: ``probe`` (what a source delivers), ``devices`` (connected cameras), ``record``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from edge.capture.source import SourceOptions, parse_spec, sources_help
from edge.cli.options import finite, frames_option, source_option, source_spec_check
from edge.errors import ConfigError

stdout = Console()
stderr = Console(stderr=True)


def probe(
    spec: str = typer.Argument(..., callback=source_spec_check("SPEC"), help=sources_help()),
    frames: int = frames_option(30, "-n", help="Frames to read."),
    timeout_s: float = typer.Option(2.0, "--timeout", callback=finite(above=0),
                                    help="Longest wait for one frame, seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Open a source, read frames through the full capture path, report streams, intrinsics and timing."""
    from edge.capture.probe import probe_source

    report = probe_source(spec, frames, SourceOptions(timeout_s=timeout_s))
    if as_json:
        stdout.print_json(json.dumps(report.to_dict()))
        return
    table = Table(title=f"probe {spec}", show_header=False)
    table.add_row("source", report.description)
    table.add_row("software source", "yes" if report.software else "no (physical camera)")
    table.add_row("frames read", f"{report.frames_read} of {report.frames_requested}")
    if report.color_size:
        table.add_row("color / aligned depth", f"{report.color_size[0]}x{report.color_size[1]}")
    if report.color_intrinsics:
        i = report.color_intrinsics
        table.add_row("color intrinsics", f"fx={i.fx:.2f} fy={i.fy:.2f} ppx={i.ppx:.2f} ppy={i.ppy:.2f} {i.model}")
    if report.raw_streams:
        r = report.raw_streams
        table.add_row("raw depth stream", f"{r.depth.width}x{r.depth.height}@{r.depth_fps} {r.depth_format} "
                                          f"fx={r.depth.fx:.2f} fy={r.depth.fy:.2f}")
        table.add_row("raw color stream", f"{r.color.width}x{r.color.height}@{r.color_fps} {r.color_format}")
        table.add_row("depth-to-color extrinsics", "none registered" if r.depth_to_color is None else
                      "t=(" + ", ".join(f"{v * 1000:.1f}" for v in r.depth_to_color.translation_m) + ") mm")
    table.add_row("depth scale", f"{report.depth_scale_m:g} m/unit")
    table.add_row("valid depth", f"{report.valid_depth_fraction:.1%}")
    table.add_row("frame-number gaps", str(report.frame_number_gaps))
    table.add_row("counter went backwards", str(report.non_monotonic))
    table.add_row("sensor interval", "n/a (fewer than 2 frames)" if report.frames_read < 2 else
                  f"{report.sensor_interval_ms:.1f} ms ({report.sensor_fps:.1f} fps)")
    table.add_row("open / read time", f"{report.open_s:.2f} s / {report.read_s:.2f} s")
    stdout.print(table)


def devices(as_json: bool = typer.Option(False, "--json", help="Print the list as JSON.")) -> None:
    """List connected RealSense cameras: serial, model, firmware, USB type."""
    from edge.capture.realsense import list_devices

    found = list_devices()
    if as_json:
        stdout.print_json(json.dumps([{"serial": d.serial, "name": d.name, "firmware": d.firmware,
                                       "usb_type": d.usb_type, "product_line": d.product_line} for d in found]))
        return
    if not found:
        stdout.print("no RealSense camera found")
        return
    table = Table("serial", "model", "firmware", "USB")
    for d in found:
        usb = f"[bold red]{d.usb_type} (use USB 3)[/]" if d.usb2 else d.usb_type
        table.add_row(d.serial, d.name, d.firmware, usb)
    stdout.print(table)


def record(
    source: str = source_option("realsense", "--camera", cameras_only=True),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="Recording to write (.db3 with pyrealsense2 2.58+)."),
    seconds: float = typer.Option(10.0, "--seconds", callback=finite(above=0), help="How long to record."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Record raw depth and color from a live camera (replay later with bag:FILE through any filter chain)."""
    kind, serial = parse_spec(source)
    if not kind.physical:
        raise ConfigError(f"record needs a live camera (--source realsense[:SERIAL]), got '{source}'")
    from edge.capture.recorder import record_camera

    with Progress(TextColumn("recording"), BarColumn(), TimeRemainingColumn(), console=stderr,
                  disable=not stderr.is_terminal) as bar:
        task = bar.add_task("record", total=seconds)
        summary = record_camera(serial, out, seconds, progress=lambda elapsed: bar.update(task, completed=elapsed))
    if as_json:
        stdout.print_json(json.dumps(summary.to_dict()))
    else:
        stdout.print(f"recorded {summary.frames} framesets ({summary.seconds:.1f} s) from {summary.device} "
                     f"{summary.serial} to {summary.path}")


def register(app: typer.Typer) -> None:
    app.command("probe")(probe)
    app.command("devices")(devices)
    app.command("record")(record)
