"""Quantisation-aware fine-tuning (train/qat.py, TrainConfig.qat): the rounding is ONNX Runtime's, it is on
only inside a training pass, it spares the parts the INT8 build keeps in fp32, gradients pass it, and the
trainer measures activation ranges on real batches only."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the training extra (torch) is not installed")

from edge.errors import ConfigError  # noqa: E402
from test_trainer_loop import batches, new_trainer  # noqa: E402
from train.model import TrainConfig  # noqa: E402
from train.model.objective import QAT_CHOICES  # noqa: E402
from train.qat import FP32_MODULES, QAT_TARGETS, _kept_fp32, fake_quantize_weight  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_the_choices_are_the_int8_builds():
    from engines.quantize import INT8_TARGETS

    assert set(QAT_TARGETS) == set(INT8_TARGETS) and QAT_CHOICES == ("off", *QAT_TARGETS)
    with pytest.raises(ConfigError, match="QAT must be one of"):
        TrainConfig(qat="int4")


@pytest.mark.parametrize("target", sorted(QAT_TARGETS))
def test_weight_rounding_is_onnx_runtimes_grid(tmp_path, target):
    """The weights ONNX Runtime writes for the flavour (quantize_static with engines.quantize's options)
    are, dequantised, the ones the training passes used."""
    onnx = pytest.importorskip("onnx", reason="the training extra (onnx) is not installed")
    from onnx import numpy_helper
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    from engines.quantize import quantize_options

    conv = torch.nn.Conv2d(4, 6, 3, bias=True)
    with torch.no_grad():
        conv.weight.mul_(torch.linspace(0.1, 3.0, 6).reshape(6, 1, 1, 1))  # channels of very different range
    path, out = tmp_path / "conv.onnx", tmp_path / "conv.int8.onnx"
    torch.onnx.export(conv, (torch.rand(1, 4, 8, 8),), str(path), input_names=["x"], output_names=["y"],
                      opset_version=17, dynamo=False)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"x": np.random.default_rng(i).random((1, 4, 8, 8), dtype=np.float32)} for i in range(4)])

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(path), str(out), Reader(), **quantize_options(target))
    graph = onnx.load(str(out)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    weights = [n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
               and inits[n.input[0]].dtype == np.int8 and inits[n.input[0]].ndim == 4]
    assert len(weights) == 1, [n.input for n in graph.node]
    ort_weight = inits[weights[0].input[0]].astype(np.float32) * inits[weights[0].input[1]].reshape(6, 1, 1, 1)
    ours = fake_quantize_weight(conv.weight.detach(), QAT_TARGETS[target][0]).numpy()
    np.testing.assert_allclose(ours, ort_weight, rtol=0, atol=1e-6)
    assert not np.allclose(ours, conv.weight.detach().numpy(), atol=1e-4)  # it did round


def test_rounding_is_on_only_inside_and_spares_the_fp32_parts():
    trainer = new_trainer(qat="cpu")
    model, noise = trainer.model.eval(), trainer.noise
    names = dict(model.named_modules())
    rounded, exact = names["encoder_rgb.stem.0"], names["encoder_depth.stem.0"]
    assert any(n.startswith("decoder_rgb") for n, _ in noise.convs)
    assert not any(n.startswith(FP32_MODULES) for n, _ in noise.convs + noise.blocks)
    x = torch.rand(2, rounded.in_channels, 16, 16)
    d = torch.rand(2, 1, 16, 16)
    clean_rgb, clean_depth = rounded(x), exact(d)
    with noise.active():
        noisy_rgb, noisy_depth = rounded(x), exact(d)
        expected = torch.nn.functional.conv2d(x, fake_quantize_weight(rounded.weight, 64), None, padding=1)
    torch.testing.assert_close(noisy_rgb, expected)
    assert not torch.allclose(noisy_rgb, clean_rgb)
    torch.testing.assert_close(noisy_depth, clean_depth, rtol=0, atol=0)
    # after the pass: the class's forward again, no hook left
    torch.testing.assert_close(rounded(x), clean_rgb, rtol=0, atol=0)
    assert all("forward" not in conv.__dict__ for _, conv in noise.convs)
    assert all(not block._forward_hooks for _, block in noise.blocks)


def test_gradients_pass_the_rounding():
    trainer = new_trainer(qat="cpu")
    model = trainer.model.train()
    batch = batches(3, 1)[0]
    with trainer.noise.active():
        out = model(batch.rgb, batch.depth)
    score = out[0] if isinstance(out, tuple) else out
    score.float().sum().backward()
    rounded = dict(model.named_modules())["encoder_rgb.stem.0"]
    assert rounded.weight.grad is not None and rounded.weight.grad.abs().sum() > 0


def test_a_quantisation_aware_step_trains_and_measures_ranges_on_the_real_batch_only():
    """Three generator passes per step (real, synthesised spoofs, grey): only the first moves the activation
    ranges; the step trains (weights move) and leaves the network's own forward passes in place."""

    trainer = new_trainer(qat="cpu", colour_blind_weight=1.0)
    seen: list[dict] = []
    original = trainer.noise._observe

    def spy(name, x):
        seen.append({"name": name, "low": float(x.detach().amin()), "high": float(x.detach().amax())})
        return original(name, x)

    trainer.noise._observe = spy
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    result = trainer.train_step(batches(5, 1)[0])
    assert np.isfinite(result.losses.generator) and np.isfinite(result.losses.blind)
    blocks = {name for name, _ in trainer.noise.blocks}
    assert {s["name"] for s in seen} == blocks and len(seen) == len(blocks)  # one pass observed
    first = {s["name"]: (s["low"], s["high"]) for s in seen}
    assert trainer.noise.ranges == first
    assert any(not torch.equal(v, before[k]) for k, v in trainer.model.state_dict().items() if "running_" not in k)
    assert all("forward" not in conv.__dict__ for _, conv in trainer.noise.convs)


def test_the_setting_is_kept_in_checkpoints(tmp_path):
    from train.checkpoint import load_checkpoint

    trainer = new_trainer(tmp_path, qat="tensorrt", steps=1)
    trainer.train_step(batches(6, 1)[0])
    path = trainer.save()
    model, info = load_checkpoint(path)
    assert info.train_config.qat == "tensorrt"
    assert all("parametrizations" not in k for k in model.state_dict())
    resumed = type(trainer).resume(path, tmp_path)
    assert resumed.noise is not None and resumed.noise.target == "tensorrt" and resumed.noise.ranges == {}


def test_the_parts_spared_are_the_ones_the_int8_build_keeps_in_fp32(tmp_path):
    """QAT's FP32_MODULES and the INT8 build's default fp32 parts (engines/quantize.py) name the same
    convolutions of the exported edge model: the depth stream before it meets the colour stream, found
    from the graph there, and the depth trace decoder, found by scope. If the streams met elsewhere, or
    a module were renamed, training would round what the shipped file does not (or the reverse)."""
    onnx = pytest.importorskip("onnx", reason="the training extra (onnx) is not installed")
    from edge.face.preprocess import PreprocessConfig
    from engines.export import export_module
    from engines.metadata import ModelMetadata
    from engines.quantize import DEFAULT_FP32_PARTS, fp32_part_nodes
    from train.model.network import build_model
    from train.model.presets import get_preset

    config = get_preset("edge")
    torch.manual_seed(0)
    model = build_model(config).eval()
    model.set_alpha(1.0)  # a score that weighs the traces, so the decoders are in the graph
    meta = ModelMetadata(preprocess=PreprocessConfig(size_px=config.input_size_px).to_metadata(),
                         input_size=config.input_size_px, preset="edge", threshold=0.5)
    graph = onnx.load(str(export_module(model, tmp_path / "edge.onnx", meta, "score").onnx_path)).graph
    for target, parts in DEFAULT_FP32_PARTS.items():
        kept = set(fp32_part_nodes(graph, parts))
        kept_convs = sum(1 for n in graph.node if n.op_type == "Conv" and n.name in kept)
        spared = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d) and _kept_fp32(name)]
        assert spared and kept_convs == len(spared), (target, kept_convs, spared)
