"""Scores of prepared faces, and the metrics and thresholds read from them: written once.

Three jobs score a labelled set and read metrics or a threshold from the scores: ``edgefas eval``
(PAD metrics at the model's stored threshold), ``edgefas calibrate threshold`` (a threshold chosen
at a named operating point, written into the model) and the training run's calibration (alpha and
threshold, chosen on dev through the torch model). They differ only in *what* scores a batch; the
loop over the samples, the labels and species that go with each score, and the path from scores to
a :class:`~calibration.metrics.PadReport` or :class:`~calibration.threshold.ThresholdChoice` are
here, so a threshold chosen by one job is the number another job reports on the same faces.

The samples are a :class:`edge.datasets.sampleset.SampleSet` (cached, preprocessed crops from
:func:`edge.datasets.sampleset.prepare_samples`): the model sees the same inputs in every job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from calibration.metrics import PadReport, pad_report
from calibration.threshold import ThresholdChoice, ThresholdTarget, choose_threshold
from edge.datasets.sampleset import SampleSet

# Faces per runner call. Eval used 32 before the scoring paths were merged; kept so the same model
# and data give bit-identical scores (a backend may pick other kernels for another batch size).
RUNNER_BATCH = 32

ScoreBatch = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (rgb [B,3,S,S], depth [B,1,S,S]) -> [B] or [B,K]


@dataclass(frozen=True)
class ScoredSamples:
    """One score per face, with the truth that goes with it.

    ``scores`` [N] (higher = more likely an attack, :func:`engines.outputs.classify_attack`),
    ``is_attack`` bool [N], ``species`` str [N] ("" for live faces, else the attack species),
    ``provider`` what computed the scores ("" when not a runner, e.g. the torch model in training).
    """

    scores: np.ndarray
    is_attack: np.ndarray
    species: np.ndarray
    provider: str = ""

    def __post_init__(self) -> None:
        n = len(self.scores)
        if np.ndim(self.scores) != 1 or len(self.is_attack) != n or len(self.species) != n:
            raise ValueError(f"ScoredSamples needs scores [N] with as many labels and species, got "
                             f"{np.shape(self.scores)}, {len(self.is_attack)}, {len(self.species)}")

    def report_at(self, threshold: float) -> PadReport:
        """ISO/IEC 30107-3 metrics at a fixed threshold (``edgefas eval``)."""
        return pad_report(self.scores, self.is_attack, float(threshold), self.species)

    def choose_threshold(self, target: ThresholdTarget | str) -> ThresholdChoice:
        """The threshold at ``target`` and the metrics there (calibrate threshold, training)."""
        return choose_threshold(self.scores, self.is_attack, target, self.species)


def score_in_batches(score_batch: ScoreBatch, samples: SampleSet, batch_size: int,
                     progress: Callable[[int], None] | None = None) -> np.ndarray:
    """``score_batch`` over ``samples`` in order, ``batch_size`` faces at a time; the per-batch results
    concatenated on the first axis. ``progress(done)`` after each batch."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    parts = []
    for start in range(0, len(samples), batch_size):
        rgb, depth = samples.arrays(slice(start, start + batch_size))
        parts.append(np.asarray(score_batch(rgb, depth)))
        if progress is not None:
            progress(min(start + batch_size, len(samples)))
    if not parts:
        raise ValueError("score_in_batches needs at least one sample")
    return np.concatenate(parts)


def scored(samples: SampleSet, scores: np.ndarray, provider: str = "") -> ScoredSamples:
    """``scores`` of ``samples`` (same order) with their labels and species."""
    return ScoredSamples(np.asarray(scores), samples.is_attack.astype(bool), samples.pai, provider)


def score_samples(runner, samples: SampleSet, batch_size: int = RUNNER_BATCH,
                  progress: Callable[[int], None] | None = None) -> ScoredSamples:
    """Score prepared samples with a :class:`engines.runner.Runner` (ONNX Runtime or TensorRT).

    Used by ``edgefas eval``, ``edgefas calibrate threshold`` and the maintainer tools; the training
    run scores through its torch model with :func:`score_in_batches` and reads thresholds through
    :class:`ScoredSamples` the same way.
    """
    providers: list[str] = []

    def run(rgb: np.ndarray, depth: np.ndarray) -> np.ndarray:
        out = runner.run(rgb, depth)
        providers.append(out.provider)
        return out.score

    scores = score_in_batches(run, samples, batch_size, progress)
    return scored(samples, scores, providers[-1] if providers else "")
