"""Any frame source read in a child process: capture, depth filters and alignment off the main process.

librealsense's processing blocks (spatial and temporal filters, ``rs.align``) run with the Python
GIL held, so a capture *thread* still takes turns with the face detector and the runner; on a
2-core board the filters then sit on the frame's critical path. :class:`ChildProcessSource` opens
the same source (``open_source(spec)``, or a recording with another filter chain) in a fresh
interpreter (``python -m edge.capture.child_process FD``) and receives finished
:class:`~edge.frames.RGBDFrame` objects over a socket pair, so filtering and alignment run on
another core in parallel with detection and inference.

Flow control: the parent grants the child ``prefetch`` frames of credit and returns one credit per
frame it takes, so at most ``prefetch`` frames are in flight (a recording played non-real-time
loses nothing; a live camera's own queue drops as it would in-process). Errors in the child (a
missing file, production mode refusing a camera, a stalled camera) arrive as the same one-line
:mod:`edge.errors` class an in-process source raises, so a :class:`~edge.errors.SourceError` is
retried by the watchdog and a :class:`~edge.errors.ProductionError` is not; a child that dies is a
``SourceError`` too, so the watchdog reconnects it like an unplugged camera.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import edge.errors
from edge.capture.source import ClosesOnExit, SourceOptions
from edge.errors import EdgefasError, SourceError
from edge.frames import RGBDFrame

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0  # opening in the child: interpreter start-up, imports, device open
STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class _Ready:
    describe: str


@dataclass(frozen=True)
class _Failed:
    message: str
    error: str = "SourceError"  # the class name in edge.errors, so the parent raises the same kind

    @classmethod
    def of(cls, err: EdgefasError) -> _Failed:
        return cls(str(err), type(err).__name__)

    def exception(self) -> EdgefasError:
        """The child's error as the parent raises it; a class outside edge.errors becomes a SourceError."""
        kind = getattr(edge.errors, self.error, None)
        if not (isinstance(kind, type) and issubclass(kind, EdgefasError)):
            kind = SourceError
        return kind(self.message)


_END = "end"
_CREDIT = "credit"
_STOP = "stop"


def _child_main(conn: Connection, spec: str, options: SourceOptions, filters: str | None) -> None:
    """Entry point of the child: open, then send frames while the parent grants credit."""
    from edge.capture.playback import open_with_filters

    try:
        source = open_with_filters(spec, options, filters)
    except EdgefasError as err:
        conn.send(_Failed.of(err))
        return
    try:
        conn.send(_Ready(source.describe()))
        credit = 0
        for frame in source:
            while credit == 0 or conn.poll():  # wait for credit; notice a stop between frames
                message = conn.recv()
                if message == _STOP:
                    return
                credit += message == _CREDIT
            conn.send(frame)
            credit -= 1
        conn.send(_END)
    except EdgefasError as err:
        conn.send(_Failed.of(err))
    except (BrokenPipeError, EOFError, KeyboardInterrupt):  # the parent went away or was interrupted
        pass
    finally:
        source.close()


class ChildProcessSource(ClosesOnExit):
    """``spec`` opened and read in a spawned child process (see the module docstring).

    ``filters`` names a depth filter chain (:data:`edge.capture.rs_pipeline.FILTER_CHAINS`) to use
    instead of ``options.depth_filters``; ``prefetch`` is how many frames may be in flight. The
    constructor returns once the child has opened the source, so a bad spec fails here with the
    child's one-line error.
    """

    def __init__(self, spec: str, options: SourceOptions | None = None, filters: str | None = None,
                 prefetch: int = 2) -> None:
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, got {prefetch}")
        self.spec, self.options, self.filters, self.prefetch = spec, options or SourceOptions(), filters, prefetch
        # A fresh interpreter (`python -m edge.capture.child_process FD`), not multiprocessing's fork (unsafe
        # with librealsense's threads) or spawn (it re-runs the caller's main script).
        ours, theirs = socket.socketpair()
        with theirs:
            # A crash inside librealsense kills the child with a signal; faulthandler puts the Python
            # stack of that moment on stderr (the service's journal) next to the SourceError.
            command = [sys.executable, "-X", "faulthandler", "-m", "edge.capture.child_process", str(theirs.fileno())]
            self._process = subprocess.Popen(command, pass_fds=(theirs.fileno(),))
        self._conn = Connection(ours.detach())
        self._closed = False
        self._conn.send((spec, self.options, filters))
        ready = self._receive(READY_TIMEOUT_S, "opening")
        if isinstance(ready, _Failed):
            self.close()
            raise ready.exception()
        if not isinstance(ready, _Ready):
            self.close()
            raise SourceError(f"{spec}: the capture process answered {type(ready).__name__} instead of ready")
        self._describe = ready.describe
        log.info("capture process pid=%s reads %s", self._process.pid, ready.describe)

    def describe(self) -> str:
        return f"{self._describe} process=pid{self._process.pid}"

    def _receive(self, timeout_s: float, doing: str) -> Any:
        try:
            if not self._conn.poll(timeout_s):
                raise SourceError(f"{self.spec}: the capture process sent nothing for {timeout_s:g} s while "
                                  f"{doing}; the camera or recording stalled")
            return self._conn.recv()
        except (EOFError, OSError):
            code = self._process.poll()
            raise SourceError(f"{self.spec}: the capture process ended unexpectedly (exit code {code}) while "
                              f"{doing}") from None

    def __iter__(self) -> Iterator[RGBDFrame]:
        # the child waits on timeout_s per frame itself; the margin covers a loaded machine
        wait_s = self.options.timeout_s + 10.0
        for _ in range(self.prefetch):
            self._grant()
        while not self._closed:
            item = self._receive(wait_s, "reading")
            if isinstance(item, RGBDFrame):
                self._grant()
                yield item
            elif isinstance(item, _Failed):
                raise item.exception()
            else:
                return  # _END: the source is exhausted

    def _grant(self) -> None:
        """One more frame of credit. A child that has already finished cannot take it; what it sent
        before finishing (its last frames, then the end or its error) is still read from the pipe,
        and a child that died without either is reported by :meth:`_receive`."""
        try:
            self._conn.send(_CREDIT)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._conn.send(_STOP)
        except (BrokenPipeError, OSError):
            pass
        # A child holding credit may be blocked writing a frame nobody will read (a frame is larger than
        # the socket's buffer); it only sees the stop message once that write completes, so read and
        # drop what arrives until it exits.
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while self._process.poll() is None and time.monotonic() < deadline:
            try:
                if self._conn.poll(0.05):
                    self._conn.recv()
            except (EOFError, OSError):
                break
        try:
            self._process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("capture process pid=%s did not stop within %g s; killing it", self._process.pid,
                        STOP_TIMEOUT_S)
            self._process.kill()
            self._process.wait(STOP_TIMEOUT_S)
        self._conn.close()


def _main(argv: list[str]) -> int:
    """The child: ``python -m edge.capture.child_process FD`` (FD is its end of the socket pair)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s capture-process: %(message)s")
    conn = Connection(int(argv[1]))
    try:
        spec, options, filters = conn.recv()
    except (EOFError, OSError):
        return 1
    _child_main(conn, spec, options, filters)
    conn.close()
    return 0


if __name__ == "__main__":
    # Run the imported module's copy, so that what the child pickles names edge.capture.child_process
    # classes, not __main__ ones the parent cannot resolve.
    from edge.capture.child_process import _main as main_of_module

    sys.exit(main_of_module(sys.argv))
