"""Which attack species the training batches draw: evenly, or more of those the model still misses.

``even`` (the default) gives every species the same share of a batch's attacks. ``hard`` is hard-species
mining: every :data:`HARD_EVERY` steps the current network scores a fixed probe of training faces (a few
of each species and of live faces) and each species' share grows with how often its probe attacks rank
below live faces (1 - AUC of that species against live). A species the model has learned keeps
:data:`HARD_FLOOR` of its even share, so nothing is forgotten; the rest of the attack half of each batch
goes to the species still confused with live faces (in the photo world: the silicone mask, whose cues
are a few millimetres of relief and a waxy sheen).

``hard-camera`` measures the same difficulty under each camera condition the run trains with, and a
species counts as hard as it is in its worst one: the probe's faces as rendered, lit flat (when the run's
``--augment`` draws flat light) and with another stereo camera's depth (when it draws those), each a
fixed copy (:func:`camera_copy`) scored against the live faces of the same copy. Why: a species can be
learned as rendered and still pass when lit flat (the thirty-second session's default let 18.8 % of
flat-lit test mannequins through while catching all but 5.6 % as rendered); ``hard`` measured on
rendered faces alone gave it no more of the batch.

A run that re-tones skin (``--augment ...-tone``) adds a ``toned`` copy to ``hard-camera``'s and
``hard-door``'s probe: the probe's faces with their skin re-toned by the training's own draw (of the
re-toned worlds only, as in the batches), so a species that passes once faces are darker, a painted
mannequin among deeper-skinned owners, gets its share.

``hard-world`` is ``hard`` with each world's species on its own share when the training set joins
worlds (``synthetic:4000+photomix:3000``): the procedural rigid mask and the photo world's mask are two
kinds of attack, not one. Why: pooled, the easy photo mask pulls the shared species' difficulty down,
and a run on composite faces let the procedural rigid mask through twice as often (10-11 % against 5 %,
the thirty-ninth session) while its share stayed near its floor (docs/hard-species.md).

``hard-door`` measures what a door suffers instead of a ranking: the share of a species' probe attacks
that score below the point refusing :data:`DOOR_BPCER` of the probe's live faces (the owner-first point
the bundled models ship at), in the worst of ``hard-camera``'s conditions. Why: 1 - AUC counts every
attack ranked below any live face alike, and the owner-first threshold sits in the live faces' top
tail. The bundled default lets 12 % of the training people's own painted mannequins through at its
stored threshold (18 of 146, ``tools/mannequin_paint.py --split train``), yet in two ``hard`` runs from it
(the forty-sixth session's) the probe found every mannequin above every live face at 9 of 17 probes each
(difficulty 0: the floor), and mannequins had on average 10 and 14 % of the attack half (an even share is
12.5 %) while the mask took 52 and 25 % (docs/hard-species.md).

``hard-door-world`` is ``hard-door`` with ``hard-world``'s kinds: each world's species on its own share,
each as hard as the share of it passing at the door point in its worst condition. Why: in the forty-ninth
session ``hard-door`` with the re-toned copy let fewer dev mannequins through than any recipe before, and
the procedural rigid mask, pooled with the photo world's under ``mask``, came back (3 % -> 9 % passing),
as in the forty-sixth session's ``hard-door`` runs.

The difficulty is measured on training faces, not dev ones: dev data only calibrates (DESIGN §6).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from edge.datasets.sampleset import SampleSet



class MixTraits(NamedTuple):
    """What a mining ``--species-mix`` probes: its measure (``rank``: 1 - AUC; ``door``: the share passing
    at the owner-first point), whether it scores every camera condition the run trains with (``cameras``)
    and whether it keeps each world's species apart (``by_world``)."""

    measure: str
    cameras: bool
    by_world: bool


MIXES = {"hard": MixTraits("rank", False, False), "hard-camera": MixTraits("rank", True, False),
         "hard-world": MixTraits("rank", False, True), "hard-door": MixTraits("door", True, False),
         "hard-door-world": MixTraits("door", True, True)}
SPECIES_MIX = ("even", *MIXES)
CONDITIONS = ("rendered", "flat", "sensor", "toned")  # the probe copies of hard-camera (camera_copy)
HARD_EVERY = 50  # steps between difficulty measurements
HARD_FLOOR = 0.5  # a species' share never drops below this fraction of its even share
PROBE_PER_SPECIES = 24  # probe attacks per species
PROBE_LIVE = 96  # probe live faces
PROBE_BATCH = 64  # faces per forward pass of the probe
DOOR_BPCER = 0.01  # hard-door: the share of probe live faces refused at the point attacks are judged at

ScoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (rgb, depth) -> score, higher = attack


def attack_kinds(samples: SampleSet, by_world: bool = False) -> np.ndarray:
    """The kind of each face that a batch's attack half is drawn by: its species (``pai``), or with
    ``by_world`` in a set that joins worlds, ``world/species`` (the world is the subject's prefix that
    joining gives, edge.datasets.sampleset.prepare_samples); live faces keep ``""``."""
    pai = samples.pai.astype(str)
    if not by_world or "parts" not in samples.provenance:
        return pai
    return np.where(pai == "", pai, np.char.add(np.char.add(samples.worlds(), "/"), pai))


def attack_groups(samples: SampleSet, by_world: bool = False) -> dict[str, np.ndarray]:
    """The indices of each attack kind (:func:`attack_kinds`), kinds sorted: the order of a
    :class:`SpeciesMix`'s ``species`` (the probe's and the batches' one grouping)."""
    kinds = attack_kinds(samples, by_world)
    attack = samples.is_attack == 1
    return {str(k): np.flatnonzero(attack & (kinds == k)) for k in sorted(set(kinds[attack].tolist()))}


def probe_measure(species_mix: str) -> str:
    """What a ``--species-mix`` counts as hard: ``door`` (attacks passing at the owner-first point) for
    ``hard-door`` and ``hard-door-world``, else ``rank`` (1 - AUC)."""
    return MIXES[species_mix].measure if species_mix in MIXES else "rank"


def mines_by_world(species_mix: str) -> bool:
    """Whether a ``--species-mix`` keeps each world's species apart (``hard-world``, ``hard-door-world``)."""
    return species_mix in MIXES and MIXES[species_mix].by_world


class SpeciesMix:
    """The share of each attack kind in a batch's attack half (``species`` in a fixed order): a species,
    or with ``by_world`` a world's species (:func:`attack_kinds`)."""

    def __init__(self, species: list[str], by_world: bool = False) -> None:
        if not species:
            raise ValueError("a species mix needs at least one attack species")
        self.species = list(species)
        self.by_world = by_world
        self.share = np.full(len(self.species), 1.0 / len(self.species))

    def set_difficulty(self, difficulty: dict[str, float]) -> None:
        """Shares from per-species difficulty in [0, 1]: the floor of the even share, the rest by difficulty."""
        hard = np.array([min(1.0, max(0.0, float(difficulty.get(s, 0.0)))) for s in self.species])
        even = 1.0 / len(self.species)
        if not np.isfinite(hard).all() or hard.sum() <= 0:
            self.share = np.full(len(self.species), even)
            return
        self.share = HARD_FLOOR * even + (1.0 - HARD_FLOOR) * hard / hard.sum()

    def pick(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """Indices into ``species`` for ``count`` attacks."""
        return rng.choice(len(self.species), count, p=self.share)

    def as_dict(self) -> dict[str, float]:
        return {s: round(float(v), 4) for s, v in zip(self.species, self.share)}


class DifficultyProbe:
    """A fixed draw of training faces, and per species (or per world's species, ``by_world``) how often
    its attacks score below live ones."""

    def __init__(self, samples: SampleSet, seed: int, conditions: tuple[str, ...] = ("rendered",),
                 by_world: bool = False, measure: str = "rank", tone_worlds: tuple[str, ...] = ()) -> None:
        unknown = [c for c in conditions if c not in CONDITIONS]
        if unknown or not conditions:
            raise ValueError(f"probe conditions must be among {CONDITIONS}, got {conditions}")
        if measure not in ("rank", "door"):
            raise ValueError(f"probe measure must be rank or door, got {measure!r}")
        self.measure = measure
        self.by_world = by_world
        rng = np.random.default_rng(seed + 104729)
        live = np.flatnonzero(samples.is_attack == 0)
        picked = [rng.choice(live, min(PROBE_LIVE, len(live)), replace=False)]
        groups = attack_groups(samples, by_world)
        self.species = list(groups)
        for idx in groups.values():
            picked.append(rng.choice(idx, min(PROBE_PER_SPECIES, len(idx)), replace=False))
        self.faces = samples.subset(np.concatenate(picked))
        self.kinds = np.concatenate([np.full(len(k), p) for p, k in zip(["", *self.species], picked)])
        self.copies = {c: camera_copy(self.faces, c, seed, tone_worlds) for c in conditions}

    def difficulty(self, score: ScoreFn) -> dict[str, float]:
        """Per species, in the worst of the probe's conditions: 1 - AUC against the probe's live faces (0:
        every attack above every live face), or with ``measure`` door the share of its attacks scoring
        below the point that refuses :data:`DOOR_BPCER` of the live faces of the same copy. ``score`` is
        called on batches of each copy (calibration.scoring.score_in_batches)."""
        from calibration.metrics import area_under_curve, scored_set
        from calibration.scoring import score_in_batches

        live = self.faces.is_attack == 0
        per_copy = {p: [] for p in self.species}
        for faces in self.copies.values():
            scores = score_in_batches(score, faces, PROBE_BATCH)
            line = float(np.quantile(scores[live], 1.0 - DOOR_BPCER)) if self.measure == "door" else math.nan
            for p in self.species:
                if self.measure == "door":
                    per_copy[p].append(float(np.mean(scores[self.kinds == p] < line)))
                else:
                    keep = live | (self.kinds == p)
                    per_copy[p].append(1.0 - area_under_curve(scored_set(scores[keep], ~live[keep])))
        return {p: float(np.max(v)) for p, v in per_copy.items()}  # a NaN stays NaN: set_difficulty goes even


def run_probe(samples: SampleSet, seed: int, species_mix: str, flat_fraction: float,
              sensor_fraction: float, tone_fraction: float = 0.0,
              tone_worlds: tuple[str, ...] = ()) -> DifficultyProbe:
    """The probe a run with ``--species-mix species_mix`` measures its shares with: its conditions (from
    the run's camera and skin draws), its grouping by world and its measure. Faces without landmarks are
    not re-toned in the batches (:func:`train.augment.perturb_sample`), so their probe has no toned copy."""
    tone_fraction = tone_fraction if samples.landmarks is not None else 0.0
    return DifficultyProbe(samples, seed, probe_conditions(species_mix, flat_fraction, sensor_fraction, tone_fraction),
                           by_world=mines_by_world(species_mix), measure=probe_measure(species_mix),
                           tone_worlds=tone_worlds)


def probe_conditions(species_mix: str, flat_fraction: float, sensor_fraction: float,
                     tone_fraction: float = 0.0) -> tuple[str, ...]:
    """The probe copies a run's ``--species-mix`` scores: rendered faces only for ``hard``; for
    ``hard-camera``, ``hard-door`` and ``hard-door-world`` also each camera condition its ``--augment``
    trains with, and the faces with their skin re-toned when it re-tones (``toned``)."""
    if species_mix not in MIXES or not MIXES[species_mix].cameras:
        return ("rendered",)
    return (("rendered",) + (("flat",) if flat_fraction > 0 else ()) + (("sensor",) if sensor_fraction > 0 else ())
            + (("toned",) if tone_fraction > 0 else ()))


def camera_copy(faces: SampleSet, condition: str, seed: int, tone_worlds: tuple[str, ...] = ()) -> SampleSet:
    """``faces`` as rendered, or each drawn once through the training's camera realism
    (:func:`train.augment.perturbed_copy`) lit flat (``flat``), with one of the other stereo cameras'
    depth, drawn evenly (``sensor``), or with its skin re-toned by the training's draw (``toned``: every
    face of ``tone_worlds``, or of every world when it names none; the faces' landmarks are needed); the
    same seed gives the same copy."""
    if condition == "rendered":
        return faces
    from train.augment import perturbed_copy

    toneable = None
    if condition == "toned":
        if faces.landmarks is None:
            raise ValueError("the toned probe copy re-tones the skin at the faces' landmarks, and these faces have none")
        toneable = np.isin(faces.worlds(), tone_worlds) if tone_worlds else None
    return perturbed_copy(faces, seed + 15485863 + CONDITIONS.index(condition),
                          flat_fraction=float(condition == "flat"), sensor_fraction=float(condition == "sensor"),
                          tone_fraction=float(condition == "toned"), toneable=toneable)


def torch_scorer(model) -> ScoreFn:
    """One batch through the network's fused-map score, in eval mode without gradients (its train/eval
    mode is restored after the batch)."""
    import torch

    def score(rgb: np.ndarray, depth: np.ndarray) -> np.ndarray:
        was_training = model.training
        model.eval()
        try:
            device = next(model.parameters()).device
            with torch.no_grad():
                return model.forward_fused(torch.from_numpy(rgb).to(device),
                                           torch.from_numpy(depth).to(device)).score.cpu().numpy()
        finally:
            model.train(was_training)

    return score
