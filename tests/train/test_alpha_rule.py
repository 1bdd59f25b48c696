"""The score's trace weight alpha: a tie on dev is broken on a flat-lit and a perturbed copy of dev, not by taking
alpha 0."""

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


def _set(fused: np.ndarray, energy: np.ndarray, is_attack: np.ndarray, species: str = "print") -> SampleSet:
    n = len(fused)
    rgb = np.broadcast_to(np.rint(fused * 255).astype(np.uint8)[:, None, None, None], (n, 3, 4, 4)).copy()
    depth = np.broadcast_to(np.rint(energy * 65535).astype(np.uint16)[:, None, None, None], (n, 1, 4, 4)).copy()
    pai = np.where(is_attack == 1, species, "")
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
    alpha, _, report = calibrate_score(model, dev, "eer", perturbed=noisy, flat=dev)
    assert alpha == max(ALPHA_GRID), f"the robust term should win the tie, got alpha={alpha}"
    assert float(model.alpha) == alpha
    assert set(report["alpha_rule"]["dev_eer"]) == {str(a) for a in ALPHA_GRID}
    assert set(report["alpha_rule"]["flat_dev_worst_apcer"].values()) == {0.0}, "dev lit as dev: every alpha refuses all"


def _tie_with_a_flat_lit_harm():
    """A dev split every alpha separates, a perturbed copy where only the trace energy separates (it
    favours the largest alpha), and a flat-lit copy whose mannequins keep a saturated map but lose
    their trace energy: above alpha 0 the dev threshold rises over their score and they pass."""
    rng = np.random.default_rng(1)
    n = 60
    is_attack = np.repeat([0, 1], n)
    dev = _set(np.where(is_attack == 1, 0.7, 0.2) + rng.uniform(0, 0.05, 2 * n),
               np.where(is_attack == 1, 0.3, 0.05) + rng.uniform(0, 0.02, 2 * n), is_attack, "mannequin")
    noisy = _set(rng.uniform(0.1, 0.9, 2 * n), np.where(is_attack == 1, 0.3, 0.05) + rng.uniform(0, 0.02, 2 * n),
                 is_attack, "mannequin")
    lit = _set(np.where(is_attack == 1, 0.72, 0.2) + rng.uniform(0, 0.02, 2 * n),
               np.where(is_attack == 1, 0.0, 0.05) + rng.uniform(0, 0.005, 2 * n), is_attack, "mannequin")
    return dev, noisy, lit


def test_an_alpha_that_lets_flat_lit_attacks_through_loses_the_tie():
    from train.run import ALPHA_GRID, calibrate_score

    dev, noisy, lit = _tie_with_a_flat_lit_harm()
    alpha, _, report = calibrate_score(StandInModel(), dev, "eer", perturbed=noisy, flat=lit)
    worst = report["alpha_rule"]["flat_dev_worst_apcer"]
    assert worst["0.0"] == 0.0 and all(worst[str(a)] == 1.0 for a in ALPHA_GRID if a > 0), worst
    assert alpha == 0.0, f"the flat-lit mannequins pass above alpha 0, yet the rule chose alpha={alpha}: {worst}"
    # the same split without the flat-lit harm: the perturbed copy decides, as before
    assert calibrate_score(StandInModel(), dev, "eer", perturbed=noisy, flat=dev)[0] == max(ALPHA_GRID)


def test_the_default_flat_copy_is_every_dev_face_lit_flat_at_its_own_seed():
    from train.augment import perturbed_copy
    from train.run import FLAT_COPY_SEED, calibrate_score

    dev, noisy, _ = _tie_with_a_flat_lit_harm()
    seen = []

    class Recording(StandInModel):
        def forward(self, rgb, depth):
            seen.append(rgb.numpy().copy())
            return super().forward(rgb, depth)

    calibrate_score(Recording(), dev, "eer", perturbed=noisy)
    expected = perturbed_copy(dev, seed=FLAT_COPY_SEED, flat_fraction=1.0).arrays(slice(0, len(dev)))[0]
    scored_faces = {face.tobytes() for batch in seen for face in batch}
    assert all(face.tobytes() in scored_faces for face in expected), "the rule must score dev lit flat at FLAT_COPY_SEED"
    assert not np.array_equal(expected, dev.arrays(slice(0, len(dev)))[0])


def _tie_at_a_saturated_map():
    """Every alpha separates dev; the perturbed copy favours alpha 0 (its trace energy is scrambled); but at
    alpha 0 the attacks' fused map is saturated, two 8-bit levels from the top, so the dev threshold has
    half of the attacks within one INT8 step of it."""
    rng = np.random.default_rng(2)
    n = 60
    is_attack = np.repeat([0, 1], n)
    live_fused = rng.integers(50, 150, n) / 255.0
    attack_fused = rng.choice([254, 255], n) / 255.0
    dev = _set(np.concatenate([live_fused, attack_fused]),
               np.where(is_attack == 1, 0.3, 0.05) + rng.uniform(0, 0.2, 2 * n), is_attack)
    noisy = _set(np.concatenate([live_fused, attack_fused]), rng.uniform(0.05, 0.5, 2 * n), is_attack)
    return dev, noisy


def test_an_alpha_whose_threshold_is_crowded_loses_to_a_roomy_one():
    from train.run import ALPHA_CROWD_SHARE, ALPHA_GRID, calibrate_score

    dev, noisy = _tie_at_a_saturated_map()
    alpha, threshold, report = calibrate_score(StandInModel(), dev, "eer", perturbed=noisy, flat=dev)
    crowding = report["alpha_rule"]["dev_share_near_threshold"]
    assert crowding["0.0"] > ALPHA_CROWD_SHARE, f"alpha 0's threshold must be crowded here: {crowding}"
    roomy = [a for a in ALPHA_GRID if crowding[str(a)] <= ALPHA_CROWD_SHARE]
    assert roomy, crowding
    perturbed = report["alpha_rule"]["perturbed_dev"]
    assert min(ALPHA_GRID, key=lambda a: (perturbed[str(a)]["eer"], perturbed[str(a)]["neg_auc"])) == 0.0, \
        "the perturbed copy must favour alpha 0, or the crowding step decides nothing"
    assert alpha in roomy and alpha == min(roomy, key=lambda a: (perturbed[str(a)]["eer"], perturbed[str(a)]["neg_auc"]))
    assert alpha != 0.0 and threshold > 0.6, (alpha, threshold)


def test_when_every_alpha_is_crowded_the_perturbed_copy_still_decides():
    from train.run import ALPHA_CROWD_SHARE, calibrate_score

    dev, noisy = _tie_at_a_saturated_map()
    # the trace energy constant: every alpha's scores are alpha 0's shifted, as crowded as it
    flat_energy = _set(dev.rgb[:, 0, 0, 0] / 255.0, np.full(len(dev), 0.1), dev.is_attack)
    alpha, _, report = calibrate_score(StandInModel(), flat_energy, "eer", perturbed=noisy, flat=flat_energy)
    crowding = report["alpha_rule"]["dev_share_near_threshold"]
    assert all(share > ALPHA_CROWD_SHARE for share in crowding.values()), crowding
    assert alpha == 0.0, f"with no roomy alpha the rule keeps the robust choice, got {alpha}"
