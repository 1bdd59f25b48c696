"""A live session: open the source under a watchdog, capture on a thread, decide on every frame.

The policy clock (:mod:`edge.live.clock`): a live camera is judged in wall-clock time; a software
source (synthetic or photo world, recording, folder) is judged in the stream's own time, in which
neither waiting for the renderer nor scoring takes any time, so a replayed scene gets the same
decisions however fast or loaded this machine is — which is what makes the end-to-end tests and
the benchmark repeatable.

Production mode (``LiveOptions.production``, set by the kiosk) travels in
:class:`~edge.capture.source.SourceOptions` to every source: the spec is checked before the model
loads, and a camera refuses an unfit device when it opens. A refusal, or any other error that is
not a camera fault (:class:`~edge.errors.SourceError`), ends the iteration by raising it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edge.capture.source import FrameSource, MetersExposure, SourceOptions, check_source, is_physical, open_source
from edge.capture.watchdog import Watchdog, WatchdogConfig, watch_source
from edge.digest import file_sha256
from edge.errors import ModelError, SourceError
from edge.face.face_first import ScanPolicy
from edge.face.preprocess import PreprocessConfig
from edge.face.staging import Staged
from edge.live.capture_thread import CaptureThread
from edge.live.clock import PolicyClock, clock_for
from edge.live.pipeline import FrameResult, LivePipeline
from edge.policy import PolicyConfig

log = logging.getLogger(__name__)


# tries to open a source before the session gives up with one line (no camera, a missing recording,
# a bad scenario): 3 tries span ~1.5 s of backoff, enough for a camera still enumerating after a replug
# (librealsense's hardware_reset docs: 2-5 s is the worst case, and systemd restarts the kiosk anyway)
OPEN_ATTEMPTS = 3


@dataclass(frozen=True)
class LiveOptions:
    spec: str = "synthetic:live"
    model: Path | None = None  # None: the bundled default model
    expect_sha256: str | None = None  # refuse to start unless the model file has this hash
    frames: int | None = None  # stop after this many decisions
    seed: int = 0
    stall_timeout_s: float = 2.0  # no frame for this long: "unknown" (camera stalled), and keep waiting
    queue_size: int = 2
    detector: str = "auto"
    model_dir: Path | None = None
    threads: int | None = None
    backend: str = "auto"
    policy: PolicyConfig = PolicyConfig()
    width: int = 640
    height: int = 480
    fps: int = 30
    pace: bool = False  # play software sources at camera speed instead of as fast as possible
    watchdog: bool = True
    loop: bool = False  # restart a finite source (recording, folder) at its end: soak tests
    capture_process: bool = False  # read, filter and align in a child process (edge.capture.child_process)
    depth_filters: str = "default"  # librealsense depth chain (SourceOptions.depth_filters)
    production: bool = False  # refuse software sources and unfit cameras (SourceOptions.production; the kiosk sets it)
    # face first (docs/face-first.md): detect in a window around the tracked face with scheduled full
    # scans, and filter/align depth for the face's crop window only; False: the whole frame, every frame
    face_first: bool = True


def resolve_model(options: LiveOptions) -> tuple[Path, str]:
    """The model path and its sha256; a pinned hash that differs refuses to start."""
    from engines.bundled import default_model_path

    path = Path(options.model) if options.model is not None else default_model_path()
    if not path.is_file():
        raise ModelError(f"model file '{path}' does not exist; pass --model PATH (an .onnx or .engine)")
    digest = file_sha256(path)
    if options.expect_sha256 and digest != options.expect_sha256.lower():
        raise ModelError(f"model '{path}' has sha256 {digest[:16]}… but {options.expect_sha256[:16]}… was pinned; "
                         f"the file was changed or replaced: restore it, or pin the new hash deliberately")
    return path, digest


class LiveSession:
    """Owns source, capture thread, runner and pipeline; iterate it for :class:`FrameResult`s."""

    def __init__(self, options: LiveOptions, source: FrameSource | None = None,
                 clock: PolicyClock | None = None) -> None:
        """``source`` replaces the one named by ``options.spec`` (fault-injection tests, benchmarks);
        ``clock`` replaces the clock rule (:func:`edge.live.clock.clock_for` the source's spec)."""
        from edge.face.finder import open_face_finder
        from engines.runner import open_runner

        self.options = options
        # face first: depth aligned per face window, in this process or (capture process) in the child,
        # which then also finds the face and crops it (edge.capture.child_process.StagingSpec)
        region_depth = options.face_first
        src_options = SourceOptions(seed=options.seed, width=options.width, height=options.height, fps=options.fps,
                                    timeout_s=options.stall_timeout_s, loop=options.loop,
                                    depth_filters=options.depth_filters, production=options.production,
                                    face_first=region_depth)
        spec = options.spec if source is None else source.spec
        if source is None or options.production:  # a given source gets no exemption from production mode
            check_source(spec, src_options)  # a user's mistake fails here, before the model loads or a watchdog loops
        self.clock = clock or clock_for(spec)
        self.model_path, self.model_sha256 = resolve_model(options)
        self.runner = open_runner(self.model_path, backend=options.backend, threads=options.threads)
        preprocess = PreprocessConfig.from_metadata(self.runner.contract)
        finder = open_face_finder(options.detector, options.model_dir, preprocess.detect_width_px)
        self.pipeline = LivePipeline(self.runner, finder, options.policy, preprocess, self.clock,
                                     face_first=ScanPolicy() if options.face_first else None)
        patience = WatchdogConfig(first_open_attempts=OPEN_ATTEMPTS)
        if source is not None:
            self.source = source
        elif options.capture_process:
            from edge.capture.child_process import ChildProcessSource, StagingSpec

            staging = (StagingSpec(preprocess, options.detector, options.model_dir, ScanPolicy())
                       if options.face_first else None)

            def opener() -> FrameSource:
                return ChildProcessSource(options.spec, src_options, prefetch=options.queue_size, staging=staging)

            self.source = Watchdog(opener, options.spec, patience) if options.watchdog else opener()
        elif options.watchdog:
            self.source = watch_source(options.spec, src_options, patience)
        else:
            self.source = open_source(options.spec, src_options)
        path = ("whole frame" if not options.face_first else "face first, staged in the capture process"
                if options.capture_process else "face first")
        log.info("policy clock=%s for %s; pipeline=%s", self.clock.name, spec, path)
        self.capture = CaptureThread(self.source, options.queue_size,
                                     pace_fps=options.fps if (options.pace and not is_physical(spec)) else None,
                                     arrival_ms=self.clock.now_ms,
                                     # face first in this process: the detection image is made on the capture thread
                                     on_frame=None if options.capture_process else self.pipeline.capture_hook(options.queue_size))
        self.decisions = 0
        self.last_frame = None  # the newest frame decided on, for a preview window

    @property
    def drops(self) -> int:
        return self.capture.dropped

    def health_line(self) -> str:
        health = getattr(self.source, "health", None)
        return health.state.value if health is not None else ("ended" if self.capture.ended.is_set() else "ok")

    def __iter__(self) -> Iterator[FrameResult]:
        opts, clock = self.options, self.clock
        # asked once, not per frame: a runtime Protocol check inspects the object's attributes
        meter = self.source.set_exposure_roi if isinstance(self.source, MetersExposure) else None
        self.capture.start()
        while opts.frames is None or self.decisions < opts.frames:
            waited, waited_wall = clock.now_ms(), time.perf_counter()
            item = self.capture.get(opts.stall_timeout_s)
            capture_ms = clock.now_ms() - waited  # stream time stands still while waiting for a renderer
            wait_ms = (time.perf_counter() - waited_wall) * 1000.0  # reported in stage_ms, never judged
            if item is None:
                if self.capture.finished:
                    failure = self.capture.failure
                    if failure is not None and not isinstance(failure, SourceError):
                        raise failure  # a refusal or a configuration problem: reconnecting cannot fix it
                    if failure is not None:  # the source failed for good: say so once, fail closed
                        yield self.pipeline.fault(clock.stall_time(1.0), f"camera fault: {failure}")
                        self.decisions += 1
                    return
                reason = self.capture.error or f"camera stalled: no frame for {opts.stall_timeout_s:g} s"
                yield self.pipeline.fault(clock.stall_time(opts.stall_timeout_s * 1000.0), reason)
                self.decisions += 1
                continue
            staged = item.frame if isinstance(item.frame, Staged) else None  # staged in the capture process
            frame = item.frame if staged is None else staged.frame
            t_ms, age = clock.frame_time(frame.t_ms, item.arrived_ms)
            if staged is None:
                result = self.pipeline.process(frame, t_ms, capture_ms, age, wait_ms)
            else:  # the child's staging happened before the frame arrived: it is part of the frame's age
                age += clock.work_ms(sum(staged.stage_ms.values()))
                result = self.pipeline.process_staged(staged, t_ms, capture_ms, age, wait_ms)
            self.last_frame = result.frame if result.frame is not None else frame
            self.decisions += 1
            if result.face is not None and meter is not None:
                face = result.face  # the camera rate-limits these itself (a USB control transfer each)
                meter((face.x0, face.y0, face.x1, face.y1))
            yield result

    def close(self) -> None:
        self.capture.stop()
        self.runner.close()

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
