"""Choosing the decision threshold at a named operating point, and drawing the DET curve (DESIGN §6).

Targets are written as short strings so that the CLI, the manifest and the metadata all carry the
same words:

- ``bpcer@apcer=0.01`` — the threshold with the lowest BPCER while the **worst-case** APCER stays at
  or below 1 % (ISO/IEC 30107-3 reports APCER per species; an operating point must hold for each).
- ``eer`` — the equal-error-rate threshold (pooled APCER = BPCER).
- ``worst-eer`` — where the **worst** species' APCER meets BPCER: no species gets through more often
  than owners are refused (at ``eer`` the hardest species does, whenever species differ).
- ``acer`` — the lowest ACER ((worst APCER + BPCER) / 2, the ISO/IEC 30107-3 summary the gates
  read); on a tie, the threshold that lets fewer attacks through.
- ``bpcer=0.01`` — the lowest worst-case APCER while BPCER stays at or below 1 % (a convenience-first
  deployment: at most one live user in a hundred is refused).
- ``apcer=0.01`` — the same operating point as ``bpcer@apcer=0.01``, named by the rate it bounds (a
  security-first deployment); it is stored in its canonical form, ``bpcer@apcer=0.01``.

A rate is a fraction (``0.01``) or a percentage (``1%``).

Decisions follow :func:`engines.outputs.classify_attack` (score >= threshold => attack).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calibration.metrics import (
    PadReport,
    apcer_at_bpcer,
    bpcer_at_apcer,
    det_points,
    equal_error_rate,
    lowest_acer,
    pad_report,
    scored_set,
    worst_species_eer,
)
from edge.errors import ConfigError, import_optional

TARGET_FORMS = ("bpcer@apcer=RATE, apcer=RATE (the same), eer, worst-eer, acer, bpcer=RATE (RATE a fraction in "
                "(0, 1) or a percentage, e.g. 0.01 or 1%)")


RATELESS_TARGETS = ("eer", "worst-eer", "acer")


@dataclass(frozen=True)
class ThresholdTarget:
    """A parsed operating point: ``kind`` is "bpcer@apcer", "eer", "worst-eer", "acer" or "bpcer";
    ``rate`` is the bound (None for the three without one)."""

    kind: str
    rate: float | None

    def __str__(self) -> str:
        return self.kind if self.rate is None else f"{self.kind}={self.rate:g}"


def parse_target(text: str) -> ThresholdTarget:
    """Parse a target string; anything else is a one-line ConfigError listing the valid forms."""
    raw = (text or "").strip().lower().replace(" ", "")
    if raw in RATELESS_TARGETS:
        return ThresholdTarget(raw, None)
    match = re.fullmatch(r"(bpcer@apcer|apcer|bpcer)=([0-9.e+-]+)(%?)", raw)
    if match:
        try:
            rate = float(match.group(2)) / (100.0 if match.group(3) else 1.0)
        except ValueError:
            rate = float("nan")
        if 0.0 < rate < 1.0:
            # apcer=RATE bounds the worst-case APCER and minimises BPCER: bpcer@apcer by another name
            return ThresholdTarget("bpcer@apcer" if match.group(1) == "apcer" else match.group(1), rate)
    raise ConfigError(f"unknown threshold target '{text}'; use one of: {TARGET_FORMS}")


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold, the target that chose it and the metrics that justify it."""

    target: ThresholdTarget
    threshold: float
    report: PadReport

    def to_json(self) -> dict[str, object]:
        return {"target": str(self.target), "threshold": self.threshold, "metrics": self.report.to_json()}


def choose_threshold(scores: Sequence[float] | np.ndarray, is_attack: Sequence[bool] | np.ndarray,
                     target: ThresholdTarget | str, species: Sequence[str] | None = None) -> ThresholdChoice:
    """Pick the threshold for ``target`` on labelled dev scores and report the metrics there.

    A target no candidate threshold can meet except "accept nothing"/"refuse nothing" is still
    answered (the metrics show it); a threshold of +inf, which would accept every attack, is a
    ConfigError because writing it into a model would disable detection.
    """
    if isinstance(target, str):
        target = parse_target(target)
    data = scored_set(scores, is_attack, species)
    if target.kind == "eer":
        threshold = equal_error_rate(data).threshold
    elif target.kind == "worst-eer":
        threshold = worst_species_eer(data).threshold
    elif target.kind == "acer":
        _, threshold = lowest_acer(data)
    elif target.kind == "bpcer@apcer":
        _, threshold = bpcer_at_apcer(data, float(target.rate), worst_case=True)
    elif target.kind == "bpcer":
        _, threshold = apcer_at_bpcer(data, float(target.rate), worst_case=True)
    else:
        raise ValueError(f"ThresholdTarget.kind '{target.kind}' is not one of bpcer@apcer, eer, worst-eer, acer, bpcer")
    if not math.isfinite(threshold):
        raise ConfigError(
            f"target {target} is only met by classifying every sample as live on this set; "
            f"use a stricter target or a dev set on which the model separates live from attacks"
        )
    return ThresholdChoice(target, threshold, pad_report(scores, is_attack, threshold, species))


MIN_PEOPLE_FOR_SPREAD = 3  # with fewer, holding one out leaves too little to choose on
MAX_PEOPLE_FOR_SPREAD = 200  # with more, no one person sets the point (and the loop would be long)


def held_out_thresholds(scores: Sequence[float] | np.ndarray, is_attack: Sequence[bool] | np.ndarray,
                        target: ThresholdTarget | str, species: Sequence[str] | None,
                        subjects: Sequence[str], people: Sequence[str] | None = None) -> dict[str, float]:
    """The threshold ``target`` chooses with each person's faces left out in turn, keyed by that person.

    With few people the threshold can be set by one of them (one person's live faces scoring high
    make a lenient point for everyone else); the spread of these thresholds shows it. By default the
    people with live faces are held out, and only when there are :data:`MIN_PEOPLE_FOR_SPREAD` to
    :data:`MAX_PEOPLE_FOR_SPREAD` of them (otherwise the answer is empty); ``people`` names exactly
    whom to hold out instead. A person whose absence leaves no finite threshold is left out.
    """
    scores = np.asarray(scores, dtype=np.float64)
    attack = np.asarray(is_attack, dtype=bool)
    names = np.asarray(subjects).astype(str)
    kinds = np.asarray(species).astype(str) if species is not None else None
    if len(names) != len(scores):
        raise ValueError(f"held_out_thresholds needs one subject per score, got {len(names)} for {len(scores)}")
    if people is None:
        people = sorted({str(n) for n in names[~attack] if str(n)})
        if not MIN_PEOPLE_FOR_SPREAD <= len(people) <= MAX_PEOPLE_FOR_SPREAD:
            return {}
    out: dict[str, float] = {}
    for person in people:
        rest = names != person
        try:
            choice = choose_threshold(scores[rest], attack[rest], target, None if kinds is None else kinds[rest])
        except ConfigError:
            continue
        out[person] = choice.threshold
    return out


def write_det_plot(scores: Sequence[float] | np.ndarray, is_attack: Sequence[bool] | np.ndarray,
                   out_path: str | Path, species: Sequence[str] | None = None,
                   threshold: float | None = None, title: str = "DET") -> Path:
    """Write a DET plot (PNG/PDF/SVG by suffix) on normal-deviate axes, one curve per attack species.

    The normal-deviate scale is the DET convention of Martin et al., "The DET curve in assessment of
    detection task performance" (Eurospeech 1997). Rates of exactly 0 or 1 cannot be drawn on it and
    are clipped to [1e-4, 1 - 1e-4].
    """
    matplotlib = import_optional("matplotlib", "train", "drawing a DET plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from statistics import NormalDist

    data = scored_set(scores, is_attack, species)
    probit = NormalDist().inv_cdf

    def axis(values: Sequence[float]) -> list[float]:
        return [probit(min(max(v, 1e-4), 1 - 1e-4)) for v in values]

    fig, ax = plt.subplots(figsize=(5, 5))
    try:
        curves = {"pooled": det_points(data, worst_case=False)}
        for name in data.species_names():
            mask = np.array([(s == name) or not a for s, a in zip(data.species, data.is_attack)])
            if len(data.species_names()) > 1:
                curves[name] = det_points(scored_set(data.scores[mask], data.is_attack[mask],
                                                     [data.species[i] for i in np.flatnonzero(mask)]))
        for label, points in curves.items():
            ax.plot(axis([p.apcer for p in points]), axis([p.bpcer for p in points]), label=label)
        if threshold is not None:
            rep = pad_report(data.scores, data.is_attack, threshold, data.species)
            ax.plot(axis([rep.apcer_pooled]), axis([rep.bpcer]), "ko", label=f"threshold {threshold:.4g}")
        ticks = [0.001, 0.01, 0.05, 0.2, 0.5, 0.8]
        ax.set_xticks(axis(ticks), [f"{t:g}" for t in ticks])
        ax.set_yticks(axis(ticks), [f"{t:g}" for t in ticks])
        ax.set_xlabel("APCER")
        ax.set_ylabel("BPCER")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right")
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out
