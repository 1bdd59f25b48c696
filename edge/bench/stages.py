"""The stages of one frame and their statistics: median and 90th percentile over many frames.

A frame's time is split into the stages a user can act on, in the order the frame meets them:

- ``capture``: waiting for the next frameset (camera or playback read), without the host work below;
- ``align``: depth filters, alignment of depth to colour and copy-out (``FrameMeta.host_process_ms``);
- ``detect``, ``region``, ``crop``, ``infer``, ``decide``: as timed by :class:`edge.live.pipeline.LivePipeline`
  (``region``: the face-first path's depth filters and alignment for the face window; on that path
  ``align`` is only the copy of the raw frames, docs/face-first.md).

Median and p90, not mean and maximum: on a shared machine a few frames are delayed by the scheduler
and a mean would report those rather than the pipeline (the same reasoning as tools/bench_int8.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

STAGES: tuple[str, ...] = ("capture", "align", "detect", "region", "crop", "infer", "decide")
STAGE_LABELS: dict[str, str] = {
    "capture": "capture/playback", "align": "align+filters (whole frame; face first: copy only)",
    "detect": "detection", "region": "face-region depth filters+align", "crop": "crop+normalise",
    "infer": "inference", "decide": "decision",
}
MODEL_STAGES: tuple[str, ...] = ("infer",)
HOST_STAGES: tuple[str, ...] = tuple(s for s in STAGES if s not in MODEL_STAGES)


@dataclass(frozen=True)
class StageStats:
    """Latency of one stage over ``frames`` frames, in milliseconds."""

    median_ms: float
    p90_ms: float
    frames: int

    def to_json(self) -> dict[str, object]:
        def ms(value: float) -> float | None:  # JSON has no NaN: a stage that never ran is null
            return None if math.isnan(value) else round(value, 3)

        return {"median_ms": ms(self.median_ms), "p90_ms": ms(self.p90_ms), "frames": self.frames}


def summarise_ms(values: Sequence[float]) -> StageStats:
    """Median and p90 (linear interpolation, numpy's default) of ``values``; NaN for none."""
    if len(values) == 0:
        return StageStats(math.nan, math.nan, 0)
    array = np.asarray(values, dtype=np.float64)
    return StageStats(float(np.median(array)), float(np.percentile(array, 90)), int(array.size))


@dataclass(frozen=True)
class FrameTiming:
    """Where one frame's time went (ms per stage; a stage that did not run is absent) and its interval.

    ``interval_ms`` is the time from the end of the previous frame to the end of this one: in a
    sequential loop the sum of the stages plus loop overhead, in an overlapped loop less than that,
    because capture and alignment of the next frame ran on another thread meanwhile.
    """

    stage_ms: Mapping[str, float]
    interval_ms: float
    face: bool
    faces_found: int


def summarise_stages(timings: Iterable[FrameTiming]) -> dict[str, StageStats]:
    """Per-stage statistics over the frames in which the stage ran (``crop`` and ``infer`` need a face)."""
    collected: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for timing in timings:
        for stage, ms in timing.stage_ms.items():
            if stage in collected:
                collected[stage].append(ms)
    return {stage: summarise_ms(values) for stage, values in collected.items()}


def host_share(stats: Mapping[str, StageStats]) -> float:
    """Fraction of a frame's time spent outside the model: sum of host stage medians over all medians.

    Uses the stage medians of frames with a face (crop and inference ran), so the share describes the
    frames that cost the most; a stage that never ran counts as zero.
    """
    def median(stage: str) -> float:
        value = stats[stage].median_ms if stage in stats else math.nan
        return 0.0 if math.isnan(value) else value

    total = sum(median(stage) for stage in STAGES)
    return sum(median(stage) for stage in HOST_STAGES) / total if total > 0 else math.nan
