"""Deeper skin in training (train.skin_tone): the skin reaches the asked tone, nothing else moves, and the
``--augment glasses-flat-sensor-tone`` share reaches the batches and the robustness copies."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from train.skin_tone import TONE_LIGHTNESS, deepen_skin

S = 64
LANDMARKS = np.array([[0.38, 0.42], [0.62, 0.42], [0.5, 0.55], [0.41, 0.68], [0.59, 0.68]], np.float32)
BACKGROUND_RGB = (0.2, 0.3, 0.8)
HAIR_ROWS = slice(0, 10)


def _face(skin_rgb=(0.88, 0.68, 0.58)) -> np.ndarray:
    """An S x S x 3 RGB crop: a shaded skin ellipse on a blue wall, dark hair on top, two dark eyes."""
    img = np.empty((S, S, 3), np.float32)
    img[:] = BACKGROUND_RGB
    face = np.zeros((S, S), np.uint8)
    cv2.ellipse(face, (S // 2, int(0.56 * S)), (int(0.26 * S), int(0.34 * S)), 0, 0, 360, 1, -1)
    y, x = np.mgrid[0:S, 0:S].astype(np.float32) / S
    shade = 0.85 + 0.15 * np.exp(-((x - 0.5) ** 2 + (y - 0.5) ** 2) / 0.05)
    img[face > 0] = (np.array(skin_rgb, np.float32)[None] * shade[face > 0][:, None])
    img[HAIR_ROWS] = 0.06
    for ex, ey in LANDMARKS[:2] * S:
        cv2.circle(img, (int(ex), int(ey)), 2, (0.1, 0.08, 0.07), -1)
    return np.clip(img, 0, 1)


def _cheeks_lab(img: np.ndarray) -> np.ndarray:
    """Median CIE Lab of the face between the eyes and the mouth (where the skin is, eyes excluded)."""
    lab = cv2.cvtColor(img.astype(np.float32), cv2.COLOR_RGB2Lab)
    return np.median(lab[int(0.47 * S):int(0.62 * S), int(0.35 * S):int(0.65 * S)].reshape(-1, 3), axis=0)


def _wall(img: np.ndarray) -> np.ndarray:
    return img[20:44, :6]  # the wall beside the face, below the hair


@pytest.mark.parametrize("lightness", [32.0, 40.0, 55.0])
def test_the_skin_reaches_the_asked_lightness_and_the_wall_and_hair_do_not_move(lightness):
    face = _face()
    out = deepen_skin(face, LANDMARKS, lightness)
    assert _cheeks_lab(face)[0] > 65  # a light skin to start from
    assert abs(_cheeks_lab(out)[0] - lightness) < 4, _cheeks_lab(out)
    assert np.abs(_wall(out) - _wall(face)).max() < 0.01
    assert np.abs(out[HAIR_ROWS] - face[HAIR_ROWS]).max() < 0.02


def test_a_skin_already_deeper_than_asked_is_not_lightened():
    deep = _face((0.42, 0.28, 0.2))
    before = _cheeks_lab(deep)[0]
    assert before < 40
    assert abs(_cheeks_lab(deepen_skin(deep, LANDMARKS, 55.0))[0] - before) < 0.5


def test_the_chroma_factor_scales_the_skins_hue_and_a_neutral_face_keeps_none():
    """a*, b* times the factor on skin; a grey (resin, plastic) face stays grey, so its colour cue is kept."""
    face = _face()
    ref = _cheeks_lab(face)
    out = _cheeks_lab(deepen_skin(face, LANDMARKS, 100.0, 1.25))  # lightness kept (never lightened)
    assert abs(out[0] - ref[0]) < 1.0
    assert out[1] / ref[1] == pytest.approx(1.25, rel=0.08) and out[2] / ref[2] == pytest.approx(1.25, rel=0.08)
    grey = deepen_skin(_face((0.7, 0.7, 0.7)), LANDMARKS, 35.0, 1.3)
    cheeks = _cheeks_lab(grey)
    assert cheeks[0] < 40 and abs(cheeks[1]) < 1.0 and abs(cheeks[2]) < 1.0, cheeks


def test_a_highlight_on_the_skin_is_re_toned_with_it_and_a_white_wall_is_not():
    """A paler spot of the skin's hue on the cheek darkens with the skin (no light blotch is left on a
    deepened face); a white or grey wall beside the face keeps its colour."""
    face = _face()
    spot = (slice(int(0.5 * S), int(0.56 * S)), slice(int(0.4 * S), int(0.46 * S)))
    face[spot] = face[spot] * 0.4 + 0.6  # a highlight: the skin's colour mixed with white
    face[20:44, :6] = 0.92  # a white wall beside the face
    out = deepen_skin(face, LANDMARKS, 35.0)
    lab_in = cv2.cvtColor(face, cv2.COLOR_RGB2Lab)
    lab_out = cv2.cvtColor(out, cv2.COLOR_RGB2Lab)
    assert lab_out[spot][..., 0].mean() < 0.7 * lab_in[spot][..., 0].mean()
    assert np.abs(_wall(out) - _wall(face)).max() < 0.01


def test_the_tone_draw_changes_the_skin_only_when_asked_and_needs_landmarks():
    """At strength 0 the camera draw changes nothing, so the tone is the only change: asked, the skin is
    darker than the training range's lightest end; not asked or without landmarks, the face is as given."""
    from train.augment import perturb_sample

    face = _face().transpose(2, 0, 1)
    plane = np.full((1, S, S), 0.5, np.float32)
    toned = perturb_sample(face, plane, np.random.default_rng(1), strength=0.0, landmarks=LANDMARKS, tone=True)[0]
    plain = perturb_sample(face, plane, np.random.default_rng(1), strength=0.0, landmarks=LANDMARKS)[0]
    blind = perturb_sample(face, plane, np.random.default_rng(1), strength=0.0, tone=True)[0]
    assert _cheeks_lab(toned.transpose(1, 2, 0))[0] < TONE_LIGHTNESS[1] + 3
    assert np.allclose(plain, face, atol=1e-5) and np.allclose(blind, face, atol=1e-5)


def _sample_set(n: int = 8):
    from edge.datasets.sampleset import DEPTH_SCALE, SampleSet

    pai = np.array(["", "print", "", "mask"] * (n // 4))
    rgb = np.repeat((_face() * 255).astype(np.uint8).transpose(2, 0, 1)[None], n, axis=0)
    return SampleSet(rgb, np.full((n, 1, S, S), int(0.5 * DEPTH_SCALE), np.uint16), (pai != "").astype(np.int8),
                     pai, np.array([f"p{i % 3}" for i in range(n)]), np.array([""] * n), {},
                     np.repeat(LANDMARKS[None], n, axis=0))


def test_the_tone_augment_reaches_the_training_batches_for_live_faces_and_attacks(monkeypatch):
    """``glasses-flat-sensor-tone`` re-tones about 0.8 x 0.5 of the faces, live and attack; the choice
    without it re-tones none; a zero share draws the batch exactly as before the share existed."""
    import train.augment as augment
    from train.run import AUGMENTS, balanced_batches

    toned_labels = []
    real = augment.draw_tone

    def counting(img, landmarks, rng):
        toned_labels.append(1)
        return real(img, landmarks, rng)

    monkeypatch.setattr(augment, "draw_tone", counting)
    samples = _sample_set()
    batches = balanced_batches(samples, 8, 5, **AUGMENTS["glasses-flat-sensor-tone"].batch_shares())
    for _ in range(25):
        next(batches)
    assert 0.25 * 200 < len(toned_labels) < 0.55 * 200, len(toned_labels)
    toned_labels.clear()
    plain = balanced_batches(samples, 8, 5, **AUGMENTS["glasses-flat-sensor"].batch_shares())
    for _ in range(5):
        next(plain)
    assert not toned_labels
    rgb, depth = samples.arrays(slice(0, 8))
    before = augment.perturb_arrays(rgb, depth, np.random.default_rng(3), landmarks=samples.landmarks, flat_fraction=0.3)
    after = augment.perturb_arrays(rgb, depth, np.random.default_rng(3), landmarks=samples.landmarks, flat_fraction=0.3,
                                   tone_fraction=0.0)
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    tone = AUGMENTS["glasses-flat-sensor-tone"]
    assert tone.tone > 0 and (tone.flat, tone.sensor, tone.eyeglasses) == (
        AUGMENTS["glasses-flat-sensor"].flat, AUGMENTS["glasses-flat-sensor"].sensor,
        AUGMENTS["glasses-flat-sensor"].eyeglasses)


def test_the_tone_draw_re_tones_live_faces_and_attacks_alike(monkeypatch):
    """The share is drawn without looking at the label: over many batches both classes are re-toned."""
    import train.augment as augment
    from train.run import balanced_batches

    seen = []
    real = augment.draw_tone
    monkeypatch.setattr(augment, "draw_tone", lambda img, lm, rng: (seen.append(img.copy()), real(img, lm, rng))[1])
    samples = _sample_set()
    samples.rgb[samples.is_attack == 1] //= 2  # the attacks' crops are darker, so a re-toned face tells its class
    batches = balanced_batches(samples, 8, 11, tone_fraction=1.0)
    for _ in range(6):
        next(batches)
    means = np.array([img.mean() for img in seen])
    assert (means > 0.3).any() and (means < 0.3).any(), "both the live faces and the attacks are re-toned"


def test_the_robustness_tool_has_skin_copies_that_change_the_skin_only():
    from dataset_fixture_loader import load_tool

    tool = load_tool("robustness")
    samples = _sample_set(4)
    for kind, lightness in tool.SKIN_COPIES.items():
        copy = tool.perturb(samples, kind)
        assert np.array_equal(copy.depth, samples.depth) and np.array_equal(copy.is_attack, samples.is_attack)
        img = copy.rgb[0].transpose(1, 2, 0).astype(np.float32) / 255
        assert abs(_cheeks_lab(img)[0] - lightness) < 4, kind
        assert np.abs(_wall(img) - _wall(_face())).max() < 0.01
    bare = dataclasses.replace(_sample_set(4), landmarks=None)
    with pytest.raises(SystemExit, match="landmarks"):
        tool.perturb(bare, "skin-dark")


def _two_worlds(n: int = 8):
    """A joined set as prepare_samples makes it: ``synthetic/`` faces (a bluish skin, to tell them) then
    ``photomix/`` faces."""
    from edge.datasets.sampleset import concatenate

    procedural, photo = _sample_set(n), _sample_set(n)
    procedural.rgb[:] = (_face(skin_rgb=(0.5, 0.55, 0.9)) * 255).astype(np.uint8).transpose(2, 0, 1)[None]
    parts = [dataclasses.replace(part, subject=np.char.add(f"{world}/", part.subject.astype(str)))
             for world, part in (("synthetic", procedural), ("photomix", photo))]
    return concatenate(parts, "synthetic:8+photomix:8")


def test_a_face_knows_its_world_in_a_joined_set_and_in_a_set_of_one_dataset():
    assert _two_worlds().worlds().tolist() == ["synthetic"] * 8 + ["photomix"] * 8
    one = dataclasses.replace(_sample_set(4), provenance={"source": "photomix:3000"})
    assert one.worlds().tolist() == ["photomix"] * 4


def test_the_photo_tone_re_tones_the_photo_worlds_faces_only(monkeypatch):
    """``glasses-flat-sensor-phototone`` re-tones about 0.8 x 0.6 of the photo world's faces and none of
    the procedural world's (told by their bluish skin); a mask of every face changes nothing."""
    import train.augment as augment
    from train.run import AUGMENTS, balanced_batches

    toned = []
    real = augment.draw_tone
    monkeypatch.setattr(augment, "draw_tone", lambda img, lm, rng: (toned.append(img.copy()), real(img, lm, rng))[1])
    samples = _two_worlds()
    batches = balanced_batches(samples, 8, 7, **AUGMENTS["glasses-flat-sensor-phototone"].batch_shares())
    for _ in range(25):
        next(batches)
    blue = np.array([_cheeks_lab(img)[2] < 0 for img in toned])  # the procedural skin's b* is negative
    photo_draws = 0.5 * 200 * 0.8 * 0.6  # half the faces are the photo world's
    assert 0.6 * photo_draws < len(toned) < 1.4 * photo_draws, len(toned)
    assert not blue.any(), "a procedural face was re-toned"
    rgb, depth = samples.arrays(slice(0, 16))
    everyone = augment.perturb_arrays(rgb, depth, np.random.default_rng(3), landmarks=samples.landmarks,
                                      tone_fraction=0.6, toneable=np.ones(16, bool))
    unmasked = augment.perturb_arrays(rgb, depth, np.random.default_rng(3), landmarks=samples.landmarks,
                                      tone_fraction=0.6)
    assert all(np.array_equal(a, b) for a, b in zip(everyone, unmasked))


def test_the_photo_tone_refuses_a_training_set_without_a_photo_world(tmp_path, shared_data):
    from typer.testing import CliRunner

    from edge.cli.app import app
    from edge.errors import ConfigError
    from train.run import AUGMENTS, balanced_batches

    procedural = dataclasses.replace(_sample_set(8), provenance={"source": "synthetic:8"})
    with pytest.raises(ValueError, match="none of them"):
        next(balanced_batches(procedural, 8, 1, **AUGMENTS["glasses-flat-sensor-phototone"].batch_shares()))
    pytest.importorskip("torch", reason="training needs torch (edgefas[train])")
    args = ["train", "--dataset", "synthetic:16", "--out", str(tmp_path / "r"), "--steps", "2", "--batch", "4",
            "--threads", "1", "--cache-dir", str(tmp_path / "cache"), "--detector", "yunet",
            "--model-dir", str(shared_data / "models"), "--augment", "glasses-flat-sensor-phototone"]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, ConfigError), result.output
    assert str(result.exception).startswith("--augment glasses-flat-sensor-phototone re-tones the faces of photo")
    assert not (tmp_path / "cache").exists() and not (tmp_path / "r").exists(), "refused before any data is read"


def _owners_and_mannequins(n: int = 32, source: str = "photomix:64"):
    """Light-skinned owners and mannequins painted a deeper tone (noise on each crop), one world."""
    from edge.datasets.sampleset import DEPTH_SCALE, SampleSet

    rng = np.random.default_rng(4)
    faces = [_face() if k % 2 == 0 else _face((0.55, 0.4, 0.33)) for k in range(2 * n)]
    rgb = np.stack([np.clip(f + rng.normal(0, 0.01, f.shape), 0, 1) for f in faces])
    pai = np.array(["", "mannequin"] * n)
    return SampleSet((rgb * 255).astype(np.uint8).transpose(0, 3, 1, 2), np.full((2 * n, 1, S, S), int(0.5 * DEPTH_SCALE), np.uint16),
                     (pai != "").astype(np.int8), pai, np.array([f"p{k % 5}" for k in range(2 * n)]),
                     np.array([""] * (2 * n)), {"source": source}, np.repeat(LANDMARKS[None], 2 * n, axis=0))


def _deeper_is_attack(rgb: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """A score that calls a face an attack the deeper its skin is against the wall beside it (unmoved by the
    camera's exposure, which scales both)."""
    face = rgb[:, :, int(0.47 * S):int(0.62 * S), int(0.35 * S):int(0.65 * S)].mean(axis=(1, 2, 3))
    wall = rgb[:, :, 20:44, :6].mean(axis=(1, 2, 3))
    return -face / np.maximum(wall, 1e-3)


def test_a_run_that_re_tones_probes_each_species_among_re_toned_owners():
    """Mannequins painted deeper than the owners' skin are learned as rendered and through the camera, and
    hard once owners are re-toned: the toned probe copy sees it, for the re-toned worlds only."""
    from train.species_mix import DifficultyProbe, camera_copy, probe_conditions, run_probe

    samples = _owners_and_mannequins()
    camera = DifficultyProbe(samples, seed=0, conditions=("rendered", "sensor")).difficulty(_deeper_is_attack)
    assert camera["mannequin"] < 0.02
    toned = DifficultyProbe(samples, seed=0, conditions=("rendered", "toned")).difficulty(_deeper_is_attack)
    assert toned["mannequin"] > 0.1, toned
    elsewhere = DifficultyProbe(samples, seed=0, conditions=("rendered", "toned"),
                                tone_worlds=("photo",)).difficulty(_deeper_is_attack)
    assert elsewhere["mannequin"] < 0.02  # photomix is not among the re-toned worlds: its faces keep their skin
    assert probe_conditions("hard-camera", 0.3, 0.4, 0.6) == ("rendered", "flat", "sensor", "toned")
    assert probe_conditions("hard-door", 0.0, 0.0, 0.6) == ("rendered", "toned")
    assert probe_conditions("hard", 0.3, 0.4, 0.6) == ("rendered",)
    probe = run_probe(samples, 0, "hard-camera", 0.0, 0.0, 0.6, ("photomix",))
    assert tuple(probe.copies) == ("rendered", "toned")
    assert not np.array_equal(probe.copies["toned"].rgb, camera_copy(probe.faces, "toned", 0, ("photo",)).rgb)
    bare = dataclasses.replace(samples, landmarks=None)
    with pytest.raises(ValueError, match="landmarks"):
        camera_copy(bare, "toned", 0)
    assert tuple(run_probe(bare, 0, "hard-camera", 0.0, 0.0, 0.6).copies) == ("rendered",)  # as the batches: no re-toning
