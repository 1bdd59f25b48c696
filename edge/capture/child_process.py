"""Any frame source read in a child process: capture, depth filters and alignment off the main process.

librealsense's processing blocks (spatial and temporal filters, ``rs.align``) run with the Python
GIL held, so a capture *thread* still takes turns with the face detector and the runner; on a
2-core board the filters then sit on the frame's critical path. :class:`ChildProcessSource` opens
the same source (``open_source(spec)``, or a recording with another filter chain) in a fresh
interpreter (``python -m edge.capture.child_process FD``) and receives finished
:class:`~edge.frames.RGBDFrame` objects over a socket pair, so filtering and alignment run on
another core in parallel with detection and inference.

With a :class:`StagingSpec` (face first, ``edgefas live --capture-process``) the child also does the
frame's model-free work: it reads raw depth, finds the face (window scans with scheduled full scans,
its own tracker), filters and aligns depth for the face's crop window and crops
(:class:`edge.face.staging.FacePreparer`), and sends each frame as a :class:`StagedFrame`: colour,
the window's depth, the face and the crop. The parent runs only the model and the decision policy.
Why: pyrealsense2's filters hold the GIL, so on a thread they stop the parent's Python; a process
does not (docs/capture-process.md).

Flow control: the parent grants the child ``prefetch`` frames of credit and returns one credit per
frame it takes, so at most ``prefetch`` frames are in flight (a recording played non-real-time
loses nothing; a live camera's own queue drops as it would in-process). Errors in the child (a
missing file, production mode refusing a camera, a stalled camera) arrive as the same one-line
:mod:`edge.errors` class an in-process source raises, so a :class:`~edge.errors.SourceError` is
retried by the watchdog and a :class:`~edge.errors.ProductionError` is not; a child that dies is a
``SourceError`` too, so the watchdog reconnects it like an unplugged camera.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import edge.errors
from edge.capture.source import ClosesOnExit, SourceOptions
from edge.errors import EdgefasError, SourceError
from edge.frames import RGBDFrame

if TYPE_CHECKING:
    from edge.face.face_first import ScanPolicy
    from edge.face.preprocess import PreprocessConfig
    from edge.face.staging import Staged

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


@dataclass(frozen=True)
class StagingSpec:
    """What a capture process needs to stage frames itself: the model's preprocessing contract, the
    face detector (a :data:`edge.face.finder.DETECTORS` name and its model folder) and the face-first
    scan policy. The source must be opened with ``SourceOptions.face_first`` (raw depth, aligned per window)."""

    preprocess: PreprocessConfig
    detector: str = "auto"
    model_dir: Path | None = None
    scan: ScanPolicy | None = None  # None: ScanPolicy()


@dataclass(frozen=True)
class StagedFrame:
    """A staged frame as it crosses the socket: the colour image, only the face window's depth (the
    rest of an aligned face-first frame is 0, "no data"), and the staging's results. :meth:`unpack`
    gives the :class:`~edge.face.staging.Staged` the parent's pipeline accepts."""

    fields: dict[str, Any]  # RGBDFrame's fields but depth_raw
    depth_patch: np.ndarray | None  # the depth inside staged.depth_window
    staged: Staged  # the staging's results, its frame left out (None): it travels as the two fields above

    @classmethod
    def pack(cls, staged: Staged) -> StagedFrame:
        frame = staged.frame
        fields = {f.name: getattr(frame, f.name) for f in dataclasses.fields(RGBDFrame) if f.name != "depth_raw"}
        window, patch = staged.depth_window, None
        if window is None and np.any(frame.depth_raw):  # a source that aligns whole frames (no pending depth)
            window = (0, 0, frame.depth_raw.shape[1], frame.depth_raw.shape[0])
        if window is not None:
            x0, y0, x1, y1 = window
            patch = np.ascontiguousarray(frame.depth_raw[y0:y1, x0:x1])
        return cls(fields, patch, dataclasses.replace(staged, frame=None, depth_window=window))

    def unpack(self) -> Staged:
        height, width = self.fields["color_bgr"].shape[:2]
        depth = np.zeros((height, width), np.uint16)
        window = self.staged.depth_window  # for a whole-frame source: the whole frame
        if window is not None and self.depth_patch is not None:
            x0, y0, x1, y1 = window
            depth[y0:y1, x0:x1] = self.depth_patch
        return dataclasses.replace(self.staged, frame=RGBDFrame(depth_raw=depth, **self.fields))


def _stager(staging: StagingSpec):
    """The child's :class:`~edge.face.staging.FacePreparer` and a function staging one frame into a
    :class:`StagedFrame` (its own monotonic stream of times for the scan schedule: a looped recording
    restarts its timestamps)."""
    from edge.face.face_first import ScanPolicy
    from edge.face.finder import open_face_finder
    from edge.face.staging import FacePreparer

    finder = open_face_finder(staging.detector, staging.model_dir, staging.preprocess.detect_width_px)
    preparer = FacePreparer(finder, staging.preprocess, staging.scan or ScanPolicy())
    last = [float("-inf")]

    def stage(frame: RGBDFrame) -> StagedFrame:
        t_ms = max(float(frame.t_ms), last[0] + 1e-3)  # as edge.live.clock.STEP_MS
        last[0] = t_ms
        return StagedFrame.pack(preparer.stage(frame, t_ms))

    return stage


_END = "end"
_CREDIT = "credit"
_STOP = "stop"


def _child_main(conn: Connection, spec: str, options: SourceOptions, filters: str | None,
                staging: StagingSpec | None = None) -> None:
    """Entry point of the child: open, then send frames (staged, with ``staging``) while the parent grants credit."""
    from edge.capture.playback import open_with_filters

    try:
        stage = _stager(staging) if staging is not None else None
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
            conn.send(frame if stage is None else stage(frame))
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
    instead of ``options.depth_filters``; ``prefetch`` is how many frames may be in flight. With
    ``staging`` (and ``options.face_first``) the child stages every frame and iteration yields
    :class:`~edge.face.staging.Staged` frames instead of :class:`~edge.frames.RGBDFrame`. The
    constructor returns once the child has opened the source (and the face detector), so a bad spec
    fails here with the child's one-line error.
    """

    def __init__(self, spec: str, options: SourceOptions | None = None, filters: str | None = None,
                 prefetch: int = 2, staging: StagingSpec | None = None) -> None:
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, got {prefetch}")
        options = options or SourceOptions()
        if staging is not None and not options.face_first:
            raise ValueError("staging in the capture process needs SourceOptions(face_first=True): raw depth, "
                             "aligned for the face's window")
        self.spec, self.options, self.filters, self.prefetch = spec, options, filters, prefetch
        self.staging = staging
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
        self._conn.send((spec, self.options, filters, staging))
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

    def __iter__(self) -> Iterator[RGBDFrame | Staged]:
        # the child waits on timeout_s per frame itself; the margin covers a loaded machine
        wait_s = self.options.timeout_s + 10.0
        for _ in range(self.prefetch):
            self._grant()
        while not self._closed:
            item = self._receive(wait_s, "reading")
            if isinstance(item, RGBDFrame):
                self._grant()
                yield item
            elif isinstance(item, StagedFrame):
                self._grant()
                yield item.unpack()
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
        spec, options, filters, staging = conn.recv()
    except (EOFError, OSError):
        return 1
    _child_main(conn, spec, options, filters, staging)
    conn.close()
    return 0


if __name__ == "__main__":
    # Run the imported module's copy, so that what the child pickles names edge.capture.child_process
    # classes, not __main__ ones the parent cannot resolve.
    from edge.capture.child_process import _main as main_of_module

    sys.exit(main_of_module(sys.argv))
