"""INT8 as an explicitly quantised (Q/DQ) ONNX model, calibrated on a calibration set (DESIGN §5, §6).

Two Q/DQ flavours of the same calibration (``target``), because the back ends want different ones:

* ``tensorrt`` (the default): TensorRT 10 compiles the Q/DQ graph on the GPU without its own
  calibrator (explicit quantisation) and accepts only symmetric INT8 (zero point 0) for weights and
  activations, hence ``ActivationSymmetric`` and ``WeightSymmetric`` (TensorRT developer guide,
  "Explicit Quantization"; ONNX Runtime docs, "Quantize ONNX models", "Quantization on GPU").
* ``cpu``: ONNX Runtime's CPU provider. Activations are unsigned 8-bit with a zero point (U8S8).
  With symmetric activations the quantiser keeps every ReLU as its own float node between Q/DQ
  pairs (a symmetric range cannot absorb the clamp at 0), so Conv->ReLU never becomes one INT8
  kernel; on x86 ORT also runs only uint8 activations in its QDQ kernels unless
  ``session.qdqisint8allowed`` is set, and leaves every conv whose input is shared with another
  consumer in float. The symmetric model measured 0.77x of fp32 on the edge preset, this one 1.3x
  (docs/int8.md). Weights stay symmetric (zero point 0): that selects MLAS's symmetric
  indirect-convolution kernel where the channel counts allow it.

Weights are quantised per output channel in both flavours, which TensorRT supports for
convolution weights and which keeps small-magnitude channels from being flattened to zero by one
large channel.

The calibration data comes in as a :class:`CalibrationData` (edgefas's is
``calibration.calibset.CalibrationSet``, which the caller loads): making and storing calibration
sets is the ``calibration`` package's work, and it sits above this one.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from edge.errors import ConfigError, EngineError, ModelError, import_optional
from engines.metadata import load_onnx, metadata_from_props, set_metadata

log = logging.getLogger(__name__)

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
CALIBRATION_BATCH = 8  # samples per calibration step: bounds the memory of the augmented graph
INT8_TARGETS = ("tensorrt", "cpu")  # which back end the Q/DQ flavour is for (module docstring)
# Parts of the network that can stay in fp32 inside an INT8 file (:func:`fp32_part_nodes`):
# depth-entry = the depth stream before it first meets the colour stream (its stem and first
# encoder stage), depth-decoder / decoders = the trace decoders. The depth stream carries millimetre
# relief (a silicone shell bridging the eye sockets by 1-4 mm) in an input whose range is 200 mm;
# an 8-bit activation range over the first layers' outputs rounds much of it away. On the fifth
# fine-tune candidate the fully quantised CPU file flipped 7 of 256 calibration decisions; keeping
# the depth entry and the depth decoder in fp32 flipped 2 (docs/int8.md). The cause is the 8-bit
# activation range, not a back end's kernels, and the symmetric TensorRT flavour shows it too: on the
# bundled default of 3 Dec 2026 (a CPU with VNNI) min/max ranges kept 98.05 % of 256 calibration
# decisions fully quantised and 99.22 % with the same two parts in fp32, so both flavours keep them.
# guard = the depth guard (docs/depth-guard.md), depth-only throughout and kept in fp32 by default for the
# same reason wherever the graph has one (GUARD_SCOPES).
FP32_PARTS = ("depth-entry", "depth-decoder", "decoders", "guard")
DEFAULT_FP32_PARTS = {"cpu": ("depth-entry", "depth-decoder"), "tensorrt": ("depth-entry", "depth-decoder")}
# a score export without the decoders traces forward_fused, whose node names lack the /model prefix
GUARD_SCOPES = ("/model/guard/", "/guard/")
_PART_SCOPES = {"depth-decoder": ("/model/decoder_depth",), "decoders": ("/model/decoder_rgb", "/model/decoder_depth"),
                "guard": GUARD_SCOPES}


class CalibrationData(Protocol):
    """Preprocessed faces to measure INT8 ranges on.

    ``batches`` yields float32 ``(rgb [n,3,S,S], depth [n,1,S,S])`` in [0, 1], at most ``limit``
    samples in all; ``check_contract`` raises ModelError when the faces were made under another
    preprocessing contract or input side than the model named ``model_name`` expects (the classic
    INT8 failure: ranges measured on inputs the model never sees); ``sha256`` is the data's content
    hash, recorded in the INT8 model.
    """

    @property
    def count(self) -> int: ...

    @property
    def sha256(self) -> str: ...

    def batches(self, batch_size: int, limit: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...

    def check_contract(self, model_contract: Mapping[str, str], input_size: int, model_name: str) -> None: ...


@dataclass(frozen=True)
class QuantizeResult:
    onnx_path: Path
    samples: int
    method: str
    qdq_nodes: int  # QuantizeLinear + DequantizeLinear in the written graph
    calibration_sha256: str
    target: str = "tensorrt"  # one of INT8_TARGETS
    fp32_parts: tuple[str, ...] = ()  # parts of FP32_PARTS left in fp32

    def to_json(self) -> dict[str, object]:
        return {"onnx": str(self.onnx_path), "samples": self.samples, "method": self.method,
                "qdq_nodes": self.qdq_nodes, "calibration_sha256": self.calibration_sha256,
                "target": self.target, "fp32_parts": list(self.fp32_parts)}


def calibration_reader(calib: CalibrationData, limit: int | None, progress: Callable[[int], None] | None = None):
    """An ``onnxruntime.quantization.CalibrationDataReader`` feeding float32 batches of the set."""
    from onnxruntime.quantization import CalibrationDataReader

    class _SetReader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = calib.batches(CALIBRATION_BATCH, limit)
            self._seen = 0

        def get_next(self):
            batch = next(self._batches, None)
            if batch is None:
                return None
            self._seen += batch[0].shape[0]
            if progress is not None:
                progress(self._seen)
            return {"rgb": batch[0], "depth": batch[1]}

    return _SetReader()


def count_qdq_nodes(model) -> int:
    return sum(1 for node in model.graph.node if node.op_type in ("QuantizeLinear", "DequantizeLinear"))


def int8_target_of(model) -> str:
    """``"tensorrt"`` when every QuantizeLinear zero point is 0 (what TensorRT accepts), else ``"cpu"``.

    Read from the graph itself rather than from metadata, so a CPU flavour is recognised however it
    was made; ``tensorrt_build`` can refuse a ``cpu`` model before TensorRT fails on it.
    """
    from onnx import numpy_helper

    inits = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and len(node.input) > 2 and node.input[2] in inits:
            if numpy_helper.to_array(inits[node.input[2]]).any():
                return "cpu"
    return "tensorrt"


def depth_entry_nodes(graph) -> list[str]:
    """Names of the nodes computed from the ``depth`` input alone, before anything from ``rgb`` joins.

    Found from the graph, not from node names (the exporter numbers repeated module names): every
    tensor carries the set of graph inputs it depends on, in the graph's topological node order.
    """
    depends: dict[str, frozenset[str]] = {i.name: frozenset((i.name,)) for i in graph.input}
    names = []
    for node in graph.node:
        deps = frozenset().union(*(depends.get(t, frozenset()) for t in node.input if t))
        for out in node.output:
            depends[out] = deps
        if deps == {"depth"}:
            names.append(node.name)
    return names


def parse_fp32_parts(text: str) -> tuple[str, ...]:
    """``--keep-fp32``: comma-separated parts of :data:`FP32_PARTS`, or ``none``; ConfigError names the bad one."""
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    if parts == ("none",):
        return ()
    bad = [p for p in parts if p not in FP32_PARTS]
    if bad or not parts:
        raise ConfigError(f"--keep-fp32: unknown part '{bad[0] if bad else text}'; use none or a comma-separated "
                          f"list of: {', '.join(FP32_PARTS)}")
    return parts


def fp32_part_nodes(graph, parts: tuple[str, ...], scopes: tuple[str, ...] = ()) -> list[str]:
    """The node names of ``graph`` that the named :data:`FP32_PARTS` cover, and those whose names start with
    one of ``scopes`` (a part absent from the graph, such as the decoders of a score export with alpha 0,
    covers nothing)."""
    unknown = [p for p in parts if p not in FP32_PARTS]
    if unknown:
        raise ConfigError(f"unknown fp32 part '{unknown[0]}'; use: {', '.join(FP32_PARTS)}")
    names = set(depth_entry_nodes(graph)) if "depth-entry" in parts else set()
    scopes = tuple(scopes) + tuple(scope for p in parts for scope in _PART_SCOPES.get(p, ()))
    if scopes:
        names.update(n.name for n in graph.node if n.name.startswith(scopes))
    return [n.name for n in graph.node if n.name in names]


def quantize_options(target: str) -> dict[str, object]:
    """The ``quantize_static`` keyword arguments of one flavour (module docstring says why)."""
    from onnxruntime.quantization import QuantFormat, QuantType

    if target not in INT8_TARGETS:
        raise ConfigError(f"unknown INT8 target '{target}'; use one of: {', '.join(INT8_TARGETS)}")
    common = {"quant_format": QuantFormat.QDQ, "per_channel": True, "weight_type": QuantType.QInt8}
    if target == "tensorrt":
        return {**common, "activation_type": QuantType.QInt8,
                "extra_options": {"ActivationSymmetric": True, "WeightSymmetric": True}}
    # reduce_range: 7-bit weights. On x86 CPUs without VNNI (AVX2 only, e.g. many AMD EPYC and older
    # Intel parts) ONNX Runtime's U8S8 kernels add pairs of u8 x s8 products in 16 bits, which saturate
    # with full-range weights: on such a CPU the 8-bit file flipped 14 % of the decisions of the bundled
    # model's calibration faces (docs/int8.md). 7-bit weights cannot saturate there and cost nothing
    # measurable in agreement on a VNNI CPU.
    return {**common, "activation_type": QuantType.QUInt8, "reduce_range": True,
            "extra_options": {"ActivationSymmetric": False, "WeightSymmetric": True}}


def quantize_int8(onnx_path: str | Path, calib: CalibrationData, out_path: str | Path, method: str = "minmax",
                  limit: int | None = None, progress: Callable[[int], None] | None = None,
                  target: str = "tensorrt", fp32_scopes: tuple[str, ...] = (),
                  fp32_parts: tuple[str, ...] | None = None) -> QuantizeResult:
    """Write a Q/DQ INT8 copy of an fp32 ONNX model; its metadata is copied with precision ``int8``.

    ``calib`` must have been made under the model's preprocessing contract (else ModelError naming
    the differing keys). ``limit`` caps the samples used (None = all). ``target`` picks the flavour:
    ``tensorrt`` (symmetric, also runs on ORT CPU but slower than fp32) or ``cpu`` (for ONNX Runtime
    on CPU only; TensorRT refuses its zero points). Nodes whose names start with one of
    ``fp32_scopes`` (e.g. ``/model/decoder_rgb``) stay in fp32: a part of the graph whose 8-bit
    error moves scores too far (the trace decoders, when the score weighs the traces). ``fp32_parts``
    names such parts from :data:`FP32_PARTS` (None = the flavour's :data:`DEFAULT_FP32_PARTS`, and the
    depth guard where the graph has one).
    """
    if method not in CALIBRATION_METHODS:
        raise ConfigError(f"unknown calibration method '{method}'; use one of: {', '.join(CALIBRATION_METHODS)}")
    options = quantize_options(target)
    parts = DEFAULT_FP32_PARTS[target] if fp32_parts is None else tuple(fp32_parts)
    import_optional("onnx", "train", "quantising a model to INT8")
    from onnxruntime.quantization import CalibrationMethod, quant_pre_process, quantize_static

    src = Path(onnx_path)
    model = load_onnx(src)
    metadata = metadata_from_props({p.key: p.value for p in model.metadata_props}, f"'{src}'")
    if metadata.precision != "fp32":
        raise ModelError(f"'{src}' is already {metadata.precision}; quantise the fp32 export instead")
    calib.check_contract(metadata.preprocess, metadata.input_size, str(src))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgefas-int8-") as work:
        prepared = Path(work) / "prepared.onnx"
        # Shape inference + graph fusion before quantisation: Q/DQ pairs then land on fused Conv+BN
        # nodes instead of the unfused ones (ONNX Runtime docs, "Pre-processing").
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        graph = load_onnx(prepared).graph
        if fp32_parts is None and any(n.name.startswith(GUARD_SCOPES) for n in graph.node):
            parts = (*parts, "guard")
        excluded = fp32_part_nodes(graph, parts, fp32_scopes)
        try:
            quantize_static(
                str(prepared), str(out), calibration_reader(calib, limit, progress), nodes_to_exclude=excluded,
                calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                                  "percentile": CalibrationMethod.Percentile}[method],
                **options,
            )
        except ValueError as exc:
            if "finite-sized bins" not in str(exc):
                raise
            # the histogram calibrators split each tensor's range into 2048 bins; one whose values barely
            # vary (float32 denormals behind a saturated activation) cannot be split so finely
            out.unlink(missing_ok=True)
            raise EngineError(f"'{src}': the {method} calibration cannot histogram a tensor whose values barely "
                              f"vary ({exc}); use --method minmax, which needs only each tensor's range") from None
    quantized = load_onnx(out)
    set_metadata(quantized, replace(metadata, precision="int8", calibration_sha256=calib.sha256,
                                    int8_weight_bits=7 if options.get("reduce_range") else 8))
    onnx = import_optional("onnx", "train", "quantising a model to INT8")
    onnx.save(quantized, str(out))
    used = calib.count if limit is None else min(limit, calib.count)
    result = QuantizeResult(out, used, method, count_qdq_nodes(quantized), calib.sha256, target, parts)
    log.info("int8 %s (%s): %d Q/DQ nodes from %d samples (%s), fp32: %s", out.name, target, result.qdq_nodes, used,
             method, ", ".join(parts) or "none")
    return result


def quantize_and_gate(onnx_path: str | Path, calib: CalibrationData, out_path: str | Path, method: str = "minmax",
                      tolerance=None, threshold: float | None = None, limit: int | None = None,
                      progress: Callable[[int], None] | None = None, target: str = "tensorrt",
                      fp32_scopes: tuple[str, ...] = (), fp32_parts: tuple[str, ...] | None = None):
    """Quantise, then run the accuracy gate on the calibration set; the INT8 file is kept only if accepted.

    Returns ``(QuantizeResult, GateResult)``; the gate's JSON is written beside ``out_path``
    (``<stem>.gate.json``) either way, so a refusal leaves its evidence. A refusal is an EngineError.
    """
    from engines.accuracy_gate import GateTolerance, run_accuracy_gate
    from engines.runner import open_runner

    out = Path(out_path)
    staging = out.with_name(f".{out.name}.staging.onnx")
    try:
        result = quantize_int8(onnx_path, calib, staging, method, limit, progress, target, fp32_scopes, fp32_parts)
        reference, candidate = open_runner(onnx_path), open_runner(staging)
        try:
            gate = run_accuracy_gate(reference, candidate, calib.batches(CALIBRATION_BATCH, limit), threshold,
                                     tolerance or GateTolerance())
        finally:
            reference.close()
            candidate.close()
        gate_path = gate.write(out.with_name(out.stem + ".gate.json"))
        if not gate.accepted:
            other = "minmax" if method == "percentile" else "percentile"  # never the method that just failed
            raise EngineError(f"the INT8 model failed the accuracy gate ({'; '.join(gate.reasons)}); evidence in "
                              f"{gate_path}: try --method {other}, more calibration samples, or fp16 on a GPU")
        staging.replace(out)
    finally:
        staging.unlink(missing_ok=True)
    return replace(result, onnx_path=out), gate
