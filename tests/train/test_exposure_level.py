"""The exposure level inside the network: a crop's brightness (and, with the contrast level, its contrast)
cannot move its score, and the level travels with the weights (checkpoint, --init, --resume, ONNX, recovery)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the training extra (torch) is not installed")

from test_trainer_loop import SIZE, saved_model as _saved, small_config as edge_64  # noqa: E402
from edge.errors import ConfigError, ModelError  # noqa: E402
from train.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from train.model import TrainConfig  # noqa: E402
from train.model.layers import MAX_CONTRAST_GAIN, MAX_EXPOSURE_GAIN, ExposureLevel  # noqa: E402
from train.model.network import build_model  # noqa: E402
from train.model.presets import ModelConfig  # noqa: E402
from train.trainer import Batch, Trainer, seed_everything  # noqa: E402

LEVEL = 0.45
CONTRAST = 0.24


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def small_config(exposure_mean: float = 0.0, exposure_contrast: float = 0.0) -> ModelConfig:
    return dataclasses.replace(edge_64(), exposure_mean=exposure_mean, exposure_contrast=exposure_contrast)


def _faces(n: int = 4, seed: int = 0):
    """Crops whose mean brightness differs from one to the next (0.2-0.5), none near 0 or 1."""
    gen = torch.Generator().manual_seed(seed)
    rgb = torch.rand(n, 3, SIZE, SIZE, generator=gen) * 0.3 + torch.linspace(0.05, 0.35, n).reshape(n, 1, 1, 1)
    depth = torch.rand(n, 1, SIZE, SIZE, generator=gen) * 0.5 + 0.25
    return rgb, depth


def test_every_crop_is_brought_to_the_level_and_keeps_its_contrast():
    rgb, _ = _faces()
    levelled = ExposureLevel(LEVEL)(rgb)
    np.testing.assert_allclose(levelled.mean(dim=(1, 2, 3)).numpy(), LEVEL, atol=1e-5)
    gain = LEVEL / rgb.mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(levelled, rgb * gain)  # one gain per crop: its pattern is the same
    torch.testing.assert_close(ExposureLevel(LEVEL)(rgb * 0.5), levelled)


def test_a_black_frame_is_brightened_three_stops_at_most_and_a_bright_one_stays_in_range():
    dark = torch.full((1, 3, 8, 8), 0.001)
    assert float(ExposureLevel(LEVEL)(dark).max()) == pytest.approx(0.001 * MAX_EXPOSURE_GAIN)
    bright = torch.rand(1, 3, 8, 8) * 0.2 + 0.8
    assert float(ExposureLevel(0.9)(bright * 0 + 0.5).max()) <= 1.0
    assert 0.0 <= float(ExposureLevel(LEVEL)(bright).min()) and float(ExposureLevel(LEVEL)(bright).max()) <= 1.0


def test_level_zero_is_the_captured_colour_and_a_level_outside_0_1_is_refused():
    rgb, _ = _faces()
    assert ExposureLevel(0.0)(rgb) is rgb
    for bad in (-0.1, 1.0, 2.0):
        with pytest.raises(ValueError, match="exposure_mean"):
            ExposureLevel(bad)
        with pytest.raises(ValueError, match="exposure_mean"):
            small_config(bad)


def test_a_levelled_network_scores_a_face_the_same_at_any_exposure_and_a_plain_one_does_not():
    rgb, depth = _faces()
    torch.manual_seed(0)
    plain = build_model(small_config()).eval()
    plain.set_alpha(0.25)  # the traces in the score too
    levelled = build_model(small_config(LEVEL)).eval()
    levelled.load_state_dict(plain.state_dict())
    with torch.no_grad():
        for model, same in ((levelled, True), (plain, False)):
            at_one, darker = model(rgb, depth).score, model(rgb * 0.6, depth).score
            fused = model.forward_fused(rgb * 0.6, depth).score
            assert torch.allclose(at_one, darker, atol=1e-5) is same, (at_one, darker)
        torch.testing.assert_close(levelled.forward_fused(rgb * 0.6, depth).score,
                                   levelled.forward_fused(rgb, depth).score)
        assert not torch.allclose(fused, plain.forward_fused(rgb, depth).score, atol=1e-5)


def test_the_level_is_kept_in_checkpoints_and_left_out_of_those_without_one(tmp_path):
    assert "exposure_mean" not in small_config().to_dict()  # older edgefas reads a model without it
    assert small_config(LEVEL).to_dict()["exposure_mean"] == LEVEL
    assert ModelConfig.from_dict(small_config(LEVEL).to_dict()) == small_config(LEVEL)
    bad = dict(small_config().to_dict(), exposure_mean=3.0)
    with pytest.raises(ModelError, match="exposure_mean"):
        ModelConfig.from_dict(bad)
    path = save_checkpoint(tmp_path / "m.pt", build_model(small_config(LEVEL)), small_config(LEVEL), TrainConfig(), 3)
    model, info = load_checkpoint(path)
    assert info.model_config.exposure_mean == LEVEL and model.exposure.mean == LEVEL


def test_init_switches_the_level_on_or_off_keeping_every_weight_and_inherits_it_when_not_asked(tmp_path):
    from train.run import TrainJob, initial_model, run_model_config

    path, old = _saved(tmp_path, small_config())
    job = TrainJob(preset="edge", init=path, exposure_mean=LEVEL)
    assert run_model_config(job).exposure_mean == LEVEL
    model = initial_model(small_config(LEVEL), job)
    assert model.exposure.mean == LEVEL and model.config.exposure_mean == LEVEL
    kept = old.state_dict()
    assert set(model.state_dict()) == set(kept)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, kept[key], msg=key)
    levelled_path, _ = _saved(tmp_path, small_config(LEVEL), "levelled.pt")
    assert run_model_config(TrainJob(preset="edge", init=levelled_path)).exposure_mean == LEVEL
    assert run_model_config(TrainJob(preset="edge", init=levelled_path, exposure_mean=0.0)).exposure_mean == 0.0
    assert run_model_config(TrainJob(preset="edge")).exposure_mean == 0.0
    assert initial_model(small_config(), TrainJob(preset="edge", init=levelled_path)).exposure.mean == 0.0
    with pytest.raises(ModelError, match="another|architecture|preset"):  # the level alone may differ, not the widths
        initial_model(dataclasses.replace(small_config(LEVEL), stem_channels=8), job)


def test_resume_refuses_another_level_and_keeps_the_runs_own(tmp_path):
    from train.run import TrainJob, resumed_job

    path, _ = _saved(tmp_path, small_config(LEVEL), "last.pt")
    job, config = resumed_job(TrainJob(out_dir=tmp_path, resume=True), path)
    assert job.exposure_mean == LEVEL and config.exposure_mean == LEVEL
    assert resumed_job(TrainJob(out_dir=tmp_path, resume=True, exposure_mean=LEVEL), path)[1] == config
    with pytest.raises(ConfigError, match=r"^--exposure-mean 0.3: the run in .* has 0.45; resume without"):
        resumed_job(TrainJob(out_dir=tmp_path, resume=True, exposure_mean=0.3), path)


def _trainer(config):
    seed_everything(7)
    torch.manual_seed(11)
    model = build_model(config)
    return Trainer(model, config, TrainConfig(batch_size=4, seed=7, learning_rate=1e-3, discriminator_every=1), None)


def test_a_training_step_sees_a_batch_and_its_darker_copy_alike_only_when_levelled():
    rgb, depth = _faces()
    labels = torch.tensor([0.0, 1.0, 0.0, 1.0])
    pai = ("", "print", "", "print")
    batch, darker = Batch(rgb, depth, labels, pai), Batch(rgb * 0.6, depth, labels, pai)
    for exposure, same in ((LEVEL, True), (0.0, False)):
        first = _trainer(small_config(exposure)).train_step(batch).losses.as_row()
        second = _trainer(small_config(exposure)).train_step(darker).losses.as_row()
        assert np.isfinite(first["generator"]) and np.isfinite(first["discriminator"])
        close = all(np.isclose(first[k], second[k], rtol=1e-4, atol=1e-6) for k in first if np.isfinite(first[k]))
        assert close is same, (exposure, first, second)


def test_the_exported_file_levels_the_crop_itself_and_says_so(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    pytest.importorskip("onnx", reason="the training extra (onnx) is not installed")
    from engines.metadata import read_metadata
    from train.checkpoint import export_checkpoint

    rgb, depth = _faces()
    for exposure in (LEVEL, 0.0):
        path, model = _saved(tmp_path, small_config(exposure), f"m{exposure}.pt")
        out = tmp_path / f"m{exposure}.onnx"
        export_checkpoint(path, out)
        assert read_metadata(out).exposure_mean == exposure
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        scores = [session.run(["score"], {"rgb": (rgb * gain).numpy(), "depth": depth.numpy()})[0]
                  for gain in (1.0, 0.6)]
        with torch.no_grad():
            np.testing.assert_allclose(scores[0], model.eval()(rgb, depth).score.numpy(), atol=1e-5)
        assert np.allclose(scores[0], scores[1], atol=1e-5) is (exposure > 0)


def test_a_file_with_an_impossible_level_is_refused_in_one_line():
    from engines.metadata import ModelMetadata, metadata_from_props

    props = ModelMetadata(input_size=SIZE, preset="edge", exposure_mean=LEVEL).to_props()
    assert metadata_from_props(props).exposure_mean == LEVEL
    assert "edgefas.exposure_mean" not in ModelMetadata(input_size=SIZE, preset="edge").to_props()
    for bad in ("1.5", "-0.2", "nan", "bright"):
        with pytest.raises(ModelError, match="exposure_mean|unreadable"):
            metadata_from_props(dict(props, **{"edgefas.exposure_mean": bad}), source="m.onnx")


def _flattened(rgb, contrast: float, lift: float = 0.0):
    """``rgb`` with each crop's deviations from its mean scaled by ``contrast`` and a lift toward white: flat
    light, as ``train.augment.flat_light`` draws it without the colour change (nothing clips here)."""
    centre = rgb.mean(dim=(1, 2, 3), keepdim=True)
    out = centre + contrast * (rgb - centre)
    return out + lift * (1.0 - out)


def test_the_contrast_level_gives_every_crop_one_spread_and_undoes_flat_light():
    gen = torch.Generator().manual_seed(3)  # crops of a face's contrast (deviation 0.14), means 0.3-0.6
    rgb = torch.rand(4, 3, SIZE, SIZE, generator=gen) * 0.5 + torch.linspace(0.05, 0.35, 4).reshape(4, 1, 1, 1)
    level = ExposureLevel(LEVEL, CONTRAST)
    out = level(rgb)
    np.testing.assert_allclose(out.mean(dim=(1, 2, 3)).numpy(), LEVEL, atol=1e-5)
    spread = (out - out.mean(dim=(1, 2, 3), keepdim=True)).square().mean(dim=(1, 2, 3)).sqrt()
    np.testing.assert_allclose(spread.numpy(), CONTRAST, atol=1e-4)  # these crops clip nowhere at this level
    torch.testing.assert_close(level(_flattened(rgb, 0.8, 0.05)), out, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(level(rgb * 0.5), out, atol=1e-5, rtol=1e-4)
    # the brightness level alone keeps the flat crop flat
    assert not torch.allclose(ExposureLevel(LEVEL)(_flattened(rgb, 0.6, 0.1)), ExposureLevel(LEVEL)(rgb), atol=1e-3)


def test_a_grey_card_is_not_stretched_into_noise_and_the_contrast_needs_a_mean():
    card = torch.full((1, 3, 8, 8), 0.5) + torch.randn(1, 3, 8, 8) * 1e-3
    out = ExposureLevel(LEVEL, CONTRAST)(card)
    assert torch.isfinite(out).all()
    centred = out - out.mean()
    assert float(centred.abs().max()) <= float((card - card.mean()).abs().max()) * LEVEL / 0.5 * MAX_CONTRAST_GAIN + 1e-6
    for mean, contrast in ((0.0, CONTRAST), (LEVEL, 0.5), (LEVEL, -0.1)):
        with pytest.raises(ValueError, match="contrast"):
            ExposureLevel(mean, contrast)
        with pytest.raises(ValueError, match="exposure_contrast"):
            small_config(mean, contrast)


def test_the_contrast_level_travels_in_checkpoints_init_resume_and_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    pytest.importorskip("onnx", reason="the training extra (onnx) is not installed")
    from engines.metadata import read_metadata
    from train.checkpoint import export_checkpoint
    from train.run import TrainJob, initial_model, resumed_job, run_model_config

    both = small_config(LEVEL, CONTRAST)
    assert "exposure_contrast" not in small_config(LEVEL).to_dict()
    assert ModelConfig.from_dict(both.to_dict()) == both
    path, model = _saved(tmp_path, both, "last.pt")
    assert load_checkpoint(path)[0].exposure.contrast == CONTRAST
    # --init: kept when not asked, off with the level, refused alone; --resume: another contrast refused
    assert run_model_config(TrainJob(preset="edge", init=path)).exposure_contrast == CONTRAST
    assert run_model_config(TrainJob(preset="edge", init=path, exposure_mean=0.0)).exposure_contrast == 0.0
    with pytest.raises(ConfigError, match=r"^--exposure-contrast 0.2: .* add --exposure-mean"):
        run_model_config(TrainJob(preset="edge", exposure_contrast=0.2))
    plain_path, _ = _saved(tmp_path, small_config())
    job = TrainJob(preset="edge", init=plain_path, exposure_mean=LEVEL, exposure_contrast=CONTRAST)
    assert initial_model(both, job).exposure.contrast == CONTRAST
    assert resumed_job(TrainJob(out_dir=tmp_path, resume=True), path)[0].exposure_contrast == CONTRAST
    with pytest.raises(ConfigError, match=r"^--exposure-contrast 0.3: the run in .* has 0.24; resume without"):
        resumed_job(TrainJob(out_dir=tmp_path, resume=True, exposure_contrast=0.3), path)
    out = tmp_path / "both.onnx"
    export_checkpoint(path, out)
    assert (read_metadata(out).exposure_mean, read_metadata(out).exposure_contrast) == (LEVEL, CONTRAST)
    rgb, depth = _faces()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    scores = [session.run(["score"], {"rgb": face.numpy(), "depth": depth.numpy()})[0]
              for face in (rgb, _flattened(rgb, 0.6, 0.1))]
    with torch.no_grad():
        np.testing.assert_allclose(scores[0], model.eval()(rgb, depth).score.numpy(), atol=1e-5)
    np.testing.assert_allclose(scores[0], scores[1], atol=1e-4)


def test_a_file_with_an_impossible_contrast_is_refused_in_one_line():
    from engines.metadata import ModelMetadata, metadata_from_props

    props = ModelMetadata(input_size=SIZE, preset="edge", exposure_mean=LEVEL, exposure_contrast=CONTRAST).to_props()
    assert metadata_from_props(props).exposure_contrast == CONTRAST
    for bad in ({"edgefas.exposure_contrast": "0.7"}, {"edgefas.exposure_contrast": "-1"},
                {"edgefas.exposure_mean": "0"}):
        with pytest.raises(ModelError, match="exposure_contrast") as caught:
            metadata_from_props(dict(props, **bad), source="m.onnx")
        assert "\n" not in str(caught.value)
