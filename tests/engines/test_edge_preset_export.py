"""The real ``edge`` preset through checkpoint -> ONNX -> ONNX Runtime fp32 and INT8.

Untrained weights (the architecture, not the training, decides what the exporter and quantiser
meet). Parity bound from the issue: max |Δscore| <= 1e-4 between ONNX Runtime fp32 and PyTorch.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from tiny_pad_model import randomise_batchnorm

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
    from train.checkpoint import CheckpointExtra, export_checkpoint, save_checkpoint
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
    result = export_checkpoint(checkpoint, work / "edge.onnx", variant="score")
    return model, config, contract, result


def test_export_parity_and_metadata(edge_export):
    from edge.digest import file_sha256
    from engines.export import parity_max_abs_score
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
    assert meta.model_sha256 == file_sha256(result.onnx_path.parent / "edge.pt")


def test_edge_int8_agrees_with_fp32(edge_export, tmp_path):
    from calibration.calibset import CalibItem, build_calibration_set
    from engines.accuracy_gate import run_accuracy_gate
    from engines.quantize import quantize_int8
    from engines.runner import open_runner

    _, config, contract, result = edge_export
    side = config.input_size_px
    rgb, depth = structured_batch(16, side, seed=1)
    calib = build_calibration_set((CalibItem(r, d) for r, d in zip(rgb, depth)), 16, "test:structured", contract)
    int8 = quantize_int8(result.onnx_path, calib, tmp_path / "edge.int8.onnx")
    assert int8.qdq_nodes > 50
    fp32_runner, int8_runner = open_runner(result.onnx_path, threads=1), open_runner(int8.onnx_path, threads=1)
    rgb, depth = structured_batch(16, side, seed=2)
    threshold = float(np.median(fp32_runner.run(rgb, depth).score))
    gate = run_accuracy_gate(fp32_runner, int8_runner, [(rgb[:8], depth[:8]), (rgb[8:], depth[8:])], threshold)
    # the scores of this untrained network bunch within a few thousandths of the median threshold, so
    # decision agreement depends on the CPU's INT8 kernels' rounding (0.5 on an AVX2-only CPU, with
    # |Δscore| 0.002); the score error is the measure: a decision can only flip within it of the threshold
    assert 0 < gate.max_abs_score <= 0.05


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


def test_score_graph_drops_the_trace_decoders_only_while_alpha_is_zero(edge_export, tmp_path):
    """alpha = 0: the score export has no decoder and a fraction of the work, yet the full forward's
    score; alpha > 0: the decoders stay, because the traces are part of the score."""
    import onnx

    from edge.bench.model_cost import count_onnx_cost
    from engines.export import export_module, parity_max_abs_score
    from engines.metadata import read_metadata

    model, config, _, pruned = edge_export
    full = export_module(model, tmp_path / "full.onnx", read_metadata(pruned.onnx_path), variant="full")

    def decoder_nodes(path):
        return sum("decoder" in node.name for node in onnx.load(str(path)).graph.node)

    assert float(model.alpha) == 0.0 and decoder_nodes(pruned.onnx_path) == 0 and decoder_nodes(full.onnx_path) > 0
    assert count_onnx_cost(pruned.onnx_path).macs < 0.6 * count_onnx_cost(full.onnx_path).macs

    traced = copy.deepcopy(model)
    randomise_batchnorm(traced)  # so that the traces are far from zero
    traced.set_alpha(0.5)
    kept = export_module(traced, tmp_path / "alpha.onnx", read_metadata(pruned.onnx_path), variant="score")
    assert decoder_nodes(kept.onnx_path) == decoder_nodes(full.onnx_path)
    rgb, depth = structured_batch(4, config.input_size_px, seed=9)
    with torch.no_grad():
        out = traced(torch.from_numpy(rgb), torch.from_numpy(depth))
        fused_only = traced.forward_fused(torch.from_numpy(rgb), torch.from_numpy(depth)).score
    assert parity_max_abs_score(kept.onnx_path, rgb, depth, out.score.numpy()) <= 1e-4
    assert float(torch.max(torch.abs(out.score - fused_only))) > 1e-3  # the trace term is really in it


def test_eager_runner_does_the_work_of_the_file_it_stands_for(edge_export, tmp_path):
    """The bench's PyTorch row runs what the ONNX graph runs: no decoders for the alpha-0 score file."""
    from engines.export import export_module
    from engines.metadata import read_metadata
    from engines.runner import open_runner
    from train.eager import open_eager_runner

    _, config, _, pruned = edge_export
    checkpoint = pruned.onnx_path.parent / "edge.pt"
    full = export_module(edge_export[0], tmp_path / "full.onnx", read_metadata(pruned.onnx_path), variant="full")
    rgb, depth = structured_batch(2, config.input_size_px, seed=3)

    def refuse(*_):
        raise AssertionError("a trace decoder ran")

    eager = open_eager_runner(pruned.onnx_path, threads=1, checkpoint=checkpoint)
    for decoder in (eager._module.decoder_rgb, eager._module.decoder_depth):
        decoder.forward = refuse
    got = eager.run(rgb, depth).score
    np.testing.assert_allclose(got, open_runner(pruned.onnx_path, threads=1).run(rgb, depth).score, atol=1e-4)
    eager_full = open_eager_runner(full.onnx_path, threads=1, checkpoint=checkpoint)
    eager_full._module.decoder_rgb.forward = refuse
    with pytest.raises(AssertionError, match="decoder ran"):
        eager_full.run(rgb, depth)


def test_eager_runner_of_a_levelled_file_levels_as_the_file_does(edge_export, tmp_path):
    """A file with an exposure level (the bundled default has one): the bench's PyTorch row loads its
    checkpoint and scores as ONNX Runtime; without a checkpoint it still times the level."""
    from dataclasses import replace

    from edge.errors import ModelError
    from engines.runner import open_runner
    from train.checkpoint import CheckpointExtra, export_checkpoint, save_checkpoint
    from train.eager import open_eager_runner
    from train.model.network import build_model
    from train.model.objective import TrainConfig

    model, config, contract, _ = edge_export
    levelled = replace(config, exposure_mean=0.45, exposure_contrast=0.24)
    twin = build_model(levelled).eval()
    twin.load_state_dict(model.state_dict())  # the level has no weights
    checkpoint = save_checkpoint(tmp_path / "level.pt", twin, levelled, TrainConfig(), step=0,
                                 extra=CheckpointExtra(preprocess=contract, threshold=0.25))
    onnx = export_checkpoint(checkpoint, tmp_path / "level.onnx", variant="score").onnx_path
    rgb, depth = structured_batch(3, config.input_size_px, seed=5)
    want = open_runner(onnx, threads=1).run(rgb, depth).score
    np.testing.assert_allclose(open_eager_runner(onnx, threads=1, checkpoint=checkpoint).run(rgb, depth).score,
                               want, atol=1e-4)
    plain = edge_export[3].onnx_path.parent / "edge.pt"  # the same weights without the level: refused, naming it
    with pytest.raises(ModelError, match=r"\(exposure_mean 0.0 not 0.45, exposure_contrast 0.0 not 0.24\)"):
        open_eager_runner(onnx, threads=1, checkpoint=plain)
    fresh = open_eager_runner(onnx, threads=1)
    assert (fresh._module.exposure.mean, fresh._module.exposure.contrast) == (0.45, 0.24)
