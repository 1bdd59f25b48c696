"""Does the face-first path decide as the full-frame path does? Both over one recording, frame by frame.

:func:`compare_paths` plays a recording twice in lockstep: once through today's full-frame path
(librealsense filters and ``rs.align`` on the whole frame, detection on the whole frame every frame)
and once through the face-first path (docs/face-first.md), each with its own
:class:`~edge.live.pipeline.LivePipeline` on the same model, judged in the recording's own time.
It reports:

- decision agreement: the share of frames whose decision state (live, spoof, unknown) is the same;
- score-class agreement on frames both paths scored (score >= threshold on both or on neither) and
  the largest score difference;
- per-pixel depth differences inside the face-first crop window, in mm, where both paths have depth
  (median, 99th percentile, maximum, share of pixels that differ), and the share of window pixels
  that have depth on one path only;
- the detection schedule: full scans, window scans, and the longest time between two full scans.

``tools/face_first_agreement.py`` runs it on recordings of both rendered worlds;
tests/edge/bench/test_face_first_agreement.py on a short clip.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import SourceError


@dataclass(frozen=True)
class Agreement:
    """The comparison of both paths over ``frames`` frames of one recording."""

    frames: int
    same_decision: int  # frames with the same decision state on both paths
    both_scored: int  # frames both paths scored
    same_score_class: int  # of those, frames on the same side of the threshold
    max_score_diff: float  # largest |score difference| on frames both scored (nan if none)
    face_frames: tuple[int, int]  # frames with a face: (full-frame, face-first)
    depth_pixels: int  # window pixels with depth on both paths
    depth_diff_mm: tuple[float, float, float]  # median, 99th percentile, max |difference| of those
    depth_differing: float  # share of those pixels whose depth differs at all
    one_sided: float  # share of window pixels with depth on one path only
    full_scans: int
    window_scans: int
    longest_full_scan_gap_ms: float
    states: dict[str, tuple[int, int]]  # state -> (full-frame count, face-first count)

    @property
    def decision_agreement(self) -> float:
        return self.same_decision / self.frames if self.frames else math.nan

    @property
    def score_class_agreement(self) -> float:
        return self.same_score_class / self.both_scored if self.both_scored else math.nan

    def to_json(self) -> dict[str, object]:
        def num(value: float, digits: int = 4) -> float | None:
            return round(value, digits) if math.isfinite(value) else None

        return {"frames": self.frames, "decision_agreement": num(self.decision_agreement),
                "score_class_agreement": num(self.score_class_agreement), "both_scored": self.both_scored,
                "max_score_diff": num(self.max_score_diff, 6), "face_frames": list(self.face_frames),
                "depth_pixels": self.depth_pixels,
                "depth_diff_mm": dict(zip(("median", "p99", "max"), (num(v, 2) for v in self.depth_diff_mm))),
                "depth_differing": num(self.depth_differing), "one_sided": num(self.one_sided),
                "full_scans": self.full_scans, "window_scans": self.window_scans,
                "longest_full_scan_gap_ms": num(self.longest_full_scan_gap_ms, 1),
                "states": {k: list(v) for k, v in self.states.items()}}


def compare_paths(spec: str, model: Path, frames: int, detector: str = "auto", model_dir: Path | None = None,
                  filters: str = "default", progress: Callable[[int, int], None] | None = None) -> Agreement:
    """Both paths over the first ``frames`` frames of ``spec`` (a ``bag:`` recording; see the module doc)."""
    from edge.capture.playback import open_with_filters
    from edge.capture.source import SourceOptions
    from edge.face.face_first import ScanPolicy
    from edge.face.finder import open_face_finder
    from edge.face.preprocess import PreprocessConfig
    from edge.live.clock import StreamClock
    from edge.live.pipeline import LivePipeline
    from engines.runner import open_runner

    if frames < 1:
        raise ValueError(f"compare_paths needs frames >= 1, got {frames}")
    runners = [open_runner(model, backend="onnxruntime", threads=1) for _ in range(2)]
    sources = []
    try:
        pipelines = []
        for runner, face_first in zip(runners, (False, True)):
            preprocess = PreprocessConfig.from_metadata(runner.contract)
            finder = open_face_finder(detector, model_dir, preprocess.detect_width_px)
            # the recording's own time (edge.live.clock), as edgefas live judges a recording: with the
            # default wall clock a loaded machine pushed frames over the policy's latency budget and
            # the agreement depended on the load (97.7 % on one run, 100 % on the next)
            pipelines.append(LivePipeline(runner, finder, preprocess=preprocess, clock=StreamClock(),
                                          face_first=ScanPolicy() if face_first else None))
        for face_first in (False, True):
            sources.append(open_with_filters(spec, SourceOptions(max_frames=frames, face_first=face_first), filters))
        tally = _Tally()
        for index, (full_frame, pending) in enumerate(zip(*sources)):
            if full_frame.meta.color_frame_number != pending.meta.color_frame_number:
                raise SourceError(f"{spec}: the two playbacks went out of step at frame {index}; "
                                  "the recording drops frames, record it again")
            full = pipelines[0].process(full_frame, full_frame.t_ms)
            first = pipelines[1].process(pending, pending.t_ms)
            tally.add(full, first, pipelines[0].threshold, pipelines[1].preprocess.crop_scale)
            if progress is not None:
                progress(index + 1, frames)
        finder = pipelines[1].face_first
        assert finder is not None
        return tally.result(finder.full_scans, finder.window_scans, finder.longest_full_scan_gap_ms)
    finally:
        for source in sources:
            source.close()
        for runner in runners:
            runner.close()


class _Tally:
    def __init__(self) -> None:
        self.frames = self.same = self.both_scored = self.same_class = 0
        self.max_score_diff = math.nan
        self.faces = [0, 0]
        self.diffs: list[np.ndarray] = []
        self.window_pixels = self.one_sided = 0
        self.states: dict[str, list[int]] = {}

    def add(self, full, first, threshold: float, crop_scale: float) -> None:
        from edge.face.crop import crop_window

        self.frames += 1
        self.same += full.decision.state == first.decision.state
        for k, result in enumerate((full, first)):
            self.faces[k] += result.face is not None
            self.states.setdefault(result.decision.state, [0, 0])[k] += 1
        if full.score is not None and first.score is not None:
            self.both_scored += 1
            self.same_class += (full.score >= threshold) == (first.score >= threshold)
            diff = abs(full.score - first.score)
            self.max_score_diff = diff if math.isnan(self.max_score_diff) else max(self.max_score_diff, diff)
        if first.face is None or first.frame is None or full.frame is None:
            return
        window = crop_window(first.face, crop_scale, 8).frame_bounds()  # the output size does not move it
        height, width = first.frame.depth_raw.shape
        x0, y0 = max(0, int(window[0])), max(0, int(window[1]))
        x1, y1 = min(width, int(math.ceil(window[2]))), min(height, int(math.ceil(window[3])))
        a = full.frame.depth_raw[y0:y1, x0:x1].astype(np.int32)
        b = first.frame.depth_raw[y0:y1, x0:x1].astype(np.int32)
        both = (a > 0) & (b > 0)
        scale_mm = full.frame.depth_scale_m * 1000.0
        self.diffs.append(np.abs(a - b)[both].astype(np.float32) * np.float32(scale_mm))
        self.window_pixels += a.size
        self.one_sided += int(np.count_nonzero((a > 0) != (b > 0)))

    def result(self, full_scans: int, window_scans: int, gap_ms: float) -> Agreement:
        diffs = np.concatenate(self.diffs) if self.diffs else np.zeros(0, np.float32)
        stats = ((float(np.median(diffs)), float(np.percentile(diffs, 99)), float(diffs.max()))
                 if diffs.size else (math.nan, math.nan, math.nan))
        return Agreement(self.frames, self.same, self.both_scored, self.same_class, self.max_score_diff,
                         (self.faces[0], self.faces[1]), int(diffs.size), stats,
                         float(np.mean(diffs > 0)) if diffs.size else math.nan,
                         self.one_sided / self.window_pixels if self.window_pixels else math.nan,
                         full_scans, window_scans, gap_ms, {k: (v[0], v[1]) for k, v in self.states.items()})
