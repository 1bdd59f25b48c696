"""Partial synthesised attacks (``TrainConfig.partial_fraction``, ``edgefas train --partial``): a share of the
synthesised spoofs keep the borrowed trace in one region of the live face (an eye band, the mouth, a half)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="training needs torch (edgefas[train])")

from test_disentanglement_contract import StepProbe, new_trainer  # noqa: E402
from test_trainer_loop import SIZE, toy_batch  # noqa: E402
from edge.errors import ConfigError  # noqa: E402
from train.model import TrainConfig  # noqa: E402
from train.model.generator import CONTENT_FACTOR  # noqa: E402
from train.model.synthesis import (CANONICAL_LANDMARKS, REGION_JITTER, REGION_NAMES, make_plan, planned_trace,  # noqa: E402
                                   region_masks)
from train.trainer import Batch  # noqa: E402

S = SIZE  # the toy batches' crop size
FACE = torch.tensor([CANONICAL_LANDMARKS])  # [1,5,2]: right eye, left eye, nose tip, mouth right, mouth left


def covered(mask: torch.Tensor, point) -> bool:
    x, y = point
    return bool(mask[0, 0, int(y * S), int(x * S)] > 0.99)


def region(name: str, jitter=(1.0, 1.0)) -> torch.Tensor:
    kind = torch.tensor([REGION_NAMES.index(name)])
    return region_masks(FACE, kind, torch.tensor([jitter]), S)


@pytest.mark.parametrize(("name", "inside", "outside"), [
    ("eyes", (0, 1), (2, 3, 4)), ("mouth", (3, 4), (0, 1, 2)), ("upper", (0, 1), (3, 4)), ("lower", (3, 4), (0, 1)),
])
def test_each_region_covers_its_landmarks_and_leaves_the_others(name, inside, outside):
    mask = region(name)
    points = FACE[0].tolist()
    assert all(covered(mask, points[i]) for i in inside), name
    assert not any(covered(mask, points[i]) for i in outside), name
    assert bool(((mask >= 0) & (mask <= 1)).all())


def test_a_side_is_one_half_of_the_face_and_the_jitter_picks_which():
    points = FACE[0].tolist()
    right_of_nose, left_of_nose = region("side", (1.0, 1.1)), region("side", (1.0, 0.9))
    assert covered(right_of_nose, points[1]) and not covered(right_of_nose, points[0])  # the image's right: left eye
    assert covered(left_of_nose, points[0]) and not covered(left_of_nose, points[1])
    torch.testing.assert_close(right_of_nose + left_of_nose, torch.ones_like(right_of_nose), atol=1e-6, rtol=0)


def test_either_side_is_as_likely_over_the_jitter_range():
    low, high = REGION_JITTER
    n = 1000
    jitter = torch.stack([torch.ones(n), low + (high - low) * (torch.arange(n) + 0.5) / n], dim=1)
    masks = region_masks(FACE.expand(n, 5, 2), torch.full((n,), REGION_NAMES.index("side")), jitter, S)
    left_eye_x = int(FACE[0, 1, 0] * S)  # the image's right of the nose tip
    right_share = float((masks[:, 0, S // 2, left_eye_x] > 0.5).float().mean())
    assert right_share == pytest.approx(0.5, abs=0.01)


def test_the_eye_band_follows_the_face_it_is_drawn_on():
    lower_face = FACE + torch.tensor([0.0, 0.15])  # the same face, lower in the crop
    kind, jitter = torch.tensor([0]), torch.tensor([[1.0, 1.0]])
    moved = region_masks(lower_face, kind, jitter, S)
    assert covered(moved, lower_face[0, 0].tolist()) and not covered(moved, FACE[0, 0].tolist())


def test_at_share_zero_nothing_more_is_drawn_and_the_trace_is_whole():
    labels = torch.tensor([0.0, 1.0, 0.0, 1.0])
    off_gen, on_gen = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    off = make_plan(labels, S, off_gen, amplitude=0.05, hard_fraction=0.5)
    on = make_plan(labels, S, on_gen, amplitude=0.05, hard_fraction=0.5, partial_fraction=1.0)
    assert off.region is None
    for name in ("partner", "usable", "displacement", "element", "factor"):  # partial draws come after the rest
        torch.testing.assert_close(getattr(on, name), getattr(off, name))
    # a run without partial attacks draws exactly what it drew before the option existed
    reference = torch.Generator().manual_seed(5)
    make_plan(labels, S, reference, amplitude=0.05, hard_fraction=0.5, partial_fraction=0.0)
    assert torch.equal(off_gen.get_state(), reference.get_state())
    assert not torch.equal(on_gen.get_state(), reference.get_state())


def test_a_partial_plan_keeps_the_trace_inside_its_region_only():
    labels = torch.tensor([0.0, 1.0, 0.0, 1.0])
    plan = make_plan(labels, S, torch.Generator().manual_seed(2), amplitude=0.0, hard_fraction=0.0,
                     partial_fraction=1.0)
    assert plan.region is not None and tuple(plan.region.shape) == (4, 1, S, S)
    whole = make_plan(labels, S, torch.Generator().manual_seed(2), amplitude=0.0, hard_fraction=0.0)
    elements = tuple(torch.randn(4, 3, S, S) if i != 2 else torch.randn(4, 3, S // CONTENT_FACTOR, S // CONTENT_FACTOR)
                     for i in range(4))
    image = torch.rand(4, 3, S, S)
    partial_trace, whole_trace = planned_trace(plan, elements, image), planned_trace(whole, elements, image)
    torch.testing.assert_close(partial_trace, whole_trace * plan.region)
    for i in range(4):
        kept = plan.region[i, 0] > 0.99
        assert 0 < int(kept.sum()) < S * S  # a region, not the whole crop nor nothing
        assert bool((partial_trace[i][:, plan.region[i, 0] == 0] == 0).all())


def test_a_share_picks_about_that_many_samples():
    labels = torch.zeros(4000)
    plan = make_plan(labels, 16, torch.Generator().manual_seed(0), amplitude=0.0, hard_fraction=0.0,
                     partial_fraction=0.3)
    partial = (plan.region.flatten(1).min(dim=1).values < 1).float().mean()
    assert 0.27 < float(partial) < 0.33


def test_the_extra_step_sees_the_spoofs_trace_in_one_region_of_the_live_face():
    """A training step with every synthesised spoof partial: the extra step's input is the live face itself
    outside the region and the live face plus the spoof's trace inside it (the batch's own landmarks)."""
    torch.set_num_threads(1)
    trainer = new_trainer(discriminator_every=1, warp_amplitude=0.0, hard_fraction=0.0, partial_fraction=1.0)
    toy = toy_batch(torch.Generator().manual_seed(3), n=2)
    face = FACE.expand(2, 5, 2).clone()
    batch = Batch(toy.rgb, toy.depth, toy.label, toy.pai, landmarks_xy=face)
    rng = torch.Generator()
    rng.set_state(trainer.rng.get_state())  # the step's synthesis draws, replayed below
    probe = StepProbe(trainer)
    trainer.train_step(batch)
    cfg = trainer.config
    plan = make_plan(batch.label, S, rng, cfg.warp_amplitude, cfg.hard_fraction, face, cfg.partial_fraction)
    mask = plan.region[0]
    assert 0 < int((mask > 0).sum()) < S * S * 0.6, "the trace must land on a region, not the whole face"
    traces = probe.generator_pass_on(batch.rgb).values
    assert traces["trace_rgb"][1].abs().max() > 1e-3 and traces["trace_depth"][1].abs().max() > 1e-3
    extra = probe.generator_pass_not_on(batch.rgb)
    for stream, trace in ((0, traces["trace_rgb"][1]), (1, traces["trace_depth"][1])):
        added = extra.inputs[stream][0] - (batch.rgb, batch.depth)[stream][0]
        torch.testing.assert_close(added, trace * mask, atol=1e-5, rtol=0)
        assert bool((added[:, mask[0] == 0] == 0).all())


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan")])
def test_a_share_outside_0_to_1_is_refused(share):
    with pytest.raises(ConfigError, match="partial"):
        TrainConfig(partial_fraction=share)


def test_an_older_checkpoints_config_reads_as_no_partial_attacks():
    data = TrainConfig().to_dict()
    del data["partial_fraction"]
    assert TrainConfig.from_dict(data).partial_fraction == 0.0
