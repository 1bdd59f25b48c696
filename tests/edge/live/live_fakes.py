"""Test doubles for the live path: sources that stall, fail or are slow, a clock for a slow machine,
and a runner with a scripted score.

The runner double implements the real ``Runner`` protocol so the pipeline's fail-closed logic can
be driven to every branch (exceptions, NaN) without a model; end-to-end tests use real models.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from edge.errors import SourceError
from edge.face.preprocess import PreprocessConfig
from engines.outputs import Outputs


class ScriptedRunner:
    backend = "scripted"

    def __init__(self, scores, threshold: float = 0.5, size: int = 128) -> None:
        self.path = Path("scripted.onnx")
        self.input_size = size
        self.contract = PreprocessConfig(size_px=size).to_metadata()
        self.threshold = threshold
        self._scores = iter(scores)
        self.calls = 0

    def run(self, rgb: np.ndarray, depth: np.ndarray) -> Outputs:
        self.calls += 1
        value = next(self._scores)
        if isinstance(value, Exception):
            raise value
        n = rgb.shape[0]
        return Outputs(np.full(n, value, np.float32), np.zeros((n, 1, 16, 16), np.float32), "scripted", "cpu")

    def close(self) -> None:
        pass


class FiniteSource:
    """Yields the given frames as fast as asked, then ends (a software spec: judged in stream time)."""

    spec = "test:finite"

    def __init__(self, frames) -> None:
        self.frames = list(frames)

    def __iter__(self):
        yield from self.frames

    def describe(self) -> str:
        return "finite"

    def close(self) -> None:
        pass


class StallingSource:
    """Yields ``before`` frames, blocks until released, then yields the rest."""

    spec = "test:stall"

    def __init__(self, frames, before: int) -> None:
        self.frames = list(frames)
        self.before = before
        self.release = threading.Event()

    def __iter__(self):
        for i, frame in enumerate(self.frames):
            if i == self.before:
                self.release.wait(10)
            yield frame

    def describe(self) -> str:
        return "stalling"

    def close(self) -> None:
        self.release.set()


class FailingSource(FiniteSource):
    def __iter__(self):
        yield from self.frames
        raise SourceError("camera disconnected (USB reset)")


class SlowSource(FiniteSource):
    """Takes ``delay_s`` of wall time per frame, like a renderer on a loaded machine (or a slow camera)."""

    def __init__(self, frames, delay_s: float, spec: str = "test:slow") -> None:
        super().__init__(frames)
        self.delay_s, self.spec = delay_s, spec

    def __iter__(self):
        for frame in self.frames:
            time.sleep(self.delay_s)
            yield frame


class SteppingClock:
    """A wall clock (``time.monotonic`` stand-in, seconds) that moves ``step_s`` at every reading:
    a machine too slow for any budget, without depending on how fast this one is."""

    def __init__(self, step_s: float) -> None:
        self.step_s, self.now_s = step_s, 1000.0

    def __call__(self) -> float:
        self.now_s += self.step_s
        return self.now_s
