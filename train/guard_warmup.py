"""The depth guard's training: a fresh guard trained alone before the run's first step.

The guard (train/model/guard.py) is a small network (42 MMACs at 128 px) and cheap to train on its
own: :data:`WARMUP_STEPS` balanced batches of :data:`WARMUP_BATCH` with the run's camera realism and
its share of real eyeglasses (``--augment glasses``: a quarter of the faces), the depth probe's recipe
(``tools/stream_probe.py``), which carries to unseen species. Without the eyeglasses a guard can read
their frames as a partial attack and refuse owners who wear them. Only the guard's weights move; in the
joint steps that follow it is frozen. Trained jointly instead, one batch of eight a step, it stayed
near chance and missed unseen paper glasses (docs/depth-guard.md)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import numpy as np

from edge.errors import ModelError
from train.model.guard import guard_loss

log = logging.getLogger(__name__)

WARMUP_STEPS = 600  # the depth probe's schedule (tools/stream_probe.py)
WARMUP_BATCH = 32
WARMUP_LR = 1e-3  # AdamW, weight decay 1e-3, as the probe


def warm_up_guard(model, batches: Iterator, steps: int = WARMUP_STEPS,
                  on_step: Callable[[int, int, float], None] | None = None) -> list[float]:
    """Train ``model.guard`` alone on ``batches`` (:class:`~train.trainer.Batch`, labels 1 = attack) for
    ``steps`` steps; returns the losses. The guard's batch-norm statistics follow these batches; the
    rest of the model is left as it was, in the mode it was in."""
    import torch

    guard = model.guard
    if guard is None:
        raise ValueError("this network has no depth guard to warm up")
    was_training, had_grad = guard.training, [p.requires_grad for p in guard.parameters()]
    guard.train()
    guard.requires_grad_(True)  # a trainer freezes it for the joint steps
    optimizer = torch.optim.AdamW(guard.parameters(), lr=WARMUP_LR, weight_decay=1e-3)
    enabled = model.depth_enabled
    losses: list[float] = []
    for step in range(1, steps + 1):
        batch = next(batches)
        depth = batch.depth.to(enabled.device) * enabled
        loss = guard_loss(guard(depth), batch.label.to(enabled.device))
        if not bool(torch.isfinite(loss)):
            raise ModelError(f"depth guard warm-up diverged at step {step}: non-finite loss; check the "
                             "training data for NaN/inf depth")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step, steps, losses[-1])
        if step % 100 == 0 or step == steps:
            log.info("depth guard warm-up %d/%d: loss %.3f (mean of the last 100 %.3f)", step, steps,
                     losses[-1], float(np.mean(losses[-100:])))
    guard.train(was_training)
    for p, flag in zip(guard.parameters(), had_grad):
        p.requires_grad_(flag)
    return losses
