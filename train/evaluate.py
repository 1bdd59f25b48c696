"""Evaluation of a model artifact on a labelled dataset with ISO/IEC 30107-3 metrics.

The model runs through the same runner the device uses (ONNX Runtime or TensorRT), fed by the
same preprocessing, with the preprocessing contract read from the artifact: an evaluation measures
exactly what would be deployed. The faces come from :func:`edge.datasets.sampleset.prepare_samples`
and the scores from :func:`calibration.scoring.score_samples`, the path ``edgefas calibrate
threshold`` takes too, so a threshold chosen there is reported here on the same numbers. No torch
is needed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.datasets.registry import with_protocol
from edge.datasets.sampleset import SampleSet, prepare_samples
from edge.errors import ModelError
from edge.face.preprocess import PreprocessConfig

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
                    + self.samples.provenance.get("missed_spoof", 0), non_response=non_response(self.samples),
                    bpcer_by_subject=bpcer_by_subject(self.samples, self.scores, float(self.report["threshold"])))


def bpcer_by_subject(samples: SampleSet, scores: np.ndarray, threshold: float) -> dict[str, dict[str, float]]:
    """Per person (the ``subject`` column): live faces scored, refused, and that person's BPCER.

    A pooled BPCER of 2 % can be one person refused one time in five: the door that never opens for
    its owner. The worst person's rate is the line to read beside the pooled one.
    """
    from engines.outputs import classify_attack

    live = samples.is_attack == 0
    refused = classify_attack(scores, threshold) & live
    out = {}
    for person in sorted(set(samples.subject[live].tolist())):
        mine = live & (samples.subject == person)
        n, k = int(mine.sum()), int(refused[mine].sum())
        out[person] = {"scored": n, "refused": k, "bpcer": k / n}
    return out


def non_response(samples: SampleSet) -> dict[str, dict[str, float]]:
    """Frames with no face found, per class (ISO/IEC 30107-3 non-response): count, faces scored, rate.

    A frame without a face is never a decision, so it is not in APCER or BPCER; reporting it beside
    them keeps a detector that misses attacks from looking like a model that catches them. Sets
    joined with ``+`` add up their parts.
    """
    parts = samples.provenance.get("parts") or [samples.provenance]
    missed: dict[str, int] = {}
    for prov in parts:
        by_pai = prov.get("missed_by_pai")
        if by_pai is None:  # a cache made before per-species counts: live and attack only
            by_pai = {"live": prov.get("missed_live", 0), "attack (all species)": prov.get("missed_spoof", 0)}
        for key, count in by_pai.items():
            missed[key] = missed.get(key, 0) + int(count)
        if "attack (all species)" not in by_pai:
            attacks = sum(int(c) for k, c in by_pai.items() if k != "live")
            missed["attack (all species)"] = missed.get("attack (all species)", 0) + attacks
    scored = {"live": int((samples.is_attack == 0).sum())}
    for species in sorted(set(samples.pai[samples.is_attack == 1].tolist())):
        scored[species] = int(((samples.is_attack == 1) & (samples.pai == species)).sum())
    scored["attack (all species)"] = int((samples.is_attack == 1).sum())
    out = {}
    for key in sorted(set(missed) | set(scored)):
        m, n = missed.get(key, 0), scored.get(key, 0)
        out[key] = {"no_face": m, "scored": n, "rate": m / (m + n) if m + n else 0.0}
    return out


def evaluate(model: Path, dataset: str, split: str = "test", protocol: str = "", threshold: float | None = None,
             detector: str = "auto", model_dir: Path | None = None, cache_dir: Path | None = None,
             threads: int | None = None, on_frame: Callable[[int, int], None] | None = None) -> Evaluation:
    """Score every face of (dataset, split) and report the PAD metrics at the artifact's threshold.

    ``cache_dir`` None: the samples cache under the one cache root (:mod:`edge.cache`).
    """
    from calibration.scoring import score_samples
    from engines.runner import open_runner

    runner = open_runner(model, threads=threads)
    try:
        config = PreprocessConfig.from_metadata(runner.contract)
        spec = with_protocol(dataset, protocol)
        samples = prepare_samples(spec, split, config, detector, model_dir, cache_dir, on_frame)
        scored = score_samples(runner, samples)
        chosen = runner.threshold if threshold is None else threshold
        if chosen is None or not math.isfinite(chosen):
            raise ModelError(f"'{model}' carries no threshold; pass --threshold or run edgefas calibrate threshold")
        report = scored.report_at(float(chosen)).to_json()
    finally:
        runner.close()
    return Evaluation(Path(model), spec, split, scored.scores, samples, report, scored.provider)
