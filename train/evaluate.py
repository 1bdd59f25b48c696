"""Evaluation of a model artifact on a labelled dataset with ISO/IEC 30107-3 metrics.

The model runs through the same runner the device uses (ONNX Runtime or TensorRT), fed by the
same preprocessing, with the preprocessing contract read from the artifact: an evaluation measures
exactly what would be deployed. No torch is needed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import ModelError
from edge.face.preprocess import PreprocessConfig
from train.sampleset import SampleSet, prepare_samples

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    model: Path
    dataset: str
    split: str
    scores: np.ndarray
    samples: SampleSet
    report: dict  # PadReport.to_json() at the model's threshold
    provider: str

    def to_json(self) -> dict[str, object]:
        return dict(self.report, model=str(self.model), dataset=self.dataset, split=self.split,
                    provider=self.provider, faces_missed=self.samples.provenance.get("missed_live", 0)
                    + self.samples.provenance.get("missed_spoof", 0))


def score_samples(runner, samples: SampleSet, batch_size: int = 32) -> tuple[np.ndarray, str]:
    scores = []
    provider = ""
    for start in range(0, len(samples), batch_size):
        rgb, depth = samples.arrays(slice(start, start + batch_size))
        out = runner.run(rgb, depth)
        scores.append(out.score)
        provider = out.provider
    return np.concatenate(scores), provider


def evaluate(model: Path, dataset: str, split: str = "test", protocol: str = "", threshold: float | None = None,
             detector: str = "auto", model_dir: Path | None = None, cache_dir: Path = Path(".cache/edgefas"),
             threads: int | None = None, on_frame: Callable[[int, int], None] | None = None) -> Evaluation:
    """Score every face of (dataset, split) and report the PAD metrics at the artifact's threshold."""
    from calibration.metrics import pad_report
    from engines.runner import open_runner

    runner = open_runner(model, threads=threads)
    try:
        config = PreprocessConfig.from_metadata(runner.contract)
        spec = dataset + (f"#{protocol}" if protocol and "#" not in dataset else "")
        samples = prepare_samples(spec, split, config, detector, model_dir, cache_dir, on_frame)
        scores, provider = score_samples(runner, samples)
        chosen = runner.threshold if threshold is None else threshold
        if chosen is None or not math.isfinite(chosen):
            raise ModelError(f"'{model}' carries no threshold; pass --threshold or run edgefas calibrate threshold")
        report = pad_report(scores, samples.is_attack.astype(bool), float(chosen), samples.pai).to_json()
    finally:
        runner.close()
    return Evaluation(Path(model), spec, split, scores, samples, report, provider)
