"""A checkpoint rebuilt from a shipped ONNX file computes what the file and its lost .pt computed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the training extra (torch) is not installed")
pytest.importorskip("onnx", reason="onnx is not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

from edge.errors import ModelError  # noqa: E402
from engines.metadata import read_metadata, write_metadata  # noqa: E402
from train.checkpoint import load_checkpoint  # noqa: E402
from train.recover import _conv_bn_pairs, _fold, rebuild_from_onnx  # noqa: E402

MODELS = Path(__file__).resolve().parents[2] / "engines" / "models"
BUNDLED_PT = MODELS / "edge-synthetic.pt"
BUNDLED_ONNX = MODELS / "edge-synthetic.onnx"
# The traces variant carries every trained weight; the score file drops the trace decoders when alpha is 0
# (docs/score-graph.md), and what a file does not carry is rebuilt fresh and listed (train/recover.py).
BUNDLED_FULL = MODELS / "edge-synthetic.full.onnx"


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _faces(count=48, seed=0):
    rng = np.random.default_rng(seed)
    rgb = rng.random((count, 3, 128, 128), dtype=np.float32)
    depth = (rng.random((count, 1, 128, 128), dtype=np.float32) * 0.6 + 0.2).astype(np.float32)
    return [(rgb[i:i + 16], depth[i:i + 16]) for i in range(0, count, 16)]


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    out = tmp_path_factory.mktemp("recover") / "edge.pt"
    faces = _faces()
    return rebuild_from_onnx(BUNDLED_FULL, out, lambda: faces), faces


def test_rebuilt_checkpoint_scores_as_the_shipped_file_and_its_lost_checkpoint(rebuilt):
    result, faces = rebuilt
    assert result.parity_max_abs_score < 1e-4
    original, original_info = load_checkpoint(BUNDLED_PT)
    model, info = load_checkpoint(result.checkpoint, expect=original_info.model_config)  # exposure level too
    assert info.threshold == pytest.approx(original_info.threshold, abs=1e-6)
    assert info.preprocess == original_info.preprocess
    assert info.alpha == pytest.approx(original_info.alpha)
    with torch.no_grad():
        for rgb, depth in faces:
            mine = model(torch.from_numpy(rgb), torch.from_numpy(depth)).score.numpy()
            theirs = original(torch.from_numpy(rgb), torch.from_numpy(depth)).score.numpy()
            np.testing.assert_allclose(mine, theirs, atol=1e-4)


def test_every_folded_pair_is_recovered_and_the_training_heads_are_fitted_not_fresh(rebuilt):
    result, _ = rebuilt
    original, _ = load_checkpoint(BUNDLED_PT)
    model, _ = load_checkpoint(result.checkpoint)
    pairs, theirs = _conv_bn_pairs(model), _conv_bn_pairs(original)
    assert result.fused_pairs == len(pairs) > 10
    for name, (_, conv, bn) in pairs.items():
        weight, bias = _fold(conv, bn)
        their_weight, their_bias = _fold(theirs[name][1], theirs[name][2])
        np.testing.assert_allclose(weight, their_weight, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(bias, their_bias, atol=1e-4, err_msg=name)
    assert result.fresh == ()
    # the per-stream heads, in no export, reproduce the fused map from their own stream's features
    assert set(result.head_fit) == {"esr_rgb", "esr_depth"} and min(result.head_fit.values()) > 0.5
    rgb, depth = (torch.from_numpy(a) for a in _faces(16, seed=3)[0])
    with torch.no_grad():
        out = model.forward_train(rgb, depth)
    for name in ("esr_rgb", "esr_depth"):
        corr = np.corrcoef(getattr(out, name).numpy().ravel(), out.spoof_map.numpy().ravel())[0, 1]
        assert corr > 0.7, f"{name} head does not follow the fused map on unseen faces (r = {corr:.2f})"


def test_batch_norms_carry_measured_statistics_so_training_mode_stays_close(rebuilt):
    result, faces = rebuilt
    model, _ = load_checkpoint(result.checkpoint)
    stem = model.encoder_rgb.stem[1]
    # not the identity left before measuring: the statistics are the conv outputs' own
    assert not torch.allclose(stem.running_var, torch.ones_like(stem.running_var), atol=1e-2)
    assert result.train_mode_max_abs_score < 0.05
    model.train()
    with torch.no_grad():
        rgb, depth = faces[0]
        train_score = model(torch.from_numpy(rgb), torch.from_numpy(depth)).score.numpy()
    model.eval()
    with torch.no_grad():
        eval_score = model(torch.from_numpy(rgb), torch.from_numpy(depth)).score.numpy()
    np.testing.assert_allclose(train_score, eval_score, atol=0.05)


def test_a_quantised_file_or_a_file_of_another_graph_is_refused(tmp_path):
    meta = read_metadata(BUNDLED_ONNX)
    int8 = write_metadata(BUNDLED_ONNX, replace(meta, precision="int8"), tmp_path / "q.onnx")
    with pytest.raises(ModelError, match="fp32"):
        rebuild_from_onnx(int8, tmp_path / "q.pt", _faces)
    other = write_metadata(BUNDLED_ONNX, replace(meta, preset="edge-wide"), tmp_path / "w.onnx")
    with pytest.raises(ModelError, match="another 'edge-wide' graph"):
        rebuild_from_onnx(other, tmp_path / "w.pt", _faces)
    assert not (tmp_path / "q.pt").exists() and not (tmp_path / "w.pt").exists()


def test_the_tool_refuses_a_missing_file_or_too_few_faces_in_one_line(tmp_path, monkeypatch, capsys):
    from dataset_fixture_loader import load_tool

    tool = load_tool("recover_checkpoint")
    for argv, names in (([str(tmp_path / "gone.onnx"), str(tmp_path / "x.pt")], "gone.onnx"),
                        ([str(BUNDLED_ONNX), str(tmp_path / "x.pt"), "--faces", "8"], "--faces")):
        monkeypatch.setattr("sys.argv", ["recover_checkpoint.py", *argv])
        assert tool.main() == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and names in err and "\n" not in err
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("contrast", [0.0, 0.24])
def test_a_model_that_levels_its_exposure_is_rebuilt_levelled(tmp_path, contrast):
    from train.checkpoint import CheckpointExtra, export_checkpoint, save_checkpoint
    from train.model.network import build_model

    original, info = load_checkpoint(BUNDLED_PT)
    config = replace(info.model_config, exposure_mean=0.45, exposure_contrast=contrast)
    levelled = build_model(config)
    levelled.load_state_dict(original.state_dict())
    pt = save_checkpoint(tmp_path / "levelled.pt", levelled, config, info.train_config, info.step,
                         CheckpointExtra(preprocess=dict(info.preprocess), threshold=info.threshold))
    export_checkpoint(pt, tmp_path / "levelled.onnx", variant="full")
    faces = _faces(32)
    result = rebuild_from_onnx(tmp_path / "levelled.onnx", tmp_path / "rebuilt.pt", lambda: faces)
    assert result.parity_max_abs_score < 1e-4
    model, rebuilt = load_checkpoint(result.checkpoint)
    assert (rebuilt.model_config.exposure_mean, rebuilt.model_config.exposure_contrast) == (0.45, contrast)
    rgb, depth = (torch.from_numpy(a) for a in faces[0])
    with torch.no_grad():
        torch.testing.assert_close(model(rgb * 0.5, depth).score, model(rgb, depth).score, atol=1e-5, rtol=0)
