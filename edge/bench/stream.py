"""The timed frame loop: one source, several contestants taking turns in blocks of frames.

Frames are handed out in blocks (``block`` frames to A, then ``block`` to B, ... and round again), so
every contestant meets the same stretches of the stream and the same moments of the machine: a slow
spell (thermal throttling, another job) hits all rows alike, and ratios between rows hold even when
absolute numbers drift. Each contestant has its own :class:`~edge.live.pipeline.LivePipeline`
(finder, tracker, policy), exactly as ``edgefas live`` would build it from that model's contract, and
a block gives its tracker consecutive frames, as a camera would.

Why blocks, not single frames: in the overlapped and process modes one producer feeds every row. A
row that follows a slower row finds frames already waiting, a row that follows a faster one finds
the producer behind, so with single-frame hand-out a row's frame rate depended on its neighbour
(measured: the INT8 row read 0.75-0.82x the fp32 row in process mode, equal when run alone). The
first ``settle`` frames of each block in those modes (the prefetched ones and the one after) are
processed but not timed; what remains is the row's own throughput.

A block as long as a looped recording (the bench's default for synthetic scenes) gives every row the
very same frames: each block starts at the same place in the loop. Shorter blocks give rows
different stretches, and so different shares of frames with a face (a frame without one skips crop
and inference), which made rows differ by 0.71 against 0.96 of frames with a face in one run.

Five modes:

- ``sequential``: one thread reads, aligns, detects, crops, infers and decides; the stage times add
  up to the frame interval, which makes it the mode for the per-stage breakdown.
- ``overlapped``: the read and the depth filters/alignment run on a capture thread that prefetches
  the next frames into a small blocking queue while the main thread works on the current one (the
  shape of ``edgefas live``'s capture thread). Its frame interval is the pipeline's real throughput;
  ``capture`` is then the time the main thread waited for a frame and ``align`` ran concurrently.
- ``process``: the same, with the source read, filtered and aligned in a child process
  (``edgefas live --capture-process``): librealsense's filters hold the GIL, so on a thread they
  still take turns with detection; in a child they run on the other core.

- ``pipelined``: overlapped, and the crop and the model run on their own thread one frame behind
  detection and face depth (:class:`edge.live.model_thread.ModelThread`): ONNX Runtime and OpenCV
  release the GIL, so the crop and model of frame n and the host work of frame n+1 share two cores;
- ``one-thread``: sequential, with every runner at one intra-op thread and OpenCV at one thread:
  what a machine with one free core gets (issue 15: a loaded kiosk board).

Face-first rows (``Contestant.face_first``, docs/face-first.md) read their own source, opened with
``SourceOptions.face_first``: it hands out raw depth and the row's pipeline filters and aligns the
face window itself (in the overlapped and pipelined modes the capture thread also makes each frame's
detection image, :class:`edge.face.face_first.Lookahead`, as ``edgefas live``'s capture thread can);
full-frame rows read a source that filters and aligns the whole frame, as today. Both play the same
recording in the same blocks, so their ratio is measured side by side.
In process mode a face-first row's child does all of that work before the frame crosses: it finds
the face (its own tracker and scan schedule), aligns the window's depth and crops
(:class:`edge.capture.child_process.StagingSpec`, as ``edgefas live --capture-process`` does); the
parent runs the model and the policy. The face-first rows of one run then share the child's face
finding (one stream, one finder, as one camera has), so they must share one preprocessing contract.
Their ``detect``, ``region`` and ``crop`` columns are the child's time, spent in parallel with the
parent; the parent's own host time is the frame interval less inference.

The queue blocks instead of dropping (unlike the live capture queue): a recording played
non-real-time must not lose frames, and the measured rate is then the most the pipeline sustains.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.bench.contestants import Contestant
from edge.bench.stages import FrameTiming
from edge.errors import EdgefasError, SourceError
from edge.face.staging import Staged
from edge.frames import RGBDFrame

log = logging.getLogger(__name__)

MODES = ("sequential", "overlapped", "process", "pipelined", "one-thread")
DEFAULT_BLOCK = 32  # about a second of frames


@dataclass(frozen=True)
class StreamOptions:
    frames: int = 300  # timed frames per contestant
    warmup: int = 30  # untimed frames per contestant before timing (allocations, caches, ORT arenas)
    mode: str = "sequential"
    detector: str = "auto"
    model_dir: Path | None = None
    queue_size: int = 2  # frames the capture thread (or child process) may prefetch
    block: int = DEFAULT_BLOCK  # consecutive frames one contestant gets before the next takes over
    stall_timeout_s: float = 5.0  # no frame for this long ends the run with a SourceError
    # one of FILTER_CHAINS; anything but "default" needs a realsense or bag: source. Checked once: by
    # --depth-filters (a DepthChain), or for a plain name when the source opens (check_source)
    filters: str = "default"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"StreamOptions.mode must be one of {MODES}, got {self.mode!r}")
        if self.frames < 1 or self.warmup < 0 or self.queue_size < 1:
            raise ValueError(f"StreamOptions needs frames >= 1, warmup >= 0, queue_size >= 1; got "
                             f"{self.frames}, {self.warmup}, {self.queue_size}")
        if self.block <= self.settle:
            raise ValueError(f"StreamOptions.block must exceed the {self.settle} untimed frames that open a "
                             f"block in {self.mode} mode, got {self.block}")

    @property
    def settle(self) -> int:
        """Untimed frames at the start of each block: prefetched ones plus one (none when sequential)."""
        return 0 if self.mode in ("sequential", "one-thread") else self.queue_size + 1


def hand_out(contestants: int, options: StreamOptions) -> Iterator[tuple[int, bool]]:
    """(contestant index, timed) for every frame of a run, in order.

    First ``warmup`` untimed frames per contestant (one block each), then blocks of ``options.block``
    frames round-robin, the first ``options.settle`` of each untimed, until every contestant has
    ``options.frames`` timed frames (the last block of a contestant is cut short there).
    """
    if contestants < 1:
        raise ValueError(f"hand_out needs at least one contestant, got {contestants}")
    for k in range(contestants):
        for _ in range(options.warmup):
            yield k, False
    timed = [0] * contestants
    while min(timed) < options.frames:
        for k in range(contestants):
            if timed[k] >= options.frames:
                continue
            for position in range(options.block):
                if position < options.settle:
                    yield k, False
                    continue
                yield k, True
                timed[k] += 1
                if timed[k] >= options.frames:
                    break


@dataclass(frozen=True)
class StreamRun:
    """Timed frames per contestant label, the hand-out order and the wall time of the timed part."""

    mode: str
    order: tuple[str, ...]  # label of every timed frame in the order it was processed
    timings: dict[str, list[FrameTiming]]
    wall_s: float
    faces_in_view: int  # the most faces found in one frame (any contestant)
    restarts: int = 0  # frames left out of the statistics because a looped recording restarted before them


_END = object()


class _Prefetcher:
    """Reads ``frames`` on a thread into a blocking queue of ``size`` frames (the capture thread)."""

    def __init__(self, frames: Iterator[RGBDFrame], size: int,
                 on_frame: Callable[[RGBDFrame], None] | None = None) -> None:
        self._frames = frames
        self._on_frame = on_frame  # work done here for every frame read (face first: the detection view)
        self._queue: queue.Queue = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        self.error: EdgefasError | None = None
        self._thread = threading.Thread(target=self._run, name="edgefas-bench-capture", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                frame = next(self._frames, None)
                if frame is not None and self._on_frame is not None:
                    self._on_frame(frame)
                if frame is None or not self._put(frame):
                    break
        except EdgefasError as err:
            self.error = err
        finally:
            self._put(_END)

    def get(self, timeout_s: float) -> RGBDFrame | None:
        try:
            item = self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None
        return None if item is _END else item

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


def open_bench_source(spec: str, source_options, filters: str, process: bool = False, prefetch: int = 2,
                      staging=None):
    """``spec`` through the named depth filter chain (``edge.capture.playback.open_with_filters``); with
    ``process``, the same opened and read in a child process (:mod:`edge.capture.child_process`) with
    ``prefetch`` frames in flight, staging each frame there with ``staging`` (a ``StagingSpec``)."""
    if process:
        from edge.capture.child_process import ChildProcessSource

        return ChildProcessSource(spec, source_options, filters=filters, prefetch=prefetch, staging=staging)
    from edge.capture.playback import open_with_filters

    return open_with_filters(spec, source_options, filters)


@dataclass
class _Feed:
    """One opened source (full-frame or face-first) and how it is read in this mode."""

    source: object
    frames: Iterator[RGBDFrame]
    prefetch: _Prefetcher | None
    last_number: int = -1

    def next(self, timeout_s: float) -> RGBDFrame | None:
        if self.prefetch is None:
            return next(self.frames, None)
        frame = self.prefetch.get(timeout_s)
        if frame is None and self.prefetch.error is not None:
            raise self.prefetch.error
        return frame

    def close(self) -> None:
        if self.prefetch is not None:
            self.prefetch.stop()
        self.source.close()


def _pipelines(contestants: Sequence[Contestant], options: StreamOptions) -> list:
    from edge.face.face_first import ScanPolicy
    from edge.face.finder import open_face_finder
    from edge.face.preprocess import PreprocessConfig
    from edge.live.pipeline import LivePipeline

    pipelines = []
    for contestant in contestants:
        runner = contestant.single_runner if options.mode == "one-thread" else contestant.runner
        if runner is None:
            raise ValueError(f"{contestant.label} has no one-thread runner (open_contestants(single_thread=True))")
        preprocess = PreprocessConfig.from_metadata(runner.contract)
        finder = open_face_finder(options.detector, options.model_dir, preprocess.detect_width_px)
        pipelines.append(LivePipeline(runner, finder, preprocess=preprocess,
                                      face_first=ScanPolicy() if contestant.face_first else None))
    return pipelines


def _staging(pipelines: Sequence, options: StreamOptions):
    """The child's staging for the face-first rows of process mode: one finder for the stream, so the
    rows must share one preprocessing contract."""
    from edge.capture.child_process import StagingSpec

    configs = {p.preprocess for p in pipelines if p.face_first is not None}
    if len(configs) != 1:
        raise ValueError("process mode stages face-first frames once in the child: the face-first models of "
                         "one run must share one preprocessing contract; bench them in separate runs")
    return StagingSpec(configs.pop(), options.detector, options.model_dir)


def _lookahead(pipelines: Sequence) -> Callable[[RGBDFrame], None] | None:
    """For a capture thread: make every frame's detection view for the face-first pipelines there, off
    the main thread (:class:`edge.face.face_first.Lookahead`; one per detection width)."""
    from edge.face.face_first import Lookahead

    lookaheads: dict[int, Lookahead] = {}
    for pipeline in pipelines:
        finder = pipeline.face_first
        if finder is not None:
            width = finder.finder.detect_width_px
            finder.lookahead = lookaheads.setdefault(width, Lookahead(width))
    if not lookaheads:
        return None

    def prepare(frame: RGBDFrame) -> None:
        for lookahead in lookaheads.values():
            lookahead.prepare(frame.color_bgr)

    return prepare


def _drained(thread, flight: list[tuple]) -> list[tuple]:
    """The frame in flight on ``thread``, decided, as a result row (none when nothing is in flight)."""
    done = thread.drain()
    return [(*flight.pop(0), done)] if done is not None and flight else []


def run_stream(spec: str, contestants: Sequence[Contestant], options: StreamOptions,
               progress: Callable[[int, int], None] | None = None) -> StreamRun:
    """Play ``spec`` (looping a recording) until every contestant has ``options.frames`` timed frames."""
    import cv2

    from edge.capture.source import SourceOptions

    if not contestants:
        raise ValueError("run_stream needs at least one contestant")
    pipelines = _pipelines(contestants, options)
    schedule = list(hand_out(len(contestants), options))
    warm, total = options.warmup * len(contestants), len(schedule)
    in_child = options.mode == "process"
    feeds: dict[bool, _Feed] = {}
    timings: dict[str, list[FrameTiming]] = {c.label: [] for c in contestants}
    order: list[str] = []
    last_t = [float("-inf")] * len(contestants)
    cv_threads = cv2.getNumThreads()
    threads = None
    if options.mode == "pipelined":
        from edge.live.model_thread import ModelThread

        threads = [ModelThread(p) for p in pipelines]
    current: int | None = None
    flight: list[tuple] = []  # (k, timed, restarted, capture_ms, align_ms) of the frame the model has
    counts = {"most_faces": 0, "restarts": 0}
    end_prev = started = time.perf_counter()

    def record(row: tuple, end: float) -> None:
        """Book one decided frame: (contestant, timed, restarted, capture ms, align ms, FrameResult)."""
        nonlocal end_prev
        k_done, timed_done, restarted_done, capture_done, align_done, result = row
        counts["most_faces"] = max(counts["most_faces"], result.faces_in_view)
        if timed_done and restarted_done:
            counts["restarts"] += 1
        elif timed_done:
            stage_ms = {"capture": capture_done, "align": align_done}
            stage_ms.update({s: v for s, v in result.stage_ms.items() if s != "capture"})
            label = contestants[k_done].label
            timings[label].append(FrameTiming(stage_ms, (end - end_prev) * 1000.0, result.face is not None,
                                              result.faces_in_view))
            order.append(label)
        end_prev = end

    try:
        for face_first in sorted({c.face_first for c in contestants}):
            source_options = SourceOptions(loop=True, timeout_s=options.stall_timeout_s, face_first=face_first)
            staging = _staging(pipelines, options) if in_child and face_first else None
            source = open_bench_source(spec, source_options, options.filters, process=in_child,
                                       prefetch=options.queue_size, staging=staging)
            log.info("bench source=%s mode=%s path=%s", source.describe(), options.mode,
                     "face-first" if face_first else "full-frame")
            frames = iter(source)
            prefetch = (_Prefetcher(frames, options.queue_size, _lookahead(pipelines) if face_first else None)
                        if options.mode in ("overlapped", "pipelined") else None)
            feeds[face_first] = _Feed(source, frames, prefetch)
        log.info("bench contestants=%s", ", ".join(c.label for c in contestants))
        if options.mode == "one-thread":
            cv2.setNumThreads(1)
        end_prev = started = time.perf_counter()
        for index, (k, timed) in enumerate(schedule):
            if index == warm:
                end_prev = started = time.perf_counter()
            feed = feeds[contestants[k].face_first]
            wait_start = time.perf_counter()
            frame = feed.next(options.stall_timeout_s)
            waited_ms = (time.perf_counter() - wait_start) * 1000.0
            staged = None
            if isinstance(frame, Staged):  # staged in the child: found, aligned and cropped there
                staged, frame = frame, frame.frame
            if frame is None:
                raise SourceError(f"{spec} gave no frame after {index} frames (ended or stalled for "
                                  f"{options.stall_timeout_s:g} s); check the recording or camera")
            # A looped recording restarts its pipeline (~0.2 s) before its first frame again; that wait
            # would always land on the same contestant (the loop length is often a multiple of n), so
            # such a frame is processed but not counted.
            restarted = 0 <= frame.meta.color_frame_number <= feed.last_number
            feed.last_number = frame.meta.color_frame_number
            align_ms = float(frame.meta.host_process_ms)
            # Sequential: the read included the filters and alignment, split them out. Overlapped and
            # process: the main thread only waited (and, from a child, unpickled the frame); alignment
            # ran on the capture thread or in the child meanwhile.
            capture_ms = waited_ms if feed.prefetch is not None or in_child else max(0.0, waited_ms - align_ms)
            t_ms = max(frame.t_ms, last_t[k] + 1e-3)  # a looped recording restarts its clock
            last_t[k] = t_ms
            if staged is not None:
                decided = pipelines[k].process_staged(staged, t_ms, capture_ms)
                results = [(k, timed, restarted, capture_ms, align_ms, decided)]
            elif threads is None:
                results = [(k, timed, restarted, capture_ms, align_ms, pipelines[k].process(frame, t_ms, capture_ms))]
            else:
                if current is not None and current != k:  # a block ended: its last frame is decided now
                    results = _drained(threads[current], flight)
                else:
                    results = []
                current = k
                prepared = pipelines[k].prepare(frame, t_ms, capture_ms, crop=False)  # the model thread crops
                done = threads[k].submit(prepared)
                if done is not None and flight:
                    results.append((*flight.pop(0), done))
                flight.append((k, timed, restarted, capture_ms, align_ms))
            end = time.perf_counter()
            if threads is not None and restarted:
                # pipelined: the rows decided now are earlier frames, booked after this frame's read; a
                # looped recording's restart wait belongs to this (uncounted) frame, not to them
                end -= waited_ms / 1000.0
            for row in results:
                record(row, end)
            if progress is not None:
                progress(index + 1, total)
        if threads is not None and current is not None:  # the last frame still with the model
            for row in _drained(threads[current], flight):
                record(row, time.perf_counter())
        wall_s = time.perf_counter() - started
    finally:
        cv2.setNumThreads(cv_threads)
        for feed in feeds.values():
            feed.close()
        for thread in threads or ():
            thread.close()
    return StreamRun(options.mode, tuple(order), timings, wall_s, counts["most_faces"], counts["restarts"])
