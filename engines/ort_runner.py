"""ONNX Runtime runner: any machine, CPU by default, CUDA/TensorRT execution providers where installed.

Which provider actually runs is read back from ``session.get_providers()`` after the session is
built: ONNX Runtime drops a provider it cannot load with only a log line, and a kiosk that believes
it runs on the GPU while it runs on a loaded CPU misses its latency budget. Such a fallback is an
:class:`EngineError` unless the caller allowed it, and then it is logged at WARNING and visible in
every ``Outputs.provider``.
"""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge.errors import EngineError, ModelError
from engines.metadata import ModelMetadata, metadata_from_props
from engines.ort_session import CPU, load_session, session_options
from engines.outputs import Outputs
from engines.runner import INPUT_NAMES, ContractFromMetadata, RunnerOptions, check_inputs

log = logging.getLogger(__name__)

BACKEND = "onnxruntime"
PROVIDER_ALIASES = {"cpu": CPU, "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}

# Intra-op threads when the caller names none. ONNX Runtime's own default (0) takes every physical
# core; on a 6-core Jetson Orin Nano that starves the capture and face-detection threads that run
# beside the model. Four matches the big-core count of the Orin Nano/NX CPU (Cortex-A78AE clusters of
# 4, NVIDIA Jetson Orin Nano data sheet DS-11105) and is a sane ceiling on laptops.
DEFAULT_THREADS_MAX = 4


def resolve_providers(names: Sequence[str] | None) -> list[str]:
    """Map short names (cpu, cuda, tensorrt) to ONNX Runtime provider names; None = CPU only."""
    if not names:
        return [CPU]
    return [PROVIDER_ALIASES.get(n.lower(), n) for n in names]


def default_threads(cores_usable: int | None = None) -> int:
    """Intra-op threads when none are named: one core fewer than this process may use, 1 to 4.

    The capture thread (depth filters and ``rs.align``) and face detection run beside the model; a
    runner that takes every core makes them wait for its spinning workers (measured on the 2-core
    development machine: docs/benchmarks.md). ``edgefas bench`` uses the same rule.
    """
    if cores_usable is None:
        cores_usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(DEFAULT_THREADS_MAX, cores_usable - 1))


def cpu_has_vnni(cpuinfo: str | None = None, machine: str | None = None) -> bool | None:
    """Whether this x86 CPU has VNNI (AVX512-VNNI or AVX-VNNI); None off x86 or when it cannot be read.

    Without VNNI, ONNX Runtime's U8S8 and S8S8 kernels add pairs of 8-bit products in 16 bits, which
    saturate when the weights use the full 8-bit range (docs/int8.md, fifth session).
    """
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64", "i686", "x86"):
        return None
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    flags = next((line.partition(":")[2].split() for line in cpuinfo.splitlines() if line.startswith("flags")), None)
    if flags is None:
        return None
    return "avx512_vnni" in flags or "avx_vnni" in flags


def warn_if_int8_may_saturate(path: Path, metadata: ModelMetadata, provider: str, vnni: bool | None) -> bool:
    """Log a WARNING when an INT8 file with 8-bit weights runs on ONNX Runtime's CPU provider of an x86
    CPU without VNNI: its decisions there can differ from the ones its accuracy gate measured. True if warned."""
    if metadata.precision != "int8" or provider != CPU or vnni is not False or metadata.int8_weight_bits == 7:
        return False
    bits = "8-bit" if metadata.int8_weight_bits == 8 else "unrecorded (made before 7-bit CPU weights, so 8-bit)"
    log.warning("%s has %s INT8 weights and this CPU has no VNNI: ONNX Runtime can saturate them here and "
                "decide differently from the accuracy gate; re-quantise it with: edgefas calibrate int8 --build cpu",
                path.name, bits)
    return True


class OrtRunner(ContractFromMetadata):
    """A :class:`engines.runner.Runner` over one ``onnxruntime.InferenceSession``."""

    backend = BACKEND

    def __init__(self, path: Path, options: RunnerOptions = RunnerOptions()) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        requested = resolve_providers(options.providers)
        available = ort.get_available_providers()
        missing = [p for p in requested if p not in available]
        wants_gpu = any(p != CPU for p in requested)
        if missing and not options.allow_cpu_fallback:
            raise EngineError(
                f"ONNX Runtime here has no {', '.join(missing)} (available: {', '.join(available)}); "
                f"install onnxruntime-gpu / the JetPack wheel, or pass --allow-cpu-fallback"
            )
        usable = [p for p in requested if p in available] or [CPU]
        if CPU not in usable and options.allow_cpu_fallback:
            usable.append(CPU)
        self.threads = options.threads or default_threads()
        self._session = load_session(self.path, usable, session_options(self.threads))
        self.providers = tuple(self._session.get_providers())
        self.provider = self.providers[0]
        if wants_gpu and self.provider == CPU:
            if not options.allow_cpu_fallback:
                self.close()
                raise EngineError(f"ONNX Runtime fell back to CPU although {requested[0]} was requested "
                                  f"(its libraries failed to load); fix the CUDA install or pass --allow-cpu-fallback")
            log.warning("ONNX Runtime runs %s on CPU: requested %s could not be used", self.path.name, requested)
        self.metadata = self._read_metadata(options.check_threshold)
        self.input_size = self._check_signature()
        warn_if_int8_may_saturate(self.path, self.metadata, self.provider, cpu_has_vnni())

    def _read_metadata(self, check_threshold: bool) -> ModelMetadata:
        props = self._session.get_modelmeta().custom_metadata_map
        return metadata_from_props(props, f"'{self.path}'", check_threshold)

    def _check_signature(self) -> int:
        """Check input/output names and shapes once, at open; returns S."""
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = [o.name for o in self._session.get_outputs()]
        if set(inputs) != set(INPUT_NAMES) or "score" not in outputs or "spoof_map" not in outputs:
            raise ModelError(f"'{self.path}' has inputs {sorted(inputs)} and outputs {outputs}; edgefas needs "
                             f"inputs rgb, depth and outputs score, spoof_map: re-export it with: edgefas export")
        for name, channels in (("rgb", 3), ("depth", 1)):
            meta = inputs[name]
            shape = meta.shape
            if meta.type != "tensor(float)" or len(shape) != 4 or shape[1] != channels:
                raise ModelError(f"'{self.path}' input {name} is {meta.type} {shape}; expected float "
                                 f"[N, {channels}, S, S]: re-export it with: edgefas export")
        side = inputs["rgb"].shape[2]
        if not isinstance(side, int):
            side = self.metadata.input_size
        if side != self.metadata.input_size:
            raise ModelError(f"'{self.path}' takes {side}x{side} inputs but its metadata says "
                             f"{self.metadata.input_size}: re-export it with: edgefas export")
        self._output_names = outputs
        return int(side)

    def run(self, rgb: np.ndarray, depth: np.ndarray) -> Outputs:
        if self._session is None:
            raise ValueError(f"runner for '{self.path}' is closed")
        check_inputs(rgb, depth, self.input_size)
        values = dict(zip(self._output_names, self._session.run(self._output_names, {"rgb": rgb, "depth": depth})))
        return Outputs(
            score=np.asarray(values["score"], dtype=np.float32).reshape(-1),
            spoof_map=np.asarray(values["spoof_map"], dtype=np.float32),
            backend=BACKEND,
            provider=self.provider,
            trace_rgb=values.get("trace_rgb"),
            trace_depth=values.get("trace_depth"),
        )

    def close(self) -> None:
        self._session = None

    def __enter__(self) -> OrtRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_ort_runner(path: Path, options: RunnerOptions) -> OrtRunner:
    return OrtRunner(path, options)
