"""The manifest beside every TensorRT engine (DESIGN §5).

A serialized engine runs only on the GPU model and TensorRT version it was built with; loading it
elsewhere fails late and obscurely (or, across minor versions, not at all but slower). The manifest
records what the engine was built from and for, so that loading can refuse a mismatch up front with
the exact command that rebuilds it, and so that an engine in the field can show its evidence: the
hashes of the ONNX file and calibration set it came from and the accuracy gate it passed.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edge.errors import EngineError

MANIFEST_SUFFIX = ".manifest.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class EngineManifest:
    """What one engine file was built from and for. ``input_shapes`` maps each input to its
    optimisation-profile shapes ``{"min": [...], "opt": [...], "max": [...]}``."""

    engine_file: str  # file name, relative to the manifest's folder
    engine_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "8.7"
    precision: str  # fp32 | fp16 | int8
    input_shapes: Mapping[str, Mapping[str, list[int]]]
    onnx_file: str
    onnx_sha256: str
    calibration_sha256: str  # "" when no calibration set was involved
    flags: tuple[str, ...]
    workspace_mib: int
    created_utc: str
    rebuild_command: tuple[str, ...]
    model_metadata: Mapping[str, str] = field(default_factory=dict)  # the ONNX edgefas.* props
    accuracy_gate: Mapping[str, object] | None = None
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["flags"] = list(self.flags)
        data["rebuild_command"] = list(self.rebuild_command)
        return data

    @staticmethod
    def from_json(data: Mapping[str, object]) -> EngineManifest:
        values = dict(data)
        values["flags"] = tuple(values.get("flags", ()))
        values["rebuild_command"] = tuple(values.get("rebuild_command", ()))
        return EngineManifest(**values)

    @property
    def rebuild(self) -> str:
        return shlex.join(self.rebuild_command)


def manifest_path(engine_path: str | Path) -> Path:
    engine = Path(engine_path)
    return engine.with_name(engine.name + MANIFEST_SUFFIX)


def write_manifest(manifest: EngineManifest, engine_path: str | Path) -> Path:
    out = manifest_path(engine_path)
    out.write_text(json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n")
    return out


def read_manifest(engine_path: str | Path) -> EngineManifest:
    """The manifest beside ``engine_path``; missing or unreadable is an EngineError."""
    path = manifest_path(engine_path)
    if not path.is_file():
        raise EngineError(f"engine '{engine_path}' has no manifest ({path.name}); an engine of unknown origin "
                          f"is not loaded: rebuild it with: edgefas build-engine")
    try:
        return EngineManifest.from_json(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise EngineError(f"manifest '{path}' is unreadable ({str(exc).splitlines()[0]}); rebuild the engine "
                          f"with: edgefas build-engine") from None


def check_manifest(manifest: EngineManifest, running_trt_version: str, running_gpu: str,
                   running_compute_capability: str | None = None, engine_sha256: str | None = None) -> None:
    """Refuse an engine built for another TensorRT version or GPU, or whose bytes changed.

    TensorRT engines are not portable across TensorRT versions or GPU models (TensorRT developer
    guide, "Engine Compatibility"); the message carries the command that rebuilds this one.
    """
    problems = []
    if manifest.tensorrt_version != running_trt_version:
        problems.append(f"built with TensorRT {manifest.tensorrt_version}, this is {running_trt_version}")
    if manifest.gpu_name != running_gpu:
        problems.append(f"built on '{manifest.gpu_name}', this GPU is '{running_gpu}'")
    if running_compute_capability is not None and manifest.compute_capability != running_compute_capability:
        problems.append(f"built for compute capability {manifest.compute_capability}, this GPU has "
                        f"{running_compute_capability}")
    if engine_sha256 is not None and manifest.engine_sha256 != engine_sha256:
        problems.append("the engine file does not match its manifest's sha256")
    if problems:
        raise EngineError(f"engine '{manifest.engine_file}' cannot run here: {'; '.join(problems)}; "
                          f"rebuild it with: {manifest.rebuild}")
