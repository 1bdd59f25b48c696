"""The score's trace weight alpha: a tie on dev is broken on a perturbed copy of dev, not by taking alpha 0."""

from __future__ import annotations

import numpy as np
import torch

from edge.datasets.sampleset import SampleSet


class StandInModel(torch.nn.Module):
    """score = fused + alpha * energy, fused read from the rgb mean and energy from the depth mean."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("alpha", torch.tensor(0.0))

    def set_alpha(self, alpha: float) -> None:
        self.alpha.fill_(float(alpha))

    def forward(self, rgb, depth):
        fused = rgb.double().flatten(1).mean(1)
        energy = depth.double().flatten(1).mean(1)
        return type("Outputs", (), {"score": (fused + float(self.alpha) * energy).float()})()


def _set(fused: np.ndarray, energy: np.ndarray, is_attack: np.ndarray) -> SampleSet:
    n = len(fused)
    rgb = np.broadcast_to(np.rint(fused * 255).astype(np.uint8)[:, None, None, None], (n, 3, 4, 4)).copy()
    depth = np.broadcast_to(np.rint(energy * 65535).astype(np.uint16)[:, None, None, None], (n, 1, 4, 4)).copy()
    pai = np.where(is_attack == 1, "print", "")
    return SampleSet(rgb, depth, is_attack.astype(np.int8), pai, np.array(["s"] * n), np.array([""] * n))


def test_a_dev_tie_is_broken_on_the_perturbed_copy():
    from calibration.metrics import equal_error_rate, scored_set
    from train.run import ALPHA_GRID, calibrate_score

    rng = np.random.default_rng(0)
    n = 60
    is_attack = np.repeat([0, 1], n)
    # clean dev: both terms separate perfectly, so every alpha has EER 0 (the tie)
    dev = _set(np.where(is_attack == 1, 0.7, 0.2) + rng.uniform(0, 0.05, 2 * n),
               np.where(is_attack == 1, 0.3, 0.05) + rng.uniform(0, 0.02, 2 * n), is_attack)
    # perturbed: the colour term is scrambled, the trace energy still separates
    noisy = _set(rng.uniform(0.1, 0.9, 2 * n), np.where(is_attack == 1, 0.3, 0.05) + rng.uniform(0, 0.02, 2 * n),
                 is_attack)
    model = StandInModel()
    rgb, depth = dev.arrays(slice(0, len(dev)))
    for a in ALPHA_GRID:
        model.set_alpha(a)
        scores = model(torch.from_numpy(rgb), torch.from_numpy(depth)).score.numpy()
        assert equal_error_rate(scored_set(scores, is_attack.astype(bool), dev.pai)).eer == 0.0, "dev must tie"
    alpha, _, report = calibrate_score(model, dev, "eer", perturbed=noisy)
    assert alpha == max(ALPHA_GRID), f"the robust term should win the tie, got alpha={alpha}"
    assert float(model.alpha) == alpha
    assert set(report["alpha_rule"]["dev_eer"]) == {str(a) for a in ALPHA_GRID}
