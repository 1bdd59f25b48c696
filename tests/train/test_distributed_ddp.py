"""Two CPU processes train with DDP (gloo) and end with identical weights."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch", reason="the training extra (torch) is not installed")

import torch.distributed  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

from edge.errors import ConfigError  # noqa: E402
from free_port import free_port  # noqa: E402
from train import distributed  # noqa: E402
from train.model import TrainConfig, get_preset  # noqa: E402
from train.model.network import build_model  # noqa: E402
from train.trainer import Batch, Trainer, seed_everything  # noqa: E402

WORLD = 2
STEPS = 3


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    context = distributed.context_from_env()
    distributed.start(context)
    try:
        config = get_preset("edge")
        seed_everything(100 + rank)  # different initial weights per rank: DDP must broadcast rank 0's
        model = build_model(config)
        initial = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        trainer = Trainer(model, config, TrainConfig(batch_size=2, seed=0), context=context)
        gen = torch.Generator().manual_seed(rank)  # each rank sees different data
        s = config.input_size_px
        data = [Batch(torch.rand(2, 3, s, s, generator=gen), torch.rand(2, 1, s, s, generator=gen),
                      torch.tensor([0.0, 1.0]), ("", "print")) for _ in range(STEPS)]
        trainer.fit(data, steps=STEPS)
        torch.save(
            {
                "initial": initial,
                "params": torch.cat([p.detach().flatten() for p in trainer.model.parameters()]),
                "critics": torch.cat([p.detach().flatten() for p in trainer.critics.parameters()]),
                "data": torch.stack([b.rgb.sum() for b in data]),
                "step": trainer.step,
            },
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
    finally:
        distributed.stop()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch build has no torch.distributed")
def test_two_ranks_hold_identical_weights_after_three_steps(tmp_path):
    mp.spawn(_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD))
    assert r0["step"] == r1["step"] == STEPS
    assert not torch.equal(r0["data"], r1["data"])  # the ranks really trained on different batches
    assert not torch.equal(r0["initial"], r1["initial"])  # and started from different weights
    assert torch.equal(r0["params"], r1["params"])
    assert torch.equal(r0["critics"], r1["critics"])
    assert not torch.equal(r0["params"], r0["initial"])  # training moved the weights


def test_context_from_env_reads_torchrun_variables():
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    context = distributed.context_from_env(env)
    assert (context.rank, context.world_size, context.local_rank) == (1, 2, 1)
    assert not context.is_main
    assert distributed.context_from_env({}) is None
    with pytest.raises(ConfigError, match="MASTER_PORT"):
        distributed.context_from_env({k: v for k, v in env.items() if k != "MASTER_PORT"})
    with pytest.raises(ConfigError, match="outside"):
        distributed.context_from_env({**env, "RANK": "5"})
