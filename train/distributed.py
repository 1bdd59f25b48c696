"""Data-parallel training across processes with ``torch.distributed`` (DDP).

Started by ``torchrun`` (or anything that sets the same variables): ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT`` (torch.distributed "env://" initialisation). The
backend is gloo on CPU and NCCL when every rank has a CUDA device.

BatchNorm: on CUDA the generator's BatchNorm layers become ``SyncBatchNorm`` so that every rank
normalises with the statistics of the global batch. On CPU/gloo they stay per-rank BatchNorm
(each rank normalises with its own batch's statistics) and DDP broadcasts rank 0's running
statistics at every forward (DDP's default buffer synchronisation), so the weights and the running
statistics that end up in a checkpoint are identical on all ranks. The discriminators use
InstanceNorm and have no statistics to share.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from edge.errors import ConfigError

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the job; rank 0 writes checkpoints and metrics."""

    rank: int
    world_size: int
    local_rank: int
    backend: str = "gloo"

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context_from_env(environ: Mapping[str, str] | None = None) -> DistributedContext | None:
    """The context torchrun describes in the environment, or None for a single-process run."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return None
    missing = [k for k in ENV_KEYS if k not in env]
    if missing:
        raise ConfigError(f"distributed run is missing {', '.join(missing)}; start it with torchrun")
    try:
        rank, world, local = int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["LOCAL_RANK"])
    except ValueError:
        raise ConfigError("RANK, WORLD_SIZE and LOCAL_RANK must be integers; start the run with torchrun") from None
    if not 0 <= rank < world:
        raise ConfigError(f"RANK {rank} is outside WORLD_SIZE {world}; start the run with torchrun")
    backend = "nccl" if torch.cuda.is_available() and torch.cuda.device_count() > local else "gloo"
    return DistributedContext(rank, world, local, backend)


def start(context: DistributedContext) -> None:
    """Join the process group (blocks until every rank has joined)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(context.backend, init_method="env://", rank=context.rank, world_size=context.world_size)


def stop() -> None:
    """Leave the process group; safe to call when none was started."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def prepare_batchnorm(model: nn.Module, context: DistributedContext) -> nn.Module:
    """SyncBatchNorm on NCCL; unchanged on gloo/CPU (see the module docstring for why)."""
    if context.backend == "nccl":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def wrap(module: nn.Module, context: DistributedContext) -> nn.Module:
    """DistributedDataParallel around ``module``; rank 0's parameters are broadcast to all ranks here."""
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [context.local_rank] if context.backend == "nccl" else None
    return DistributedDataParallel(module, device_ids=device_ids)


def any_rank(flag: bool, context: DistributedContext | None) -> bool:
    """True if ``flag`` is true on any rank: every rank takes the same branch (e.g. stop on NaN)."""
    if context is None:
        return flag
    import torch.distributed as dist

    value = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0.5)
