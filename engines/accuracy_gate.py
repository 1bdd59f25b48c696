"""The accuracy gate: a reduced-precision model is accepted only if it agrees with fp32 (DESIGN §5).

Both runners score the same samples; the gate measures the score differences and how many accept /
refuse decisions (score >= threshold => attack, :func:`engines.outputs.classify_attack`) flip.
The result is recorded beside the artifact and in the TensorRT manifest, so an engine in the field
can always show the evidence it was shipped on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge.errors import ConfigError
from engines.outputs import classify_attack
from engines.runner import Runner


@dataclass(frozen=True)
class GateTolerance:
    """Acceptance bounds, edgefas's product defaults.

    Scores live in roughly [0, 1 + 2α] (DESIGN §4: map mean plus α times trace magnitudes). A max
    difference of 0.05 is a few percent of that range; a median of 0.01 says the typical sample
    barely moves, so a large max can come only from a few outliers. At most 1 % of decisions may flip
    (``min_agreement`` 0.99): the same order as the 1 % APCER operating point the threshold is set
    at, so quantisation cannot by itself double the attack acceptance rate. Tighten them per
    deployment with the CLI options.
    """

    max_abs_score: float = 0.05
    median_abs_score: float = 0.01
    min_agreement: float = 0.99


@dataclass(frozen=True)
class GateResult:
    accepted: bool
    samples: int
    threshold: float
    max_abs_score: float
    median_abs_score: float
    agreement: float  # fraction of samples with the same decision
    flips: int
    reference: str  # "backend/provider/precision" of the fp32 side
    candidate: str
    tolerance: GateTolerance
    reasons: tuple[str, ...] = ()  # why it was refused; empty when accepted

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        return data

    def write(self, path: str | Path) -> Path:
        out = Path(path)
        out.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
        return out


def describe(runner: Runner) -> str:
    precision = getattr(getattr(runner, "metadata", None), "precision", "?")
    return f"{runner.backend}/{getattr(runner, 'provider', '?')}/{precision}"


def run_accuracy_gate(reference: Runner, candidate: Runner, batches: Iterable[tuple[np.ndarray, np.ndarray]],
                      threshold: float | None = None, tolerance: GateTolerance = GateTolerance(),
                      progress: Callable[[int], None] | None = None) -> GateResult:
    """Score every batch with both runners and judge the candidate against ``tolerance``.

    ``threshold`` defaults to the reference model's stored threshold; a model without one needs it
    given (ConfigError otherwise: decisions cannot be compared without an operating point).
    """
    if threshold is None:
        threshold = reference.threshold
    if threshold is None:
        raise ConfigError("the fp32 model has no threshold to compare decisions at; run "
                          "edgefas calibrate threshold first or pass --threshold")
    ref_scores, cand_scores = [], []
    for rgb, depth in batches:
        ref_scores.append(reference.run(rgb, depth).score)
        cand_scores.append(candidate.run(rgb, depth).score)
        if progress is not None:
            progress(sum(s.size for s in ref_scores))
    if not ref_scores:
        raise ValueError("the accuracy gate was given no batches")
    return judge_scores(np.concatenate(ref_scores), np.concatenate(cand_scores), float(threshold), tolerance,
                        describe(reference), describe(candidate))


def judge_scores(reference: np.ndarray, candidate: np.ndarray, threshold: float, tolerance: GateTolerance,
                 reference_name: str = "reference", candidate_name: str = "candidate") -> GateResult:
    """The gate's arithmetic on two score vectors of equal length."""
    if reference.shape != candidate.shape or reference.ndim != 1:
        raise ValueError(f"score vectors must be [N] and equal, got {reference.shape} and {candidate.shape}")
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    same = classify_attack(reference, threshold) == classify_attack(candidate, threshold)
    max_abs, median_abs, agreement = float(diff.max()), float(np.median(diff)), float(same.mean())
    reasons = []
    if not np.isfinite(candidate).all():
        reasons.append("candidate produced non-finite scores")
    if max_abs > tolerance.max_abs_score:
        reasons.append(f"max |Δscore| {max_abs:.4f} > {tolerance.max_abs_score}")
    if median_abs > tolerance.median_abs_score:
        reasons.append(f"median |Δscore| {median_abs:.4f} > {tolerance.median_abs_score}")
    if agreement < tolerance.min_agreement:
        reasons.append(f"decision agreement {agreement:.4f} < {tolerance.min_agreement}")
    return GateResult(not reasons, int(reference.size), threshold, max_abs, median_abs, agreement,
                      int((~same).sum()), reference_name, candidate_name, tolerance, tuple(reasons))
