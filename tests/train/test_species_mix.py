"""Hard-species mining (train.species_mix): difficulty per species, the shares it gives, the batches they draw."""

from __future__ import annotations

import numpy as np
import pytest

from edge.datasets.sampleset import SampleSet
from train.species_mix import HARD_FLOOR, DifficultyProbe, SpeciesMix


def toy_set(n_per_class: int = 40) -> SampleSet:
    """Live faces dim, 'print' bright (easy: a brightness score puts every print above every live face),
    'silicone' as dim as live faces (hard: ranked among them)."""
    rng = np.random.default_rng(0)
    groups = [("", 0, 60), ("print", 1, 200), ("silicone", 1, 60)]
    rgb, depth, attack, pai, subject = [], [], [], [], []
    for name, label, level in groups:
        for k in range(n_per_class):
            rgb.append(np.full((3, 8, 8), level + rng.integers(0, 20), np.uint8))
            depth.append(np.full((1, 8, 8), 1000, np.uint16))
            attack.append(label), pai.append(name), subject.append(f"s{k % 5}")
    return SampleSet(rgb=np.stack(rgb), depth=np.stack(depth), is_attack=np.array(attack, np.int8),
                     pai=np.array(pai), subject=np.array(subject), gate=np.array([""] * len(pai)),
                     provenance={}, landmarks=None)


def brightness(rgb: np.ndarray, depth: np.ndarray) -> np.ndarray:
    return rgb.mean(axis=(1, 2, 3))


def test_probe_ranks_the_species_live_faces_hide_among_as_hard():
    difficulty = DifficultyProbe(toy_set(), seed=0).difficulty(brightness)
    assert difficulty["print"] == 0.0
    assert 0.3 < difficulty["silicone"] < 0.7  # drawn from the same levels as live: about a coin toss


def test_shares_follow_difficulty_above_a_floor():
    mix = SpeciesMix(["mask", "print", "silicone"])
    assert mix.share == pytest.approx([1 / 3] * 3)
    mix.set_difficulty({"print": 0.0, "mask": 0.1, "silicone": 0.4})
    assert mix.share.sum() == pytest.approx(1.0)
    assert mix.share[2] > mix.share[0] > mix.share[1]
    assert mix.share[1] == pytest.approx(HARD_FLOOR / 3)  # learned, but never dropped
    mix.set_difficulty({"print": 0.0, "mask": 0.0, "silicone": 0.0})  # nothing hard: back to even
    assert mix.share == pytest.approx([1 / 3] * 3)


def test_batches_draw_the_shares_of_the_mix():
    pytest.importorskip("torch", reason="batches are torch tensors (edgefas[train])")
    from train.run import balanced_batches

    samples = toy_set()
    mix = SpeciesMix(["print", "silicone"])
    mix.set_difficulty({"print": 0.0, "silicone": 0.5})  # shares 0.25 / 0.75
    batches = balanced_batches(samples, 8, seed=3, augment=False, mix=mix)
    drawn = [p for _ in range(200) for p in next(batches).pai if p]
    assert len(drawn) == 800
    assert 0.70 < drawn.count("silicone") / len(drawn) < 0.80
    even = balanced_batches(samples, 8, seed=3, augment=False)
    drawn = [p for _ in range(200) for p in next(even).pai if p]
    assert 0.45 < drawn.count("silicone") / len(drawn) < 0.55


def toy_mannequins(n_per_class: int = 40) -> SampleSet:
    """Live faces dim and 'mannequin' brighter, each crop a textured 32-px face: a brightness score
    ranks every mannequin above every live face as rendered, but the camera's exposure (0.6-1.6x) and a
    flat light's lift toward white mix the two."""
    rng = np.random.default_rng(1)
    rgb, attack, pai = [], [], []
    for name, label, level in (("", 0, 70), ("mannequin", 1, 110)):
        for _ in range(n_per_class):
            rgb.append(np.clip(level + rng.normal(0, 6, (3, 32, 32)), 0, 255).astype(np.uint8))
            attack.append(label), pai.append(name)
    n = len(pai)
    return SampleSet(rgb=np.stack(rgb), depth=np.full((n, 1, 32, 32), 30000, np.uint16),
                     is_attack=np.array(attack, np.int8), pai=np.array(pai), subject=np.array(["s"] * n),
                     gate=np.array([""] * n), provenance={}, landmarks=None)


def test_hard_camera_counts_a_species_as_hard_as_its_worst_camera_condition():
    samples = toy_mannequins()
    rendered = DifficultyProbe(samples, seed=0).difficulty(brightness)
    assert rendered["mannequin"] == 0.0  # learned, as rendered
    flat = DifficultyProbe(samples, seed=0, conditions=("rendered", "flat")).difficulty(brightness)
    assert flat["mannequin"] > 0.1  # and confused with live faces once the camera lights it flat


def test_camera_copies_keep_labels_and_change_the_faces_the_same_way_each_time():
    pytest.importorskip("cv2", reason="the camera realism is OpenCV's")
    from train.species_mix import camera_copy

    faces = toy_mannequins(8)
    assert camera_copy(faces, "rendered", 5) is faces
    for condition in ("flat", "sensor"):
        copy = camera_copy(faces, condition, 5)
        assert copy.rgb.dtype == np.uint8 and copy.depth.dtype == np.uint16
        assert (copy.pai == faces.pai).all() and (copy.is_attack == faces.is_attack).all()
        assert not np.array_equal(copy.rgb, faces.rgb)
        assert np.array_equal(copy.rgb, camera_copy(faces, condition, 5).rgb)


def test_probe_conditions_follow_the_mix_and_the_runs_camera_draws():
    from train.species_mix import probe_conditions

    assert probe_conditions("hard", 0.3, 0.4) == ("rendered",)
    assert probe_conditions("hard-camera", 0.3, 0.4) == ("rendered", "flat", "sensor")
    assert probe_conditions("hard-camera", 0.3, 0.0) == ("rendered", "flat")
    assert probe_conditions("hard-camera", 0.0, 0.0) == ("rendered",)
    with pytest.raises(ValueError, match="probe conditions"):
        DifficultyProbe(toy_set(), seed=0, conditions=("foggy",))


def two_worlds(n_per_class: int = 40) -> SampleSet:
    """Two worlds joined as prepare_samples joins them (subjects prefixed by their kind, provenance with
    parts), each with a 'mask': the synthetic world's as dim as its live faces (hard), the photo world's
    bright (easy); 'print' only in the photo world, bright."""
    rng = np.random.default_rng(2)
    groups = [("synthetic", "", 0, 60), ("synthetic", "mask", 1, 60),
              ("photo", "", 0, 60), ("photo", "mask", 1, 200), ("photo", "print", 1, 200)]
    rgb, attack, pai, subject = [], [], [], []
    for world, name, label, level in groups:
        for k in range(n_per_class):
            rgb.append(np.full((3, 8, 8), level + rng.integers(0, 20), np.uint8))
            attack.append(label), pai.append(name), subject.append(f"{world}/s{k % 5}")
    n = len(pai)
    return SampleSet(rgb=np.stack(rgb), depth=np.full((n, 1, 8, 8), 1000, np.uint16),
                     is_attack=np.array(attack, np.int8), pai=np.array(pai), subject=np.array(subject),
                     gate=np.array([""] * n), provenance={"source": "synthetic:1+photo:1", "parts": [{}, {}]},
                     landmarks=None)


def test_attack_kinds_split_a_species_by_world_only_in_a_joined_set():
    from train.species_mix import attack_kinds, mines_by_world

    samples = two_worlds(2)
    assert sorted(set(attack_kinds(samples).tolist())) == ["", "mask", "print"]
    kinds = attack_kinds(samples, by_world=True)
    assert sorted(set(kinds.tolist())) == ["", "photo/mask", "photo/print", "synthetic/mask"]
    assert (kinds[samples.is_attack == 0] == "").all()
    one_world = SampleSet(samples.rgb, samples.depth, samples.is_attack, samples.pai, samples.subject,
                          samples.gate, {}, None)  # not joined: a slash in a subject is not a world
    assert (attack_kinds(one_world, by_world=True) == samples.pai).all()
    assert mines_by_world("hard-world") and not mines_by_world("hard")


def test_hard_world_finds_the_hard_mask_that_pooling_hides():
    samples = two_worlds()
    pooled = DifficultyProbe(samples, seed=0).difficulty(brightness)
    by_world = DifficultyProbe(samples, seed=0, by_world=True).difficulty(brightness)
    assert by_world["photo/mask"] == 0.0 and by_world["photo/print"] == 0.0
    assert 0.3 < by_world["synthetic/mask"] < 0.7  # as dim as the live faces: about a coin toss
    assert pooled["mask"] < 0.75 * by_world["synthetic/mask"]  # the easy photo mask halves it, pooled

    from train.species_mix import run_probe

    door = run_probe(samples, 0, "hard-door-world", 0.0, 0.0)  # the door measure, per world
    assert door.measure == "door" and door.species == ["photo/mask", "photo/print", "synthetic/mask"]
    assert door.difficulty(brightness)["synthetic/mask"] > 0.3 > door.difficulty(brightness)["photo/mask"]


def test_batches_draw_a_worlds_species_by_its_share():
    pytest.importorskip("torch", reason="batches are torch tensors (edgefas[train])")
    from train.run import balanced_batches

    samples = two_worlds()
    mix = SpeciesMix(["photo/mask", "photo/print", "synthetic/mask"], by_world=True)
    mix.set_difficulty({"synthetic/mask": 0.6})  # shares 1/6, 1/6, 2/3
    batches = balanced_batches(samples, 8, seed=4, augment=False, mix=mix)
    drawn = []
    for _ in range(200):
        batch = next(batches)
        level = batch.rgb.mean(dim=(1, 2, 3)).numpy() * 255
        drawn += [("dim" if v < 100 else "bright", p) for v, p in zip(level, batch.pai) if p]
    assert len(drawn) == 800
    assert 0.61 < drawn.count(("dim", "mask")) / len(drawn) < 0.72  # the synthetic world's mask
    assert 0.12 < drawn.count(("bright", "mask")) / len(drawn) < 0.22  # the batch still says "mask"
    with pytest.raises(ValueError, match="species mix covers"):
        next(balanced_batches(samples, 8, seed=4, augment=False, mix=SpeciesMix(["mask", "print"], by_world=True)))


def tail_set(n_live: int = 96) -> SampleSet:
    """Live faces at brightness 0-95 (one level each); 'mannequin' all at 200 but three at 90-92, in the
    live faces' top tail; 'mask' all at 200 but one at 0, below every live face: one deep miss outweighs
    three shallow ones in a ranking, and passes one door where the three pass three."""
    levels = [("", 0, list(range(n_live)))]
    levels.append(("mannequin", 1, [200] * 21 + [90, 91, 92]))
    levels.append(("mask", 1, [200] * 23 + [0]))
    rgb, depth, attack, pai, subject = [], [], [], [], []
    for name, label, values in levels:
        for k, v in enumerate(values):
            rgb.append(np.full((3, 8, 8), v, np.uint8))
            depth.append(np.full((1, 8, 8), 1000, np.uint16))
            attack.append(label), pai.append(name), subject.append(f"s{k % 5}")
    return SampleSet(rgb=np.stack(rgb), depth=np.stack(depth), is_attack=np.array(attack, np.int8),
                     pai=np.array(pai), subject=np.array(subject), gate=np.array([""] * len(pai)),
                     provenance={}, landmarks=None)


def test_hard_door_counts_the_attacks_that_pass_where_owners_are_refused_not_the_ranking():
    """Three mannequins of 24 sit in the live faces' top tail: ranked, they are nearly learned (1 - AUC
    about 0.006) and the mask, one of whose 24 falls below every live face, looks seven times harder; at
    the point that refuses 1 % of owners three mannequins pass and one mask."""
    from train.species_mix import DOOR_BPCER, probe_conditions, probe_measure

    samples = tail_set()
    ranked = DifficultyProbe(samples, seed=0).difficulty(brightness)
    door = DifficultyProbe(samples, seed=0, measure="door").difficulty(brightness)
    assert ranked["mask"] > 5 * ranked["mannequin"] > 0
    assert door["mannequin"] == pytest.approx(3 / 24)
    assert door["mask"] == pytest.approx(1 / 24)
    live = brightness(samples.rgb[samples.is_attack == 0], None)
    assert np.mean(live >= np.quantile(live, 1 - DOOR_BPCER)) <= 0.02  # the line is the owner-first point
    mix = SpeciesMix(sorted(door))
    mix.set_difficulty(door)
    assert mix.as_dict()["mannequin"] > mix.as_dict()["mask"]
    assert probe_measure("hard-door") == "door" and probe_measure("hard-camera") == "rank"
    assert probe_conditions("hard-door", 0.3, 0.4) == ("rendered", "flat", "sensor")
    with pytest.raises(ValueError, match="rank or door"):
        DifficultyProbe(samples, seed=0, measure="auc")


@pytest.mark.parametrize("mix, measure, conditions, by_world", [
    ("hard", "rank", ("rendered",), False), ("hard-camera", "rank", ("rendered", "flat"), False),
    ("hard-world", "rank", ("rendered",), True), ("hard-door", "door", ("rendered", "flat"), False),
    ("hard-door-world", "door", ("rendered", "flat"), True)])
def test_a_runs_probe_follows_its_species_mix(mix, measure, conditions, by_world):
    """train.run builds its probe here: each --species-mix gets its measure, conditions and grouping."""
    from train.species_mix import run_probe

    probe = run_probe(tail_set(), 0, mix, flat_fraction=0.3, sensor_fraction=0.0)
    assert (probe.measure, tuple(probe.copies), probe.by_world) == (measure, conditions, by_world)
