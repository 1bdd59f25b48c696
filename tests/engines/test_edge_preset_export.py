"""The real ``edge`` preset through checkpoint -> ONNX -> ONNX Runtime fp32 and INT8.

Untrained weights (the architecture, not the training, decides what the exporter and quantiser
meet). Parity bound from the issue: max |Δscore| <= 1e-4 between ONNX Runtime fp32 and PyTorch.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch (edgefas[train]) is needed to build the edge model")
pytest.importorskip("onnx", reason="the onnx package (edgefas[train]) is needed for export")


def structured_batch(n: int, side: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample brightness ramps with noise: inputs that differ between samples, in [0, 1]."""
    rng = np.random.default_rng(seed)
    level = np.linspace(0, 1, n, dtype=np.float32).reshape(n, 1, 1, 1)
    rgb = np.clip(level + 0.2 * rng.standard_normal((n, 3, side, side)), 0, 1).astype(np.float32)
    depth = np.clip(1 - level + 0.2 * rng.standard_normal((n, 1, side, side)), 0, 1).astype(np.float32)
    return rgb, depth


@pytest.fixture(scope="module")
def edge_export(tmp_path_factory):
    from edge.face.preprocess import PreprocessConfig
    from engines.export import export_onnx
    from train.checkpoint import CheckpointExtra, save_checkpoint
    from train.model.network import build_model
    from train.model.objective import TrainConfig
    from train.model.presets import get_preset

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = get_preset("edge")
    model = build_model(config).eval()
    work = tmp_path_factory.mktemp("edge")
    contract = PreprocessConfig(size_px=config.input_size_px).to_metadata()
    checkpoint = save_checkpoint(work / "edge.pt", model, config, TrainConfig(), step=0,
                                 extra=CheckpointExtra(preprocess=contract, threshold=0.25))
    result = export_onnx(checkpoint, work / "edge.onnx", variant="score")
    return model, config, contract, result


def test_export_parity_and_metadata(edge_export):
    from engines.export import parity_max_abs_score, sha256_file
    from engines.metadata import read_metadata

    model, config, contract, result = edge_export
    assert result.parity_max_abs_score <= 1e-4
    rgb, depth = structured_batch(3, config.input_size_px, seed=4)
    with torch.no_grad():
        reference = model(torch.from_numpy(rgb), torch.from_numpy(depth)).score.numpy()
    assert parity_max_abs_score(result.onnx_path, rgb, depth, reference) <= 1e-4
    meta = read_metadata(result.onnx_path)
    assert (meta.preset, meta.input_size, meta.threshold) == ("edge", config.input_size_px, 0.25)
    assert dict(meta.preprocess) == contract and meta.alpha == pytest.approx(float(model.alpha))
    assert meta.model_sha256 == sha256_file(result.onnx_path.parent / "edge.pt")


def test_edge_int8_agrees_with_fp32(edge_export, tmp_path):
    from calibration.calibset import CalibItem, build_calibration_set, save_calibration_set
    from engines.accuracy_gate import run_accuracy_gate
    from engines.quantize import quantize_int8
    from engines.runner import open_runner

    _, config, contract, result = edge_export
    side = config.input_size_px
    rgb, depth = structured_batch(16, side, seed=1)
    calib = save_calibration_set(build_calibration_set((CalibItem(r, d) for r, d in zip(rgb, depth)), 16,
                                                       "test:structured", contract), tmp_path / "calib.npz")
    int8 = quantize_int8(result.onnx_path, calib, tmp_path / "edge.int8.onnx")
    assert int8.qdq_nodes > 50
    fp32_runner, int8_runner = open_runner(result.onnx_path, threads=1), open_runner(int8.onnx_path, threads=1)
    rgb, depth = structured_batch(16, side, seed=2)
    threshold = float(np.median(fp32_runner.run(rgb, depth).score))
    gate = run_accuracy_gate(fp32_runner, int8_runner, [(rgb[:8], depth[:8]), (rgb[8:], depth[8:])], threshold)
    assert gate.max_abs_score <= 0.05 and gate.agreement >= 0.9


def test_export_cli_full_variant(edge_export, tmp_path):
    from typer.testing import CliRunner

    from edge.cli.app import app

    checkpoint = edge_export[3].onnx_path.parent / "edge.pt"
    out = tmp_path / "edge_full.onnx"
    result = CliRunner().invoke(app, ["export", "--model", str(checkpoint), "--out", str(out), "--variant", "full",
                                      "--json"])
    assert result.exit_code == 0, result.output
    payload = __import__("json").loads(result.stdout)
    assert payload["variant"] == "full" and payload["opset"] == 17 and payload["parity_max_abs_score"] <= 1e-4
    assert out.is_file() and payload["size_bytes"] == out.stat().st_size
