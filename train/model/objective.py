"""The training objective: its weights (:class:`TrainConfig`) and the loss terms (DESIGN §4).

Default weights are STDN's (Liu et al., ECCV 2020, "On Disentangling Spoof Trace for Generic Face
Anti-Spoofing", as summarised in DESIGN §4): ESR 50, adversarial 1, trace regularisation
10 on live and 1e-4 on spoof, pixel loss 0.1 and ESR 5 in the extra step on synthesised spoofs,
Adam with learning rate 6e-5, the discriminators updated every second step. Every term is a
masked mean over the samples it applies to, so a batch's composition (how many live, how many
spoof) never changes the graph: DDP ranks with different batches still run identical work.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from edge.errors import ConfigError, ModelError

# --qat: off, or a flavour of engines.quantize.INT8_TARGETS (train.qat.QAT_TARGETS simulates each)
QAT_CHOICES = ("off", "cpu", "tensorrt")
# --lr-schedule: the learning rate held (constant) or decayed over the run's steps on a half cosine
# (SGDR without restarts, Loshchilov & Hutter, ICLR 2017) from the learning rate towards 0 (docs/lr-schedule.md)
LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Schedule and loss weights of one training run; stored in every checkpoint."""

    batch_size: int = 8  # a starting point for one CPU or a Jetson; the CLI overrides it
    steps: int = 20000  # a starting point; the CLI overrides it
    seed: int = 0
    learning_rate: float = 6e-5  # STDN
    adam_betas: tuple[float, float] = (0.5, 0.999)  # beta1 0.5 for GAN stability (DCGAN, Radford et al., ICLR 2016)
    esr_weight: float = 50.0  # STDN
    adversarial_weight: float = 1.0  # unit weight: the other weights are relative to it
    reg_live_weight: float = 10.0  # STDN
    reg_spoof_weight: float = 1e-4  # STDN
    pixel_weight: float = 0.1  # STDN, extra step
    extra_esr_weight: float = 5.0  # STDN, extra step
    discriminator_every: int = 2  # STDN: D every second step
    warp_amplitude: float = 0.05  # max random displacement, fraction of the half crop (~3 px at 128)
    hard_fraction: float = 0.5  # share of synthesised spoofs with one weakened trace element
    # share of synthesised spoofs whose trace is kept in one region of the face only (an eye band, the
    # mouth, a half: train.model.synthesis.REGION_NAMES), a partial attack made from every species the
    # batch has; 0 = off (docs/partial-synthesis.md)
    partial_fraction: float = 0.0
    modalities: tuple[str, ...] = ("rgb", "depth")
    # last.pt every this many steps: 100 steps are 3-4 minutes of the edge preset on two CPU cores, the
    # most a stopped run loses (at 500, a session's end lost two runs of 250 and 450 steps); a 10 MB write
    checkpoint_every: int = 100
    # exponential moving average of the generator's weights, the model a run ships (0 = off: the last
    # step's weights). Batches of 8 make the last step's weights noisy; averaging them evens out seed
    # luck (Polyak averaging; model soups, Wortsman et al., ICML 2022). 0.99 averages ~100 steps.
    ema_decay: float = 0.0
    # camera realism of the training batches (a key of train.run.AUGMENTS); kept so that --resume
    # continues with the run's own (checkpoints from before it was stored read as standard)
    augment: str = "standard"
    # attack species per batch (train.species_mix): even, hard (more of those the model still misses),
    # hard-camera (the same, each species judged in its worst camera condition) or hard-world (hard, each
    # world's species on its own share)
    species_mix: str = "even"
    # colour-blind step: after the extra step, the same batch again with the colour crop replaced by flat grey,
    # trained on the fused and depth ESR maps only, weighted by this times esr_weight (0 = off). The photo
    # world's silicone masks are separated by a depth-only network and missed by the full model, which leans
    # on colour (docs/experiments.md, twelfth session); this step makes the depth stream carry every species.
    colour_blind_weight: float = 0.0
    # quantisation-aware fine-tuning (train.qat): off, or the INT8 flavour whose rounding every training
    # forward pass simulates (cpu: 7-bit weights, uint8 activations; tensorrt: 8-bit symmetric)
    qat: str = "off"
    # the learning rate over the run (LR_SCHEDULES; learning_rate_at): constant, or cosine over ``steps``.
    # Checkpoints from before it was stored read as constant, which is how they trained
    lr_schedule: str = "constant"

    def __post_init__(self) -> None:
        if tuple(self.modalities) not in (("rgb", "depth"), ("rgb",)):
            raise ConfigError(f"modalities must be rgb,depth or rgb (the RGB-only ablation), got {','.join(self.modalities)}")
        if self.batch_size < 2:
            raise ConfigError(f"batch size must be at least 2 (one live and one spoof), got {self.batch_size}")
        if self.steps < 0 or self.discriminator_every < 1 or self.checkpoint_every < 1:
            raise ConfigError("steps must be at least 0 (0: calibrate a network as it is), discriminator_every and "
                              "checkpoint_every at least 1")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"EMA decay must be in [0, 1) (0 = off), got {self.ema_decay}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.colour_blind_weight <= 10.0:
            raise ConfigError(f"colour-blind weight must be in [0, 10] (0 = off), got {self.colour_blind_weight}")
        if not 0.0 <= self.partial_fraction <= 1.0:
            raise ConfigError(f"partial-attack share must be in [0, 1] (0 = off), got {self.partial_fraction}")
        if self.qat not in QAT_CHOICES:
            raise ConfigError(f"QAT must be one of {', '.join(QAT_CHOICES)}, got {self.qat}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"learning-rate schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule}")
        if self.colour_blind_weight > 0 and "depth" not in self.modalities:
            raise ConfigError("the colour-blind step trains the depth stream: it cannot run in the RGB-only ablation "
                              "(leave out --colour-blind or --rgb-only)")

    @property
    def depth_weight(self) -> float:
        """1 when the depth stream trains, 0 in the RGB-only ablation (its terms stay in the graph)."""
        return 1.0 if "depth" in self.modalities else 0.0

    def learning_rate_at(self, step: int) -> float:
        """The learning rate of training step ``step`` (1 = the first): ``learning_rate`` throughout, or on
        the cosine schedule half a cosine from ``learning_rate`` at step 1 down towards 0 at ``steps`` (the
        last step still learns: its rate is above 0)."""
        if self.lr_schedule == "constant" or self.steps <= 1:
            return self.learning_rate
        done = min(max(step - 1, 0), self.steps) / self.steps
        return self.learning_rate * 0.5 * (1.0 + math.cos(math.pi * done))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(f"train config has unknown fields {unknown}; the checkpoint is from a newer edgefas, upgrade it")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True)
class LossTerms:
    """One step's scalar losses (Python floats, for logging); ``nan`` where a term did not run."""

    generator: float
    esr: float
    adversarial: float
    regularisation: float
    extra: float
    pixel: float
    extra_esr: float
    discriminator: float
    blind: float = float("nan")  # the colour-blind step's ESR loss (nan when the step is off)
    guard: float = float("nan")  # the depth guard's logistic loss (nan without a guard)

    def as_row(self) -> dict[str, float]:
        return asdict(self)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of per-sample ``values`` [N] over ``mask`` [N]; 0 (still in the graph) when the mask is empty."""
    weights = mask.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


def per_sample(x: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension but the batch."""
    return x.flatten(1).mean(dim=1)


def esr_loss(spoof_map: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """L1 between a spoof map [N,1,h,w] and the constant target map of each label (0 live, 1 spoof)."""
    values = per_sample((spoof_map - labels.reshape(-1, 1, 1, 1)).abs())
    return values.mean() if mask is None else masked_mean(values, mask)


def trace_regularisation(trace: torch.Tensor, labels: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """Mean squared trace, weighted strongly on live (a live face has no trace) and weakly on spoof."""
    energy = per_sample(trace**2)
    live = labels <= 0.5
    return config.reg_live_weight * masked_mean(energy, live) + config.reg_spoof_weight * masked_mean(energy, ~live)


def lsgan_real(logits: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """LSGAN ``(D(x) - 1)^2 / 2`` over scales (Mao et al., ICCV 2017, "Least Squares GANs", a=0 b=c=1)."""
    return sum(masked_mean(per_sample((z - 1.0) ** 2), mask) for z in logits) * 0.5 / len(logits)


def lsgan_fake(logits: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """LSGAN ``D(G(z))^2 / 2`` over scales."""
    return sum(masked_mean(per_sample(z**2), mask) for z in logits) * 0.5 / len(logits)
