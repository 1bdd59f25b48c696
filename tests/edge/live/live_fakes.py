"""Test doubles for the live path: sources that stall or fail, and a runner with a scripted score.

The runner double implements the real ``Runner`` protocol so the pipeline's fail-closed logic can
be driven to every branch (exceptions, NaN) without a model; end-to-end tests use real models.
"""

from __future__ import annotations

import threading
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
    """Yields the given frames as fast as asked, then ends."""

    software = True
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

    software = True
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
