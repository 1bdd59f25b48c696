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


def _colour_face() -> np.ndarray:
    """A shaded, coloured crop: a warm face-like gradient with a dark band (hair) on top."""
    y, x = np.mgrid[0:S, 0:S].astype(np.float32) / S
    shade = 0.35 + 0.55 * np.exp(-((x - 0.5) ** 2 + (y - 0.55) ** 2) / 0.08)
    img = np.stack([shade * 0.55, shade * 0.7, shade * 0.95])  # BGR order is irrelevant here: channels differ
    img[:, : S // 6] = 0.08
    return img.astype(np.float32)


def _spread_and_colour(img: np.ndarray) -> tuple[float, float, float]:
    grey = img.mean(axis=0)
    return float(grey.std()), float(np.abs(img - grey[None]).mean()), float(grey.min())


def _face_batch(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` copies of the coloured face, on a flat depth plane."""
    return np.repeat(_colour_face()[None], n, axis=0), np.full((n, 1, S, S), 0.5, np.float32)


def _a_zero_share_draws_the_old_stream(share: str, seed: int) -> None:
    """``share`` (a keyword of perturb_arrays) at 0: the batch is drawn exactly as before it existed."""
    rgb, plane = _face_batch(24)
    before = perturb_arrays(rgb, plane, np.random.default_rng(seed), flat_fraction=0.3, sensor_fraction=0.4)
    unchanged = perturb_arrays(rgb, plane, np.random.default_rng(seed), flat_fraction=0.3, sensor_fraction=0.4,
                               **{share: 0.0})
    assert all(np.array_equal(a, b) for a, b in zip(before[:2], unchanged[:2])), share


def test_flat_light_washes_a_face_out_and_leaves_it_alone_at_one():
    from train.augment import flat_light

    hwc = _colour_face().transpose(1, 2, 0)
    assert np.allclose(flat_light(hwc, 1.0, 1.0, 0.0), hwc, atol=1e-6)
    spread, colour, black = _spread_and_colour(hwc.transpose(2, 0, 1))
    f_spread, f_colour, f_black = _spread_and_colour(flat_light(hwc, 0.6, 0.5, 0.15).transpose(2, 0, 1))
    assert f_spread < 0.55 * spread, "contrast 0.6 and lift 0.15 should leave about half the grey spread"
    assert f_colour < 0.3 * colour, "saturation 0.5 with contrast 0.6 should leave under a third of the colour"
    assert f_black > black + 0.1, "the lift raises the darkest part (veiling glare)"


def test_flat_draws_are_washed_out_and_drawn_for_live_and_attack_alike():
    """perturb_arrays with flat_fraction=1 washes out every face it perturbs (median grey spread and colour
    well below the standard draws of the same faces), and flat_fraction=0 is the stream it was."""
    face = _colour_face()
    depth = np.full((1, S, S), 0.5, np.float32)
    batch = face[None].repeat(40, 0)
    deps = depth[None].repeat(40, 0)
    standard = perturb_arrays(batch, deps, np.random.default_rng(5))[0]
    flat = perturb_arrays(batch, deps, np.random.default_rng(5), flat_fraction=1.0)[0]
    s_spread, s_colour = np.median([_spread_and_colour(i)[:2] for i in standard], axis=0)
    f_spread, f_colour = np.median([_spread_and_colour(i)[:2] for i in flat], axis=0)
    assert f_spread < 0.85 * s_spread and f_colour < 0.75 * s_colour
    zero = perturb_arrays(batch, deps, np.random.default_rng(5), flat_fraction=0.0)[0]
    assert np.array_equal(zero, standard)


def test_the_glasses_flat_augment_reaches_the_training_batches():
    """``--augment glasses-flat`` is glasses plus flat light, and balanced_batches passes the share on: the
    same seed with flat_fraction=1 gives washed-out live faces and washed-out attacks."""
    from edge.datasets.sampleset import SampleSet
    from train.run import AUGMENTS, balanced_batches

    kind = AUGMENTS["glasses-flat"]
    assert kind.eyeglasses == AUGMENTS["glasses"].eyeglasses and kind.compound == 0.0 and 0.0 < kind.flat < 1.0
    assert AUGMENTS["standard"].flat == AUGMENTS["wide"].flat == AUGMENTS["glasses"].flat == 0.0
    n = 8
    pai = np.array(["", "", "", "", "print", "print", "mask", "mask"])
    rgb = np.repeat((_colour_face() * 255).astype(np.uint8)[None], n, axis=0)
    samples = SampleSet(rgb, np.full((n, 1, S, S), 30000, np.uint16), (pai != "").astype(np.int8), pai,
                        np.array([f"s{i}" for i in range(n)]), np.array([""] * n), {})
    colour = {}
    for frac in (0.0, 1.0):
        it = balanced_batches(samples, 16, seed=9, flat_fraction=frac)
        batches = [next(it) for _ in range(6)]
        rgbs = np.concatenate([b.rgb.numpy() for b in batches])
        labels = np.concatenate([b.label.numpy() for b in batches])
        colour[frac] = {lab: float(np.median([_spread_and_colour(i)[1] for i in rgbs[labels == lab]]))
                        for lab in (0.0, 1.0)}
    for lab in (0.0, 1.0):
        assert colour[1.0][lab] < 0.8 * colour[0.0][lab], f"label {lab}: flat light did not reach the batch"


def test_the_robustness_tool_names_a_missing_model_in_one_line(monkeypatch, capsys, tmp_path):
    from dataset_fixture_loader import load_tool

    tool = load_tool("robustness")
    missing = tmp_path / "nowhere.onnx"
    monkeypatch.setattr("sys.argv", ["robustness.py", "--model", str(missing), "--kinds", "clean"])
    assert tool.main() == 2
    err = capsys.readouterr().err.strip()
    assert str(missing) in err and "\n" not in err and "Traceback" not in err


def test_the_robustness_tool_has_a_flat_light_copy_and_the_old_copies_keep_their_faces():
    """The ``flat`` copy washes out every face, live and attack, with one fixed setting; appending it to the
    kinds leaves the seeds (and so the faces) of the older copies as they were."""
    from dataset_fixture_loader import load_tool
    from edge.datasets.sampleset import SampleSet

    tool = load_tool("robustness")
    assert tool.KINDS[:7] == ("clean", "colour", "blur", "depth", "combined", "glasses", "flat")
    n = 4
    pai = np.array(["", "", "print", "mask"])
    rgb = np.repeat((_colour_face() * 255).astype(np.uint8)[None], n, axis=0)
    samples = SampleSet(rgb, np.full((n, 1, S, S), 30000, np.uint16), (pai != "").astype(np.int8), pai,
                        np.array([f"s{i}" for i in range(n)]), np.array([""] * n), {})
    copy = tool.perturb(samples, "flat")
    before = [_spread_and_colour(i.astype(np.float32) / 255) for i in samples.rgb]
    after = [_spread_and_colour(i.astype(np.float32) / 255) for i in copy.rgb]
    for (s0, c0, _), (s1, c1, _) in zip(before, after):
        assert s1 < 0.75 * s0 and c1 < 0.5 * c0
    assert np.array_equal(copy.depth, samples.depth) and np.array_equal(copy.is_attack, samples.is_attack)


def _plane_residuals(sensor, seeds=range(12)):
    """perturb_sample on a flat, evenly lit plane (no dark holes, a warp leaves it flat): the depth noise alone."""
    from train.augment import perturb_sample

    rgb, plane = np.full((3, S, S), 0.5, np.float32), np.full((1, S, S), 0.5, np.float32)
    out = []
    for seed in seeds:
        _, dep, _ = perturb_sample(rgb, plane, np.random.default_rng(seed), sensor=sensor)
        out.append((dep[0], dep[0] > 0))
    return out


def _lag1(dep, valid):
    both = valid[:, 1:] & valid[:, :-1]
    a, b = dep[:, 1:][both] - 0.5, dep[:, :-1][both] - 0.5
    return float(np.corrcoef(a, b)[0, 1])


def _independent_noise(depth: np.ndarray) -> bool:
    """A [1,S,S] plane's depth whose noise is the renderer's own: independent per pixel, many levels."""
    d = depth[0]
    return abs(_lag1(d, d > 0)) < 0.1 and len(np.unique(d[d > 0])) > 200


def test_another_sensors_depth_has_that_sensors_texture():
    """The renderer's depth noise is independent per pixel; a correlated sensor's is not (the real D435
    recording: 0.49 with the next pixel), a filtered one's is mostly averaged away, a terraced one's comes
    in a few levels. Each reads so on a flat plane, and the standard draw stays independent."""
    from train.augment import SENSORS

    assert set(SENSORS) == {"smoothed", "correlated", "terraced"}
    standard, correlated = _plane_residuals(None), _plane_residuals("correlated")
    smoothed, terraced = _plane_residuals("smoothed"), _plane_residuals("terraced")
    assert np.median([abs(_lag1(d, v)) for d, v in standard]) < 0.1
    assert np.median([_lag1(d, v) for d, v in correlated]) > 0.3
    rms = lambda runs: np.median([np.std(d[v] - 0.5) for d, v in runs])  # noqa: E731
    assert rms(smoothed) < 0.5 * rms(standard) and 0.5 * rms(standard) < rms(correlated) < 2 * rms(standard)
    assert np.median([len(np.unique(d[v])) for d, v in terraced]) < 60 < np.median([len(np.unique(d[v])) for d, v in standard])
    for d, v in [*smoothed, *correlated, *terraced]:  # holes stay holes, and only the plane's region is valid
        assert np.all(d[~v] == 0) and v.mean() > 0.5
    with pytest.raises(ValueError, match="sensor"):
        _plane_residuals("lidar", seeds=[0])


def test_a_sensor_share_draws_another_sensor_for_that_share_of_the_perturbed_faces():
    """sensor_fraction=1 gives every perturbed face another sensor's depth (no plane keeps independent
    noise), a share of 0 none; colour is drawn the same either way."""
    from train.augment import perturb_arrays

    rgb, plane = np.full((24, 3, S, S), 0.5, np.float32), np.full((24, 1, S, S), 0.5, np.float32)
    plain = perturb_arrays(rgb, plane, np.random.default_rng(9), sensor_fraction=0.0)[1]
    other = perturb_arrays(rgb, plane, np.random.default_rng(9), sensor_fraction=1.0)[1]
    assert sum(_independent_noise(d) for d in plain) == 24
    assert sum(_independent_noise(d) for d in other) == 0


def test_flat_light_and_another_sensor_are_drawn_together_on_the_same_faces():
    """``--augment glasses-flat-sensor``'s two shares at 1: every perturbed face is washed out *and* has
    another sensor's depth; neither draw crowds out the other."""
    from train.augment import perturb_arrays
    from train.run import AUGMENTS

    shares = AUGMENTS["glasses-flat-sensor"].batch_shares()
    assert shares["flat_fraction"] > 0 and shares["sensor_fraction"] > 0
    n = 24
    rgb = np.repeat(_colour_face()[None], n, axis=0)
    plane = np.full((n, 1, S, S), 0.5, np.float32)
    plain_rgb, plain_dep, _ = perturb_arrays(rgb, plane, np.random.default_rng(4))
    both_rgb, both_dep, _ = perturb_arrays(rgb, plane, np.random.default_rng(4), flat_fraction=1.0, sensor_fraction=1.0)
    assert sum(_independent_noise(d) for d in plain_dep) == n and sum(_independent_noise(d) for d in both_dep) == 0
    colour = lambda batch: np.median([_spread_and_colour(i)[1] for i in batch])  # noqa: E731
    assert colour(both_rgb) < 0.75 * colour(plain_rgb)


def test_the_robustness_tool_has_other_sensors_depth_copies_that_change_depth_only():
    """``depth-smooth`` averages the pixel noise away, ``depth-correlated`` adds noise that neighbours share,
    ``depth-halfres`` repeats each depth pixel over 2 x 2; colour, labels and holes stay; the older copies
    keep their seeds (new kinds go last)."""
    from dataset_fixture_loader import load_tool
    from edge.datasets.sampleset import DEPTH_SCALE, SampleSet

    tool = load_tool("robustness")
    assert tool.SENSOR_KINDS == ("depth-smooth", "depth-correlated", "depth-halfres") and tool.KINDS.index("flat") == 6
    assert tool.KINDS.index("depth-halfres") == 9, "new kinds go last: the older copies keep their seeds"
    n, rng = 3, np.random.default_rng(0)
    noisy = np.clip(0.5 + 0.01 * rng.standard_normal((n, 1, S, S)), 0, 1)
    noisy[:, :, :10] = 0  # a hole across the top
    pai = np.array(["", "print", "mask"])
    samples = SampleSet(np.repeat((_colour_face() * 255).astype(np.uint8)[None], n, axis=0),
                        np.rint(noisy * DEPTH_SCALE).astype(np.uint16), (pai != "").astype(np.int8), pai,
                        np.array(["a", "b", "c"]), np.array([""] * n), {})
    depth = lambda copy: copy.depth.astype(np.float32)[:, 0] / DEPTH_SCALE  # noqa: E731
    for kind in tool.SENSOR_KINDS:
        copy = tool.perturb(samples, kind)
        assert np.array_equal(copy.rgb, samples.rgb) and np.array_equal(copy.is_attack, samples.is_attack)
        assert np.all(copy.depth[:, :, :10] == 0), kind
    smooth, corr, half = (depth(tool.perturb(samples, k))[:, 12:, :] for k in tool.SENSOR_KINDS)
    before = depth(samples)[:, 12:, :]
    assert smooth.std() < 0.3 * before.std()
    assert _lag1(corr[0], corr[0] > 0) > 0.3 > _lag1(before[0], before[0] > 0)
    assert np.array_equal(half[:, ::2, ::2], half[:, 1::2, 1::2]) and not np.array_equal(before[:, ::2, ::2], before[:, 1::2, 1::2])


def test_every_augment_share_is_a_keyword_of_the_batches():
    """Each field of an ``--augment`` choice reaches ``balanced_batches`` by ``batch_shares``, with its own
    value: a new share added to the choice but not to the batches fails here."""
    import dataclasses
    import inspect

    from train.run import AUGMENTS, Augment, balanced_batches

    fields = [f.name for f in dataclasses.fields(Augment)]
    probe = Augment(*[0.1 * (i + 1) for i in range(len(fields))])
    shares = probe.batch_shares()
    assert sorted(shares.values()) == sorted(getattr(probe, f) for f in fields)
    assert set(shares) <= set(inspect.signature(balanced_batches).parameters)
    assert AUGMENTS["glasses-sensor"].batch_shares()["sensor_fraction"] == 0.4
    both = AUGMENTS["glasses-flat-sensor"]
    assert (both.flat, both.sensor) == (AUGMENTS["glasses-flat"].flat, AUGMENTS["glasses-sensor"].sensor)


def test_the_grey_draw_takes_the_colour_away_from_its_share_and_leaves_older_streams_as_they_were():
    """``grey_fraction`` 1: every perturbed face keeps less than half its colour; 0: the batch is drawn
    exactly as before the share existed (older recipes' batches do not move)."""
    from train.augment import perturb_arrays
    from train.run import AUGMENTS

    rgb, plane = _face_batch(24)
    _a_zero_share_draws_the_old_stream("grey_fraction", 4)
    grey = perturb_arrays(rgb, plane, np.random.default_rng(4), grey_fraction=1.0)[0]
    plain = perturb_arrays(rgb, plane, np.random.default_rng(4))[0]
    colour = lambda batch: np.median([_spread_and_colour(i)[1] for i in batch])  # noqa: E731
    assert colour(grey) < 0.5 * colour(plain)
    shares = AUGMENTS["glasses-flat-sensor-grey"]
    assert shares.grey > 0 and (shares.flat, shares.sensor) == (AUGMENTS["glasses-flat-sensor"].flat,
                                                                  AUGMENTS["glasses-flat-sensor"].sensor)


def _three_faces():
    """A live face, a print and a mask, all the coloured face (8-bit) on a flat depth plane."""
    from edge.datasets.sampleset import DEPTH_SCALE, SampleSet

    pai = np.array(["", "print", "mask"])
    face = np.repeat((_colour_face() * 255).astype(np.uint8)[None], 3, axis=0)
    return SampleSet(face, np.full((3, 1, S, S), int(0.5 * DEPTH_SCALE), np.uint16), (pai != "").astype(np.int8),
                     pai, np.array(["a", "b", "c"]), np.array([""] * 3), {})


def test_the_robustness_tool_has_grey_and_low_contrast_copies_that_change_colour_only():
    """``grey`` keeps 30 % of the colour and the contrast; ``low-contrast`` the colour and 65 % of the
    spread about the crop's mean; depth and labels stay."""
    from dataset_fixture_loader import load_tool

    tool = load_tool("robustness")
    samples = _three_faces()
    face = samples.rgb
    spread, colour = _spread_and_colour(face[0].astype(np.float32) / 255)[:2]
    for kind, spread_ratio, colour_ratio in (("grey", (0.8, 1.2), (0.2, 0.4)), ("low-contrast", (0.55, 0.75), (0.55, 0.75))):
        copy = tool.perturb(samples, kind)
        assert np.array_equal(copy.depth, samples.depth) and np.array_equal(copy.is_attack, samples.is_attack)
        got_spread, got_colour = _spread_and_colour(copy.rgb[0].astype(np.float32) / 255)[:2]
        assert spread_ratio[0] < got_spread / spread < spread_ratio[1], kind
        assert colour_ratio[0] < got_colour / colour < colour_ratio[1], kind


def test_the_low_key_draw_darkens_its_share_without_holing_the_depth_and_leaves_older_streams_as_they_were():
    """``dark_fraction`` 1: every perturbed face 1-2 stops darker than the same draw without it; its depth
    holes follow the surface, not the exposure (a mid-grey face keeps its depth); 0: the batch is drawn
    exactly as before the share existed."""
    from train.run import AUGMENTS

    rgb, plane = _face_batch(24)
    _a_zero_share_draws_the_old_stream("dark_fraction", 6)
    dark = perturb_arrays(rgb, plane, np.random.default_rng(6), dark_fraction=1.0)[0]
    plain = perturb_arrays(rgb, plane, np.random.default_rng(6))[0]
    ratio = np.median(dark.mean(axis=(1, 2, 3))) / np.median(plain.mean(axis=(1, 2, 3)))
    assert 0.2 < ratio < 0.6, ratio
    grey = np.full((3, S, S), 0.3, np.float32)  # a mid-grey surface: dark only once exposed low-key

    def holes(dark: bool) -> float:
        return float(np.mean([(perturb_sample(grey, plane[0], np.random.default_rng(i), dark=dark)[1] == 0).mean()
                              for i in range(40)]))

    # holed by the exposure, the low-key faces would lose about twice the depth (0.22 against 0.11)
    assert holes(True) < holes(False) + 0.03, "a low-key exposure must not punch dark-surface holes into a grey face"
    shares = AUGMENTS["glasses-flat-sensor-dark"]
    assert shares.dark > 0 and shares.grey == 0 and (shares.flat, shares.sensor) == (
        AUGMENTS["glasses-flat-sensor"].flat, AUGMENTS["glasses-flat-sensor"].sensor)


def test_the_robustness_tool_has_exposure_copies_that_change_colour_only(tmp_path, capsys):
    """``low-key``, ``stop-under``, ``dim``, ``bright``: colour at 0.35, 0.5, 0.8 and 1.25 of the face's,
    depth and labels kept; a model with no stored threshold is one line, not a traceback."""
    from dataset_fixture_loader import load_tool

    tool = load_tool("robustness")
    samples = _three_faces()
    face = samples.rgb.astype(np.float32)
    for kind, gain in (("low-key", 0.35), ("stop-under", 0.5), ("dim", 0.8), ("bright", 1.25)):
        copy = tool.perturb(samples, kind)
        assert np.array_equal(copy.depth, samples.depth) and np.array_equal(copy.is_attack, samples.is_attack)
        unclipped = face * gain < 254
        ratio = copy.rgb.astype(np.float32)[unclipped].mean() / face[unclipped].mean()
        assert abs(ratio - gain) < 0.02, (kind, ratio)
    from mean_score_model import write_mean_score_model

    bare = write_mean_score_model(tmp_path / "bare.onnx")
    with pytest.raises(tool.EdgefasError, match="no stored threshold"):
        tool.table(bare, "synthetic:8", "dev", tmp_path / "cache", None, ("clean",))


def test_the_level_draw_gives_live_faces_and_attacks_one_brightness_and_leaves_older_streams_as_they_were():
    """``level_fraction`` 1 without the standard exposure (strength 0): a dark and a bright face both come
    out with a mean inside LEVEL_MEAN, contrast kept; 0: the batch is drawn exactly as before."""
    from train.augment import LEVEL_MEAN
    from train.run import AUGMENTS

    face = _colour_face()
    plane = np.full((1, S, S), 0.5, np.float32)
    for gain in (0.4, 1.3):
        out = perturb_sample(np.clip(face * gain, 0, 1), plane, np.random.default_rng(2), strength=0.0, level=True)[0]
        assert LEVEL_MEAN[0] - 0.01 <= out.mean() <= LEVEL_MEAN[1] + 0.01, (gain, out.mean())
        spread = _spread_and_colour(out)[0] / out.mean()
        assert spread == pytest.approx(_spread_and_colour(face)[0] / face.mean(), rel=0.15)
    _a_zero_share_draws_the_old_stream("level_fraction", 8)
    shares = AUGMENTS["glasses-flat-sensor-level"]
    assert shares.level > 0 and shares.dark == shares.grey == 0 and (shares.flat, shares.sensor) == (
        AUGMENTS["glasses-flat-sensor"].flat, AUGMENTS["glasses-flat-sensor"].sensor)
