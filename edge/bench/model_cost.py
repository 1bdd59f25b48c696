"""MACs and parameters of an ONNX model file, counted from the graph itself.

The same convention as ``train/model/complexity.py`` (so the two agree on an exported preset): one
MAC per multiply-add of every ``Conv``, ``ConvTranspose``, ``Gemm`` and ``MatMul``; BatchNorm,
activations, pooling, resizing and element-wise arithmetic are not counted. Counting the file and
not the preset means any ONNX model can be benchmarked, and an INT8 Q/DQ file counts the same MACs
as its fp32 source (its ``Conv`` nodes stay, fed by DequantizeLinear). Parameters are the weights
and biases of those nodes as stored in the file: BatchNorm folded into a convolution at export no
longer counts separately, so this is slightly below the PyTorch module's parameter count.

Needs the ``onnx`` package (shape inference) from the ``train`` extra; without it the cost is
reported as unavailable with that reason, never guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from edge.errors import MissingExtraError, import_optional

COUNTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass(frozen=True)
class ModelCost:
    """Compute of one forward pass of batch 1, or why it could not be counted."""

    macs: int | None
    params: int | None
    counted_nodes: int = 0
    reason: str = ""  # set when macs is None

    @property
    def gflop(self) -> float:
        """Floating-point operations (two per MAC) of one forward pass, in GFLOP; NaN when unknown."""
        return 2.0 * self.macs / 1e9 if self.macs is not None else math.nan

    def to_json(self) -> dict[str, object]:
        return {"macs": self.macs, "params": self.params, "counted_nodes": self.counted_nodes,
                "reason": self.reason or None}


def count_onnx_cost(path: str | Path) -> ModelCost:
    """Count ``path`` at batch 1 (the dynamic batch axis pinned to 1 before shape inference)."""
    try:
        onnx = import_optional("onnx", "train", "counting a model's MACs")
    except MissingExtraError as err:
        return ModelCost(None, None, reason=str(err))
    model = onnx.load(str(path))
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes: dict[str, tuple[int, ...]] = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(int(d.dim_value) for d in dims)
    initializers = {init.name: tuple(int(d) for d in init.dims) for init in inferred.graph.initializer}
    shapes.update(initializers)
    # A Q/DQ model feeds each weight through DequantizeLinear: follow it back to the stored tensor.
    dequantized = {n.output[0]: n.input[0] for n in inferred.graph.node if n.op_type == "DequantizeLinear"}

    def stored(name: str) -> str:
        return dequantized.get(name, name)

    macs = params = counted = 0
    for node in inferred.graph.node:
        if node.op_type not in COUNTED_OPS:
            continue
        out_shape, in_shape = shapes.get(node.output[0]), shapes.get(node.input[0])
        w_shape = shapes.get(node.input[1]) or shapes.get(stored(node.input[1]))
        if out_shape is None or in_shape is None or w_shape is None:
            return ModelCost(None, None, reason=f"shape inference left node '{node.name or node.op_type}' "
                                                f"without static shapes; cannot count MACs")
        if node.op_type == "Conv":
            macs += math.prod(out_shape) * math.prod(w_shape[1:])
        elif node.op_type == "ConvTranspose":
            macs += math.prod(in_shape) * math.prod(w_shape[1:])
        else:  # Gemm / MatMul: every output element is one dot product of length K
            transposed = node.op_type == "Gemm" and any(a.name == "transA" and a.i for a in node.attribute)
            macs += math.prod(out_shape) * (in_shape[-2] if transposed else in_shape[-1])
        counted += 1
        for name in node.input[1:3]:
            source = stored(name)
            if source in initializers:
                params += math.prod(initializers[source])
    return ModelCost(macs, params, counted)
