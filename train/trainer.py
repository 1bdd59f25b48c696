"""The training loop core: one generator step, one extra step, a discriminator step every second step.

:class:`Trainer` owns the network, the discriminators, their optimisers and the synthesis RNG. It
consumes :class:`Batch` objects (from any loader), writes metrics to :class:`MetricsSink` s (CSV
and TensorBoard by default) and checkpoints to ``run_dir/last.pt``. A non-finite loss stops the
run with a :class:`ModelError` naming the step before that loss reaches the optimiser, and no
checkpoint is written after it, so ``last.pt`` stays the last good state (the in-memory model may
already hold NaN BatchNorm statistics from the bad forward pass: reload from ``last.pt``). The CLI command ``edgefas train`` is a thin layer over this.
"""

from __future__ import annotations

import contextlib
import csv
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from edge.errors import ModelError
from train import distributed
from train.checkpoint import CheckpointExtra, load_checkpoint, load_trainer_state, save_checkpoint
from train.model.discriminator import build_critics
from train.model.guard import guard_loss
from train.model.network import SpoofTraceNet, TrainingView
from train.model.objective import (
    LossTerms,
    TrainConfig,
    esr_loss,
    lsgan_fake,
    lsgan_real,
    masked_mean,
    per_sample,
    trace_regularisation,
)
from train.model.presets import ModelConfig
from train.model.synthesis import make_plan, planned_trace
from train.qat import QuantisationNoise

CHECKPOINT_NAME = "last.pt"


@dataclass(frozen=True)
class Batch:
    """One training batch of preprocessed faces (DESIGN §3 crops), as float32 tensors.

    ``rgb`` [N,3,S,S] in [0, 1] RGB order; ``depth`` [N,1,S,S] in [0, 1]; ``label`` [N] float,
    1 = spoof (attack), 0 = live; ``pai`` the attack species per sample ("" for live);
    ``landmarks_xy`` optional [N,5,2] in crop coordinates [0, 1] for landmark-driven synthesis.
    """

    rgb: torch.Tensor
    depth: torch.Tensor
    label: torch.Tensor
    pai: tuple[str, ...]
    landmarks_xy: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = self.rgb.shape[0] if self.rgb.ndim == 4 else -1
        if self.rgb.ndim != 4 or self.rgb.shape[1] != 3 or self.rgb.dtype != torch.float32:
            raise ValueError(f"Batch.rgb must be float32 [N,3,S,S], got {self.rgb.dtype} {tuple(self.rgb.shape)}")
        if self.depth.dtype != torch.float32 or tuple(self.depth.shape) != (n, 1) + tuple(self.rgb.shape[2:]):
            raise ValueError(f"Batch.depth must be float32 [N,1,S,S] matching rgb, got {self.depth.dtype} {tuple(self.depth.shape)}")
        if tuple(self.label.shape) != (n,) or not bool(((self.label == 0) | (self.label == 1)).all()):
            raise ValueError(f"Batch.label must be [N] of 0 (live) / 1 (spoof), got {tuple(self.label.shape)}")
        if len(self.pai) != n:
            raise ValueError(f"Batch.pai needs one entry per sample ({n}), got {len(self.pai)}")
        if self.landmarks_xy is not None and tuple(self.landmarks_xy.shape) != (n, 5, 2):
            raise ValueError(f"Batch.landmarks_xy must be [N,5,2], got {tuple(self.landmarks_xy.shape)}")


@dataclass(frozen=True)
class StepResult:
    """What one call of :meth:`Trainer.train_step` did."""

    step: int
    losses: LossTerms
    seconds: float


class MetricsSink(Protocol):
    """Where per-step scalars go; implementations must tolerate being reopened on resume."""

    def write(self, step: int, values: Mapping[str, float]) -> None: ...

    def close(self) -> None: ...


class CsvMetrics:
    """Appends one row per step to a CSV file (header written once, kept across resumes)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fields: list[str] | None = None
        if self.path.is_file() and self.path.stat().st_size:
            with self.path.open(newline="") as handle:
                self._fields = next(csv.reader(handle), None)

    def write(self, step: int, values: Mapping[str, float]) -> None:
        row = {"step": step, **values}
        new = self._fields is None
        if new:
            self._fields = list(row)
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self._fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def close(self) -> None:
        """Nothing held open between rows."""


class TensorBoardMetrics:
    """Scalars under ``loss/<name>`` in TensorBoard event files."""

    def __init__(self, log_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(log_dir))

    def write(self, step: int, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            if math.isfinite(value):
                self._writer.add_scalar(f"loss/{name}", value, step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that model init and training are reproducible on CPU."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _scalar(value: torch.Tensor) -> float:
    return float(value.detach())


@contextlib.contextmanager
def keep_batchnorm_statistics(module: nn.Module) -> Iterator[None]:
    """Normalise with batch statistics but leave the running statistics untouched.

    The extra step feeds the generator a batch made only of synthesised spoofs. Letting that batch
    into BatchNorm's running mean and variance skews them away from the real mixed batches the
    model is used on, and in eval mode (inference) the model then separates nothing: measured on
    the edge preset at step 500, dev EER 42 % with the skewed statistics, 0.7 % with statistics of
    real batches only.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch
    try:
        yield
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """No gradients into ``module`` while the generator learns against it (saves the work)."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


class Trainer:
    """Adversarial training of one :class:`SpoofTraceNet` (STDN's schedule, DESIGN §4)."""

    def __init__(
        self,
        model: SpoofTraceNet,
        model_config: ModelConfig,
        train_config: TrainConfig,
        run_dir: str | Path | None = None,
        *,
        preprocess: Mapping[str, str] | None = None,
        sinks: Sequence[MetricsSink] | None = None,
        context: distributed.DistributedContext | None = None,
        device: str = "cpu",
    ) -> None:
        if model.config != model_config:
            raise ValueError(f"model was built for preset '{model.config.name}', model_config is '{model_config.name}'")
        self.model_config = model_config
        self.config = train_config
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.preprocess = dict(preprocess or {})
        self.context = context
        self.device = torch.device(device)
        self.step = 0
        model.set_modalities(train_config.modalities)
        # a depth guard trains in its own warm-up (train/guard_warmup.py) and is frozen here: no gradient, not
        # in the optimiser (before DistributedDataParallel wraps the model, which then leaves them out too). Trained
        # jointly on the run's batches, which put real eyeglasses on a quarter of the faces, it missed unseen
        # paper glasses (docs/depth-guard.md)
        if model.guard is not None:
            model.guard.requires_grad_(False)
        self.model = model.to(self.device).train()
        self.critics = build_critics(model_config).to(self.device).train()
        rank = context.rank if context else 0
        self.rng = torch.Generator().manual_seed(train_config.seed * 1000 + rank)
        if context is not None:
            self.model = distributed.prepare_batchnorm(self.model, context)
            self.generator_pass: nn.Module = distributed.wrap(TrainingView(self.model), context)
            self.critic_pass: nn.Module = distributed.wrap(self.critics, context)
        else:
            self.generator_pass = TrainingView(self.model)
            self.critic_pass = self.critics
        betas = tuple(train_config.adam_betas)
        self.generator_optimizer = torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad],
                                                    lr=train_config.learning_rate, betas=betas)
        # the shipped weights: an exponential moving average of the generator's parameters (buffers are not
        # averaged; the run recomputes batch-norm statistics for the weights it ships)
        self.average: torch.optim.swa_utils.AveragedModel | None = None
        if train_config.ema_decay > 0:
            self.average = torch.optim.swa_utils.AveragedModel(
                self.model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(train_config.ema_decay))
        self.critic_optimizer = torch.optim.Adam(self.critics.parameters(), lr=train_config.learning_rate, betas=betas)
        # quantisation-aware fine-tuning: the INT8 build's rounding inside the generator's training passes
        self.noise = QuantisationNoise(self.model, train_config.qat) if train_config.qat != "off" else None
        is_main = context is None or context.is_main
        if sinks is None:
            sinks = [CsvMetrics(self.run_dir / "metrics.csv"), TensorBoardMetrics(self.run_dir / "tensorboard")] if (self.run_dir and is_main) else []
        self.sinks = list(sinks) if is_main else []

    # -- checkpoints ---------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / CHECKPOINT_NAME if self.run_dir else None

    def save(self, path: str | Path | None = None, threshold: float = math.nan) -> Path:
        """Checkpoint with optimiser and RNG state (rank 0 writes; other ranks return the path)."""
        target = Path(path) if path is not None else self.checkpoint_path
        if target is None:
            raise ValueError("Trainer.save needs a path when the trainer has no run_dir")
        if self.context is None or self.context.is_main:
            state = {
                "generator_optimizer": self.generator_optimizer.state_dict(),
                "critic_optimizer": self.critic_optimizer.state_dict(),
                "critics": self.critics.state_dict(),
                "synthesis_rng": self.rng.get_state(),
                "torch_rng": torch.get_rng_state(),
            }
            if self.average is not None:
                state["average"] = self.average.state_dict()
            extra = CheckpointExtra(preprocess=self.preprocess, threshold=threshold, trainer_state=state)
            save_checkpoint(target, self.model, self.model_config, self.config, self.step, extra)
        return target

    @classmethod
    def resume(cls, path: str | Path, run_dir: str | Path | None = None, **kwargs) -> Trainer:
        """A trainer continuing from checkpoint ``path`` at its step, with its configs and optimisers."""
        model, info = load_checkpoint(path)
        state = load_trainer_state(path)
        if state is None:
            raise ModelError(f"{path} holds no trainer state (an export-only checkpoint); resume from a run's last.pt")
        trainer = cls(model, info.model_config, info.train_config, run_dir, preprocess=info.preprocess, **kwargs)
        trainer.generator_optimizer.load_state_dict(state["generator_optimizer"])
        trainer.critic_optimizer.load_state_dict(state["critic_optimizer"])
        trainer.critics.load_state_dict(state["critics"])
        if trainer.average is not None:
            if "average" not in state:
                raise ModelError(f"{path} was trained without a weight average but its config asks for one; "
                                 "start a new run with --init instead of --resume")
            trainer.average.load_state_dict(state["average"])
        trainer.rng.set_state(state["synthesis_rng"])
        torch.set_rng_state(state["torch_rng"])
        trainer.step = info.step
        return trainer

    # -- one step ------------------------------------------------------------------------------
    def _check_finite(self, step: int, terms: Mapping[str, torch.Tensor]) -> None:
        bad = {name: _scalar(v) for name, v in terms.items() if not bool(torch.isfinite(v))}
        if distributed.any_rank(bool(bad), self.context):
            where = self.checkpoint_path if self.checkpoint_path and self.checkpoint_path.is_file() else None
            detail = ", ".join(f"{k}={v}" for k, v in bad.items()) or "on another rank"
            last = f"the last good checkpoint is {where}" if where else "no checkpoint was written yet"
            raise ModelError(
                f"training diverged at step {step}: non-finite loss ({detail}); {last}; "
                "check the data for NaN/inf pixels or resume with a lower learning rate"
            )

    def _generator(self, rgb: torch.Tensor, depth: torch.Tensor, observe: bool = False):
        """The generator's training pass, with the INT8 rounding when the run is quantisation-aware;
        ``observe``: this pass's activations update the rounding's ranges (real batches only, not the
        synthesised or grey ones)."""
        if self.noise is None:
            return self.generator_pass(rgb, depth)
        with self.noise.active(observe=observe):
            return self.generator_pass(rgb, depth)

    def train_step(self, batch: Batch) -> StepResult:
        """Generator step, extra step on synthesised spoofs, and every ``discriminator_every`` steps a D step."""
        started = time.perf_counter()
        cfg = self.config
        step = self.step + 1
        # the schedule's rate for this step, on both optimisers (the critics keep pace with the generator); a
        # resumed run's optimiser state holds the rate of its last step, set again here
        rate = cfg.learning_rate_at(step)
        for optimizer in (self.generator_optimizer, self.critic_optimizer):
            for group in optimizer.param_groups:
                group["lr"] = rate
        # at the network's exposure level (when it has one), so that the traces, the synthesised attacks and the
        # critics' real faces are all in the scale the network sees
        rgb = self.model.exposure(batch.rgb.to(self.device))
        depth = batch.depth.to(self.device)
        labels = batch.label.to(self.device)
        landmarks = batch.landmarks_xy.to(self.device) if batch.landmarks_xy is not None else None
        live, spoof = labels <= 0.5, labels > 0.5
        w_depth = cfg.depth_weight
        depth_in = depth * self.model.depth_enabled

        # 1. generator: ESR + adversarial + trace regularisation
        out = self._generator(rgb, depth, observe=True)
        plan = make_plan(labels.cpu(), rgb.shape[-1], self.rng, cfg.warp_amplitude, cfg.hard_fraction,
                         landmarks.cpu() if landmarks is not None else None, cfg.partial_fraction).to(self.device)
        usable = plan.usable
        syn_rgb = rgb + planned_trace(plan, out.elements_rgb, rgb, detach=False)
        syn_depth = depth_in + planned_trace(plan, out.elements_depth, depth_in, detach=False) * w_depth
        with _frozen(self.critics):
            critic = self.critics(out.live_rgb, syn_rgb, out.live_depth, syn_depth)
        esr = esr_loss(out.spoof_map, labels) + esr_loss(out.esr_rgb, labels) + w_depth * esr_loss(out.esr_depth, labels)
        adversarial = (lsgan_real(critic.live_rgb, spoof) + lsgan_real(critic.spoof_rgb, usable)
                       + w_depth * (lsgan_real(critic.live_depth, spoof) + lsgan_real(critic.spoof_depth, usable)))
        regularisation = (trace_regularisation(out.trace_rgb, labels, cfg)
                          + w_depth * trace_regularisation(out.trace_depth, labels, cfg))
        generator = cfg.esr_weight * esr + cfg.adversarial_weight * adversarial + regularisation
        terms = {"esr": esr, "adversarial": adversarial, "regularisation": regularisation}
        if out.guard is not None:  # the frozen depth guard's loss, reported (and checked) only
            terms["guard"] = guard_loss(out.guard, labels)
        self._check_finite(step, terms)
        self.generator_optimizer.zero_grad(set_to_none=True)
        generator.backward()
        self.generator_optimizer.step()

        # 2. extra step: the generator must find the synthesised trace and call the sample a spoof
        target_rgb = planned_trace(plan, out.elements_rgb, rgb, detach=True)
        target_depth = planned_trace(plan, out.elements_depth, depth_in, detach=True) * w_depth
        syn_rgb_in, syn_depth_in = (rgb + target_rgb).detach(), (depth_in + target_depth).detach()
        with keep_batchnorm_statistics(self.model):
            out2 = self._generator(syn_rgb_in, syn_depth_in)
        ones = torch.ones_like(labels)
        extra_esr = (esr_loss(out2.spoof_map, ones, usable) + esr_loss(out2.esr_rgb, ones, usable)
                     + w_depth * esr_loss(out2.esr_depth, ones, usable))
        pixel = (masked_mean(per_sample((out2.trace_rgb - target_rgb).abs()), usable)
                 + w_depth * masked_mean(per_sample((out2.trace_depth - target_depth).abs()), usable))
        extra = cfg.extra_esr_weight * extra_esr + cfg.pixel_weight * pixel
        self._check_finite(step, {"extra_esr": extra_esr, "pixel": pixel})
        self.generator_optimizer.zero_grad(set_to_none=True)
        extra.backward()
        self.generator_optimizer.step()
        blind_value = self._colour_blind_step(step, rgb, depth, labels) if cfg.colour_blind_weight > 0 else math.nan
        if self.average is not None:
            self.average.update_parameters(self.model)

        # 3. discriminators, every `discriminator_every` steps, on detached fakes
        d_value = math.nan
        if step % cfg.discriminator_every == 0:
            n = labels.shape[0]
            co = self.critic_pass(
                torch.cat([rgb, out.live_rgb.detach()]), torch.cat([rgb, syn_rgb_in]),
                torch.cat([depth_in, out.live_depth.detach()]), torch.cat([depth_in, syn_depth_in]),
            )

            def pair(maps: list[torch.Tensor], real_mask: torch.Tensor, fake_mask: torch.Tensor) -> torch.Tensor:
                return lsgan_real([m[:n] for m in maps], real_mask) + lsgan_fake([m[n:] for m in maps], fake_mask)

            d_loss = (pair(co.live_rgb, live, spoof) + pair(co.spoof_rgb, spoof, usable)
                      + w_depth * (pair(co.live_depth, live, spoof) + pair(co.spoof_depth, spoof, usable)))
            self._check_finite(step, {"discriminator": d_loss})
            self.critic_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            self.critic_optimizer.step()
            d_value = _scalar(d_loss)

        self.step = step
        losses = LossTerms(
            generator=_scalar(generator), esr=_scalar(esr), adversarial=_scalar(adversarial),
            regularisation=_scalar(regularisation), extra=_scalar(extra), pixel=_scalar(pixel),
            extra_esr=_scalar(extra_esr), discriminator=d_value, blind=blind_value,
            guard=_scalar(terms["guard"]) if "guard" in terms else math.nan,
        )
        for sink in self.sinks:
            sink.write(step, losses.as_row())
        return StepResult(step, losses, time.perf_counter() - started)

    def _colour_blind_step(self, step: int, rgb: torch.Tensor, depth: torch.Tensor, labels: torch.Tensor) -> float:
        """The batch again with flat grey colour: the fused and depth ESR maps must find every attack from depth.

        Trained only through the ESR maps (the traces of a grey image mean nothing); the decoders and the
        colour head join the loss at weight 0 so that every parameter takes part, as DistributedDataParallel
        needs. Batch-norm running statistics stay those of real batches (a grey batch would skew the colour
        encoder's, as the extra step's would).
        """
        cfg = self.config
        grey = torch.full_like(rgb, 0.5)
        with keep_batchnorm_statistics(self.model):
            out = self._generator(grey, depth)
        blind = esr_loss(out.spoof_map, labels) + cfg.depth_weight * esr_loss(out.esr_depth, labels)
        unused = out.esr_rgb.sum() + out.trace_rgb.sum() + out.trace_depth.sum()
        self._check_finite(step, {"blind": blind})
        self.generator_optimizer.zero_grad(set_to_none=True)
        (cfg.esr_weight * cfg.colour_blind_weight * blind + 0.0 * unused).backward()
        self.generator_optimizer.step()
        return _scalar(blind)

    def shipped_model(self) -> SpoofTraceNet:
        """The weights a run ships: the moving average when the config keeps one, else the last step's.

        The average's batch-norm statistics are the live model's; recompute them for its weights
        (``train.run.recalibrate_batchnorm``) before scoring.
        """
        if self.average is None or int(self.average.n_averaged) == 0:  # before a step (``--steps 0``) it holds
            return self.model  # only the weights it was made from, older than a guard's warm-up
        model = self.average.module
        model.load_state_dict({**self.model.state_dict(), **dict(model.named_parameters())}, strict=True)
        return model

    # -- the loop ------------------------------------------------------------------------------
    def fit(
        self,
        batches: Iterable[Batch],
        steps: int | None = None,
        on_step: Callable[[StepResult], None] | None = None,
    ) -> StepResult | None:
        """Train until ``steps`` (default ``config.steps``) or the batches run out; checkpoint as configured.

        Returns the last step's result (None if no step ran). A checkpoint is written every
        ``config.checkpoint_every`` steps and at the end when the trainer has a ``run_dir``.
        """
        total = self.config.steps if steps is None else steps
        last: StepResult | None = None
        try:
            for batch in batches:
                if self.step >= total:
                    break
                last = self.train_step(batch)
                if on_step is not None:
                    on_step(last)
                if self.run_dir and self.step % self.config.checkpoint_every == 0:
                    self.save()
            if self.run_dir and last is not None and self.step % self.config.checkpoint_every:
                self.save()
        finally:
            for sink in self.sinks:
                sink.close()
        return last
