"""``edgefas live``: decide live/spoof on every frame of a camera, recording or the synthetic world.

The command is the jetson-inference loop in a few lines: options to a :class:`LiveOptions`, a
session (source, model, policy), the sinks the options ask for (:mod:`edge.live.sinks`), the one
consumer loop (:func:`edge.live.loop.run_loop`, shared with the kiosk), a summary on stderr.
"""

from __future__ import annotations

import re
from pathlib import Path

import typer
from rich.console import Console

from edge.cli.options import (
    depth_filters_option,
    detector_option,
    frames_option,
    model_dir_option,
    model_option,
    roi_option,
    seed_option,
    source_option,
    threads_option,
)
from edge.errors import ConfigError
from edge.face.finder import check_detector
from edge.live.sinks import sinks_help


def _check_sha256(value: str | None) -> str | None:
    """A pin is 64 hex digits (``sha256sum MODEL``); an empty or short one would pin nothing or nothing
    that can match, so it is refused before the model loads."""
    if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise typer.BadParameter(f"'{value}' is not a sha256 (64 hex digits, as `sha256sum MODEL` prints)")
    return value


def live(
    source: str = source_option("synthetic:live", "--camera"),
    model: Path = model_option(help="ONNX model (default: the bundled synthetic-trained model)."),
    engine: Path = typer.Option(None, "--engine", help="A TensorRT engine (with its manifest) instead of --model."),
    headless: bool = typer.Option(False, "--headless", help="No window: one JSON object per frame on stdout."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per frame on stdout (also with a "
                                 "window)."),
    frames: int = frames_option(help="Stop after this many frames (default: until the source ends)."),
    record: Path = typer.Option(None, "--record", help="Also append every frame's decision as JSON lines to this "
                                "file (the sink record:PATH)."),
    sink: list[str] = typer.Option(None, "--sink", help=sinks_help()),
    seed: int = seed_option(),
    detector: str = detector_option(),
    model_dir: Path = model_dir_option(),
    threads: int = threads_option("Inference threads (default: the runner's choice)."),
    pace: bool = typer.Option(False, "--pace", help="Play software sources at camera speed (30 fps)."),
    capture_process: bool = typer.Option(False, "--capture-process", help="Read the camera in a child process; with "
                                         "--roi on (the default) the child also finds the face, filters and aligns "
                                         "its window's depth and crops it, so this process runs only the model and "
                                         "the decision (the depth filters hold Python's GIL, so a thread cannot "
                                         "overlap them); with --roi off it filters and aligns whole frames."),
    depth_filters: str = depth_filters_option(),
    roi: str = roi_option(),
    expect_sha256: str = typer.Option(None, "--expect-sha256", callback=_check_sha256,
                                      help="Refuse to start unless the model file has this sha256."),
) -> None:
    """Run the live pipeline: capture thread, face, crop, model, K-of-N decision policy."""
    from edge.live.loop import run_loop
    from edge.live.session import LiveOptions, LiveSession
    from edge.live.sinks import open_sinks

    if model is not None and engine is not None:
        raise ConfigError("give either --model or --engine, not both")
    check_detector(detector)
    opts = LiveOptions(spec=source, model=engine or model, expect_sha256=expect_sha256, frames=frames, seed=seed,
                       detector=detector, model_dir=model_dir, threads=threads, pace=pace,
                       capture_process=capture_process, depth_filters=depth_filters, face_first=roi == "on",
                       backend="tensorrt" if engine is not None else "auto")
    with LiveSession(opts) as session:
        summary = run_loop(session, open_sinks(requested_sinks(headless, as_json, record, sink)))
    Console(stderr=True).print(summary.describe())


def requested_sinks(headless: bool, as_json: bool, record: Path | None,
                    extra: list[str] | None) -> list[tuple[str, str]]:
    """``(sink spec, the option that asked for it)`` for every sink the options name, in the order
    each frame reaches them: JSON lines, the recording, ``--sink`` specs, then the window."""
    requested = [("json", "--json")] if headless or as_json else []
    if record is not None:
        requested.append((f"record:{record}", "--record"))
    requested += [(spec, "--sink") for spec in extra or ()]
    return requested if headless else [*requested, ("window", "--headless")]


def register(app: typer.Typer) -> None:
    app.command("live")(live)
