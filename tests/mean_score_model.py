"""A torch-free ONNX model whose score is the mean brightness of the colour crop, with an edgefas contract.

Threshold tests need a real ONNX file (the threshold is written into its metadata) whose scores a
test can predict from the data it wrote: a face crop of uniform grey level ``v`` scores about
``v`` (less where the crop window reaches past a pre-cropped image and is padded). Built with
``onnx.helper`` in milliseconds, so no torch export is needed. It lies in tests/ so that every test
folder can import it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.face.preprocess import PreprocessConfig


def write_mean_score_model(path: Path, size_px: int = 16, depth_mode: str = "passthrough") -> Path:
    """Write the model to ``path``; ``depth_mode`` passthrough reads the public sets' 8-bit crops."""
    onnx = pytest.importorskip("onnx", reason="writing ONNX metadata needs the onnx package (edgefas[train])")
    from onnx import TensorProto, helper

    from engines.metadata import ModelMetadata

    inputs = [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ["N", 3, size_px, size_px]),
              helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["N", 1, size_px, size_px])]
    outputs = [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"]),
               helper.make_tensor_value_info("spoof_map", TensorProto.FLOAT, ["N", 1, 1, 1])]
    nodes = [helper.make_node("ReduceMean", ["rgb"], ["score"], axes=[1, 2, 3], keepdims=0),
             helper.make_node("ReduceMean", ["depth"], ["spoof_map"], axes=[2, 3], keepdims=1)]
    model = helper.make_model(helper.make_graph(nodes, "mean_score", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by every ONNX Runtime edgefas supports
    contract = PreprocessConfig(size_px=size_px, depth_mode=depth_mode).to_metadata()
    metadata = ModelMetadata(preprocess=contract, input_size=size_px, preset="mean-score-test", model_sha256="0" * 64)
    helper.set_model_props(model, metadata.to_props())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
