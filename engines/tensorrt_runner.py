"""TensorRT runner (NVIDIA GPU): deserialise an engine after checking its manifest, run it with pycuda.

Buffer bookkeeping is split into pure functions (:func:`binding_plan`, :func:`buffer_nbytes`) that
the tests exercise without a GPU; the class only moves bytes. One CUDA stream and page-locked host
buffers sized for the profile's maximum batch are allocated once at open; ``run`` sets the actual
input shapes, copies host->device, ``execute_async_v3``, copies device->host, synchronises.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.digest import file_sha256
from edge.errors import EngineError, MissingExtraError, ModelError, import_optional
from engines.manifest import check_manifest, read_manifest
from engines.metadata import metadata_from_props
from engines.outputs import Outputs
from engines.runner import INPUT_NAMES, ContractFromMetadata, RunnerOptions, check_inputs

log = logging.getLogger(__name__)

BACKEND = "tensorrt"
JETPACK_HINT = ("on a Jetson, TensorRT comes with JetPack: make the venv with "
                "'python3 -m venv --system-site-packages' so it sees the system tensorrt")


def require_tensorrt(purpose: str):
    """Import tensorrt or raise MissingExtraError (exit code 2) naming the extra and the JetPack route.

    Here, with the runner, because everything that touches TensorRT (the runner, the engine builder,
    the INT8 calibrator in ``calibration``) needs it and the runner is the lowest of them.
    """
    try:
        import tensorrt
    except ImportError:
        raise MissingExtraError(f"{purpose} needs TensorRT, which is not installed here; install it with "
                                f"pip install 'edgefas[tensorrt]' on an x86 CUDA machine, or {JETPACK_HINT}") from None
    return tensorrt


@dataclass(frozen=True)
class TensorSpec:
    """One I/O tensor as the engine declares it; -1 marks the dynamic (batch) dimension."""

    name: str
    is_input: bool
    dtype: np.dtype
    shape: tuple[int, ...]


@dataclass(frozen=True)
class BufferPlan:
    name: str
    is_input: bool
    dtype: np.dtype
    shape: tuple[int, ...]  # at the planned batch
    nbytes: int


def buffer_nbytes(shape: Sequence[int], dtype: np.dtype) -> int:
    if any(d < 0 for d in shape):
        raise ValueError(f"shape {tuple(shape)} still has a dynamic dimension; resolve the batch first")
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def resolve_shape(shape: Sequence[int], batch: int) -> tuple[int, ...]:
    """Replace the dynamic leading (batch) dimension; any other dynamic dimension is a ModelError."""
    resolved = tuple(batch if (i == 0 and d == -1) else d for i, d in enumerate(shape))
    if any(d < 0 for d in resolved):
        raise ModelError(f"engine tensor shape {tuple(shape)} is dynamic beyond the batch axis; "
                         f"re-export with fixed spatial sides (edgefas export) and rebuild")
    return resolved


def binding_plan(specs: Sequence[TensorSpec], batch: int) -> list[BufferPlan]:
    """Buffers for ``batch`` samples: every input of the ONNX contract and every output, engine order."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    names = {s.name for s in specs if s.is_input}
    if names != set(INPUT_NAMES):
        raise ModelError(f"engine inputs are {sorted(names)}, edgefas needs {list(INPUT_NAMES)}; "
                         f"rebuild it from an edgefas export")
    if "score" not in {s.name for s in specs if not s.is_input}:
        raise ModelError("engine has no 'score' output; rebuild it from an edgefas export")
    plans = []
    for spec in specs:
        shape = resolve_shape(spec.shape, batch)
        plans.append(BufferPlan(spec.name, spec.is_input, np.dtype(spec.dtype), shape, buffer_nbytes(shape, spec.dtype)))
    return plans


def check_batch(batch: int, max_batch: int) -> None:
    if batch > max_batch:
        raise ValueError(f"batch {batch} exceeds the engine's profile maximum {max_batch}; split the batch "
                         f"or rebuild with a larger maximum")


@dataclass(frozen=True)
class Gpu:
    name: str
    compute_capability: tuple[int, int]


def current_gpu() -> Gpu:
    """Name and compute capability of CUDA device 0 (pycuda)."""
    cuda = import_optional("pycuda.driver", "tensorrt", "talking to the GPU")
    cuda.init()
    if cuda.Device.count() == 0:
        raise EngineError("no CUDA GPU is visible; TensorRT engines need one: use an .onnx model "
                          "with ONNX Runtime instead")
    device = cuda.Device(0)
    return Gpu(device.name(), tuple(device.compute_capability()))


class TensorRTRunner(ContractFromMetadata):
    """A :class:`engines.runner.Runner` over one TensorRT engine; one per thread (owns a CUDA context)."""

    backend = BACKEND

    def __init__(self, path: Path, options: RunnerOptions = RunnerOptions()) -> None:
        self.path = Path(path)
        trt = require_tensorrt("running a TensorRT engine")
        cuda = import_optional("pycuda.driver", "tensorrt", "running a TensorRT engine")
        manifest = read_manifest(self.path)
        gpu = current_gpu()
        check_manifest(manifest, trt.__version__, gpu.name, f"{gpu.compute_capability[0]}.{gpu.compute_capability[1]}",
                       file_sha256(self.path))
        self.metadata = metadata_from_props(manifest.model_metadata, f"'{self.path}'", options.check_threshold)
        self.provider = f"tensorrt-{manifest.precision}"
        self._cuda = cuda
        self._context_cuda = cuda.Device(0).retain_primary_context()
        self._context_cuda.push()
        try:
            logger = trt.Logger(trt.Logger.WARNING)
            self._engine = trt.Runtime(logger).deserialize_cuda_engine(self.path.read_bytes())
            if self._engine is None:
                raise EngineError(f"TensorRT could not deserialise '{self.path}' (corrupt or built elsewhere); "
                                  f"rebuild it with: {manifest.rebuild}")
            self._context = self._engine.create_execution_context()
            specs = []
            for i in range(self._engine.num_io_tensors):
                name = self._engine.get_tensor_name(i)
                specs.append(TensorSpec(name, self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                                        np.dtype(trt.nptype(self._engine.get_tensor_dtype(name))),
                                        tuple(self._engine.get_tensor_shape(name))))
            self._specs = specs
            self.max_batch = int(self._engine.get_tensor_profile_shape("rgb", 0)[2][0])
            self.input_size = int(self._engine.get_tensor_shape("rgb")[-1])
            self._stream = cuda.Stream()
            self._host: dict[str, np.ndarray] = {}
            self._device: dict[str, object] = {}
            for plan in binding_plan(specs, self.max_batch):
                self._host[plan.name] = cuda.pagelocked_empty(plan.shape, plan.dtype)
                self._device[plan.name] = cuda.mem_alloc(plan.nbytes)
                self._context.set_tensor_address(plan.name, int(self._device[plan.name]))
        finally:
            self._context_cuda.pop()

    def run(self, rgb: np.ndarray, depth: np.ndarray) -> Outputs:
        n = check_inputs(rgb, depth, self.input_size)
        check_batch(n, self.max_batch)
        cuda = self._cuda
        self._context_cuda.push()
        try:
            plans = binding_plan(self._specs, n)
            for name, array in (("rgb", rgb), ("depth", depth)):
                self._context.set_input_shape(name, array.shape)
                self._host[name][:n] = array
                cuda.memcpy_htod_async(self._device[name], self._host[name][:n], self._stream)
            if not self._context.execute_async_v3(self._stream.handle):
                raise EngineError(f"TensorRT failed to run '{self.path}'; see the TensorRT log")
            for plan in plans:
                if not plan.is_input:
                    cuda.memcpy_dtoh_async(self._host[plan.name][:n], self._device[plan.name], self._stream)
            self._stream.synchronize()
        finally:
            self._context_cuda.pop()
        values = {p.name: self._host[p.name][:n].astype(np.float32, copy=True) for p in plans if not p.is_input}
        return Outputs(score=values["score"].reshape(-1), spoof_map=values["spoof_map"], backend=BACKEND,
                       provider=self.provider, trace_rgb=values.get("trace_rgb"), trace_depth=values.get("trace_depth"))

    def close(self) -> None:
        if getattr(self, "_device", None):
            for buffer in self._device.values():
                buffer.free()
            self._device = {}
            self._context = None
            self._engine = None
            self._context_cuda.detach()


def open_tensorrt_runner(path: Path, options: RunnerOptions) -> TensorRTRunner:
    return TensorRTRunner(path, options)
