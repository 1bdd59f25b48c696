"""A whole training run: data through the shared preprocessing, balanced batches, the trainer, the
dev-set score calibration, and a checkpoint that carries its preprocessing contract and threshold.

``edgefas train`` is a thin shell over :func:`run_training`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.datasets.sampleset import SampleSet, prepare_samples
from edge.face.preprocess import PreprocessConfig

log = logging.getLogger(__name__)

ALPHA_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)  # candidate trace weights in the score (DESIGN §4: chosen on dev)
AUGMENT_PROBABILITY = 0.8
DEFAULT_BATCH = 16  # edgefas train --batch
ALPHA_TIE_EER = 0.005  # dev EERs this close count as a tie, broken on the flat-lit, then the perturbed dev copy
ALPHA_TIE_APCER = 0.02  # flat-lit worst-species APCERs this close count as a tie, broken by the perturbed EER
FLAT_COPY_SEED = 434343  # the alpha rule's flat-lit dev copy (another stream than the perturbed copy's)
# An alpha whose dev threshold has more than ALPHA_CROWD_SHARE of dev faces within ALPHA_INT8_MARGIN of it (one
# step of an 8-bit tensor over [0, 1], the fused map's range) loses to one that has not: an INT8 build's rounding
# moves a score by about that much, and a crowded threshold flips those faces (docs/alpha-rule.md)
ALPHA_INT8_MARGIN = 1.0 / 255.0
ALPHA_CROWD_SHARE = 0.05


@dataclass(frozen=True)
class Augment:
    """One ``--augment`` choice: the share of the perturbed faces drawn as compound ones (train.augment),
    the share of the faces wearing eyeglasses, drawn before the camera realism (train.eyeglasses),
    the share of the perturbed faces lit flat and washed out (train.augment.flat_light), the share
    of the perturbed faces with another stereo camera's depth (train.augment.SENSORS), and the share of
    the perturbed faces with most of their colour taken away (``grey``), and the share of the perturbed
    faces exposed low-key (``dark``), and the share of the perturbed faces whose brightness is levelled
    (``level``), and the share of the perturbed faces whose skin is re-toned deeper (``tone``)."""

    compound: float
    eyeglasses: float
    flat: float = 0.0
    sensor: float = 0.0
    grey: float = 0.0
    dark: float = 0.0
    level: float = 0.0
    tone: float = 0.0
    tone_worlds: tuple[str, ...] = ()  # the worlds whose faces are re-toned; () = every world

    def batch_shares(self) -> dict[str, object]:
        """The keyword arguments of :func:`balanced_batches` this choice sets: one place to add a share."""
        return {"compound_fraction": self.compound, "eyeglasses_fraction": self.eyeglasses,
                "flat_fraction": self.flat, "sensor_fraction": self.sensor, "grey_fraction": self.grey,
                "dark_fraction": self.dark, "level_fraction": self.level,
                "tone_fraction": self.tone, "tone_worlds": self.tone_worlds}


# The worlds built from photographs of real people, all light-skinned (tools/skin_tone.py measured them);
# the procedural world draws its heads' skin over the whole range already (edge/capture/synthetic/head.py).
PHOTO_WORLDS = ("photo", "photomix", "photomorph")


AUGMENTS = {"standard": Augment(0.0, 0.0), "wide": Augment(0.3, 0.0), "glasses": Augment(0.0, 0.25),
            "glasses-flat": Augment(0.0, 0.25, 0.3), "glasses-sensor": Augment(0.0, 0.25, 0.0, 0.4),
            "glasses-flat-sensor": Augment(0.0, 0.25, 0.3, 0.4),
            "glasses-flat-sensor-grey": Augment(0.0, 0.25, 0.3, 0.4, 0.2),
            "glasses-flat-sensor-dark": Augment(0.0, 0.25, 0.3, 0.4, 0.0, 0.2),
            "glasses-flat-sensor-level": Augment(0.0, 0.25, 0.3, 0.4, 0.0, 0.0, 0.6),
            "glasses-flat-sensor-tone": Augment(0.0, 0.25, 0.3, 0.4, tone=0.5),
            "glasses-flat-sensor-phototone": Augment(0.0, 0.25, 0.3, 0.4, tone=0.6, tone_worlds=PHOTO_WORLDS)}


@dataclass(frozen=True)
class TrainJob:
    # a None below is "not asked": a new run takes the default in the comment, --resume the run's own value,
    # and an asked value that differs from the resumed run's is refused (resumed_job)
    preset: str | None = None  # None: edge
    dataset: str = "synthetic:4000"
    dev_dataset: str | None = None  # default: the dev split of ``dataset``
    out_dir: Path = Path("runs/edge")
    steps: int = 2000
    batch_size: int | None = None  # None: DEFAULT_BATCH
    seed: int | None = None  # None: 0
    learning_rate: float | None = None  # None: the preset's TrainConfig default
    lr_schedule: str | None = None  # TrainConfig.lr_schedule (constant or cosine over --steps); None: constant
    augment: str | None = None  # camera realism, a key of AUGMENTS; None: standard
    species_mix: str | None = None  # train.species_mix.SPECIES_MIX; None: even
    colour_blind_weight: float | None = None  # TrainConfig.colour_blind_weight; None: 0 (off)
    partial_fraction: float | None = None  # TrainConfig.partial_fraction; None: 0 (off)
    qat: str | None = None  # TrainConfig.qat (train.qat); None: off
    depth_guard: bool | None = None  # ModelConfig.depth_guard; None: off (with --init: as that checkpoint)
    exposure_mean: float | None = None  # ModelConfig.exposure_mean; None: 0, off (with --init: as that checkpoint)
    exposure_contrast: float | None = None  # ModelConfig.exposure_contrast; None: as exposure_mean's source, 0 when it is off
    ema_decay: float | None = None  # ship a moving average of the weights (TrainConfig.ema_decay); None/0: the last step's
    modalities: tuple[str, ...] | None = None  # None: rgb + depth
    protocol: str = ""  # applied to synthetic sets: grandtest or LOO_<species>
    resume: bool = False
    init: Path | None = None  # start from this checkpoint's weights (fine-tuning): fresh optimiser, step 0
    cache_dir: Path | None = None  # None: the samples cache under the one cache root (edge.cache)
    detector: str = "auto"
    model_dir: Path | None = None
    threads: int | None = None
    threshold_target: str = "eer"
    time_limit_s: float | None = None  # stop at the first step after this many seconds of training; None: --steps only
    ship: bool = True  # False: leave OUT/last.pt only (no model.pt); `--resume --steps <its step>` ships it later
    # write OUT/last.pt every this many steps; None: TrainConfig's (a new run) or the resumed run's own. Not a
    # training setting, so a resumed run may take another
    checkpoint_every: int | None = None

    def for_new_run(self) -> TrainJob:
        """The job with every unasked value at its default (a run that does not resume)."""
        return dataclasses.replace(self, preset=self.preset or "edge",
                                   batch_size=self.batch_size if self.batch_size is not None else DEFAULT_BATCH,
                                   seed=self.seed if self.seed is not None else 0,
                                   modalities=tuple(self.modalities or ("rgb", "depth")))


@dataclass(frozen=True)
class TrainSummary:
    checkpoint: Path
    steps: int
    wall_s: float
    peak_rss_mib: float
    train_samples: int
    dev_samples: int
    alpha: float
    threshold: float
    dev_report: dict


def balanced_batches(samples: SampleSet, batch_size: int, seed: int, augment: bool = True,
                     compound_fraction: float = 0.0, mix=None, eyeglasses_fraction: float = 0.0,
                     flat_fraction: float = 0.0, sensor_fraction: float = 0.0, grey_fraction: float = 0.0,
                     dark_fraction: float = 0.0, level_fraction: float = 0.0, tone_fraction: float = 0.0,
                     tone_worlds: tuple[str, ...] = ()) -> Iterator:
    """Endless batches, half live and half attack, attacks drawn evenly over species, or by the shares of
    ``mix`` (a :class:`train.species_mix.SpeciesMix` over the same sorted species, read at every batch).
    With ``eyeglasses_fraction``, that share of the faces wear glasses (:mod:`train.eyeglasses`); with
    ``flat_fraction``, that share of the perturbed faces is lit flat (:func:`train.augment.flat_light`);
    with ``sensor_fraction``, that share has another stereo camera's depth (:data:`train.augment.SENSORS`);
    with ``grey_fraction``, that share of the perturbed faces has most of its colour taken away; with
    ``dark_fraction``, that share is exposed low-key (:data:`train.augment.LOW_KEY_GAIN`); with
    ``level_fraction``, that share has its brightness levelled (:data:`train.augment.LEVEL_MEAN`); with
    ``tone_fraction``, that share has its skin re-toned deeper (:mod:`train.skin_tone`), only the faces
    of ``tone_worlds`` when it names any (:meth:`SampleSet.worlds`; none of them in the set is an error)."""
    import torch

    from train.augment import mirror_landmarks, perturb_arrays
    from train.eyeglasses import add_eyeglasses
    from train.species_mix import attack_groups
    from train.trainer import Batch

    rng = np.random.default_rng(seed)
    live = np.flatnonzero(samples.is_attack == 0)
    by_species = attack_groups(samples, mix is not None and mix.by_world)  # a species, or a world's species
    species = list(by_species)
    if mix is not None and species != mix.species:
        raise ValueError(f"the species mix covers {mix.species}, the training set's attacks are {species}")
    toneable = None
    if tone_fraction > 0 and tone_worlds:
        toneable = np.isin(samples.worlds(), tone_worlds)
        if not toneable.any():
            raise ValueError(f"the skin re-toning keeps to the worlds {', '.join(tone_worlds)}, and the training "
                             f"set has none of them ({', '.join(sorted(set(samples.worlds().tolist())))})")
    n_live = batch_size // 2
    while True:
        idx_live = rng.choice(live, n_live)
        picks = rng.choice(len(species), batch_size - n_live) if mix is None else mix.pick(rng, batch_size - n_live)
        idx_spoof = np.array([rng.choice(by_species[species[k]]) for k in picks])
        idx = np.concatenate([idx_live, idx_spoof])
        rgb, depth = samples.arrays(idx)
        landmarks = None if samples.landmarks is None else samples.landmarks[idx].copy()
        if augment:
            flip = rng.random(len(idx)) < 0.5  # a mirrored face is still a face; mirror both streams together
            rgb[flip] = rgb[flip, :, :, ::-1]
            depth[flip] = depth[flip, :, :, ::-1]
            if landmarks is not None:
                landmarks[flip] = mirror_landmarks(landmarks[flip])
            # glasses first, so the camera realism blurs, compresses and punches holes in them like the rest
            rgb, depth, _ = add_eyeglasses(rgb, depth, landmarks, samples.pai[idx], rng, eyeglasses_fraction)
            # another camera, room and distance (train.augment); a fifth of the faces stay as rendered
            rgb, depth, landmarks = perturb_arrays(rgb, depth, rng, probability=AUGMENT_PROBABILITY,
                                                   landmarks=landmarks, compound_fraction=compound_fraction,
                                                   flat_fraction=flat_fraction, sensor_fraction=sensor_fraction,
                                                   grey_fraction=grey_fraction, dark_fraction=dark_fraction,
                                                   level_fraction=level_fraction, tone_fraction=tone_fraction,
                                                   toneable=None if toneable is None else toneable[idx])
        yield Batch(rgb=torch.from_numpy(np.ascontiguousarray(rgb)), depth=torch.from_numpy(np.ascontiguousarray(depth)),
                    label=torch.from_numpy(samples.is_attack[idx].astype(np.float32)),
                    pai=tuple(str(p) for p in samples.pai[idx]),
                    landmarks_xy=None if landmarks is None else torch.from_numpy(np.ascontiguousarray(landmarks)))


def until_deadline(batches: Iterable, seconds: float, clock: Callable[[], float]) -> Iterator:
    """``batches`` until ``clock()`` has moved ``seconds`` past the first call (made now): the batch
    drawn when the time is up is not given, so the step in flight finishes and no other starts."""
    stop_at = clock() + seconds
    for batch in batches:
        if clock() >= stop_at:
            return
        yield batch


def recalibrate_batchnorm(model, samples: SampleSet, batches: int = 40, batch_size: int = 32, seed: int = 1) -> None:
    """Recompute BatchNorm running statistics from real, balanced training batches (no gradients).

    Inference normalises with the running statistics; they must describe the live/attack mix the
    model meets, not whatever else passed through it in train mode (BN recalibration, as in
    "Rethinking Batch in BatchNorm", Wu & Johnson 2021: precise statistics from a fixed model).
    """
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the recalibration batches
    model.train()
    stream = balanced_batches(samples, batch_size, seed, augment=False)
    # unaugmented batches of a small set only repeat its samples: two passes over it say all it can
    batches = min(batches, max(1, math.ceil(2 * len(samples) / batch_size)))
    with torch.no_grad():
        for _ in range(batches):
            batch = next(stream)
            model(batch.rgb, batch.depth)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.eval()


def score_components(model, samples: SampleSet, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: the fused spoof-map mean and the trace energy, the two terms of the score.

    The loop over the samples is :func:`calibration.scoring.score_in_batches`, the one eval and
    ``calibrate threshold`` use through a runner; only the batch is scored by the torch model here.
    """
    import torch

    from calibration.scoring import score_in_batches

    def components(rgb: np.ndarray, depth: np.ndarray) -> np.ndarray:  # [B, 2]: fused mean, trace energy
        out = model(torch.from_numpy(rgb), torch.from_numpy(depth))
        base = out.score.numpy()
        traces = (getattr(out, "trace_rgb", None), getattr(out, "trace_depth", None))
        if all(t is not None for t in traces):  # the network's outputs hold both terms: one pass
            full = base + sum(t.abs().mean(dim=(1, 2, 3)) for t in traces).numpy()
        else:  # a model that only gives its score: the energy is the score's change at alpha 1
            model.set_alpha(1.0)
            full = model(torch.from_numpy(rgb), torch.from_numpy(depth)).score.numpy()
            model.set_alpha(0.0)
        return np.stack([base, full - base], axis=1)

    model.eval()
    alpha = float(model.alpha)
    try:
        with torch.no_grad():
            model.set_alpha(0.0)
            both = score_in_batches(components, samples, batch_size)
    finally:
        model.set_alpha(alpha)
    return both[:, 0], both[:, 1]


def calibrate_score(model, dev: SampleSet, target: str, perturbed: SampleSet | None = None,
                    flat: SampleSet | None = None) -> tuple[float, float, dict]:
    """Pick alpha on dev, set it in the model, then the threshold at ``target``.

    The rule, in four steps over the alphas of :data:`ALPHA_GRID`:

    1. those whose dev EER is within :data:`ALPHA_TIE_EER` of the lowest (on a dev split every alpha
       may separate perfectly: a tie);
    2. of them, those whose worst species APCER on a flat-lit copy of dev (``flat``, default every face
       through the camera realism and lit flat, :func:`train.augment.perturbed_copy`), at the
       threshold that alpha would get on dev, is within :data:`ALPHA_TIE_APCER` of the lowest. A
       large alpha puts the threshold above the spoof map's saturation, where the trace energy
       decides, and flat light shrinks the trace energy: attacks then pass under a window's light
       while the pooled EER does not move (docs/alpha-rule.md);
    3. of them, those whose dev threshold is not crowded: at most :data:`ALPHA_CROWD_SHARE` of dev faces
       score within :data:`ALPHA_INT8_MARGIN` of it (where every one is crowded, all of them). A
       threshold where the fused map saturates has a third of dev there, and an INT8 build's rounding
       flips their decisions however well fp32 ranks them;
    4. of them, the one with the lowest EER on a perturbed copy of dev (``perturbed``, default the
       camera realism on every face), then the highest AUC there: taking the first of a tie
       (alpha 0) ignored the trace energy that holds up under camera changes.
    """
    from calibration.metrics import apcer_at, area_under_curve, equal_error_rate, scored_set
    from calibration.scoring import scored
    from train.augment import perturbed_copy
    from train.model.guard import GUARD_OFFSET_OFF

    guarded = getattr(model, "guard", None) is not None
    if guarded:  # the guard's place is chosen last, against the threshold; until then it is off
        model.set_guard_offset(GUARD_OFFSET_OFF)
    fused, energy = score_components(model, dev)
    attack = dev.is_attack.astype(bool)
    dev_scores = {a: fused + a * energy for a in ALPHA_GRID}  # each alpha's score on dev, read by every step
    clean = {a: equal_error_rate(scored_set(dev_scores[a], attack, dev.pai)).eer for a in ALPHA_GRID}
    noisy = perturbed if perturbed is not None else perturbed_copy(dev)
    p_fused, p_energy = score_components(model, noisy)
    p_attack = noisy.is_attack.astype(bool)
    lit = flat if flat is not None else perturbed_copy(dev, seed=FLAT_COPY_SEED, flat_fraction=1.0)
    f_fused, f_energy = score_components(model, lit)
    f_attack = lit.is_attack.astype(bool)

    robust = {}  # alpha -> (EER, -AUC) on the perturbed copy
    for a in ALPHA_GRID:
        data = scored_set(p_fused + a * p_energy, p_attack, noisy.pai)
        robust[a] = (equal_error_rate(data).eer, -area_under_curve(data))
    # each alpha's dev threshold, by the path calibrate threshold takes, and its worst species on the flat copy
    choices = {a: scored(dev, dev_scores[a]).choose_threshold(target) for a in ALPHA_GRID}
    flat_worst = {a: max(apcer_at(scored_set(f_fused + a * f_energy, f_attack, lit.pai),
                                  float(choices[a].threshold)).values(), default=0.0) for a in ALPHA_GRID}
    lowest = min(clean.values())
    near = [a for a in ALPHA_GRID if clean[a] <= lowest + ALPHA_TIE_EER]
    safest = min(flat_worst[a] for a in near)
    near = [a for a in near if flat_worst[a] <= safest + ALPHA_TIE_APCER]
    crowding = {a: float(np.mean(np.abs(dev_scores[a] - choices[a].threshold) < ALPHA_INT8_MARGIN)) for a in ALPHA_GRID}
    near = [a for a in near if crowding[a] <= ALPHA_CROWD_SHARE] or near
    best = min(near, key=robust.__getitem__)
    model.set_alpha(best)
    choice = choices[best]
    report = choice.report.to_json()
    if guarded:
        report = place_guard(model, dev, dev_scores[best], float(choice.threshold), noisy)
    report["alpha_rule"] = {"dev_eer": {str(a): clean[a] for a in ALPHA_GRID},
                            "flat_dev_worst_apcer": {str(a): flat_worst[a] for a in ALPHA_GRID},
                            "dev_share_near_threshold": {str(a): crowding[a] for a in ALPHA_GRID},
                            "perturbed_dev": {str(a): dict(zip(("eer", "neg_auc"), robust[a])) for a in ALPHA_GRID}}
    return best, float(choice.threshold), report


def guard_scores_on(model, samples: SampleSet) -> np.ndarray:
    """The depth guard's own scores on ``samples``, in the batches calibration draws its line with (another
    batching moves a score by an ulp, and the line sits one ulp above the live face at its rank)."""
    import torch

    from calibration.scoring import score_in_batches

    with torch.no_grad():
        return score_in_batches(lambda rgb, depth: model.guard_scores(torch.from_numpy(depth)).numpy(), samples, 64)


def place_guard(model, dev: SampleSet, scores: np.ndarray, threshold: float,
                perturbed: SampleSet | None = None) -> dict:
    """Set the depth guard's offset so that it refuses :data:`~train.model.guard.GUARD_LIVE_SHARE` of
    ``dev``'s live faces on its own: ``offset = threshold - q``, ``q`` their guard scores' quantile at
    1 - that share, or that of ``perturbed``'s live faces (dev through the camera realism, as the alpha
    rule reads it) where higher: the guard reads the highest locations of its map, and a noisy depth
    camera raises an owner's. Returns the dev report of the guarded score at ``threshold``, with the line.

    ``scores`` are the network's scores on ``dev`` without the guard. The guard and the network then
    decide as an OR at ``threshold``; a later ``calibrate threshold`` moves the guard's line with it.
    """
    from calibration.scoring import scored
    from edge.errors import DatasetError
    from train.model.guard import GUARD_LIVE_SHARE

    live = dev.is_attack == 0
    if not live.any():
        raise DatasetError("the dev set has no live faces: the depth guard's line is drawn on them; use another --dev-dataset")
    model.eval()

    def line_of(values: np.ndarray) -> float:  # just above the live face at that rank: at most the share is
        # refused, however few the dev live faces
        return float(np.nextafter(np.quantile(values, 1.0 - GUARD_LIVE_SHARE, method="higher"), np.inf))

    guard = guard_scores_on(model, dev)
    clean_line = line_of(guard[live])
    noisy_line = None
    if perturbed is not None and (perturbed.is_attack == 0).any():
        noisy_line = line_of(guard_scores_on(model, perturbed)[perturbed.is_attack == 0])
    line = clean_line if noisy_line is None else max(clean_line, noisy_line)
    model.set_guard_offset(threshold - line)
    guarded = np.maximum(scores, guard - line + threshold)
    report = scored(dev, guarded).report_at(threshold).to_json()
    attack = ~live
    report["depth_guard"] = {
        "live_share": GUARD_LIVE_SHARE, "line": line, "offset": threshold - line,
        "line_clean_dev": clean_line, "line_perturbed_dev": noisy_line,
        "dev_live_refused_by_guard": float(np.mean(guard[live] >= line)),
        "dev_attacks_only_the_guard_caught": int(np.sum(attack & (scores < threshold) & (guard >= line))),
        "dev_attacks": int(attack.sum()),
    }
    return report


def refuse_calibrating_on_training_rows(spec: str) -> None:
    """A ``folder:`` dataset without a split column is one split: its dev split would be its training rows."""
    from edge.capture.folder import read_labels
    from edge.datasets.registry import parse_dataset_specs
    from edge.errors import DatasetError

    for parsed in parse_dataset_specs(spec):
        if parsed.kind == "folder" and parsed.root.is_dir() and not any(r.split for r in read_labels(parsed.root)):
            raise DatasetError(f"'{parsed.text}' has no split column, so its dev split would be its training rows "
                               f"and the threshold would be calibrated on them; add a split column "
                               f"(train/dev/test) to labels.csv or pass --dev-dataset")


def initial_model(model_config, job: TrainJob):
    """A fresh network of ``model_config``, or, with ``job.init``, that checkpoint's weights: same
    preset and streams, or a one-line :class:`~edge.errors.ModelError` (the discriminators and the
    optimiser start fresh; the step count starts at 0)."""
    from edge.errors import ModelError
    from train.checkpoint import load_checkpoint
    from train.model.network import build_model

    if job.init is None:
        return build_model(model_config)
    model, info = load_checkpoint(job.init)
    has_guard = info.model_config.depth_guard
    if has_guard and not model_config.depth_guard:
        raise ModelError(f"--init {job.init} has a depth guard and this run would drop it; add --depth-guard")
    # the exposure level has no weights: a fine-tune may switch it on or off
    if info.model_config != dataclasses.replace(model_config, depth_guard=has_guard,
                                                 exposure_mean=info.model_config.exposure_mean,
                                                 exposure_contrast=info.model_config.exposure_contrast):
        load_checkpoint(job.init, expect=model_config)  # another architecture: its one-line refusal
    if info.model_config != model_config:
        model = refit_weights(model, model_config, job.init)
    job = job.for_new_run()
    if tuple(info.modalities) != tuple(job.modalities):
        raise ModelError(f"--init {job.init} was trained on {'+'.join(info.modalities)}, this run trains on "
                         f"{'+'.join(job.modalities)}; use a checkpoint with the same streams")
    log.info("weights from %s (%s, %d steps)", job.init, info.preset, info.step)
    return model.train()


def refit_weights(old, model_config, path: Path):
    """The weights of ``old`` (loaded from ``path``; of ``model_config`` but for a depth guard it lacks or its
    exposure level) in a network of ``model_config``, whose depth guard, when ``old`` had none, starts
    fresh (its score is off until calibration)."""
    from edge.errors import ModelError
    from train.model.network import build_model

    model = build_model(model_config)
    missing, unexpected = model.load_state_dict(old.state_dict(), strict=False)
    if unexpected or not all(k.startswith("guard.") or k == "guard_offset" for k in missing):
        raise ModelError(f"--init {path}: weights do not fit the '{model_config.name}' architecture; use another checkpoint")
    if missing:
        log.info("depth guard added to the weights from %s; it is warmed up before the first step", path)
    if (old.config.exposure_mean, old.config.exposure_contrast) != (model_config.exposure_mean, model_config.exposure_contrast):
        log.info("exposure level of the weights from %s: %s, contrast %s", path, model_config.exposure_mean or "off",
                 model_config.exposure_contrast or "as captured")
    return model


_UNREAD = object()


def run_model_config(job: TrainJob, init_config=_UNREAD):
    """The architecture a new run builds: the preset's, with the depth guard and the exposure level asked
    for, or, where not asked, those of ``--init``'s checkpoint (``init_config``: its
    :class:`~train.model.presets.ModelConfig`, None without --init, when already read)."""
    from train.model.presets import get_preset

    if init_config is _UNREAD:
        init_config = _init_config(job)
    guard = job.depth_guard if job.depth_guard is not None else bool(init_config and init_config.depth_guard)
    exposure = job.exposure_mean if job.exposure_mean is not None else (
        init_config.exposure_mean if init_config else 0.0)
    contrast = job.exposure_contrast if job.exposure_contrast is not None else (
        init_config.exposure_contrast if init_config and exposure else 0.0)
    if contrast and not exposure:
        from edge.errors import ConfigError

        raise ConfigError(f"--exposure-contrast {contrast}: the contrast is levelled about the exposure level; "
                          "add --exposure-mean (e.g. 0.45)")
    return dataclasses.replace(get_preset(job.preset), depth_guard=bool(guard), exposure_mean=float(exposure),
                               exposure_contrast=float(contrast))


def _init_config(job: TrainJob):
    """``--init``'s checkpoint's model config (None without --init)."""
    from train.checkpoint import load_checkpoint

    return load_checkpoint(job.init)[1].model_config if job.init is not None and Path(job.init).is_file() else None


def resumed_job(job: TrainJob, last: Path):
    """``job`` with every unasked value taken from the run it resumes (``last``), and that run's model
    config; an asked value that differs from the run's is refused in one line (before, --batch, --lr,
    --ema, --seed and --preset were silently the checkpoint's, and a resumed edge-wide run was saved
    as an edge model when --preset was left out)."""
    from edge.errors import ConfigError, ModelError
    from train.checkpoint import load_checkpoint
    from train.species_mix import SPECIES_MIX

    _, info = load_checkpoint(last)
    kept = info.train_config
    for flag, value, known in (("--augment", kept.augment, AUGMENTS),
                               ("--species-mix", kept.species_mix, SPECIES_MIX)):
        if value not in known:
            raise ModelError(f"{last} trains with an unknown {flag} '{value}'; this edgefas knows "
                             f"{', '.join(known)}: upgrade it or start a new run with --init")
    streams = tuple(info.modalities)
    checks = (("--preset", job.preset, info.preset), ("--batch", job.batch_size, kept.batch_size),
              ("--seed", job.seed, kept.seed), ("--lr", job.learning_rate, kept.learning_rate),
              ("--ema", job.ema_decay, kept.ema_decay), ("--augment", job.augment, kept.augment),
              ("--species-mix", job.species_mix, kept.species_mix),
              ("--colour-blind", job.colour_blind_weight, kept.colour_blind_weight),
              ("--partial", job.partial_fraction, kept.partial_fraction), ("--qat", job.qat, kept.qat),
              ("--lr-schedule", job.lr_schedule, kept.lr_schedule))
    if job.depth_guard is not None and job.depth_guard != info.model_config.depth_guard:
        asked, has = ("--depth-guard", "no depth guard") if job.depth_guard else ("--no-depth-guard", "a depth guard")
        raise ConfigError(f"{asked}: the run in {job.out_dir} has {has}; resume without {asked}, or start a new "
                          f"run with --init {last}")
    levels = (("--exposure-mean", job.exposure_mean, info.model_config.exposure_mean, "no exposure level (0)"),
              ("--exposure-contrast", job.exposure_contrast, info.model_config.exposure_contrast,
               "no contrast level (0)"))
    for flag, asked, has, off in levels:
        if asked is not None and asked != has:
            raise ConfigError(f"{flag} {asked}: the run in {job.out_dir} has {has or off}; resume without {flag}, "
                              f"or start a new run with --init {last}")
    for flag, asked, value in checks:
        if asked is not None and asked != value:
            raise ConfigError(f"{flag} {asked}: the run in {job.out_dir} trains with {flag} {value}; resume with "
                              f"that (or leave {flag} out), or start a new run with --init {last}")
    if kept.lr_schedule != "constant" and info.step < job.steps != kept.steps:
        # the schedule is drawn over the run's own steps: going on past them would train at a rate near 0,
        # stopping short of them would ship a run that never decayed
        raise ConfigError(f"--steps {job.steps}: the run in {job.out_dir} decays its learning rate over "
                          f"{kept.steps} steps ({kept.lr_schedule}); resume with --steps {kept.steps}, or start a "
                          f"new run with --init {last}")
    if job.modalities is not None and tuple(job.modalities) != streams:
        raise ConfigError(f"{'+'.join(job.modalities)} streams asked: the run in {job.out_dir} trains on "
                          f"{'+'.join(streams)}; resume without --rgb-only (or with it, as the run was started), "
                          f"or start a new run with --init {last}")
    job = dataclasses.replace(job, preset=info.preset, batch_size=kept.batch_size, seed=kept.seed,
                              learning_rate=kept.learning_rate, ema_decay=kept.ema_decay, augment=kept.augment,
                              species_mix=kept.species_mix, colour_blind_weight=kept.colour_blind_weight,
                              partial_fraction=kept.partial_fraction, qat=kept.qat, lr_schedule=kept.lr_schedule,
                              depth_guard=info.model_config.depth_guard,
                              exposure_mean=info.model_config.exposure_mean,
                              exposure_contrast=info.model_config.exposure_contrast, modalities=streams)
    return job, info.model_config


def run_training(job: TrainJob, on_step: Callable[[int, int, dict], None] | None = None,
                 on_frame: Callable[[str, int, int], None] | None = None,
                 on_warmup: Callable[[int, int, float], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> TrainSummary:
    """Train ``job`` and ship its model.pt (or only its last.pt, ``job.ship`` False). ``clock`` times
    ``job.time_limit_s`` from the first step (data loading and the species probe are not counted)."""
    import torch

    from train.species_mix import HARD_EVERY, SpeciesMix, run_probe, torch_scorer
    from train.model.objective import TrainConfig
    from train import distributed
    from train.trainer import CHECKPOINT_NAME, Trainer, seed_everything
    from edge.datasets.registry import parse_dataset_specs
    from edge.errors import ConfigError

    started = time.perf_counter()
    context = distributed.context_from_env()  # set by torchrun: one process per device or CPU slot
    if context is not None and job.time_limit_s is not None:
        raise ConfigError("--time-limit stops each process at its own step: a data-parallel run would hang; "
                          "give --steps alone under torchrun")
    if context is not None:
        distributed.start(context)
    device = f"cuda:{context.local_rank}" if context is not None and context.backend == "nccl" else (
        "cuda" if torch.cuda.is_available() else "cpu")
    if job.threads:
        torch.set_num_threads(job.threads)
    out = Path(job.out_dir)
    last = out / CHECKPOINT_NAME
    resuming = job.resume and last.is_file()
    if not resuming and job.steps == 0 and job.init is None:
        raise ConfigError("--steps 0 trains nothing: it calibrates the network of --init on this run's data "
                          "(and warms up a fresh --depth-guard); give --init CHECKPOINT, or at least one step")
    job, model_config = resumed_job(job, last) if resuming else (job.for_new_run(), None)
    if job.time_limit_s is not None and (job.lr_schedule or "constant") != "constant":
        raise ConfigError(f"--time-limit stops at a step nobody knows in advance, and --lr-schedule {job.lr_schedule} "
                          "decays the rate over --steps: give --steps alone (or --lr-schedule constant for a new run)")
    tone_worlds = AUGMENTS[job.augment or "standard"].tone_worlds
    if tone_worlds and not {part.kind for part in parse_dataset_specs(job.dataset)} & set(tone_worlds):
        raise ConfigError(f"--augment {job.augment} re-tones the faces of {', '.join(tone_worlds)} only, and "
                          f"--dataset {job.dataset} has none: add one (+photomix:3000), or use glasses-flat-sensor-tone")
    init_config = None if resuming else _init_config(job)  # --init's checkpoint read once for this
    init_guard = bool(init_config and init_config.depth_guard)
    model_config = model_config or run_model_config(job, init_config)
    preprocess = PreprocessConfig(size_px=model_config.input_size_px)
    out.mkdir(parents=True, exist_ok=True)
    train_spec = "+".join(part + (f"#{job.protocol}" if job.protocol and "#" not in part else "")
                          for part in job.dataset.split("+"))
    dev_spec = job.dev_dataset or train_spec
    if job.dev_dataset is None:
        refuse_calibrating_on_training_rows(train_spec)
    train_set = prepare_samples(train_spec, "train", preprocess, job.detector, job.model_dir, job.cache_dir,
                                (lambda i, n: on_frame("train", i, n)) if on_frame else None)
    dev_set = prepare_samples(dev_spec, "dev", preprocess, job.detector, job.model_dir, job.cache_dir,
                              (lambda i, n: on_frame("dev", i, n)) if on_frame else None)
    seed_everything(job.seed)
    if resuming:
        trainer = Trainer.resume(last, out, context=context, device=device)
        if job.checkpoint_every is not None:
            trainer.config = dataclasses.replace(trainer.config, checkpoint_every=job.checkpoint_every)
        log.info("resumed from %s at step %d", last, trainer.step)
    else:
        overrides = {"batch_size": job.batch_size, "steps": job.steps, "seed": job.seed,
                     "modalities": tuple(job.modalities), "augment": job.augment or "standard",
                     "species_mix": job.species_mix or "even"}
        if job.learning_rate is not None:
            overrides["learning_rate"] = job.learning_rate
        if job.ema_decay is not None:
            overrides["ema_decay"] = job.ema_decay
        if job.colour_blind_weight is not None:
            overrides["colour_blind_weight"] = job.colour_blind_weight
        if job.partial_fraction is not None:
            overrides["partial_fraction"] = job.partial_fraction
        if job.qat is not None:
            overrides["qat"] = job.qat
        if job.lr_schedule is not None:
            overrides["lr_schedule"] = job.lr_schedule
        if job.checkpoint_every is not None:
            overrides["checkpoint_every"] = job.checkpoint_every
        train_config = dataclasses.replace(TrainConfig(), **overrides)
        trainer = Trainer(initial_model(model_config, job), model_config, train_config, out,
                          preprocess=preprocess.to_metadata(), context=context, device=device)
    rank = context.rank if context is not None else 0
    augment = AUGMENTS[trainer.config.augment]
    if not resuming and model_config.depth_guard and not init_guard:
        from train import guard_warmup

        # a fresh guard trains alone first (train/guard_warmup.py), on batches of their own seed: so
        # the rest of the run sees the batches a run without the guard would; the guard's have the run's
        # camera realism and its share of real eyeglasses, which it would otherwise read as a partial
        # attack (docs/depth-guard.md)
        warmup = balanced_batches(train_set, guard_warmup.WARMUP_BATCH, job.seed + 104729 + 7919 * rank,
                                  **augment.batch_shares())
        guard_warmup.warm_up_guard(trainer.model, warmup, guard_warmup.WARMUP_STEPS, on_step=on_warmup)
    mix = probe = None
    if trainer.config.species_mix != "even" and trainer.step < job.steps:  # not for no steps (--steps 0)
        probe = run_probe(train_set, job.seed, trainer.config.species_mix, augment.flat, augment.sensor,
                          augment.tone, augment.tone_worlds)
        mix = SpeciesMix(probe.species, probe.by_world)  # sorted, as balanced_batches orders them
        mix.set_difficulty(probe.difficulty(torch_scorer(trainer.model)))  # a resumed or fine-tuned run starts informed
        log.info("species mix at step %d: %s", trainer.step, mix.as_dict())
    batches = balanced_batches(train_set, trainer.config.batch_size, job.seed + trainer.step + 7919 * rank, mix=mix,
                               **augment.batch_shares())

    def step_hook(result) -> None:
        if mix is not None and result.step % HARD_EVERY == 0:
            mix.set_difficulty(probe.difficulty(torch_scorer(trainer.model)))
            log.info("species mix at step %d: %s", result.step, mix.as_dict())
        if on_step is not None:
            on_step(result.step, job.steps, result.losses.as_row())

    if job.time_limit_s is not None:
        batches = until_deadline(batches, job.time_limit_s, clock)
    trainer.fit(batches, steps=job.steps, on_step=step_hook)
    if context is not None:
        distributed.stop()
    if not job.ship or (context is not None and not context.is_main):
        # rank 0 calibrates and writes the model, the others are done; a run that is not shipped leaves
        # last.pt (fit saves at its end) for `--resume --steps <step>` to ship, on another machine say
        return TrainSummary(out / "model.pt" if job.ship else last, trainer.step, time.perf_counter() - started,
                            _peak_rss_mib(), len(train_set), len(dev_set), float("nan"), float("nan"), {})
    model = trainer.shipped_model().cpu()  # the weight average when the run keeps one
    final = out / "model.pt"
    alpha, threshold, report = ship_model(model, model_config, trainer.config, trainer.step, train_set, dev_set,
                                          final, job.threshold_target, job.seed)
    peak = _peak_rss_mib()
    summary = TrainSummary(final, trainer.step, time.perf_counter() - started, peak, len(train_set), len(dev_set),
                           alpha, threshold, report)
    (out / "summary.json").write_text(json.dumps(dataclasses.asdict(summary), default=str, indent=2))
    return summary


def ship_model(model, model_config, train_config, step: int, train_set: SampleSet, dev_set: SampleSet, out: Path,
               target: str, seed: int) -> tuple[float, float, dict]:
    """How trained weights become a ``model.pt``: BatchNorm statistics recomputed on ``train_set``,
    alpha and the threshold chosen on ``dev_set`` (:func:`calibrate_score`), the checkpoint written
    with its preprocessing contract. A training run ends here, and so does a weight average of runs
    (train/average.py). Returns (alpha, threshold, dev report)."""
    from train.checkpoint import CheckpointExtra, save_checkpoint

    recalibrate_batchnorm(model, train_set, seed=seed)
    alpha, threshold, report = calibrate_score(model, dev_set, target)
    preprocess = PreprocessConfig(size_px=model_config.input_size_px)
    save_checkpoint(out, model, model_config, train_config, step,
                    CheckpointExtra(preprocess=preprocess.to_metadata(), threshold=threshold))
    return alpha, threshold, report


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
