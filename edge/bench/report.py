"""One benchmark run end to end, and the report it writes: ``run_bench(BenchOptions) -> BenchReport``.

The report answers, for every contestant: where a frame's time goes (per-stage median and p90), how
many frames per second the whole pipeline sustains (sequential and overlapped), what share of a
frame is spent outside the model, how much of the machine's fp32 matrix-product ceiling the model's
inference reaches, and whether it fits the frame budget. Ratios between rows (ONNX Runtime fp32 vs
PyTorch eager, INT8 vs fp32, each face-first row vs the full-frame row of its model) come from the
same interleaved run, so they hold while the machine drifts. A MiniFASNetV2-sized reference network,
built at bench time (:mod:`edge.bench.reference`), is timed model-only beside the model files under
test, so the report also says how much work our model is next to a well-known one.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from edge.bench.ceiling import DEFAULT_SIDE, MatmulCeiling, measure_matmul_ceiling
from edge.bench.contestants import (
    FACE_FIRST_SUFFIX,
    PATHS,
    EagerOpener,
    Skipped,
    close_contestants,
    default_models,
    open_contestants,
)
from edge.bench.feed import RENDERED_WORLDS, FeedOptions, default_cache_dir, prepare_feed
from edge.bench.machine import MachineFacts, load_average, read_machine_facts
from edge.bench.model_cost import ModelCost, count_onnx_cost
from edge.bench.reference import REFERENCE_LABEL, ReferenceResult, measure_reference
from edge.bench.stages import STAGE_LABELS, STAGES, StageStats, host_share, summarise_ms, summarise_stages
from edge.bench.stream import DEFAULT_BLOCK, MODES, StreamOptions, StreamRun, run_stream
from edge.errors import MissingExtraError
from engines.ort_runner import default_threads

log = logging.getLogger(__name__)

# Default frame budget: 30 fps, the D435's standard colour rate at 640x480 (Intel RealSense D400
# datasheet, "Color sensor properties"); the host stages may take at most 40 % of a frame (issue 8).
DEFAULT_TARGET_FPS = 30.0
DEFAULT_MAX_HOST_SHARE = 0.40
# ONNX Runtime fp32 vs eager, INT8 vs fp32: (numerator, denominator) labels of "how many times faster".
RATIOS = (("onnxruntime/fp32", "torch-eager/fp32"), ("onnxruntime/int8", "onnxruntime/fp32"))


@dataclass(frozen=True)
class BenchOptions:
    spec: str = "synthetic:mixed"
    models: tuple[Path, ...] = ()  # empty: the bundled default model (fp32 and INT8)
    frames: int = 300
    warmup: int = 30
    modes: tuple[str, ...] = MODES
    threads: int | None = None  # None: engines.ort_runner.default_threads(usable cores)
    open_eager: EagerOpener | None = None  # opens the PyTorch eager row (train.eager.open_eager_runner); None: no row
    torch_checkpoint: Path | None = None
    detector: str = "auto"
    model_dir: Path | None = None
    feed: FeedOptions = FeedOptions()
    cache_dir: Path | None = None
    filters: str = "default"  # depth filter chain of a recording (stream.FILTER_CHAINS)
    cv_threads: int | None = None  # OpenCV's thread pool (detection, resizing) during the run; None = as is
    # Consecutive frames per contestant (stream.StreamOptions.block); None: one loop of a synthetic
    # recording (every row then sees the same frames), DEFAULT_BLOCK for any other source.
    block: int | None = None
    ceiling_side: int = DEFAULT_SIDE
    ceiling_runs: int = 10
    target_fps: float = DEFAULT_TARGET_FPS
    max_host_share: float = DEFAULT_MAX_HOST_SHARE
    # full-frame (today's pipeline: the rows of issue 8) and/or face-first (docs/face-first.md) rows
    paths: tuple[str, ...] = PATHS
    # time the MiniFASNetV2-sized reference model-only beside every ONNX Runtime model file (reference.py)
    reference: bool = True
    # no frame for this long ends the run (stream.StreamOptions.stall_timeout_s); tests on a loaded
    # machine pass a long one, so that a slow restart of the looped recording is not read as a stall
    stall_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        for mode in self.modes:
            if mode not in MODES:
                raise ValueError(f"BenchOptions.modes holds {mode!r}; use {MODES}")
        if not self.paths or any(p not in PATHS for p in self.paths):
            raise ValueError(f"BenchOptions.paths must be a non-empty subset of {PATHS}, got {self.paths}")
        if not self.modes:
            raise ValueError("BenchOptions.modes is empty")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"BenchOptions.threads must be >= 1, got {self.threads}")
        for mode in self.modes:  # the block length is checked against each mode's untimed frames up front
            StreamOptions(mode=mode, block=self.block_frames)

    @property
    def block_frames(self) -> int:
        if self.block is not None:
            return self.block
        if self.spec.partition(":")[0] not in RENDERED_WORLDS:
            return DEFAULT_BLOCK
        loop = self.feed.frames  # whole loops keep every row on the same frames; at least 4 frames
        return loop * -(-4 // loop)


@dataclass(frozen=True)
class ModeResult:
    """One contestant in one mode."""

    stages: dict[str, StageStats]
    interval: StageStats  # frame interval (end of previous frame to end of this one)
    fps: float  # frames / time over the timed frames: 1000 / mean interval
    frames: int
    face_fraction: float  # frames in which a face was found (crop and inference ran)
    faces_found: float  # median number of faces the detector found per frame
    # Over the frames the model scored: median of (interval - inference) per frame, in ms, and as a
    # share of those frames' median interval. In sequential mode this is the time outside the model;
    # in overlapped mode what stays on the main thread's critical path besides the model (capture and
    # align run beside it). Per frame, so it cannot go negative: a difference of medians could, when
    # faceless frames (no inference, short intervals) pull the interval median below the inference one.
    frame_host_share: float
    frame_host_ms: float = math.nan

    @property
    def host_ms(self) -> float:
        """Median milliseconds per scored frame not spent in the model."""
        return self.frame_host_ms

    def to_json(self) -> dict[str, object]:
        return {"fps": _round(self.fps, 2), "frames": self.frames, "face_fraction": _round(self.face_fraction, 3),
                "faces_found": _round(self.faces_found, 1), "frame_host_share": _round(self.frame_host_share, 4),
                "host_ms": _round(self.host_ms, 3),
                "interval_ms": self.interval.to_json(),
                "stages": {s: self.stages[s].to_json() for s in STAGES}}


@dataclass(frozen=True)
class ContestantResult:
    label: str
    backend: str
    precision: str
    model: str
    note: str
    cost: ModelCost
    modes: dict[str, ModeResult]
    host_share: float  # stage breakdown: host stage medians / all stage medians (sequential, else the only mode)
    achieved_gflops: float  # 2 x MACs / median inference time
    ceiling_fraction: float  # achieved / matmul ceiling (median)
    path: str = "full-frame"  # or "face-first" (docs/face-first.md)

    def to_json(self) -> dict[str, object]:
        return {"label": self.label, "path": self.path, "backend": self.backend, "precision": self.precision,
                "model": self.model,
                "note": self.note or None, "cost": self.cost.to_json(), "host_share": _round(self.host_share, 4),
                "achieved_gflops": _round(self.achieved_gflops, 2),
                "ceiling_fraction": _round(self.ceiling_fraction, 4),
                "modes": {m: r.to_json() for m, r in self.modes.items()}}


@dataclass(frozen=True)
class BenchReport:
    spec: str
    played: str  # what was actually played (the cached recording of a synthetic spec)
    feed: FeedOptions
    machine: MachineFacts
    threads: int
    cv_threads: int
    filters: str
    ceiling_before: MatmulCeiling
    ceiling_after: MatmulCeiling
    contestants: list[ContestantResult]
    skipped: list[Skipped]
    order: dict[str, list[list]]  # mode -> the first [label, timed frames] blocks in hand-out order
    ratios: dict[str, dict[str, float]]
    budget: dict[str, object]
    load_avg_end: tuple[float, float, float]
    wall_s: dict[str, float] = field(default_factory=dict)
    created: str = ""  # UTC, ISO 8601
    restarts: dict[str, int] = field(default_factory=dict)  # mode -> frames not counted (recording looped)
    reference: ReferenceResult | None = None  # None: not asked for, or skipped (then in ``skipped``)

    @property
    def ceiling_gflops(self) -> float:
        return statistics.fmean([self.ceiling_before.median_gflops, self.ceiling_after.median_gflops])

    def to_json(self) -> dict[str, object]:
        feed = self.feed
        return {
            "schema": "edgefas.bench/1", "created": self.created,
            "spec": self.spec, "played": self.played,
            "feed": {"seed": feed.seed, "width": feed.width, "height": feed.height, "frames": feed.frames,
                     "extra_faces": feed.extra_faces, "distance_m": feed.distance_m},
            "machine": self.machine.to_json(), "load_avg_end": list(self.load_avg_end), "threads": self.threads,
            "filters": self.filters, "opencv_threads": self.cv_threads,
            "paths": sorted({c.path for c in self.contestants}),
            "stage_labels": dict(STAGE_LABELS),
            "ceiling": {"before": self.ceiling_before.to_json(), "after": self.ceiling_after.to_json(),
                        "median_gflops": round(self.ceiling_gflops, 2)},
            "contestants": [c.to_json() for c in self.contestants],
            "skipped": [{"label": s.label, "reason": s.reason} for s in self.skipped],
            "order": self.order, "ratios": self.ratios, "budget": self.budget,
            "wall_s": {k: round(v, 2) for k, v in self.wall_s.items()}, "restarts": dict(self.restarts),
            "reference": self.reference.to_json() if self.reference is not None else None,
        }


def _round(value: float, digits: int) -> float | None:
    """JSON has no NaN: a number that could not be measured (no face, no frames) is null."""
    return None if value is None or not math.isfinite(value) else round(value, digits)


def _ratio(numerator: float, denominator: float) -> float | None:
    return _round(numerator / denominator, 3) if denominator and math.isfinite(denominator) else None


def summarise_mode(run: StreamRun, label: str) -> ModeResult:
    timings = run.timings[label]
    intervals = [t.interval_ms for t in timings]
    mean = statistics.fmean(intervals) if intervals else math.nan
    stages, interval = summarise_stages(timings), summarise_ms(intervals)
    scored = [t for t in timings if "infer" in t.stage_ms]
    host_ms, frame_host = math.nan, math.nan
    # pipelined: the model ran beside the main thread, so no part of the interval is its own
    if scored and run.mode != "pipelined":
        host_ms = statistics.median(max(0.0, t.interval_ms - t.stage_ms["infer"]) for t in scored)
        scored_interval = statistics.median(t.interval_ms for t in scored)
        frame_host = host_ms / scored_interval if scored_interval > 0 else math.nan
    return ModeResult(stages, interval, 1000.0 / mean if mean > 0 else math.nan, len(timings),
                      sum(t.face for t in timings) / len(timings) if timings else math.nan,
                      statistics.median(t.faces_found for t in timings) if timings else math.nan, frame_host, host_ms)


def ratio_pairs(labels: Sequence[str]) -> list[tuple[str, str]]:
    """(numerator, denominator) labels to compare: :data:`RATIOS`, then every face-first row against
    the full-frame row of the same model."""
    pairs = list(RATIOS)
    pairs += [(label, label[: -len(FACE_FIRST_SUFFIX)]) for label in labels if label.endswith(FACE_FIRST_SUFFIX)]
    return pairs


def compute_ratios(results: Sequence[ContestantResult]) -> dict[str, dict[str, float]]:
    """For each pair of :func:`ratio_pairs` present: how many times faster the first is, on inference
    and end to end in every mode both ran."""
    by_label = {r.label: r for r in results}
    out: dict[str, dict[str, float]] = {}
    for fast, slow in ratio_pairs([r.label for r in results]):
        if fast not in by_label or slow not in by_label:
            continue
        a, b = by_label[fast], by_label[slow]
        mode = "sequential" if "sequential" in a.modes else next(iter(a.modes))
        entry = {"inference_speedup": _ratio(b.modes[mode].stages["infer"].median_ms,
                                             a.modes[mode].stages["infer"].median_ms)}
        for m in a.modes:
            if m in b.modes:
                entry[f"fps_ratio_{m}"] = _ratio(a.modes[m].fps, b.modes[m].fps)
        out[f"{fast} vs {slow}"] = entry
    return out


def run_lengths(labels: Sequence[str]) -> list[list]:
    """``[label, count]`` for each run of one label in ``labels`` (how the timed frames were blocked)."""
    runs: list[list] = []
    for label in labels:
        if runs and runs[-1][0] == label:
            runs[-1][1] += 1
        else:
            runs.append([label, 1])
    return runs


def run_bench(options: BenchOptions, progress: Callable[[str, int, int], None] | None = None) -> BenchReport:
    """Machine facts, feed, contestants, ceiling, the interleaved stream per mode, ceiling again.

    ``progress(task, done, total)`` reports recording and timing progress ("record", "sequential", ...).
    """
    machine = read_machine_facts()
    threads = options.threads or default_threads(machine.cores_usable)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def step(task: str) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda done, total: progress(task, done, total))

    played = prepare_feed(options.spec, options.feed, options.cache_dir, step("record"))
    models = list(options.models) or default_models()
    contestants, skipped = open_contestants(models, threads, options.open_eager, options.torch_checkpoint,
                                            options.paths, single_thread="one-thread" in options.modes)
    previous_cv_threads = cv2.getNumThreads()
    if options.cv_threads is not None:
        cv2.setNumThreads(options.cv_threads)
    cv_threads = cv2.getNumThreads()
    try:
        for s in skipped:
            log.warning("bench: skipping %s: %s", s.label, s.reason)
        ceiling_before = measure_matmul_ceiling(threads, options.ceiling_side, options.ceiling_runs)
        runs: dict[str, StreamRun] = {}
        for mode in options.modes:
            stream_options = StreamOptions(frames=options.frames, warmup=options.warmup, mode=mode,
                                           detector=options.detector, model_dir=options.model_dir,
                                           filters=options.filters, block=options.block_frames,
                                           stall_timeout_s=options.stall_timeout_s)
            rows = [c for c in contestants if mode != "one-thread" or c.single_runner is not None]
            runs[mode] = run_stream(played, rows, stream_options, step(mode))
        model_only = None
        if options.reference:
            model_only = _measure_reference(options, contestants, threads, skipped, step("model-only"))
        ceiling_after = measure_matmul_ceiling(threads, options.ceiling_side, options.ceiling_runs)
    finally:
        cv2.setNumThreads(previous_cv_threads)
        close_contestants(contestants)
    ceiling = statistics.fmean([ceiling_before.median_gflops, ceiling_after.median_gflops])
    costs: dict[Path, ModelCost] = {}
    results = []
    for c in contestants:
        cost = costs.setdefault(c.model_path, count_onnx_cost(c.model_path))
        modes = {mode: summarise_mode(run, c.label) for mode, run in runs.items() if c.label in run.timings}
        reference = modes["sequential"] if "sequential" in modes else next(iter(modes.values()))
        infer_ms = reference.stages["infer"].median_ms
        achieved = cost.gflop / (infer_ms / 1000.0) if infer_ms > 0 else math.nan
        results.append(ContestantResult(c.label, c.backend, c.precision, str(c.model_path), c.note, cost, modes,
                                        host_share(reference.stages), achieved, achieved / ceiling, c.path))
    budget = {"target_fps": options.target_fps, "frame_budget_ms": round(1000.0 / options.target_fps, 3),
              "max_host_share": options.max_host_share,
              "met": {r.label: {mode: {"fps": m.fps >= options.target_fps,
                                       "host_share": m.frame_host_share <= options.max_host_share}
                                for mode, m in r.modes.items()} for r in results}}
    order = {mode: run_lengths(run.order)[: 3 * max(1, len(contestants))] for mode, run in runs.items()}
    return BenchReport(options.spec, played, options.feed, machine, threads, cv_threads, options.filters,
                       ceiling_before, ceiling_after, results, skipped, order, compute_ratios(results), budget,
                       load_average(),
                       {mode: run.wall_s for mode, run in runs.items()}, created,
                       {mode: run.restarts for mode, run in runs.items()}, model_only)


def _measure_reference(options: BenchOptions, contestants, threads: int, skipped: list[Skipped],
                       progress: Callable[[int, int], None] | None) -> ReferenceResult | None:
    """The reference timed model-only beside each ONNX Runtime model file (once per file, labelled by
    its full-frame row); None, with a skipped row saying why, where the graph cannot be built here."""
    models: dict[str, Path] = {}
    for c in contestants:
        if c.backend == "onnxruntime" and c.model_path not in models.values():
            models[c.label.removesuffix(FACE_FIRST_SUFFIX)] = c.model_path
    try:
        return measure_reference(models, threads, options.frames, options.warmup,
                                 options.cache_dir or default_cache_dir(), progress=progress)
    except MissingExtraError as err:
        log.warning("bench: skipping %s: %s", REFERENCE_LABEL, err)
        skipped.append(Skipped(REFERENCE_LABEL, str(err)))
        return None
