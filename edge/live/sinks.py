"""Where the live loop's decisions go: one :class:`Sink` protocol, and the table of sinks a user can name.

DESIGN §3 ends the frame path in "sinks": JSON lines, a preview window, a recording, the kiosk's
actuator, API and audit log. Each is a :class:`Sink`; :func:`edge.live.loop.run_loop` hands every
decided frame to every sink and closes them all in ``finally``. A sink a user can name is a row of
:data:`SINK_KINDS`, picked by :func:`open_sink` from a spec string, with the same table rendering
``--sink``'s help and the error for an unknown spec (the jetson-inference rule, STYLE.md). The kiosk's
sink (:class:`edge.kiosk.sink.KioskSink`) is built from kiosk.toml instead: it needs a started
service (actuator, signing key, API), which no spec string can carry.

Output formats are the product's interface: one line per frame, ``json.dumps(FrameResult.to_json(drops))``
with default separators, to stdout (flushed per line, for a pipe) or a file.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO, Protocol

from edge.errors import ConfigError
from edge.frames import RGBDFrame
from edge.live.pipeline import FrameResult

log = logging.getLogger(__name__)


class SinkError(ConfigError):
    """A sink could not be opened (an unknown spec, a file that cannot be written, no display): a
    mistake in how the command was called, so it exits 2 like any other usage error."""

    exit_code = 2


@dataclass(frozen=True)
class LiveEvent:
    """One decided frame as every sink sees it."""

    result: FrameResult
    frame: RGBDFrame | None  # the newest frame decided on (a fault has none of its own: the last one shown)
    drops: int  # frames the capture queue dropped so far

    @cached_property
    def json_line(self) -> str:
        """The frame's JSON line without its newline (made once, shared by every JSON sink)."""
        return json.dumps(self.result.to_json(self.drops))


class Sink(Protocol):
    """Takes decided frames; owns whatever it writes to until :meth:`close`."""

    def write(self, event: LiveEvent) -> bool:
        """Take one decided frame; return False to ask the loop to stop (a window's [q])."""
        ...

    def close(self, failure: BaseException | None = None) -> None:
        """Release what the sink holds; called once, in ``finally``. ``failure`` is the error that
        ended the loop (None: the source ended, ``--frames`` were decided, or a sink asked to stop),
        for a sink that must record it: the kiosk audits it and locks the door."""
        ...


class JsonLinesSink:
    """One JSON object per decided frame on a text stream, flushed per line (a pipe sees each frame)."""

    def __init__(self, stream: IO[str], owns_stream: bool) -> None:
        self.stream, self.owns_stream = stream, owns_stream

    def write(self, event: LiveEvent) -> bool:
        self.stream.write(event.json_line + "\n")
        self.stream.flush()
        return True

    def close(self, failure: BaseException | None = None) -> None:
        if self.owns_stream:
            self.stream.close()


class WindowSink:
    """An OpenCV highgui preview: face box, state, score against threshold, stage timings, fps and the
    spoof map (:func:`edge.live.overlay.draw_overlay`); [m] toggles the map, [q] stops the loop."""

    def __init__(self, name: str = "edgefas live") -> None:
        import cv2  # lazily: a headless run never touches highgui

        try:
            cv2.namedWindow(name, cv2.WINDOW_AUTOSIZE)
        except cv2.error:
            raise SinkError("this OpenCV build has no display support (opencv-python-headless); run with "
                            "--headless, or install opencv-python<5 for a window") from None
        self.name, self.show_map, self.fps = name, True, 0.0
        self._last = time.perf_counter()

    def write(self, event: LiveEvent) -> bool:
        import cv2

        from edge.live.overlay import draw_overlay

        now = time.perf_counter()
        rate = 1.0 / max(now - self._last, 1e-6)
        self.fps, self._last = (0.9 * self.fps + 0.1 * rate) if self.fps else rate, now  # smoothed for reading
        if event.frame is None:
            return True
        cv2.imshow(self.name, draw_overlay(event.frame.color_bgr, event.result, self.fps, self.show_map))
        key = cv2.waitKey(1) & 0xFF
        if key == ord("m"):
            self.show_map = not self.show_map
        return key != ord("q")

    def close(self, failure: BaseException | None = None) -> None:
        import cv2

        cv2.destroyWindow(self.name)


def _open_json(argument: str, option: str) -> Sink:
    if not argument:
        return JsonLinesSink(sys.stdout, owns_stream=False)
    return JsonLinesSink(_open_file(argument, "w", option), owns_stream=True)


def _open_record(argument: str, option: str) -> Sink:
    return JsonLinesSink(_open_file(argument, "a", option), owns_stream=True)


def _open_file(path: str, mode: str, option: str) -> IO[str]:
    try:
        return open(Path(path).expanduser(), mode, encoding="utf-8")
    except OSError as exc:
        raise SinkError(f"{option}: cannot write '{path}' ({exc.strerror or exc}); create its folder first or "
                        f"choose another path") from None


def _open_window(argument: str, option: str) -> Sink:
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        # without a display highgui may abort the process instead of raising; say what to do instead
        raise SinkError("no display for the preview window ($DISPLAY is not set); run with --headless")
    return WindowSink()


@dataclass(frozen=True)
class SinkKind:
    prefix: str
    form: str  # how a user writes it
    summary: str
    opener: Callable[[str, str], Sink]  # (argument, option as the user wrote it) -> Sink
    argument: str  # "none", "optional" or "required"


SINK_KINDS: tuple[SinkKind, ...] = (
    SinkKind("json", "json[:PATH]", "one JSON object per decided frame on stdout, or to a new file PATH",
             _open_json, "optional"),
    SinkKind("record", "record:PATH", "the same JSON lines appended to PATH (a log that grows across runs)",
             _open_record, "required"),
    SinkKind("window", "window", "an OpenCV preview window (key m toggles the spoof map, q quits)", _open_window,
             "none"),
)


def sinks_help() -> str:
    """Help text for a ``--sink`` option, rendered from :data:`SINK_KINDS`."""
    return "Where decisions go (repeatable): " + "; ".join(f"{k.form} = {k.summary}" for k in SINK_KINDS) + "."


def open_sink(spec: str, option: str = "--sink") -> Sink:
    """Open the sink named by ``spec`` (a :data:`SINK_KINDS` form); ``option`` is how the user asked
    for it, for the one-line :class:`SinkError` when it cannot open."""
    prefix, _, argument = spec.strip().partition(":")
    kind = next((k for k in SINK_KINDS if k.prefix == prefix), None)
    forms = ", ".join(k.form for k in SINK_KINDS)
    if kind is None:
        raise SinkError(f"{option}: unknown sink '{spec}'; use one of: {forms}")
    if (kind.argument == "required" and not argument) or (kind.argument == "none" and argument):
        raise SinkError(f"{option}: sink '{spec}' must be written {kind.form}")
    sink = kind.opener(argument, option)
    log.debug("sink=%s %s", kind.prefix, argument)
    return sink


def open_sinks(requests: Iterable[tuple[str, str]]) -> list[Sink]:
    """Open every ``(spec, option)`` in order; if one fails, those already open are closed first."""
    sinks: list[Sink] = []
    try:
        for spec, option in requests:
            sinks.append(open_sink(spec, option))
    except BaseException as exc:
        close_sinks(sinks, exc)
        raise
    return sinks


def close_sinks(sinks: Iterable[Sink], failure: BaseException | None = None) -> None:
    """Close every sink, even when one of them fails to close (the first such error is raised after)."""
    first: BaseException | None = None
    for sink in sinks:
        try:
            sink.close(failure)
        except Exception as exc:  # noqa: BLE001 - every sink must get its close; the error is not lost
            log.error("closing sink %s failed: %s", type(sink).__name__, exc)
            first = first or exc
    if first is not None and failure is None:
        raise first
