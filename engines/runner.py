"""The ``Runner`` interface and the one table that picks a backend for a model file.

A runner is opened from a path; the table maps file suffixes and backend names to the module that
implements them, so ``open_runner`` never grows an if/elif per backend and the CLI help, the error
for an unknown backend and the dispatch all read the same rows.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from edge.errors import ConfigError, ModelError
from engines.outputs import Outputs

log = logging.getLogger(__name__)

INPUT_NAMES = ("rgb", "depth")  # ONNX contract, DESIGN §5


@runtime_checkable
class Runner(Protocol):
    """Runs a PAD model on preprocessed batches.

    ``input_size`` is the square side S of ``rgb`` [N,3,S,S] and ``depth`` [N,1,S,S] (float32 in
    [0, 1], RGB order). ``contract`` is the preprocessing contract the model was trained with (read
    from the artifact, never from a config file); ``threshold`` is the one stored with it, or None.
    ``run`` checks its inputs and raises ValueError naming the array on a mismatch. A runner is not
    thread-safe: one per thread. ``close`` releases device memory and may be called twice.
    """

    path: Path
    backend: str
    input_size: int
    contract: Mapping[str, str]
    threshold: float | None

    def run(self, rgb: np.ndarray, depth: np.ndarray) -> Outputs: ...

    def close(self) -> None: ...


class ContractFromMetadata:
    """Mixin for runners that hold a ``metadata`` (engines.metadata.ModelMetadata): the contract and
    threshold come from the artifact, never from a config file (DESIGN §2)."""

    metadata: object

    @property
    def contract(self) -> Mapping[str, str]:
        return self.metadata.preprocess

    @property
    def threshold(self) -> float | None:
        return self.metadata.threshold


@dataclass(frozen=True)
class RunnerKind:
    backend: str
    suffixes: tuple[str, ...]
    summary: str
    opener: str  # "module:function" taking (path, RunnerOptions) -> Runner


@dataclass(frozen=True)
class RunnerOptions:
    """Options a runner understands; each backend ignores those that do not apply to it.

    ``providers``: ONNX Runtime execution providers in priority order ("cpu", "cuda", "tensorrt" or
    full names); None means CPU only. ``allow_cpu_fallback``: accept a session that ends up on CPU
    although a GPU provider was asked for (logged at WARNING and visible in ``Outputs.provider``).
    ``threads``: intra-op threads for CPU execution (None = the backend's deliberate default).
    ``check_threshold``: False opens a model whose stored threshold is outside its score's range
    (``engines.metadata.check_operating_point``), for ``calibrate threshold``, which replaces it.
    """

    providers: tuple[str, ...] | None = None
    allow_cpu_fallback: bool = False
    threads: int | None = None
    check_threshold: bool = True


RUNNERS: tuple[RunnerKind, ...] = (
    RunnerKind("onnxruntime", (".onnx",), "ONNX Runtime (CPU; CUDA/TensorRT execution providers if installed)",
               "engines.ort_runner:open_ort_runner"),
    RunnerKind("tensorrt", (".engine", ".plan"), "a serialized TensorRT engine with its manifest (NVIDIA GPU)",
               "engines.tensorrt_runner:open_tensorrt_runner"),
)


def backends_help() -> str:
    return "; ".join(f"{k.backend} ({', '.join(k.suffixes)}) = {k.summary}" for k in RUNNERS)


def runner_kind(path: Path, backend: str = "auto") -> RunnerKind:
    """The table row for ``backend``, or for the file suffix when ``backend`` is "auto"."""
    if backend != "auto":
        for kind in RUNNERS:
            if kind.backend == backend:
                return kind
        raise ConfigError(f"unknown backend '{backend}'; use auto or one of: "
                          + ", ".join(k.backend for k in RUNNERS))
    for kind in RUNNERS:
        if path.suffix.lower() in kind.suffixes:
            return kind
    raise ModelError(f"cannot tell the backend of '{path}' from its suffix; name it with --backend "
                     f"or use one of: {backends_help()}")


def open_runner(path: str | Path, backend: str = "auto", providers: Sequence[str] | None = None,
                allow_cpu_fallback: bool = False, threads: int | None = None, check_threshold: bool = True) -> Runner:
    """Open ``path`` with the runner its table row names and log what was resolved."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file '{path}' does not exist; export one with: edgefas export")
    if path.stat().st_size == 0:  # said before a backend loads (TensorRT may not be installed to say it)
        raise ModelError(f"model file '{path}' is empty; export it again with: edgefas export")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1 or None, got {threads}")
    kind = runner_kind(path, backend)
    module_name, _, function_name = kind.opener.partition(":")
    opener: Callable[[Path, RunnerOptions], Runner] = getattr(importlib.import_module(module_name), function_name)
    options = RunnerOptions(tuple(providers) if providers is not None else None, allow_cpu_fallback, threads,
                            check_threshold)
    runner = opener(path, options)
    log.info("model=%s backend=%s input=%d threshold=%s", path.name, runner.backend, runner.input_size,
             runner.threshold)
    return runner


def check_inputs(rgb: np.ndarray, depth: np.ndarray, input_size: int) -> int:
    """Validate one batch against the ONNX contract; returns N. Messages name the array and the fix."""
    for name, array, channels in (("rgb", rgb, 3), ("depth", depth, 1)):
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {type(array).__name__}")
        if array.dtype != np.float32:
            raise ValueError(f"{name} must be float32 in [0, 1], got {array.dtype}")
        expected = ("N", channels, input_size, input_size)
        if array.ndim != 4 or array.shape[1:] != expected[1:]:
            raise ValueError(f"{name} must have shape [N, {channels}, {input_size}, {input_size}], "
                             f"got {list(array.shape)}")
    if rgb.shape[0] != depth.shape[0]:
        raise ValueError(f"rgb has batch {rgb.shape[0]} but depth has batch {depth.shape[0]}")
    if rgb.shape[0] == 0:
        raise ValueError("rgb and depth hold an empty batch (N = 0)")
    return int(rgb.shape[0])
