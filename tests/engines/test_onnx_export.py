"""ONNX export: contract of the file (names, dynamic batch, opset, single file, metadata) and parity."""

from __future__ import annotations

import numpy as np
import pytest

from tiny_pad_model import CONTRACT, SIZE, make_tiny_module, tiny_metadata

onnx = pytest.importorskip("onnx", reason="the onnx package (edgefas[train]) is needed to inspect exports")


def test_full_variant_signature(tiny_onnx):
    model = onnx.load(str(tiny_onnx))
    assert [i.name for i in model.graph.input] == ["rgb", "depth"]
    assert [o.name for o in model.graph.output] == ["score", "spoof_map", "trace_rgb", "trace_depth"]
    rgb_dims = model.graph.input[0].type.tensor_type.shape.dim
    assert rgb_dims[0].dim_param == "N"  # dynamic batch
    assert [d.dim_value for d in rgb_dims[1:]] == [3, SIZE, SIZE]
    assert {o.domain: o.version for o in model.opset_import}.get("", 0) == 17
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)


def test_score_variant_has_two_outputs(tiny_score_onnx):
    model = onnx.load(str(tiny_score_onnx))
    assert [o.name for o in model.graph.output] == ["score", "spoof_map"]


def test_metadata_travels_with_export(tiny_onnx):
    from engines.metadata import read_metadata

    meta = read_metadata(tiny_onnx)
    assert dict(meta.preprocess) == CONTRACT
    assert (meta.input_size, meta.variant, meta.precision, meta.threshold) == (SIZE, "full", "fp32", 0.5)
    assert meta.score_polarity == "higher_is_attack"


def test_parity_with_pytorch_on_fresh_batch(tiny_onnx):
    import torch

    from engines.export import parity_max_abs_score

    torch.set_num_threads(1)
    rng = np.random.default_rng(7)
    rgb = rng.random((5, 3, SIZE, SIZE), dtype=np.float32)  # batch 5: not the export's batch of 2
    depth = rng.random((5, 1, SIZE, SIZE), dtype=np.float32)
    with torch.no_grad():
        reference = make_tiny_module()(torch.from_numpy(rgb), torch.from_numpy(depth)).score.numpy()
    assert parity_max_abs_score(tiny_onnx, rgb, depth, reference) <= 1e-4


def test_unknown_variant_is_config_error(tmp_path):
    from edge.errors import ConfigError
    from engines.export import export_module

    with pytest.raises(ConfigError, match="score, full"):
        export_module(make_tiny_module(), tmp_path / "x.onnx", tiny_metadata(), variant="traces")


def test_missing_checkpoint_is_model_error(tmp_path):
    pytest.importorskip("torch", reason="checkpoints are torch files (edgefas[train])")
    from edge.errors import ModelError
    from train.checkpoint import export_checkpoint

    with pytest.raises(ModelError, match="does not exist"):
        export_checkpoint(tmp_path / "nope.pt", tmp_path / "x.onnx")
