"""Opening an ONNX Runtime session on a model file, with one-line errors for a bad file.

Shared by the runner (:mod:`engines.ort_runner`) and by :func:`engines.metadata.read_metadata`,
which reads a model's contract through ONNX Runtime because a Jetson may lack the onnx package.
``onnxruntime`` is imported inside :func:`load_session`, so importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edge.errors import ModelError

CPU = "CPUExecutionProvider"


def load_session(path: Path, providers: Sequence[str], options=None):
    """An ``onnxruntime.InferenceSession``; a corrupt or foreign file is a one-line ModelError naming it."""
    import onnxruntime as ort
    from onnxruntime.capi.onnxruntime_pybind11_state import (
        Fail,
        InvalidArgument,
        InvalidGraph,
        InvalidProtobuf,
        NoSuchFile,
    )
    from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as OrtNotImplemented

    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=list(providers))
    except (Fail, InvalidArgument, InvalidGraph, InvalidProtobuf, NoSuchFile, OrtNotImplemented) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"ONNX Runtime cannot load '{path}' ({first}); the file is corrupt or not "
                         f"an edgefas model: re-export it with: edgefas export") from None


def session_options(threads: int):
    """The session options every edgefas model runs under: ``threads`` intra-op threads, one inter-op
    thread (one model graph, no parallel branches worth a second pool), sequential execution, every
    graph optimisation, errors-only logging (our own log says which provider runs)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return so
