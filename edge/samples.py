"""The model-side sample types: a detected face and the preprocessed crop fed to a model (DESIGN §3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FaceBox:
    """A face found in a colour image, in that image's pixel coordinates."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float
    landmarks_xy: np.ndarray  # 5 x 2 float32: right eye, left eye, nose tip, mouth right, mouth left
    detector: str  # "yunet", "haar", "truth"
    track_id: int = -1  # identity kept across frames by the tracker; -1 = untracked

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def center(self) -> tuple[float, float]:
        return (0.5 * (self.x0 + self.x1), 0.5 * (self.y0 + self.y1))


@dataclass(frozen=True)
class FaceSample:
    """A preprocessed face: exactly what a model receives (ONNX contract, DESIGN §5).

    ``rgb`` is 3 x S x S float32 in [0, 1], RGB order; ``depth`` is 1 x S x S float32 in [0, 1]
    (face-relative, nearer = brighter, invalid = 0). ``gate`` is None when every quality gate
    passed, else the reason; a gated sample is "unknown" downstream, never "live".
    """

    rgb: np.ndarray
    depth: np.ndarray
    valid_fraction: float
    reference_mm: float  # median depth of the inner face region; NaN if none was valid
    face: FaceBox
    gate: str | None = None
    relief_mm: float = float("nan")  # depth relief measured inside the face (quality gate input)

    def __post_init__(self) -> None:
        if self.rgb.dtype != np.float32 or self.rgb.ndim != 3 or self.rgb.shape[0] != 3:
            raise ValueError(f"FaceSample.rgb must be 3 x S x S float32, got {self.rgb.dtype} {self.rgb.shape}")
        if self.depth.dtype != np.float32 or self.depth.shape != (1,) + self.rgb.shape[1:]:
            raise ValueError(
                f"FaceSample.depth must be 1 x S x S float32 matching rgb, got {self.depth.dtype} {self.depth.shape}"
            )

    @property
    def passed(self) -> bool:
        return self.gate is None
