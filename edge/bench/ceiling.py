"""The host's own ceiling for this kind of work: a large fp32 matrix product through ONNX Runtime.

The model's convolutions run in ONNX Runtime's MLAS kernels (im2col + SGEMM on CPU), so the rate
MLAS reaches on one large square ``MatMul`` is the most this machine can give the model at the same
thread count; ``achieved / ceiling`` says how much of the machine the model's inference uses.
Measuring through ONNX Runtime, not numpy, matters: numpy links its own BLAS (OpenBLAS), whose rate
is a different library's.

The one-node ONNX graph is written here as raw protobuf, so the measurement needs only the
``onnxruntime`` of the base install (the ``onnx`` package belongs to the training extra). Field
numbers are those of ``onnx/onnx.proto`` (ModelProto.ir_version = 1, graph = 7, opset_import = 8;
GraphProto.node = 1, name = 2, input = 11, output = 12; NodeProto.input = 1, output = 2, op_type = 4;
ValueInfoProto.name = 1, type = 2; TypeProto.tensor_type = 1; Tensor.elem_type = 1, shape = 2;
TensorShapeProto.dim = 1; Dimension.dim_value = 1; OperatorSetIdProto.version = 2).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

# IR version 8 goes with opset 17 (onnx/docs/Versioning.md, "Released Versions"); both are what
# engines/export.py writes, so this graph loads wherever an edgefas model loads.
IR_VERSION = 8
OPSET = 17
FLOAT = 1  # TensorProto.DataType.FLOAT
# 1024: one product is 2.1 GFLOP, tens of ms on a laptop core (long enough to time, short enough to
# repeat), and its three 4 MiB matrices overflow the L2 cache as the model's larger layers do.
DEFAULT_SIDE = 1024


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _field_bytes(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint((number << 3) | 2) + _varint(len(data)) + data


def _tensor_info(name: str, shape: tuple[int, ...]) -> bytes:
    dims = b"".join(_field_bytes(1, _field_varint(1, d)) for d in shape)
    tensor_type = _field_varint(1, FLOAT) + _field_bytes(2, dims)
    return _field_bytes(1, name) + _field_bytes(2, _field_bytes(1, tensor_type))


def matmul_model_bytes(side: int) -> bytes:
    """A serialized ONNX model computing ``c = a @ b`` for float32 ``side x side`` matrices."""
    if side < 1:
        raise ValueError(f"side must be >= 1, got {side}")
    shape = (side, side)
    node = _field_bytes(1, "a") + _field_bytes(1, "b") + _field_bytes(2, "c") + _field_bytes(4, "MatMul")
    graph = (_field_bytes(1, node) + _field_bytes(2, "edgefas_matmul_ceiling")
             + _field_bytes(11, _tensor_info("a", shape)) + _field_bytes(11, _tensor_info("b", shape))
             + _field_bytes(12, _tensor_info("c", shape)))
    return _field_varint(1, IR_VERSION) + _field_bytes(7, graph) + _field_bytes(8, _field_varint(2, OPSET))


@dataclass(frozen=True)
class MatmulCeiling:
    """fp32 GFLOP/s of a ``side``-square MatMul through ONNX Runtime on ``threads`` intra-op threads."""

    side: int
    threads: int
    runs: int
    median_gflops: float
    best_gflops: float
    library: str  # "onnxruntime X.Y (MLAS)"

    def to_json(self) -> dict[str, object]:
        return {"side": self.side, "threads": self.threads, "runs": self.runs,
                "median_gflops": round(self.median_gflops, 2), "best_gflops": round(self.best_gflops, 2),
                "library": self.library}


def measure_matmul_ceiling(threads: int, side: int = DEFAULT_SIDE, runs: int = 10, warmup: int = 2) -> MatmulCeiling:
    """Time ``runs`` products after ``warmup`` (first runs pack weights and grow thread pools).

    One product is ``2 * side**3`` floating-point operations (a multiply and an add per MAC).
    """
    import onnxruntime as ort

    if threads < 1 or runs < 1:
        raise ValueError(f"threads and runs must be >= 1, got threads={threads} runs={runs}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(matmul_model_bytes(side), sess_options=options,
                                   providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {"a": rng.standard_normal((side, side), dtype=np.float32),
             "b": rng.standard_normal((side, side), dtype=np.float32)}
    for _ in range(warmup):
        session.run(["c"], feeds)
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        session.run(["c"], feeds)
        seconds.append(time.perf_counter() - started)
    flop = 2.0 * side ** 3
    return MatmulCeiling(side, threads, runs, flop / float(np.median(seconds)) / 1e9, flop / min(seconds) / 1e9,
                         f"onnxruntime {ort.__version__} (MLAS)")
