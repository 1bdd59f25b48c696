"""Engine manifest: JSON round trip and refusal of a mismatched platform with the rebuild command."""

from __future__ import annotations

import pytest

from edge.errors import EngineError
from engines.manifest import EngineManifest, check_manifest, manifest_path, read_manifest, write_manifest


def manifest(**changes) -> EngineManifest:
    values = dict(
        engine_file="edge.fp16.engine", engine_sha256="a" * 64, tensorrt_version="10.3.0",
        gpu_name="Orin", compute_capability="8.7", precision="fp16",
        input_shapes={"rgb": {"min": [1, 3, 128, 128], "opt": [1, 3, 128, 128], "max": [8, 3, 128, 128]}},
        onnx_file="models/edge.onnx", onnx_sha256="b" * 64, calibration_sha256="", flags=("FP16",),
        workspace_mib=1024, created_utc="2026-01-01T00:00:00Z",
        rebuild_command=("edgefas", "build-engine", "--onnx", "models/edge.onnx", "--precision", "fp16",
                         "--out", "engines", "--workspace-mib", "1024"),
        model_metadata={"edgefas.input_size": "128", "edgefas.threshold": "0.42"},
        accuracy_gate={"accepted": True, "max_abs_score": 0.003},
    )
    values.update(changes)
    return EngineManifest(**values)


def test_round_trip(tmp_path):
    original = manifest()
    engine = tmp_path / "edge.fp16.engine"
    path = write_manifest(original, engine)
    assert path == manifest_path(engine) and path.name == "edge.fp16.engine.manifest.json"
    assert read_manifest(engine) == original


def test_matching_platform_passes():
    check_manifest(manifest(), "10.3.0", "Orin", "8.7", "a" * 64)


@pytest.mark.parametrize("version,gpu,cc,sha,expected", [
    ("10.7.0", "Orin", "8.7", None, "built with TensorRT 10.3.0, this is 10.7.0"),
    ("10.3.0", "NVIDIA GeForce RTX 3060", "8.6", None, "built on 'Orin', this GPU is 'NVIDIA GeForce RTX 3060'"),
    ("10.3.0", "Orin", "8.6", None, "compute capability 8.7, this GPU has 8.6"),
    ("10.3.0", "Orin", "8.7", "c" * 64, "does not match its manifest's sha256"),
])
def test_mismatch_refused_with_rebuild_command(version, gpu, cc, sha, expected):
    with pytest.raises(EngineError) as info:
        check_manifest(manifest(), version, gpu, cc, sha)
    message = str(info.value)
    assert expected in message and "\n" not in message
    assert message.endswith("rebuild it with: edgefas build-engine --onnx models/edge.onnx --precision fp16 "
                            "--out engines --workspace-mib 1024")


def test_missing_and_corrupt_manifest(tmp_path):
    engine = tmp_path / "x.engine"
    with pytest.raises(EngineError, match="has no manifest"):
        read_manifest(engine)
    manifest_path(engine).write_text("{not json")
    with pytest.raises(EngineError, match="unreadable"):
        read_manifest(engine)
