"""The colour-blind step (TrainConfig.colour_blind_weight): grey colour, the batch's own depth, ESR maps only,
real batches' batch-norm statistics, and a depth stream that learns to find attacks on its own."""

from __future__ import annotations

import dataclasses
import math

import pytest

torch = pytest.importorskip("torch", reason="the training extra (torch) is not installed")

from edge.errors import ConfigError  # noqa: E402
from test_trainer_loop import SIZE, batches, new_trainer  # noqa: E402
from train.model import TrainConfig  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


class Spy(torch.nn.Module):
    """Records the inputs of every training pass, then runs the real one."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, rgb, depth):
        self.calls.append((rgb.detach().clone(), depth.detach().clone()))
        return self.inner(rgb, depth)


def running_statistics(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "running_" in k}


def test_the_step_sees_grey_colour_and_the_batch_depth_and_leaves_running_statistics_alone():
    batch = batches(11, 1)[0]
    on, off = new_trainer(colour_blind_weight=1.0), new_trainer()
    spy = on.generator_pass = Spy(on.generator_pass)
    result_on, result_off = on.train_step(batch), off.train_step(batch)
    assert len(spy.calls) == 3  # generator pass, extra step, colour-blind step
    grey, depth = spy.calls[2]
    assert torch.all(grey == 0.5) and torch.equal(depth, batch.depth)
    assert not torch.all(spy.calls[0][0] == 0.5)  # the first pass had the real colour
    assert math.isfinite(result_on.losses.blind) and result_on.losses.blind > 0
    assert math.isnan(result_off.losses.blind)  # off: no step, no number
    # the same first pass updated the statistics of both; the grey batch added nothing to them
    for name, value in running_statistics(off.model).items():
        torch.testing.assert_close(running_statistics(on.model)[name], value, msg=name)
    # ... but the step did train: the weights moved apart
    moved = [k for k, v in on.model.state_dict().items()
             if "running_" not in k and not torch.equal(v, off.model.state_dict()[k])]
    assert any(k.startswith("encoder_depth") for k in moved) and any(k.startswith("aggregation") for k in moved)


def shallow_attacks(data, relief: float = 0.6):
    """The toy batches with each attack's depth a shallower copy of the live bump: colour (stripes) stays
    the easy cue, depth the subtle one, as the photo world's silicone masks are."""
    gen = torch.Generator().manual_seed(5)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, SIZE), torch.linspace(-1, 1, SIZE), indexing="ij")
    bump = (1 - (xx**2 + yy**2)).clamp(min=0)
    out = []
    for b in data:
        depth = b.depth.clone()
        for i in torch.nonzero(b.label).flatten().tolist():
            depth[i, 0] = relief * bump + 0.02 * torch.rand(SIZE, SIZE, generator=gen)
        out.append(dataclasses.replace(b, depth=depth))
    return out


def with_live_colour(data):
    """Each attack given the colour of the live face before it: an attack whose colour shows nothing (as a
    silicone mask on a person the model never saw), so only its shallow depth tells it apart."""
    out = []
    for b in data:
        rgb = b.rgb.clone()
        for i in torch.nonzero(b.label).flatten().tolist():
            rgb[i] = b.rgb[i - 1]
        out.append(dataclasses.replace(b, rgb=rgb))
    return out


def separation(model, data) -> tuple[float, float]:
    """Mean score of attacks minus live faces, and the share of (attack, live) pairs ranked right (AUC)."""
    model.eval()
    with torch.no_grad():
        out = [(model(b.rgb, b.depth).score, b.label) for b in data]
    model.train()
    spoof = torch.cat([s[lab == 1] for s, lab in out])
    live = torch.cat([s[lab == 0] for s, lab in out])
    return float(spoof.mean() - live.mean()), float((spoof[:, None] > live[None, :]).float().mean())


def test_the_step_teaches_the_model_an_attack_that_only_depth_shows():
    """Trained on attacks with an easy colour cue and a subtle depth cue, then shown attacks with live
    colour: without the step the model has not learnt the depth cue (margin about 0); with it (weight 2,
    the same 16 steps) it ranks every such attack above every live face, and its blind loss fell."""
    data, held_out = shallow_attacks(batches(12, 16)), with_live_colour(shallow_attacks(batches(98, 4)))
    found = {}
    for weight in (0.0, 2.0):
        trainer = new_trainer(colour_blind_weight=weight)
        results = []
        trainer.fit(data, steps=16, on_step=results.append)
        found[weight] = separation(trainer.model, held_out)
        if weight:
            early = sum(r.losses.blind for r in results[:3]) / 3
            late = sum(r.losses.blind for r in results[-3:]) / 3
            assert late < 0.8 * early, (early, late)
    print(f"margin, AUC without / with the step: {found[0.0]} / {found[2.0]}")
    assert found[2.0][1] == 1.0 and found[2.0][0] > found[0.0][0] + 0.04


@pytest.mark.parametrize("weight", [-0.5, math.nan, math.inf, 11.0])
def test_the_weight_is_bounded(weight):
    with pytest.raises(ConfigError, match="colour-blind weight"):
        TrainConfig(colour_blind_weight=weight)


def test_the_rgb_only_ablation_refuses_the_step():
    with pytest.raises(ConfigError, match="RGB-only"):
        TrainConfig(colour_blind_weight=1.0, modalities=("rgb",))
    assert TrainConfig(colour_blind_weight=0.0, modalities=("rgb",)).colour_blind_weight == 0.0
