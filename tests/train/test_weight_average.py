"""The shipped weight average (``--ema``): what it averages, what it ships, and that it survives --resume."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the training extra (torch) is not installed")

from edge.errors import ConfigError, ModelError  # noqa: E402
from train.model import TrainConfig  # noqa: E402
from train.trainer import Trainer  # noqa: E402

from tests.train.test_trainer_loop import batches, flat_weights, new_trainer  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_the_shipped_weights_are_the_exponential_average_of_every_steps_weights():
    decay = 0.5
    trainer = new_trainer(ema_decay=decay)
    seen = []
    for batch in batches(11, 3):
        trainer.train_step(batch)
        seen.append(params(trainer.model))
    # EMA: the first update copies, each later one moves the average (1 - decay) of the way to the new weights
    expected = seen[0]
    for later in seen[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * later[k] for k in expected}
    shipped = trainer.shipped_model()
    assert shipped is not trainer.model
    for name, value in shipped.named_parameters():
        torch.testing.assert_close(value.detach(), expected[name], rtol=1e-5, atol=1e-6)
    # the average is not the last step's weights (the subject really averaged), and its buffers are the live model's
    last = seen[-1]
    assert any(not torch.allclose(expected[k], last[k]) for k in last)
    live_buffers = dict(trainer.model.named_buffers())
    for name, value in shipped.named_buffers():
        assert torch.equal(value, live_buffers[name])


def test_without_an_average_the_run_ships_the_last_steps_weights():
    trainer = new_trainer()
    trainer.train_step(batches(12, 1)[0])
    assert trainer.average is None and trainer.shipped_model() is trainer.model


def test_resume_continues_the_average_exactly(tmp_path):
    data = batches(13, 4)
    straight = new_trainer(ema_decay=0.9)
    straight.fit(data, steps=4)
    first = new_trainer(tmp_path / "a", ema_decay=0.9)
    first.fit(data[:2], steps=2)
    resumed = Trainer.resume(tmp_path / "a" / "last.pt", tmp_path / "a")
    assert resumed.config.ema_decay == 0.9
    resumed.fit(data[2:], steps=4)
    torch.testing.assert_close(flat_weights(resumed.shipped_model()), flat_weights(straight.shipped_model()))


def test_resuming_a_run_without_an_average_into_one_that_wants_it_is_refused(tmp_path):
    run = new_trainer(tmp_path, ema_decay=0.9)
    run.fit(batches(14, 1), steps=1)
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    del state["trainer_state"]["average"]
    torch.save(state, tmp_path / "last.pt")
    with pytest.raises(ModelError, match="without a weight average"):
        Trainer.resume(tmp_path / "last.pt", tmp_path)


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5])
def test_a_decay_outside_zero_to_one_is_refused(decay):
    with pytest.raises(ConfigError, match="EMA decay"):
        TrainConfig(ema_decay=decay)
