"""Training on a CUDA device (a GPU workstation or a Jetson): every tensor a step makes lands on the
model's device. Skipped where there is no CUDA device; tools/gpu_check.sh runs it with its checks."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch", reason="the training extra (torch) is not installed")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device (torch.cuda.is_available() is False)", allow_module_level=True)

from test_trainer_loop import batches, flat_weights, small_config  # noqa: E402
from train.model import TrainConfig  # noqa: E402
from train.model.network import build_model  # noqa: E402
from train.trainer import Trainer, seed_everything  # noqa: E402


@pytest.mark.parametrize("overrides", [{}, {"colour_blind_weight": 1.0}, {"qat": "tensorrt"}],
                         ids=["plain", "colour-blind", "qat"])
def test_steps_train_on_cuda(overrides):
    config = TrainConfig(batch_size=4, seed=7, learning_rate=1e-3, **overrides)
    seed_everything(config.seed)
    trainer = Trainer(build_model(small_config()), small_config(), config, None, device="cuda")
    before = flat_weights(trainer.model).cpu()
    results = []
    trainer.fit(batches(1, 4), on_step=results.append)
    assert [r.step for r in results] == [1, 2, 3, 4]
    assert all(math.isfinite(r.losses.generator) and math.isfinite(r.losses.pixel) for r in results)
    assert any(math.isfinite(r.losses.discriminator) for r in results), "a discriminator step ran"
    if overrides.get("colour_blind_weight"):
        assert any(math.isfinite(r.losses.blind) for r in results), "the colour-blind step ran"
    assert next(trainer.model.parameters()).device.type == "cuda"
    assert not torch.equal(before, flat_weights(trainer.model).cpu()), "the weights moved"
