"""Camera realism in training: perturbations keep the face's geometry and never invent depth."""

from __future__ import annotations

import numpy as np
import pytest

from train.augment import mirror_landmarks, perturb_arrays, perturb_sample

S = 64


def _dots(points: np.ndarray) -> np.ndarray:
    """A dark crop with a bright 3x3 dot at each landmark (crop coordinates [0, 1])."""
    img = np.full((3, S, S), 0.1, np.float32)
    for x, y in points * S:
        img[:, int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2] = 1.0
    return img


@pytest.mark.parametrize("seed", range(6))
def test_landmarks_move_with_the_crop(seed):
    points = np.array([[0.35, 0.4], [0.65, 0.4], [0.5, 0.55], [0.4, 0.7], [0.6, 0.7]], np.float32)
    rgb = _dots(points)
    depth = np.full((1, S, S), 0.5, np.float32)
    out_rgb, _, moved = perturb_sample(rgb, depth, np.random.default_rng(seed), landmarks=points)
    luma = out_rgb.mean(axis=0)
    for x, y in moved * S:
        patch = luma[int(y) - 2:int(y) + 3, int(x) - 2:int(x) + 3]
        assert patch.max() > np.median(luma) + 0.15, f"no dot where the moved landmark {x:.1f},{y:.1f} says"
    assert not np.allclose(out_rgb, rgb), "the crop must actually change"


def test_no_depth_is_invented_where_there_was_none():
    rng = np.random.default_rng(0)
    rgb = rng.random((4, 3, S, S), dtype=np.float32)
    depth = np.zeros((4, 1, S, S), np.float32)
    _, out, _ = perturb_arrays(rgb, depth, rng)
    assert not out.any(), "a hole stays a hole: noise is added to valid depth only"


def test_depth_noise_and_holes_on_valid_depth():
    rng = np.random.default_rng(1)
    depth = np.full((32, 1, S, S), 0.5, np.float32)
    _, out, _ = perturb_arrays(np.full((32, 3, S, S), 0.5, np.float32), depth, rng)
    valid = out > 0
    assert 0.5 < valid.mean() < 1.0, "some holes, most depth kept"
    spread = np.std(out[valid] - 0.5)
    assert 0.001 < spread < 0.05, f"noise of a few mm in the +-100 mm window, got sigma {spread * 200:.1f} mm"


def test_probability_zero_changes_nothing():
    rng = np.random.default_rng(2)
    rgb = rng.random((3, 3, S, S), dtype=np.float32)
    depth = rng.random((3, 1, S, S), dtype=np.float32)
    a, b, _ = perturb_arrays(rgb, depth, rng, probability=0.0)
    assert np.array_equal(a, rgb) and np.array_equal(b, depth)


def test_mirroring_swaps_sides():
    lm = np.array([[[0.3, 0.4], [0.7, 0.42], [0.5, 0.6], [0.35, 0.75], [0.65, 0.76]]], np.float32)
    m = mirror_landmarks(lm)
    assert m[0, 0, 0] == pytest.approx(1 - 0.7) and m[0, 1, 0] == pytest.approx(1 - 0.3), "right eye stays on the left"
    assert m[0, 0, 1] == pytest.approx(0.42)
    assert np.allclose(mirror_landmarks(m), lm)


def test_balanced_batches_carry_landmarks_that_follow_flips_and_warps():
    from train.run import balanced_batches
    from edge.datasets.sampleset import SampleSet

    rng = np.random.default_rng(3)
    n = 8
    points = np.stack([np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.55], [0.38, 0.72], [0.62, 0.72]]) +
                       rng.uniform(-0.05, 0.05, (5, 2)) for _ in range(n)]).astype(np.float32)
    rgb = np.stack([np.rint(_dots(p) * 255).astype(np.uint8) for p in points])
    depth = np.full((n, 1, S, S), 30000, np.uint16)
    pai = np.array(["", "", "", "", "print", "print", "mask", "mask"])
    samples = SampleSet(rgb, depth, (pai != "").astype(np.int8), pai, np.array([f"s{i}" for i in range(n)]),
                        np.array([""] * n), {}, points)
    batch = next(balanced_batches(samples, 8, seed=4))
    assert batch.landmarks_xy is not None and tuple(batch.landmarks_xy.shape) == (8, 5, 2)
    luma = batch.rgb.numpy().mean(axis=1)
    for i in range(8):
        for x, y in batch.landmarks_xy[i].numpy() * S:
            patch = luma[i, max(int(y) - 2, 0):int(y) + 3, max(int(x) - 2, 0):int(x) + 3]
            assert patch.size and patch.max() > np.median(luma[i]) + 0.1, f"sample {i}: landmark off its dot"


def test_compound_samples_bring_every_camera_effect_together():
    """A compound draw always blurs and compresses: fine detail (a 1-px checkerboard) is gone from every
    sample, where standard draws leave it on most; standard draws are the same stream as before."""
    rgb = np.zeros((3, S, S), np.float32)
    rgb[:, ::2, ::2] = rgb[:, 1::2, 1::2] = 1.0
    depth = np.full((1, S, S), 0.5, np.float32)

    def detail(img):
        return float(np.abs(np.diff(img.mean(axis=0), axis=1)).mean())

    compound = [detail(perturb_sample(rgb, depth, np.random.default_rng(i), compound=True)[0]) for i in range(20)]
    standard = [detail(perturb_sample(rgb, depth, np.random.default_rng(i))[0]) for i in range(20)]
    assert max(compound) < 0.03 < float(np.median(standard))
    a = perturb_arrays(rgb[None].repeat(4, 0), depth[None].repeat(4, 0), np.random.default_rng(3))
    b = perturb_arrays(rgb[None].repeat(4, 0), depth[None].repeat(4, 0), np.random.default_rng(3), compound_fraction=0.0)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_wide_augment_is_a_choice_of_the_train_command():
    from train.run import AUGMENTS

    assert AUGMENTS["standard"].compound == 0.0 < AUGMENTS["wide"].compound < 1.0
