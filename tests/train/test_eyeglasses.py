"""Real eyeglasses on training faces (train/eyeglasses.py, ``--augment glasses``): on the eyes, following
the face's roll, on live and attack faces alike, never inventing depth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from train.eyeglasses import SKIP_SPECIES, add_eyeglasses, draw_eyeglasses, glasses_masks

S = 128
FACE = np.array([[0.38, 0.42], [0.62, 0.42], [0.5, 0.56], [0.41, 0.7], [0.59, 0.7]], np.float32)


def _rolled(points: np.ndarray, degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return ((points - 0.5) @ rot.T + 0.5).astype(np.float32)


def _face(depth_value: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    return np.full((3, S, S), 0.6, np.float32), np.full((1, S, S), depth_value, np.float32)


@pytest.mark.parametrize("roll", [0.0, 15.0, -25.0])
@pytest.mark.parametrize("seed", range(4))
def test_the_frames_sit_on_the_eyes_and_follow_the_roll(roll, seed):
    points = _rolled(FACE, roll)
    cover, lens = glasses_masks(S, points, np.random.default_rng(seed))
    eyes = points[:2] * S
    d = float(np.linalg.norm(eyes[1] - eyes[0]))
    for eye in eyes:  # each eye is inside its lens
        assert lens[int(eye[1] + 2), int(eye[0])], "the lens must cover the eye"
    ys, xs = np.nonzero(cover > 0.25)
    assert len(xs) > 50, "a frame was drawn"
    # every frame pixel is within reach of the eye line, none on the mouth
    pts = np.stack([xs, ys], 1).astype(np.float64)
    dist_eyes = np.min(np.linalg.norm(pts[:, None, :] - eyes[None], axis=2), axis=1)
    assert dist_eyes.max() < 1.5 * d
    mouth = points[3:].mean(axis=0) * S
    assert np.linalg.norm(pts - mouth, axis=1).min() > 0.25 * d
    # the frame's main axis is the eye line
    centred = pts - pts.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    angle = np.degrees(np.arctan2(axis[1], axis[0]))
    angle = (angle + 90) % 180 - 90
    assert abs(angle - roll) < 6.0


@pytest.mark.parametrize("seed", range(12))
def test_depth_changes_only_on_the_glasses_and_never_appears_from_nothing(seed):
    rgb, depth = _face()
    depth[:, :, :20] = 0.0  # a hole at the left edge, where a temple may pass
    rng = np.random.default_rng(seed)
    out_rgb, out_depth = draw_eyeglasses(rgb, depth, FACE, rng)
    cover, lens = glasses_masks(S, FACE, np.random.default_rng(seed))
    changed = out_depth[0] != depth[0]
    assert not out_depth[0][:, :20].any(), "no depth where the sensor had none"
    assert changed.any(), "the glasses leave a mark on the depth (a nearer frame or holes)"
    near = (out_depth[0] > depth[0]) & (depth[0] > 0)
    holes = (out_depth[0] == 0) & (depth[0] > 0)
    assert np.array_equal(changed, near | holes), "depth only moves nearer or drops out"
    if near.any():
        assert (out_depth[0][near] - depth[0][near]).max() <= 16.0 / 200.0 + 1e-6, "a frame at most 16 mm in front"
    reach = cv2.dilate((cover > 0.25).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) | lens
    assert not (changed & ~reach).any(), "depth changes only on the frame (and its edge) and the lenses"
    assert np.abs(out_rgb - rgb).sum(axis=0)[cover > 0.5].min() > 0, "the frame is drawn in colour"
    assert 0.0 <= out_rgb.min() and out_rgb.max() <= 1.0


def test_glasses_go_on_live_and_attack_faces_alike_but_not_on_paper_glasses():
    n = 400
    rgb = np.full((n, 3, S, S), 0.6, np.float32)
    depth = np.full((n, 1, S, S), 0.5, np.float32)
    species = np.array(["", "print", "silicone", SKIP_SPECIES[0]] * (n // 4))
    landmarks = np.repeat(FACE[None], n, axis=0)
    out_rgb, out_depth, worn = add_eyeglasses(rgb, depth, landmarks, species, np.random.default_rng(0), 0.25)
    for kind in ("", "print", "silicone"):
        share = worn[species == kind].mean()
        assert 0.15 < share < 0.35, f"{kind or 'live'}: {share:.2f} of the faces wore glasses"
    assert not worn[species == SKIP_SPECIES[0]].any()
    assert np.array_equal(np.abs(out_rgb - rgb).reshape(n, -1).max(axis=1) > 0, worn), "exactly the worn faces changed"
    assert np.array_equal(out_rgb[~worn], rgb[~worn]) and np.array_equal(out_depth[~worn], depth[~worn])
    nan_marks = landmarks.copy()
    nan_marks[:] = np.nan
    assert not add_eyeglasses(rgb, depth, nan_marks, species, np.random.default_rng(0), 1.0)[2].any()


def test_the_glasses_augment_is_a_choice_and_the_others_are_the_stream_they_were():
    from edge.datasets.sampleset import SampleSet
    from train.run import AUGMENTS, balanced_batches

    assert set(AUGMENTS) == {"standard", "wide", "glasses", "glasses-flat", "glasses-sensor",
                             "glasses-flat-sensor", "glasses-flat-sensor-grey", "glasses-flat-sensor-dark",
                             "glasses-flat-sensor-level", "glasses-flat-sensor-tone",
                             "glasses-flat-sensor-phototone"}
    assert AUGMENTS["glasses-sensor"].eyeglasses == AUGMENTS["glasses"].eyeglasses and AUGMENTS["glasses-sensor"].sensor > 0
    assert AUGMENTS["standard"].eyeglasses == AUGMENTS["wide"].eyeglasses == 0.0 < AUGMENTS["glasses"].eyeglasses
    assert AUGMENTS["glasses"].compound == AUGMENTS["standard"].compound, "glasses is standard realism plus glasses"
    n = 8
    pai = np.array(["", "", "", "", "print", "print", "mask", "mask"])
    samples = SampleSet(np.full((n, 3, S, S), 150, np.uint8), np.full((n, 1, S, S), 30000, np.uint16),
                        (pai != "").astype(np.int8), pai, np.array([f"s{i}" for i in range(n)]),
                        np.array([""] * n), {}, np.repeat(FACE[None], n, axis=0))
    plain = next(balanced_batches(samples, 8, seed=4))
    zero = next(balanced_batches(samples, 8, seed=4, eyeglasses_fraction=0.0))
    assert np.array_equal(plain.rgb.numpy(), zero.rgb.numpy()), "standard and wide draw the same batches as before"
    worn = next(balanced_batches(samples, 8, seed=4, eyeglasses_fraction=1.0))
    assert not np.array_equal(plain.rgb.numpy(), worn.rgb.numpy())


def test_the_robustness_tool_has_a_glasses_copy_of_the_same_faces():
    from dataset_fixture_loader import load_tool
    from edge.datasets.sampleset import SampleSet

    tool = load_tool("robustness")
    assert "glasses" in tool.KINDS
    n = 6
    pai = np.array(["", "", "print", "glasses", "silicone", ""])
    samples = SampleSet(np.full((n, 3, S, S), 150, np.uint8), np.full((n, 1, S, S), 30000, np.uint16),
                        (pai != "").astype(np.int8), pai, np.array([f"s{i}" for i in range(n)]), np.array([""] * n),
                        {}, np.repeat(FACE[None], n, axis=0))
    copy = tool.perturb(samples, "glasses")
    changed = np.abs(copy.rgb.astype(int) - samples.rgb.astype(int)).reshape(n, -1).max(axis=1) > 0
    assert changed.tolist() == [True, True, True, False, True, True], "every face but the paper glasses wears them"
    assert np.array_equal(tool.perturb(samples, "glasses").rgb, copy.rgb), "a fixed seed: two models see the same faces"
    assert np.array_equal(copy.is_attack, samples.is_attack) and np.array_equal(copy.landmarks, samples.landmarks)
