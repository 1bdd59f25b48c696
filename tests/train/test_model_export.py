"""Both presets export with the legacy ONNX exporter (opset 17); ONNX Runtime agrees with PyTorch."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the training extra (torch) is not installed")
onnx = pytest.importorskip("onnx", reason="onnx is not installed")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

from train.model import PRESETS, get_preset, summarise_preset  # noqa: E402
from train.model.network import build_model  # noqa: E402

OUTPUT_NAMES = ["score", "spoof_map", "trace_rgb", "trace_depth"]
MATCH_ATOL = 1e-4  # issue 5: ONNX Runtime output equals PyTorch within 1e-4


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def _export(model, size, path):
    rgb, depth = torch.rand(1, 3, size, size), torch.rand(1, 1, size, size)
    torch.onnx.export(
        model,
        (rgb, depth),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["rgb", "depth"],
        output_names=OUTPUT_NAMES,
        dynamic_axes={name: {0: "n"} for name in ["rgb", "depth", *OUTPUT_NAMES]},
    )


def _randomise_batchnorm(model):
    # fresh BatchNorm statistics are 0/1; random ones make the comparison meaningful
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_exports_and_passes_the_onnx_checker(name, tmp_path):
    config = get_preset(name)
    model = build_model(config).eval()
    path = tmp_path / f"{name}.onnx"
    _export(model, config.input_size_px, path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert [i.name for i in proto.graph.input] == ["rgb", "depth"]
    assert [o.name for o in proto.graph.output] == OUTPUT_NAMES
    assert proto.opset_import[0].version == 17
    summary = summarise_preset(name)
    print(f"{summary.as_line()}; ONNX {path.stat().st_size / 1e6:.1f} MB")


def test_edge_onnx_runtime_matches_pytorch(tmp_path):
    config = get_preset("edge")
    model = build_model(config).eval()
    _randomise_batchnorm(model)
    model.set_alpha(0.7)
    path = tmp_path / "edge.onnx"
    _export(model, config.input_size_px, path)
    s = config.input_size_px
    gen = torch.Generator().manual_seed(5)
    rgb, depth = torch.rand(3, 3, s, s, generator=gen), torch.rand(3, 1, s, s, generator=gen)
    with torch.no_grad():
        expected = model(rgb, depth)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(OUTPUT_NAMES, {"rgb": rgb.numpy(), "depth": depth.numpy()})
    for name, want, have in zip(OUTPUT_NAMES, expected, got):
        assert have.shape == tuple(want.shape), name
        torch.testing.assert_close(torch.from_numpy(have), want, atol=MATCH_ATOL, rtol=0, msg=name)
