"""What a source delivers, measured by reading it through the full capture path (``edgefas probe``).

The report answers an integrator's first questions about a camera or a file: which streams at which
sizes, which intrinsics and depth scale, how many frames arrived, whether frame numbers skip or run
backwards, and how fast frames came (sensor clock and wall clock).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from edge.capture.rs_pipeline import StreamInfo
from edge.capture.source import SourceOptions, is_physical, open_source
from edge.frames import Intrinsics, RGBDFrame


@runtime_checkable
class DescribesStreams(Protocol):
    """Sources backed by pyrealsense2 also report the raw streams they resolved."""

    stream_info: StreamInfo


@dataclass(frozen=True)
class ProbeReport:
    spec: str
    description: str
    software: bool  # not a physical camera kind (edge.capture.source.is_physical): production mode refuses it
    frames_requested: int
    frames_read: int
    color_size: tuple[int, int] | None  # (width, height) of delivered colour; aligned depth matches it
    color_intrinsics: Intrinsics | None
    depth_scale_m: float
    raw_streams: StreamInfo | None  # what a pyrealsense2 source resolved (raw depth before alignment)
    frame_number_gaps: int  # colour sensor frames missing between consecutive delivered frames
    non_monotonic: int  # frames whose counter went backwards
    valid_depth_fraction: float  # mean over frames of the fraction of pixels with depth
    sensor_interval_ms: float  # median interval between frames by the sensor clock (NaN if < 2 frames)
    open_s: float
    read_s: float

    @property
    def sensor_fps(self) -> float:
        return 1000.0 / self.sensor_interval_ms if self.sensor_interval_ms > 0 else float("nan")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: NaN becomes None, tuples lists."""
        def clean(value: object) -> object:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            return value

        data = asdict(self)
        data["sensor_fps"] = self.sensor_fps
        return clean(data)  # type: ignore[return-value]


def count_gaps(numbers: list[int]) -> tuple[int, int]:
    """(missing frames, backward steps) in a sequence of sensor frame numbers; -1 entries are skipped."""
    known = [n for n in numbers if n >= 0]
    gaps = sum(b - a - 1 for a, b in zip(known, known[1:]) if b > a + 1)
    backwards = sum(1 for a, b in zip(known, known[1:]) if b <= a)
    return gaps, backwards


def probe_source(spec: str, frames: int = 30, options: SourceOptions | None = None) -> ProbeReport:
    """Open ``spec``, read up to ``frames`` frames, close it, and report what was found."""
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    options = options or SourceOptions()
    start = time.monotonic()
    source = open_source(spec, options)
    opened = time.monotonic()
    read: list[RGBDFrame] = []
    try:
        for frame in source:
            read.append(frame)
            if len(read) >= frames:
                break
        description = source.describe()
    finally:
        source.close()
    done = time.monotonic()
    gaps, backwards = count_gaps([f.meta.color_frame_number for f in read])
    flagged = sum(1 for f in read if f.meta.counter_non_monotonic)
    times = np.array([f.t_ms for f in read], dtype=np.float64)
    interval = float(np.median(np.diff(times))) if len(times) > 1 else float("nan")
    first = read[0] if read else None
    return ProbeReport(
        spec=spec, description=description, software=not is_physical(spec), frames_requested=frames,
        frames_read=len(read),
        color_size=(first.color_bgr.shape[1], first.color_bgr.shape[0]) if first else None,
        color_intrinsics=first.intrinsics if first else None,
        depth_scale_m=first.depth_scale_m if first else float("nan"),
        raw_streams=source.stream_info if isinstance(source, DescribesStreams) else None,
        frame_number_gaps=gaps, non_monotonic=max(backwards, flagged),
        valid_depth_fraction=float(np.mean([f.valid_depth.mean() for f in read])) if read else float("nan"),
        sensor_interval_ms=interval, open_s=opened - start, read_s=done - opened)
