"""What every runner returns, whatever its backend, and how its score reads (DESIGN §5).

Decision convention, the only place it is stated: **higher score = more likely an attack, and a
sample whose score is >= the threshold is classified as an attack** (:func:`classify_attack`).
It is part of the model's output contract, so it lives here with :class:`Outputs`; everything
else in edgefas (PAD metrics and threshold selection in ``calibration``, the accuracy gate, live
decisions) calls that function or states that it follows it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCORE_POLARITY = "higher_is_attack"  # written into every model's metadata; a model saying otherwise is refused


def classify_attack(scores: np.ndarray, threshold: float) -> np.ndarray:
    """True where a sample is classified as an attack: ``score >= threshold``."""
    return np.asarray(scores) >= threshold


@dataclass(frozen=True)
class Outputs:
    """One batch of model outputs.

    ``score`` float32 [N], higher = more likely an attack (decisions: score >= threshold => attack,
    :func:`classify_attack`). ``spoof_map`` float32 [N, 1, h, w] (h, w a fraction of the input
    side). ``trace_rgb`` [N, 3, S, S] and ``trace_depth`` [N, 1, S, S] exist only for the ``full``
    export variant. ``backend`` names the runner ("onnxruntime", "tensorrt") and ``provider`` what
    actually executed ("CPUExecutionProvider", "CUDAExecutionProvider", "tensorrt-fp16", ...), so a
    result can always say where it was computed. The arrays belong to the caller.
    """

    score: np.ndarray
    spoof_map: np.ndarray
    backend: str
    provider: str
    trace_rgb: np.ndarray | None = None
    trace_depth: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.score.dtype != np.float32 or self.score.ndim != 1:
            raise ValueError(f"Outputs.score must be float32 [N], got {self.score.dtype} {self.score.shape}")
        n = self.score.shape[0]
        if self.spoof_map.ndim != 4 or self.spoof_map.shape[:2] != (n, 1):
            raise ValueError(f"Outputs.spoof_map must be [N={n}, 1, h, w], got {self.spoof_map.shape}")
        for name, channels in (("trace_rgb", 3), ("trace_depth", 1)):
            value = getattr(self, name)
            if value is not None and (value.ndim != 4 or value.shape[:2] != (n, channels)):
                raise ValueError(f"Outputs.{name} must be [N={n}, {channels}, S, S], got {value.shape}")

    @property
    def batch(self) -> int:
        return int(self.score.shape[0])
