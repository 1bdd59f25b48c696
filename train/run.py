"""A whole training run: data through the shared preprocessing, balanced batches, the trainer, the
dev-set score calibration, and a checkpoint that carries its preprocessing contract and threshold.

``edgefas train`` is a thin shell over :func:`run_training`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.face.preprocess import PreprocessConfig
from train.sampleset import SampleSet, prepare_samples

log = logging.getLogger(__name__)

ALPHA_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)  # candidate trace weights in the score (DESIGN §4: chosen on dev)


@dataclass(frozen=True)
class TrainJob:
    preset: str = "edge"
    dataset: str = "synthetic:4000"
    dev_dataset: str | None = None  # default: the dev split of ``dataset``
    out_dir: Path = Path("runs/edge")
    steps: int = 2000
    batch_size: int = 16
    seed: int = 0
    learning_rate: float | None = None  # None: the preset's TrainConfig default
    modalities: tuple[str, ...] = ("rgb", "depth")
    protocol: str = ""  # applied to synthetic sets: grandtest or LOO_<species>
    resume: bool = False
    cache_dir: Path = Path(".cache/edgefas")
    detector: str = "auto"
    model_dir: Path | None = None
    threads: int | None = None
    threshold_target: str = "eer"


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


def balanced_batches(samples: SampleSet, batch_size: int, seed: int, augment: bool = True) -> Iterator:
    """Endless batches, half live and half attack, attacks drawn evenly over species."""
    import torch

    from train.trainer import Batch

    rng = np.random.default_rng(seed)
    live = np.flatnonzero(samples.is_attack == 0)
    by_species = {str(p): np.flatnonzero((samples.is_attack == 1) & (samples.pai == p))
                  for p in sorted(set(samples.pai[samples.is_attack == 1].tolist()))}
    species = list(by_species)
    n_live = batch_size // 2
    while True:
        idx_live = rng.choice(live, n_live)
        picks = rng.choice(len(species), batch_size - n_live)
        idx_spoof = np.array([rng.choice(by_species[species[k]]) for k in picks])
        idx = np.concatenate([idx_live, idx_spoof])
        rgb, depth = samples.arrays(idx)
        if augment:
            flip = rng.random(len(idx)) < 0.5  # a mirrored face is still a face; mirror both streams together
            rgb[flip] = rgb[flip, :, :, ::-1]
            depth[flip] = depth[flip, :, :, ::-1]
            gain = rng.uniform(0.8, 1.2, (len(idx), 1, 1, 1)).astype(np.float32)  # exposure changes
            rgb = np.clip(rgb * gain, 0.0, 1.0)
        yield Batch(rgb=torch.from_numpy(np.ascontiguousarray(rgb)), depth=torch.from_numpy(np.ascontiguousarray(depth)),
                    label=torch.from_numpy(samples.is_attack[idx].astype(np.float32)),
                    pai=tuple(str(p) for p in samples.pai[idx]))


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
    with torch.no_grad():
        for _ in range(batches):
            batch = next(stream)
            model(batch.rgb, batch.depth)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.eval()


def score_components(model, samples: SampleSet, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: the fused spoof-map mean and the trace energy, the two terms of the score."""
    import torch

    model.eval()
    alpha = float(model.alpha)
    fused, energy = [], []
    with torch.no_grad():
        model.set_alpha(0.0)
        for start in range(0, len(samples), batch_size):
            rgb, depth = samples.arrays(slice(start, start + batch_size))
            base = model(torch.from_numpy(rgb), torch.from_numpy(depth)).score.numpy()
            model.set_alpha(1.0)
            full = model(torch.from_numpy(rgb), torch.from_numpy(depth)).score.numpy()
            model.set_alpha(0.0)
            fused.append(base)
            energy.append(full - base)
    model.set_alpha(alpha)
    return np.concatenate(fused), np.concatenate(energy)


def calibrate_score(model, dev: SampleSet, target: str) -> tuple[float, float, dict]:
    """Pick alpha on dev (lowest EER), set it in the model, then the threshold at ``target``."""
    from calibration.metrics import equal_error_rate, pad_report, scored_set
    from calibration.threshold import choose_threshold, parse_target

    fused, energy = score_components(model, dev)
    attack = dev.is_attack.astype(bool)
    best = min(ALPHA_GRID, key=lambda a: equal_error_rate(scored_set(fused + a * energy, attack, dev.pai)).eer)
    model.set_alpha(best)
    scores = fused + best * energy
    choice = choose_threshold(scores, attack, parse_target(target), dev.pai)
    report = pad_report(scores, attack, choice.threshold, dev.pai).to_json()
    return best, float(choice.threshold), report


def run_training(job: TrainJob, on_step: Callable[[int, int, dict], None] | None = None,
                 on_frame: Callable[[str, int, int], None] | None = None) -> TrainSummary:
    import torch

    from train.checkpoint import save_checkpoint, CheckpointExtra
    from train.model.objective import TrainConfig
    from train.model.presets import get_preset
    from train.model.network import build_model
    from train import distributed
    from train.trainer import CHECKPOINT_NAME, Trainer, seed_everything

    started = time.perf_counter()
    context = distributed.context_from_env()  # set by torchrun: one process per device or CPU slot
    if context is not None:
        distributed.start(context)
    device = f"cuda:{context.local_rank}" if context is not None and context.backend == "nccl" else (
        "cuda" if torch.cuda.is_available() else "cpu")
    if job.threads:
        torch.set_num_threads(job.threads)
    model_config = get_preset(job.preset)
    preprocess = PreprocessConfig(size_px=model_config.input_size_px)
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_spec = job.dataset + (f"#{job.protocol}" if job.protocol and "#" not in job.dataset else "")
    dev_spec = job.dev_dataset or train_spec
    train_set = prepare_samples(train_spec, "train", preprocess, job.detector, job.model_dir, job.cache_dir,
                                (lambda i, n: on_frame("train", i, n)) if on_frame else None)
    dev_set = prepare_samples(dev_spec, "dev", preprocess, job.detector, job.model_dir, job.cache_dir,
                              (lambda i, n: on_frame("dev", i, n)) if on_frame else None)
    seed_everything(job.seed)
    last = out / CHECKPOINT_NAME
    if job.resume and last.is_file():
        trainer = Trainer.resume(last, out, context=context, device=device)
        log.info("resumed from %s at step %d", last, trainer.step)
    else:
        overrides = {"batch_size": job.batch_size, "steps": job.steps, "seed": job.seed,
                     "modalities": tuple(job.modalities)}
        if job.learning_rate is not None:
            overrides["learning_rate"] = job.learning_rate
        train_config = dataclasses.replace(TrainConfig(), **overrides)
        trainer = Trainer(build_model(model_config), model_config, train_config, out,
                          preprocess=preprocess.to_metadata(), context=context, device=device)
    rank = context.rank if context is not None else 0
    batches = balanced_batches(train_set, trainer.config.batch_size, job.seed + trainer.step + 7919 * rank)

    def step_hook(result) -> None:
        if on_step is not None:
            on_step(result.step, job.steps, result.losses.as_row())

    trainer.fit(batches, steps=job.steps, on_step=step_hook)
    if context is not None:
        distributed.stop()
        if not context.is_main:  # rank 0 calibrates and writes the model; the others are done
            return TrainSummary(out / "model.pt", trainer.step, time.perf_counter() - started, _peak_rss_mib(),
                                len(train_set), len(dev_set), float("nan"), float("nan"), {})
    model = trainer.model.cpu()
    recalibrate_batchnorm(model, train_set, seed=job.seed)
    alpha, threshold, report = calibrate_score(model, dev_set, job.threshold_target)
    final = out / "model.pt"
    save_checkpoint(final, model, model_config, trainer.config, trainer.step,
                    CheckpointExtra(preprocess=preprocess.to_metadata(), threshold=threshold))
    peak = _peak_rss_mib()
    summary = TrainSummary(final, trainer.step, time.perf_counter() - started, peak, len(train_set), len(dev_set),
                           alpha, threshold, report)
    (out / "summary.json").write_text(json.dumps(dataclasses.asdict(summary), default=str, indent=2))
    return summary


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
