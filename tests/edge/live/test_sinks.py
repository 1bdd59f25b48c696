"""Sinks and the one consumer loop: output formats, closing in ``finally``, one-line errors (exit 2).

The loop is driven by a scripted stream of hand-made decisions, so nothing here depends on a model,
a renderer or how fast this machine is; one test runs the real command to check the exit code.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from edge.cli.app import app
from edge.errors import SourceError
from edge.live.loop import run_loop
from edge.live.pipeline import FrameResult
from edge.live.sinks import SINK_KINDS, LiveEvent, SinkError, open_sink, open_sinks
from edge.policy import Decision


def result(i: int, state: str = "unknown") -> FrameResult:
    decision = Decision(state, "collecting" if state == "unknown" else state, f"frame {i}", 33.3 * i,
                        score=0.25, threshold=0.5, attempt_id=1, track_id=1)
    return FrameResult(i, 33.3 * i, None, None, 0.25, decision, {"capture": 0.5, "detect": 1.25})


class ScriptedStream:
    """Stands in for a LiveSession: yields the given results (an exception in the list is raised)."""

    def __init__(self, items, drops: int = 0) -> None:
        self.items, self.drops, self.last_frame = items, drops, None

    def __iter__(self):
        for item in self.items:
            if isinstance(item, BaseException):
                raise item
            yield item


class Probe:
    """A sink that remembers what it saw and how it was closed."""

    def __init__(self, stop_after: int | None = None, close_error: Exception | None = None) -> None:
        self.seen, self.closed, self.stop_after, self.close_error = [], [], stop_after, close_error

    def write(self, event: LiveEvent) -> bool:
        self.seen.append(event.result.frame_number)
        return self.stop_after is None or len(self.seen) < self.stop_after

    def close(self, failure=None) -> None:
        self.closed.append(failure)
        if self.close_error is not None:
            raise self.close_error


def test_json_and_record_lines_are_byte_for_byte_the_frame_json(tmp_path, capsys):
    record = tmp_path / "decisions.jsonl"
    record.write_text("earlier run\n", encoding="utf-8")
    fresh = tmp_path / "fresh.jsonl"
    fresh.write_text("overwritten\n", encoding="utf-8")
    results = [result(0), result(1, "live"), result(2, "spoof")]
    sinks = open_sinks([("json", "--json"), (f"record:{record}", "--record"), (f"json:{fresh}", "--sink")])
    summary = run_loop(ScriptedStream(results, drops=4), sinks)
    expected = "".join(json.dumps(r.to_json(4)) + "\n" for r in results)  # the format `live --json` always wrote
    assert capsys.readouterr().out == expected
    assert record.read_text(encoding="utf-8") == "earlier run\n" + expected  # a recording appends
    assert fresh.read_text(encoding="utf-8") == expected  # json:PATH starts a new file
    assert summary.counts == {"live": 1, "spoof": 1, "unknown": 1}
    assert summary.describe() == "3 frames: live 1, spoof 1, unknown 1; 4 dropped by the capture queue"


def test_a_sink_that_asks_to_stop_ends_the_loop_after_every_sink_saw_that_frame():
    quitter, other = Probe(stop_after=2), Probe()
    summary = run_loop(ScriptedStream([result(i) for i in range(5)]), [quitter, other])
    assert quitter.seen == other.seen == [0, 1] and summary.frames == 2
    assert quitter.closed == other.closed == [None]


def test_a_failing_stream_closes_every_sink_once_tells_it_why_and_reraises():
    fault = SourceError("camera unplugged")
    first, second = Probe(close_error=RuntimeError("close failed")), Probe()
    with pytest.raises(SourceError, match="camera unplugged"):
        run_loop(ScriptedStream([result(0), fault]), [first, second])
    assert first.seen == second.seen == [0]
    assert first.closed == [fault] and second.closed == [fault]  # the second is closed although the first failed


def test_a_close_error_after_a_clean_run_is_not_swallowed():
    first, second = Probe(close_error=RuntimeError("close failed")), Probe()
    with pytest.raises(RuntimeError, match="close failed"):
        run_loop(ScriptedStream([result(0)]), [first, second])
    assert second.closed == [None]


def test_the_stop_event_ends_the_loop():
    import threading

    stop = threading.Event()
    stop.set()
    probe = Probe()
    assert run_loop(ScriptedStream([result(i) for i in range(3)]), [probe], stop).frames == 1
    assert probe.seen == [0] and probe.closed == [None]


@pytest.mark.parametrize("spec", ["foo", "window:big", "record", "websocket:8080"])
def test_a_bad_sink_spec_is_one_line_listing_every_form_and_exits_2(spec):
    with pytest.raises(SinkError) as err:
        open_sink(spec, "--sink")
    message = str(err.value)
    assert "\n" not in message and "--sink" in message and spec in message
    if spec in ("foo", "websocket:8080"):
        for kind in SINK_KINDS:
            assert kind.form in message
    assert err.value.exit_code == 2


def test_open_sinks_closes_the_sinks_already_open_when_a_later_one_fails(tmp_path, monkeypatch):
    from edge.live import sinks as sinks_module

    closed = []
    monkeypatch.setattr(sinks_module.JsonLinesSink, "close", lambda self, failure=None: closed.append(failure))
    with pytest.raises(SinkError, match="unknown sink 'nope'"):
        open_sinks([(f"record:{tmp_path / 'a.jsonl'}", "--record"), ("nope", "--sink")])
    assert len(closed) == 1 and isinstance(closed[0], SinkError)


def test_a_window_without_a_display_is_one_line_not_a_crash(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(SinkError, match="run with --headless"):
        open_sink("window", "--sink")


def test_record_into_a_missing_folder_is_one_line_and_exit_2(tmp_path):
    target = tmp_path / "no" / "such" / "dir" / "x.jsonl"
    argv = ["live", "--headless", "--frames", "1", "--threads", "1", "--detector", "haar", "--record", str(target)]
    via_runner = CliRunner().invoke(app, argv)
    assert isinstance(via_runner.exception, SinkError), via_runner.output
    assert "--record" in str(via_runner.exception) and str(target) in str(via_runner.exception)
    assert '"frame"' not in via_runner.stdout  # the run never started
    out = subprocess.run([sys.executable, "-m", "edge.cli.app", *argv], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--record" in errors[0] and "create its folder" in errors[0], out.stderr
    assert not target.parent.exists()


@pytest.mark.parametrize("console", [False, True])
def test_kiosk_sink_hands_each_decision_to_the_service_and_finishes_it(console):
    from edge.kiosk.sink import KioskSink

    class Feed:  # the installer console's feed: offered every event, when the console is on
        def __init__(self) -> None:
            self.offered = []

        def offer(self, event) -> None:
            self.offered.append(event.result.decision.attempt_id)

    class Service:
        def __init__(self) -> None:
            self.calls = []
            self.feed = Feed() if console else None

        def begin(self) -> None:
            self.calls.append("begin")

        def handle(self, decision, context) -> None:
            self.calls.append((decision.state, decision.attempt_id, context.model_sha256, context.camera_serial))

        def finish(self, failure=None) -> None:
            self.calls.append(("finish", failure))

    service = Service()
    sink = KioskSink(service, "ab" * 32, "synthetic:live")
    results = [result(0), result(1, "live"), result(2, "live")]  # one attempt granted on two frames
    summary = run_loop(ScriptedStream(results), [sink])
    assert service.calls[0] == "begin" and service.calls[-1] == ("finish", None)
    assert [c[0] for c in service.calls[1:-1]] == ["unknown", "live", "live"]
    assert service.calls[1][2:] == ("ab" * 32, "synthetic:live")
    assert sink.handled == summary.frames == 3 and sink.grants == 1
    if console:
        assert service.feed.offered == [r.decision.attempt_id for r in results]


def test_window_keys_toggle_the_map_and_quit(monkeypatch):
    """The window's key handling, with highgui replaced by a stand-in (no display on a test machine)."""
    import types

    import numpy as np

    import edge.live.overlay  # noqa: F401 - draws with the real OpenCV, imported before the stand-in
    from edge.live.sinks import WindowSink

    keys, shown, destroyed = iter([ord("m"), -1, ord("q")]), [], []
    fake = types.SimpleNamespace(error=RuntimeError, WINDOW_AUTOSIZE=1, namedWindow=lambda name, flags: None,
                                 imshow=lambda name, img: shown.append(img.shape), waitKey=lambda ms: next(keys),
                                 destroyWindow=destroyed.append)
    monkeypatch.setitem(sys.modules, "cv2", fake)
    window = WindowSink()
    frame = types.SimpleNamespace(color_bgr=np.zeros((48, 64, 3), np.uint8))
    event = LiveEvent(result(0), frame, 0)
    assert window.write(LiveEvent(result(0), None, 0)) is True and shown == []  # nothing decided on yet
    assert window.write(event) is True and window.show_map is False  # [m]
    assert window.write(event) is True and window.show_map is False
    assert window.write(event) is False  # [q]
    window.close()
    assert shown == [(48, 64, 3)] * 3 and destroyed == ["edgefas live"]
