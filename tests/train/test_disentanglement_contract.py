"""What each loss of one training step asks of the network (DESIGN §4), read from the gradients it sends.

A swapped mask or target leaves every loss finite and training still runs, so the loop tests cannot
see it. These tests watch one :meth:`Trainer.train_step` from outside: every generator and critic
pass, its inputs, and the gradient each loss sends back into the pass's outputs. A least-squares
(LSGAN) term ``c·(z − t)²`` sends ``2c·(z − t)`` into ``z``, so fitting a line to (z, gradient)
recovers the target ``t`` it pulls towards; an L1 term sends ``c·sign(z − t)``; a sample the term
must ignore gets exactly zero. The same contracts hold for the calibration of the score's trace
weight alpha and for the balanced batches the trainer is fed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch (edgefas[train])")

from test_trainer_loop import small_config, toy_batch  # noqa: E402
from train.model import TrainConfig  # noqa: E402
from train.model.network import build_model  # noqa: E402
from train.model.objective import trace_regularisation  # noqa: E402
from edge.datasets.sampleset import SampleSet  # noqa: E402
from train.trainer import Trainer, seed_everything  # noqa: E402

GENERATOR_OUTPUTS = ("spoof_map", "esr_rgb", "esr_depth", "trace_rgb", "trace_depth")
ESR_MAPS = ("spoof_map", "esr_rgb", "esr_depth")


@dataclass
class Pass:
    """One forward pass seen during a step: its inputs, outputs, and the gradients its outputs received."""

    inputs: tuple[torch.Tensor, ...]
    outputs: object
    values: dict[str, torch.Tensor]  # watched outputs, detached
    grads: dict[str, torch.Tensor] = field(default_factory=dict)


class StepProbe:
    """Watches a trainer's generator passes and its critics' passes (by phase: whose parameters learn).

    The critics run in the generator phase with their parameters frozen (the generator learns to
    fool them) and in the discriminator phase with them trainable; that, not call order, tells the
    two apart.
    """

    def __init__(self, trainer: Trainer) -> None:
        self.generator: list[Pass] = []
        self.critics: dict[str, list[Pass]] = {"generator": [], "discriminator": []}
        inner = trainer.generator_pass

        def generator_pass(rgb, depth):
            out = inner(rgb, depth)
            self.generator.append(self._watch((rgb, depth), out, {k: getattr(out, k) for k in GENERATOR_OUTPUTS}))
            return out

        trainer.generator_pass = generator_pass
        critics = trainer.critics
        inner_forward = critics.forward

        def forward(*inputs):
            phase = "discriminator" if any(p.requires_grad for p in critics.parameters()) else "generator"
            out = inner_forward(*inputs)
            watched = {f"{head}/{k}": z for head in out._fields for k, z in enumerate(getattr(out, head))}
            self.critics[phase].append(self._watch(inputs, out, watched))
            return out

        critics.forward = forward  # nn.Module.__call__ looks forward up on the instance first

    @staticmethod
    def _watch(inputs, outputs, watched: dict[str, torch.Tensor]) -> Pass:
        record = Pass(tuple(x.detach().clone() for x in inputs), outputs,
                      {k: v.detach().clone() for k, v in watched.items()})
        for name, tensor in watched.items():
            if tensor.requires_grad:
                tensor.register_hook(lambda g, name=name: record.grads.__setitem__(name, g.detach().clone()))
        return record

    def generator_pass_on(self, rgb: torch.Tensor) -> Pass:
        """The generator pass whose rgb input is (or is not) the batch's own images."""
        found = [p for p in self.generator if torch.equal(p.inputs[0], rgb)]
        assert len(found) == 1, f"expected one generator pass on the batch, found {len(found)}"
        return found[0]

    def generator_pass_not_on(self, rgb: torch.Tensor) -> Pass:
        found = [p for p in self.generator if not torch.equal(p.inputs[0], rgb)]
        assert len(found) == 1, f"expected one generator pass on synthesised inputs (extra step), found {len(found)}"
        return found[0]


def implied_target(z: torch.Tensor, grad: torch.Tensor | None, rows: list[int], what: str) -> float:
    """The target ``t`` of a least-squares term ``c·(z − t)²`` over ``rows``, from the gradient it sent into ``z``.

    Fits ``grad = 2c·(z − t)``; the slope must be positive (the term pulls ``z`` towards ``t``, not
    away) and the fit exact up to rounding (one target for all those rows).
    """
    assert grad is not None, f"{what}: no loss reaches these outputs"
    x = z[rows].double().flatten().numpy()
    y = grad[rows].double().flatten().numpy()
    assert np.any(y != 0), f"{what}: rows {rows} get no gradient, the loss ignores them"
    assert x.std() > 1e-6, f"{what}: outputs are constant, no target can be read from them"
    slope, intercept = np.polyfit(x, y, 1)
    assert slope > 0, f"{what}: the loss pushes the outputs away from its target (slope {slope:.3g})"
    assert np.allclose(y, slope * x + intercept, rtol=1e-3, atol=1e-3 * np.abs(y).max()), \
        f"{what}: rows {rows} are pulled towards different targets"
    return float(-intercept / slope)


def new_trainer(**overrides) -> Trainer:
    config = small_config()
    train_config = TrainConfig(**{"batch_size": 2, "seed": 7, **overrides})
    seed_everything(train_config.seed)
    return Trainer(build_model(config), config, train_config)


@pytest.fixture(scope="module")
def step():
    """One full step (generator, extra step, discriminator) on a batch of one live face (0) and one spoof (1).

    No warp and no hard examples, so the only spoof's trace lands unchanged on the live face; the
    ESR heads output 0.5 everywhere so that an L1 target of 0 and of 1 pull in opposite directions.
    """
    torch.set_num_threads(1)
    trainer = new_trainer(discriminator_every=1, warp_amplitude=0.0, hard_fraction=0.0)
    with torch.no_grad():
        for head in (trainer.model.esr_rgb.head, trainer.model.esr_depth.head, trainer.model.aggregation.head):
            head.weight.zero_()
            head.bias.fill_(0.5)
    batch = toy_batch(torch.Generator().manual_seed(3), n=2)
    assert batch.label.tolist() == [0.0, 1.0]
    probe = StepProbe(trainer)
    result = trainer.train_step(batch)
    return trainer, batch, probe, result


LIVE, SPOOF = [0], [1]  # rows of the fixture's batch; the live face is also the only usable synthesis target


# -- discriminator real/fake targets -------------------------------------------------------------
def test_discriminator_step_pulls_real_faces_to_1_and_generated_faces_to_0(step):
    _, batch, probe, _ = step
    (d_pass,) = probe.critics["discriminator"]
    n = batch.label.shape[0]
    live_rgb, spoof_rgb, live_depth, spoof_depth = d_pass.inputs
    # layout the assertions below rely on: real batch first, the generator's images after it
    assert torch.equal(live_rgb[:n], batch.rgb) and torch.equal(spoof_rgb[:n], batch.rgb)
    assert torch.equal(live_depth[:n], batch.depth) and torch.equal(spoof_depth[:n], batch.depth)
    generated = probe.generator_pass_on(batch.rgb)
    torch.testing.assert_close(live_rgb[n:], batch.rgb - generated.values["trace_rgb"])  # reconstructed live faces

    real_live, real_spoof = LIVE, SPOOF
    fake_from_spoof = [n + i for i in SPOOF]  # reconstructed live face of a spoof
    fake_from_live = [n + i for i in LIVE]  # synthesised spoof (a spoof trace on the live face)
    rows = range(2 * n)
    for modality in ("rgb", "depth"):
        for scale in range(len(d_pass.outputs.live_rgb)):
            for head, to_one, to_zero in (("live", real_live, fake_from_spoof), ("spoof", real_spoof, fake_from_live)):
                name = f"{head}_{modality}/{scale}"
                z, grad = d_pass.values[name], d_pass.grads.get(name)
                what = f"discriminator {name}, real {head} faces"
                assert implied_target(z, grad, to_one, what) == pytest.approx(1.0, abs=1e-3), what
                what = f"discriminator {name}, generated faces"
                assert implied_target(z, grad, to_zero, what) == pytest.approx(0.0, abs=1e-3), what
                ignored = [r for r in rows if r not in to_one + to_zero]
                assert torch.count_nonzero(grad[ignored]) == 0, f"{name}: rows {ignored} must not be trained"


# -- generator adversarial masks ------------------------------------------------------------------
def test_generator_step_asks_critics_to_call_its_reconstructions_live_and_its_synthesis_spoof(step):
    _, batch, probe, _ = step
    (g_pass,) = probe.critics["generator"]
    generated = probe.generator_pass_on(batch.rgb)
    torch.testing.assert_close(g_pass.inputs[0], batch.rgb - generated.values["trace_rgb"])
    for modality in ("rgb", "depth"):
        for scale in range(len(g_pass.outputs.live_rgb)):
            # live head: the reconstructed live face of a spoof must pass as a real live face (target 1) ...
            for head, fooled, ignored in (("live", SPOOF, LIVE), ("spoof", LIVE, SPOOF)):
                # ... spoof head: the spoof synthesised on a live face must pass as a real spoof (target 1)
                name = f"{head}_{modality}/{scale}"
                z, grad = g_pass.values[name], g_pass.grads.get(name)
                what = f"generator step, critic {name}"
                assert implied_target(z, grad, fooled, what) == pytest.approx(1.0, abs=1e-3), what
                assert torch.count_nonzero(grad[ignored]) == 0, f"{name}: rows {ignored} must not be trained"


# -- trace regularisation weights ------------------------------------------------------------------
def test_trace_regularisation_is_strong_on_live_and_weak_on_spoof():
    config = TrainConfig()
    trace = torch.full((2, 3, 4, 4), 0.3, requires_grad=True)
    trace_regularisation(trace, torch.tensor([0.0, 1.0]), config).backward()
    live, spoof = trace.grad[0].abs().sum(), trace.grad[1].abs().sum()
    assert spoof > 0, "a spoof's trace is still (weakly) regularised"
    assert float(live / spoof) == pytest.approx(config.reg_live_weight / config.reg_spoof_weight, rel=1e-3)
    assert live > 1000 * spoof


def test_generator_step_shrinks_a_live_faces_trace_far_harder_than_a_spoofs():
    torch.set_num_threads(1)
    trainer = new_trainer(adversarial_weight=0.0)  # the trace's only other gradient goes through the critics
    batch = toy_batch(torch.Generator().manual_seed(4), n=2)
    probe = StepProbe(trainer)
    trainer.train_step(batch)
    generated = probe.generator_pass_on(batch.rgb)
    for name in ("trace_rgb", "trace_depth"):
        trace, grad = generated.values[name], generated.grads[name]
        # d(w·mean(t²))/dt = 2w·t/size: the weight each row's trace is regularised with, up to a common factor
        weight = [float((grad[i] * trace[i]).sum() / (trace[i] ** 2).sum()) for i in (0, 1)]
        assert weight[0] > 0 and weight[1] > 0, f"{name}: the regulariser must shrink traces, weights {weight}"
        assert weight[0] / weight[1] == pytest.approx(trainer.config.reg_live_weight / trainer.config.reg_spoof_weight,
                                                      rel=1e-2), f"{name}: live {weight[0]:.3g} spoof {weight[1]:.3g}"


# -- synthesis adds the trace ----------------------------------------------------------------------
def test_synthesised_spoof_is_the_live_face_plus_the_spoofs_trace(step):
    _, batch, probe, _ = step
    n = batch.label.shape[0]
    spoof_trace = probe.generator_pass_on(batch.rgb).values  # the only spoof (row 1) lends its trace
    rgb_trace, depth_trace = spoof_trace["trace_rgb"][1], spoof_trace["trace_depth"][1]
    assert rgb_trace.abs().max() > 1e-3 and depth_trace.abs().max() > 1e-3  # so that +trace and -trace differ
    expected_rgb, expected_depth = batch.rgb[0] + rgb_trace, batch.depth[0] + depth_trace
    extra = probe.generator_pass_not_on(batch.rgb)  # the extra step runs on the synthesised samples
    (g_pass,) = probe.critics["generator"]
    (d_pass,) = probe.critics["discriminator"]
    for where, rgb, depth in (("extra step input", extra.inputs[0][0], extra.inputs[1][0]),
                              ("generator step, spoof critic input", g_pass.inputs[1][0], g_pass.inputs[3][0]),
                              ("discriminator step, generated spoof", d_pass.inputs[1][n], d_pass.inputs[3][n])):
        torch.testing.assert_close(rgb, expected_rgb, atol=1e-5, rtol=0, msg=lambda m, where=where: f"{where} rgb: {m}")
        torch.testing.assert_close(depth, expected_depth, atol=1e-5, rtol=0,
                                   msg=lambda m, where=where: f"{where} depth: {m}")


# -- the extra step's ESR targets and pixel loss -------------------------------------------------
def test_extra_step_pushes_the_spoof_maps_of_synthesised_spoofs_towards_1(step):
    _, batch, probe, result = step
    extra = probe.generator_pass_not_on(batch.rgb)
    for name in ESR_MAPS:
        m, grad = extra.values[name], extra.grads.get(name)
        assert grad is not None, f"the extra step does not train {name}"
        assert bool(((m[LIVE] > 0) & (m[LIVE] < 1)).all()), f"{name} left (0, 1); the sign test below needs it inside"
        # L1 towards 1 from below: every element pulled up (a target of 0 would pull every one down)
        assert bool((grad[LIVE] < 0).all()), f"{name}: synthesised spoofs must be called spoof (target 1)"
        assert torch.count_nonzero(grad[SPOOF]) == 0, f"{name}: only usable synthesised samples count"
    assert result.losses.extra_esr == pytest.approx(
        sum(float((extra.values[k][LIVE] - 1).abs().mean()) for k in ESR_MAPS), rel=1e-4)


def test_extra_step_pixel_loss_pulls_the_recovered_trace_to_the_synthesised_one(step):
    _, batch, probe, result = step
    extra = probe.generator_pass_not_on(batch.rgb)
    for name, live, synthesised in (("trace_rgb", batch.rgb, extra.inputs[0]),
                                    ("trace_depth", batch.depth, extra.inputs[1])):
        grad = extra.grads.get(name)
        assert grad is not None, f"the extra step sends no gradient into {name}: no pixel loss"
        error = extra.values[name][LIVE] - (synthesised[LIVE] - live[LIVE])  # recovered minus added trace
        pulled = grad[LIVE]
        assert torch.count_nonzero(pulled) > 0.9 * pulled.numel(), f"{name}: pixel loss missing"
        assert bool((torch.sign(pulled) == torch.sign(error))[error.abs() > 1e-6].all()), \
            f"{name}: the pixel loss must pull the trace towards the synthesised trace"
        assert torch.count_nonzero(grad[SPOOF]) == 0, f"{name}: only usable synthesised samples count"
    assert result.losses.pixel > 0


# -- alpha calibration -------------------------------------------------------------------------------
class LinearScoreModel(torch.nn.Module):
    """A stand-in with the score's shape ``fused + alpha·energy``: fused read from the rgb mean, energy from depth."""

    FUSED_SPAN = 30.0
    ENERGY_SPAN = 25.0

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("alpha", torch.tensor(0.0))

    def set_alpha(self, alpha: float) -> None:
        self.alpha.fill_(float(alpha))

    @classmethod
    def components(cls, rgb: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fused = cls.FUSED_SPAN * (rgb.reshape(len(rgb), -1).mean(1) - 0.75)
        energy = cls.ENERGY_SPAN * depth.reshape(len(depth), -1).mean(1)
        return fused, energy

    def forward(self, rgb, depth):
        fused, energy = self.components(rgb.double().numpy(), depth.double().numpy())
        score = torch.from_numpy(fused + float(self.alpha) * energy).float()
        return type("Outputs", (), {"score": score})()


def alpha_dev_set(best_alpha: float, n: int = 40) -> SampleSet:
    """Dev faces separated by ``fused + best_alpha·energy`` (live in [0, 1), attacks in [3, 4)) and by no other alpha.

    Trace energy is spread over [0, 20] independently of the label, so any other alpha adds up to
    several units of label-free noise to the score.
    """
    rng = np.random.default_rng(5)
    is_attack = np.repeat(np.array([0, 1], np.int8), n)
    separated = rng.uniform(0, 1, 2 * n) + 3.0 * is_attack
    energy = np.tile(np.linspace(0, 20, n), 2)
    rng.shuffle(energy)
    fused = separated - best_alpha * energy
    rgb_level = np.round((fused / LinearScoreModel.FUSED_SPAN + 0.75) * 255)
    depth_level = np.round(energy / LinearScoreModel.ENERGY_SPAN * 65535)
    assert rgb_level.min() >= 0 and rgb_level.max() <= 255 and depth_level.max() <= 65535
    size = 8
    rgb = np.broadcast_to(rgb_level.astype(np.uint8)[:, None, None, None], (2 * n, 3, size, size)).copy()
    depth = np.broadcast_to(depth_level.astype(np.uint16)[:, None, None, None], (2 * n, 1, size, size)).copy()
    pai = np.where(is_attack == 1, "print", "")
    return SampleSet(rgb, depth, is_attack, pai, np.array([f"s{i}" for i in range(2 * n)]), np.array([""] * (2 * n)))


def test_calibrate_score_picks_the_alpha_with_the_lowest_dev_eer():
    from calibration.metrics import equal_error_rate, scored_set
    from train.run import ALPHA_GRID, calibrate_score

    grid = sorted(ALPHA_GRID)
    best_alpha = grid[len(grid) // 2]  # neither end of the grid, so neither min nor max of alpha is the answer
    dev = alpha_dev_set(best_alpha)
    rgb, depth = dev.arrays(slice(0, len(dev)))
    fused, energy = LinearScoreModel.components(rgb.astype(np.float64), depth.astype(np.float64))
    eer = {a: equal_error_rate(scored_set(fused + a * energy, dev.is_attack.astype(bool), dev.pai)).eer for a in grid}
    runner_up = sorted(eer.values())[1]
    assert eer[best_alpha] == 0.0 and runner_up > 0.1, f"the dev set must single out alpha={best_alpha}: {eer}"

    model = LinearScoreModel()
    alpha, threshold, report = calibrate_score(model, dev, "eer")
    assert eer[alpha] == min(eer.values()), f"chose alpha={alpha} (dev EER {eer[alpha]:.2%}), EERs {eer}"
    assert float(model.alpha) == alpha, "the chosen alpha must be set in the model (it is stored with the weights)"
    assert report["eer"] == pytest.approx(0.0, abs=1e-9)


# -- balanced batches ----------------------------------------------------------------------------------
def labelled_by_pixels(n_live: int = 5, per_species: int = 3) -> SampleSet:
    """Live faces are black, attacks white, so a batch's pixels say which rows are attacks.

    Training augmentation (flips, exposure, white balance, noise) keeps a white crop's mean above
    0.5 and a black one's near 0; 0.25 splits them with room to spare.
    """
    species = ("print", "replay", "mask")
    pai = np.array([""] * n_live + [s for s in species for _ in range(per_species)])
    is_attack = (pai != "").astype(np.int8)
    n = len(pai)
    rgb = np.where(is_attack[:, None, None, None] == 1, 255, 0).astype(np.uint8) * np.ones((n, 3, 8, 8), np.uint8)
    depth = np.zeros((n, 1, 8, 8), np.uint16)
    return SampleSet(rgb, depth, is_attack, pai, np.array([f"s{i}" for i in range(n)]), np.array([""] * n))


@pytest.mark.parametrize("batch_size", [2, 8])
def test_balanced_batches_are_half_live_with_label_1_for_attacks(batch_size):
    from train.run import balanced_batches

    samples = labelled_by_pixels()
    stream = balanced_batches(samples, batch_size, seed=0)
    seen_species = set()
    for _ in range(40):
        batch = next(stream)
        attack_pixels = batch.rgb.flatten(1).mean(1) > 0.25
        assert batch.label.tolist() == attack_pixels.float().tolist(), "label must be 1 exactly for attack faces"
        assert [p != "" for p in batch.pai] == attack_pixels.tolist(), "pai must name the species of attacks only"
        assert int((batch.label == 0).sum()) == batch_size // 2, f"half of each batch live: {batch.label.tolist()}"
        seen_species.update(p for p in batch.pai if p)
    assert seen_species == {"print", "replay", "mask"}


def test_probe_sees_every_pass_of_a_step(step):
    """Guards the tests above against watching nothing: one step makes two generator passes and two critic passes."""
    _, _, probe, result = step
    assert len(probe.generator) == 2
    assert len(probe.critics["generator"]) == 1 and len(probe.critics["discriminator"]) == 1
    losses = dataclasses.asdict(result.losses)
    assert np.isnan(losses.pop("blind"))  # the colour-blind step is off by default: no third pass, no number
    assert np.isnan(losses.pop("guard"))  # no depth guard in the preset: no guard loss
    assert all(np.isfinite(v) for v in losses.values())
