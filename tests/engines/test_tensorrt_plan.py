"""TensorRT build/run logic that needs no GPU: buffer plans, precision checks, trtexec line, missing TensorRT.

Building and running a real engine needs TensorRT and an NVIDIA GPU: those tests skip with the reason
(tools/gpu_check.sh runs them on a GPU machine).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from edge.errors import ConfigError, EngineError, MissingExtraError, ModelError
from engines.metadata import ModelMetadata
from engines.tensorrt_build import (
    BuildRequest,
    check_int8_inputs,
    check_precision_support,
    profile_shapes,
    trtexec_command,
)
from engines.tensorrt_runner import (
    TensorSpec,
    binding_plan,
    buffer_nbytes,
    check_batch,
    require_tensorrt,
    resolve_shape,
)

HAS_TRT = importlib.util.find_spec("tensorrt") is not None

SPECS = [
    TensorSpec("rgb", True, np.dtype(np.float32), (-1, 3, 128, 128)),
    TensorSpec("depth", True, np.dtype(np.float32), (-1, 1, 128, 128)),
    TensorSpec("score", False, np.dtype(np.float32), (-1,)),
    TensorSpec("spoof_map", False, np.dtype(np.float16), (-1, 1, 32, 32)),
]


def test_binding_plan_sizes():
    plan = {p.name: p for p in binding_plan(SPECS, 4)}
    assert plan["rgb"].shape == (4, 3, 128, 128) and plan["rgb"].nbytes == 4 * 3 * 128 * 128 * 4
    assert plan["score"].nbytes == 16
    assert plan["spoof_map"].nbytes == 4 * 32 * 32 * 2  # fp16 output: 2 bytes per value
    assert [p.is_input for p in binding_plan(SPECS, 1)] == [True, True, False, False]


def test_plan_refuses_foreign_engines():
    with pytest.raises(ModelError, match="engine inputs are"):
        binding_plan([TensorSpec("input", True, np.dtype(np.float32), (1, 3, 8, 8))] + SPECS[2:], 1)
    with pytest.raises(ModelError, match="beyond the batch axis"):
        resolve_shape((-1, 3, -1, -1), 2)
    with pytest.raises(ValueError, match="dynamic dimension"):
        buffer_nbytes((-1, 3), np.float32)
    with pytest.raises(ValueError, match="profile maximum 8"):
        check_batch(9, 8)


@pytest.mark.parametrize("precision,cc,fast16,fast8,message", [
    ("int8", (5, 3), True, False, "no fast INT8.*--precision fp16"),
    ("int8", (6, 0), True, True, "needs 6.1"),
    ("fp16", (5, 0), False, False, "no fast FP16"),
])
def test_precision_support_refusals(precision, cc, fast16, fast8, message):
    with pytest.raises(EngineError, match=message):
        check_precision_support(precision, cc, fast16, fast8, "Old GPU")


def test_precision_support_accepts_orin():
    check_precision_support("int8", (8, 7), True, True, "Orin")
    check_precision_support("fp16", (8, 7), True, True, "Orin")


def test_trtexec_line(tmp_path):
    request = BuildRequest(Path("m/edge.onnx"), "int8", Path("out"), Path("calib.npz"), workspace_mib=512)
    cmd = trtexec_command(request, 128)
    assert cmd[0] == "trtexec" and "--onnx=m/edge.onnx" in cmd and "--saveEngine=out/edge.int8.engine" in cmd
    assert "--minShapes=rgb:1x3x128x128,depth:1x1x128x128" in cmd
    assert "--maxShapes=rgb:8x3x128x128,depth:8x1x128x128" in cmd
    assert "--memPoolSize=workspace:512M" in cmd and {"--fp16", "--int8"} <= set(cmd)
    assert any(c.startswith("--calib=") for c in cmd)
    assert not any(c.startswith("--calib=") for c in trtexec_command(request, 128, explicit_int8=True))
    assert "--fp16" not in trtexec_command(BuildRequest(Path("a.onnx"), "fp32", Path("o")), 64)


def test_profile_and_request_validation():
    shapes = profile_shapes(128, 1, 8)
    assert shapes["depth"] == {"min": [1, 1, 128, 128], "opt": [1, 1, 128, 128], "max": [8, 1, 128, 128]}
    with pytest.raises(ConfigError, match="precision"):
        BuildRequest(Path("a.onnx"), "int4", Path("o"))
    with pytest.raises(ConfigError, match="workspace"):
        BuildRequest(Path("a.onnx"), "fp16", Path("o"), workspace_mib=1)


def test_int8_needs_calibration_or_qdq():
    fp32 = ModelMetadata(input_size=128)
    with pytest.raises(ConfigError, match="--calib"):
        check_int8_inputs(BuildRequest(Path("a.onnx"), "int8", Path("o")), fp32)
    check_int8_inputs(BuildRequest(Path("a.onnx"), "int8", Path("o")), ModelMetadata(input_size=128, precision="int8"))
    with pytest.raises(ConfigError, match="--precision int8"):
        check_int8_inputs(BuildRequest(Path("a.onnx"), "fp16", Path("o")), ModelMetadata(input_size=8, precision="int8"))


def test_implicit_int8_build_needs_a_calibration_maker(tiny_score_onnx, tmp_path):
    """An fp32 ONNX built at INT8 calibrates through the maker the caller hands in (engines imports no calibration)."""
    from engines.tensorrt_build import build_engine

    with pytest.raises(ValueError, match="int8_calibration"):
        build_engine(tiny_score_onnx, "int8", tmp_path, calib=tmp_path / "calib.npz")


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here: the missing-TensorRT message cannot be shown")
def test_missing_tensorrt_names_extra_and_jetpack():
    with pytest.raises(MissingExtraError) as info:
        require_tensorrt("building a TensorRT engine")
    message = str(info.value)
    assert "edgefas[tensorrt]" in message and "--system-site-packages" in message and "\n" not in message
    assert info.value.exit_code == 2


@pytest.mark.skipif(not HAS_TRT, reason="needs TensorRT and an NVIDIA GPU (run tools/gpu_check.sh on one)")
@pytest.mark.hardware
def test_build_and_run_engine(tmp_path, tiny_score_onnx):
    from engines.runner import open_runner
    from engines.tensorrt_build import build_engine

    result = build_engine(tiny_score_onnx, "fp16", tmp_path)
    runner = open_runner(result.engine_path)
    reference = open_runner(tiny_score_onnx, threads=1)
    rng = np.random.default_rng(0)
    rgb = rng.random((2, 3, reference.input_size, reference.input_size), dtype=np.float32)
    depth = rng.random((2, 1, reference.input_size, reference.input_size), dtype=np.float32)
    assert np.abs(runner.run(rgb, depth).score - reference.run(rgb, depth).score).max() < 1e-2
