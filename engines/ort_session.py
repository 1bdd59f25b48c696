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
