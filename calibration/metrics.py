"""Presentation-attack detection metrics of ISO/IEC 30107-3 computed from scores.

Vocabulary (ISO/IEC 30107-3:2017, clause 3 and 13):

- *APCER* (attack presentation classification error rate): the fraction of attack presentations of
  one attack species (PAI species) wrongly classified as bona fide. The standard reports it **per
  species**; a single number is either the worst case over species (``apcer_max``, what the standard
  asks for) or the pooled rate over all attacks (``apcer_pooled``). Every table says which.
- *BPCER* (bona fide presentation classification error rate): the fraction of bona fide (live)
  presentations wrongly classified as attacks.
- *ACER* = (APCER_max + BPCER) / 2 — widespread in the face anti-spoofing literature (e.g. the
  OULU-NPU protocols); the 2023 revision of the standard discourages it, we report it for comparison.
- *HTER* = (APCER_pooled + BPCER) / 2 at a threshold, as in the Replay-Attack literature.
- *EER*: the rate where pooled APCER equals BPCER; *AUC*: the probability that a random attack
  scores above a random bona fide sample (ties count one half).

Decision convention: **higher score = more likely an attack, and a sample whose score is >= the
threshold is classified as an attack** (:func:`classify_attack`). It is the model's output contract,
stated once in :mod:`engines.outputs`; this module uses it from there and re-exports it for callers
of the metrics.

Candidate thresholds are the observed scores (plus +inf, "accept everything"): between two
observed scores every decision is the same, so no other value changes a metric.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from edge.errors import DatasetError
from engines.outputs import SCORE_POLARITY, classify_attack  # the model's output contract, re-exported

DEFAULT_SPECIES = "attack"  # species name used when the caller gives none


@dataclass(frozen=True)
class ScoredSet:
    """Validated scores with their ground truth.

    ``scores`` float64 [N]; ``is_attack`` bool [N]; ``species`` [N] strings ("" for bona fide).
    """

    scores: np.ndarray
    is_attack: np.ndarray
    species: tuple[str, ...]

    @property
    def live_scores(self) -> np.ndarray:
        return self.scores[~self.is_attack]

    @property
    def attack_scores(self) -> np.ndarray:
        return self.scores[self.is_attack]

    def species_names(self) -> list[str]:
        return sorted({s for s, a in zip(self.species, self.is_attack) if a})

    def species_scores(self, name: str) -> np.ndarray:
        mask = np.array([s == name for s in self.species]) & self.is_attack
        return self.scores[mask]


def scored_set(scores: Sequence[float] | np.ndarray, is_attack: Sequence[bool] | np.ndarray,
               species: Sequence[str] | None = None) -> ScoredSet:
    """Check shapes and values once; a set without live or without attack samples is a DatasetError.

    ``is_attack`` holds booleans or 0/1 (1 = attack presentation). ``species`` names each attack's
    PAI species ("print", "replay", ...); entries for bona fide samples are ignored. Without it, all
    attacks form one species called ``"attack"``.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    a_raw = np.asarray(is_attack).reshape(-1)
    if a_raw.size != s.size:
        raise ValueError(f"is_attack has {a_raw.size} entries but scores has {s.size}")
    if a_raw.dtype != bool and not np.isin(a_raw, (0, 1)).all():
        raise ValueError("is_attack must hold booleans or 0/1 (1 = attack presentation)")
    a = a_raw.astype(bool)
    if not np.isfinite(s).all():
        bad = int(np.flatnonzero(~np.isfinite(s))[0])
        raise ValueError(f"scores[{bad}] is {s[bad]}: every score must be finite")
    if species is None:
        names = tuple(DEFAULT_SPECIES if x else "" for x in a)
    else:
        names = tuple(str(x) if att else "" for x, att in zip(species, a))
        if len(names) != s.size:
            raise ValueError(f"species has {len(species)} entries but scores has {s.size}")
        names = tuple(n if (n or not att) else DEFAULT_SPECIES for n, att in zip(names, a))
    n_attack = int(a.sum())
    if n_attack == 0 or n_attack == s.size:
        missing = "attack" if n_attack == 0 else "bona fide (live)"
        raise DatasetError(
            f"the scored set has no {missing} samples ({s.size} in all); PAD metrics and thresholds "
            f"need both live and attack samples: use a dev set that contains both"
        )
    return ScoredSet(s, a, names)


def apcer_at(data: ScoredSet, threshold: float) -> dict[str, float]:
    """APCER per species at ``threshold``: attacks scored below it pass as bona fide."""
    return {name: float(np.mean(~classify_attack(data.species_scores(name), threshold)))
            for name in data.species_names()}


def apcer_pooled_at(data: ScoredSet, threshold: float) -> float:
    return float(np.mean(~classify_attack(data.attack_scores, threshold)))


def bpcer_at(data: ScoredSet, threshold: float) -> float:
    return float(np.mean(classify_attack(data.live_scores, threshold)))


def hter_at(data: ScoredSet, threshold: float) -> float:
    """Half total error rate at ``threshold`` (pooled APCER, see module docstring)."""
    return 0.5 * (apcer_pooled_at(data, threshold) + bpcer_at(data, threshold))


@dataclass(frozen=True)
class ErrorCurve:
    """APCER and BPCER at every candidate threshold, thresholds ascending.

    As the threshold rises, APCER rises and BPCER falls (both monotone). ``apcer_max`` is the
    worst species at each threshold; ``apcer_pooled`` treats all attacks as one class.
    """

    thresholds: np.ndarray
    apcer_max: np.ndarray
    apcer_pooled: np.ndarray
    bpcer: np.ndarray


def error_curve(data: ScoredSet) -> ErrorCurve:
    thresholds = np.append(np.unique(data.scores), np.inf)
    live = np.sort(data.live_scores)
    attack = np.sort(data.attack_scores)
    # searchsorted(side="left") counts scores strictly below t: those are classified bona fide.
    bpcer = 1.0 - np.searchsorted(live, thresholds, side="left") / live.size
    apcer_pooled = np.searchsorted(attack, thresholds, side="left") / attack.size
    per_species = [np.searchsorted(np.sort(data.species_scores(n)), thresholds, side="left")
                   / data.species_scores(n).size for n in data.species_names()]
    apcer_max = np.max(np.stack(per_species), axis=0)
    return ErrorCurve(thresholds, apcer_max, apcer_pooled, bpcer)


@dataclass(frozen=True)
class EqualErrorRate:
    eer: float
    threshold: float


def equal_error_rate(data: ScoredSet) -> EqualErrorRate:
    """EER on pooled APCER vs BPCER.

    On a finite set the two curves rarely meet exactly: we take the candidate threshold where
    ``|APCER - BPCER|`` is smallest (the lowest such threshold on ties) and report the mean of the
    two rates there, the usual convention for discrete score sets (e.g. bob.measure's ``eer``).
    """
    curve = error_curve(data)
    return _crossing(curve.apcer_pooled, curve)


def _crossing(apcer: np.ndarray, curve: ErrorCurve) -> EqualErrorRate:
    """Where ``apcer`` (pooled or worst species) and BPCER are closest: the lowest such threshold on a
    tie (the stricter), and the mean of the two rates there."""
    gap = np.abs(apcer - curve.bpcer)
    i = int(np.flatnonzero(gap <= gap.min() + 1e-12)[0])  # tolerance: rates are ratios of counts
    return EqualErrorRate(float(0.5 * (apcer[i] + curve.bpcer[i])), float(curve.thresholds[i]))


def worst_species_eer(data: ScoredSet) -> EqualErrorRate:
    """EER on the **worst** species' APCER vs BPCER: where no species gets through more often than
    owners are refused. The pooled :func:`equal_error_rate` lets the hardest species through more
    often than that whenever the species differ. Ties and the reported rate as there; with one
    species the two points coincide.
    """
    curve = error_curve(data)
    return _crossing(curve.apcer_max, curve)


def lowest_acer(data: ScoredSet) -> tuple[float, float]:
    """The lowest ACER ((worst-species APCER + BPCER) / 2) over the candidate thresholds; returns
    (acer, threshold). On a tie, the lowest threshold: the one that lets fewer attacks through."""
    curve = error_curve(data)
    acer = 0.5 * (curve.apcer_max + curve.bpcer)
    i = int(np.flatnonzero(acer <= acer.min() + 1e-12)[0])
    return float(acer[i]), float(curve.thresholds[i])


def area_under_curve(data: ScoredSet) -> float:
    """ROC AUC as the Mann–Whitney probability P(attack score > live score), ties counted 1/2."""
    live = np.sort(data.live_scores)
    attack = data.attack_scores
    below = np.searchsorted(live, attack, side="left")
    at_or_below = np.searchsorted(live, attack, side="right")
    wins = below + 0.5 * (at_or_below - below)
    return float(wins.sum() / (live.size * attack.size))


def bpcer_at_apcer(data: ScoredSet, apcer_target: float, worst_case: bool = True) -> tuple[float, float]:
    """Lowest BPCER reachable while APCER <= ``apcer_target``; returns (bpcer, threshold).

    ``worst_case`` uses the maximum APCER over species (ISO/IEC 30107-3 reports per species, so the
    operating point must hold for every one of them); False uses pooled APCER.
    """
    if not 0.0 <= apcer_target <= 1.0:
        raise ValueError(f"apcer_target must be in [0, 1], got {apcer_target}")
    curve = error_curve(data)
    apcer = curve.apcer_max if worst_case else curve.apcer_pooled
    ok = np.flatnonzero(apcer <= apcer_target + 1e-12)
    i = int(ok[-1])  # APCER is 0 at the lowest score, so at least one candidate qualifies
    return float(curve.bpcer[i]), float(curve.thresholds[i])


def apcer_at_bpcer(data: ScoredSet, bpcer_target: float, worst_case: bool = True) -> tuple[float, float]:
    """Lowest APCER reachable while BPCER <= ``bpcer_target``; returns (apcer, threshold)."""
    if not 0.0 <= bpcer_target <= 1.0:
        raise ValueError(f"bpcer_target must be in [0, 1], got {bpcer_target}")
    curve = error_curve(data)
    apcer = curve.apcer_max if worst_case else curve.apcer_pooled
    ok = np.flatnonzero(curve.bpcer <= bpcer_target + 1e-12)
    i = int(ok[0])  # BPCER is 0 at +inf, so at least one candidate qualifies
    return float(apcer[i]), float(curve.thresholds[i])


@dataclass(frozen=True)
class DetPoint:
    threshold: float
    apcer: float
    bpcer: float


def det_points(data: ScoredSet, worst_case: bool = False) -> list[DetPoint]:
    """Detection error trade-off points (APCER, BPCER) per candidate threshold, ascending threshold."""
    curve = error_curve(data)
    apcer = curve.apcer_max if worst_case else curve.apcer_pooled
    return [DetPoint(float(t), float(a), float(b)) for t, a, b in zip(curve.thresholds, apcer, curve.bpcer)]


@dataclass(frozen=True)
class PadReport:
    """The metrics of one scored set at one threshold (decision: score >= threshold => attack)."""

    apcer: Mapping[str, float]  # per attack species
    apcer_max: float  # worst-case species
    apcer_pooled: float  # all attacks as one class
    bpcer: float
    acer: float  # (apcer_max + bpcer) / 2
    hter: float  # (apcer_pooled + bpcer) / 2
    eer: float
    eer_threshold: float
    auc: float
    threshold: float
    n_live: int
    n_spoof: int
    n_per_species: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict; key names are part of the CLI's ``--json`` contract."""
        return {
            "apcer": dict(self.apcer),
            "apcer_max": self.apcer_max,
            "apcer_pooled": self.apcer_pooled,
            "bpcer": self.bpcer,
            "acer": self.acer,
            "hter": self.hter,
            "eer": self.eer,
            "eer_threshold": self.eer_threshold,
            "auc": self.auc,
            "threshold": self.threshold,
            "n_live": self.n_live,
            "n_spoof": self.n_spoof,
            "n_per_species": dict(self.n_per_species),
            "score_polarity": SCORE_POLARITY,
            "decision": "attack if score >= threshold",
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)


def pad_report(scores: Sequence[float] | np.ndarray, is_attack: Sequence[bool] | np.ndarray,
               threshold: float, species: Sequence[str] | None = None) -> PadReport:
    """All metrics of ISO/IEC 30107-3 for one threshold (EER and AUC are threshold-free)."""
    data = scored_set(scores, is_attack, species)
    if not np.isfinite(threshold) and threshold != np.inf:
        raise ValueError(f"threshold must be a number, got {threshold}")
    apcer = apcer_at(data, threshold)
    apcer_max = max(apcer.values())
    apcer_pooled = apcer_pooled_at(data, threshold)
    bpcer = bpcer_at(data, threshold)
    eer = equal_error_rate(data)
    return PadReport(
        apcer=MappingProxyType(apcer),
        apcer_max=apcer_max,
        apcer_pooled=apcer_pooled,
        bpcer=bpcer,
        acer=0.5 * (apcer_max + bpcer),
        hter=0.5 * (apcer_pooled + bpcer),
        eer=eer.eer,
        eer_threshold=eer.threshold,
        auc=area_under_curve(data),
        threshold=float(threshold),
        n_live=int((~data.is_attack).sum()),
        n_spoof=int(data.is_attack.sum()),
        n_per_species=MappingProxyType({n: int(data.species_scores(n).size) for n in data.species_names()}),
    )
