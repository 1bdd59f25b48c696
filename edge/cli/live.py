"""``edgefas live``: decide live/spoof on every frame of a camera, recording or the synthetic world."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer
from rich.console import Console

from edge.capture.source import sources_help
from edge.errors import ConfigError
from edge.face.finder import check_detector, detectors_help


def live(
    camera: str = typer.Option("synthetic:live", "--camera", help=sources_help()),
    model: Path = typer.Option(None, "--model", help="ONNX model (default: the bundled synthetic-trained model)."),
    engine: Path = typer.Option(None, "--engine", help="A TensorRT engine (with its manifest) instead of --model."),
    headless: bool = typer.Option(False, "--headless", help="No window: one JSON object per frame on stdout."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per frame on stdout (also with a window)."),
    frames: int = typer.Option(None, "--frames", min=1, help="Stop after this many frames (default: until the source ends)."),
    record: Path = typer.Option(None, "--record", help="Also append every frame's decision as JSON lines to this file."),
    seed: int = typer.Option(0, "--seed", help="Seed of a synthetic source."),
    detector: str = typer.Option("auto", "--detector", help=detectors_help()),
    model_dir: Path = typer.Option(None, "--model-dir", help="Folder with the YuNet model (see `edgefas models`)."),
    threads: int = typer.Option(None, "--threads", min=1, help="Inference threads (default: the runner's choice)."),
    pace: bool = typer.Option(False, "--pace", help="Play software sources at camera speed (30 fps)."),
    capture_process: bool = typer.Option(False, "--capture-process", help="Read the camera, filter and align depth "
                                         "in a child process, in parallel with detection and the model (the "
                                         "depth filters hold Python's GIL, so a thread cannot overlap them)."),
    depth_filters: str = typer.Option("default", "--depth-filters", help="librealsense depth filters of a "
                                      "camera or recording: default (spatial + temporal), decimate2 (2x decimation "
                                      "first: ~10 ms less per 640x480 frame, not validated on real faces) or raw."),
    expect_sha256: str = typer.Option(None, "--expect-sha256", help="Refuse to start unless the model file has this sha256."),
) -> None:
    """Run the live pipeline: capture thread, face, crop, model, K-of-N decision policy."""
    from edge.live.session import LiveOptions, LiveSession

    from edge.capture.rs_pipeline import filter_chain

    if model is not None and engine is not None:
        raise ConfigError("give either --model or --engine, not both")
    check_detector(detector)
    filter_chain(depth_filters, "--depth-filters")
    opts = LiveOptions(spec=camera, model=engine or model, expect_sha256=expect_sha256, frames=frames, seed=seed,
                       detector=detector, model_dir=model_dir, threads=threads, pace=pace,
                       capture_process=capture_process, depth_filters=depth_filters,
                       backend="tensorrt" if engine is not None else "auto")
    window = None if headless else _open_window()
    emit = headless or as_json
    log_file = open(record, "a", encoding="utf-8") if record is not None else None
    counts = {"live": 0, "spoof": 0, "unknown": 0}
    show_map, fps, last = True, 0.0, time.perf_counter()
    try:
        with LiveSession(opts) as session:
            for result in session:
                now = time.perf_counter()
                fps = 0.9 * fps + 0.1 / max(now - last, 1e-6) if fps else 1.0 / max(now - last, 1e-6)
                last = now
                counts[result.decision.state] += 1
                line = json.dumps(result.to_json(session.drops))
                if emit:
                    sys.stdout.write(line + "\n")
                    sys.stdout.flush()
                if log_file is not None:
                    log_file.write(line + "\n")
                if window is not None and session.capture is not None:
                    key = _show(window, result, fps, show_map, session)
                    if key == ord("q"):
                        break
                    if key == ord("m"):
                        show_map = not show_map
            drops = session.drops
    finally:
        if log_file is not None:
            log_file.close()
        if window is not None:
            import cv2

            cv2.destroyAllWindows()
    summary = ", ".join(f"{k} {v}" for k, v in counts.items())
    Console(stderr=True).print(f"{sum(counts.values())} frames: {summary}; {drops} dropped by the capture queue")


def _open_window() -> str:
    import cv2

    name = "edgefas live"
    try:
        cv2.namedWindow(name, cv2.WINDOW_AUTOSIZE)
    except cv2.error:
        raise ConfigError("this OpenCV build has no display support (opencv-python-headless); run with --headless, "
                          "or install opencv-python<5 for a window") from None
    return name


def _show(window: str, result, fps: float, show_map: bool, session) -> int:
    import cv2

    from edge.live.overlay import draw_overlay

    frame = session.last_frame
    if frame is None:
        return -1
    cv2.imshow(window, draw_overlay(frame.color_bgr, result, fps, show_map))
    return cv2.waitKey(1) & 0xFF


def register(app: typer.Typer) -> None:
    app.command("live")(live)
