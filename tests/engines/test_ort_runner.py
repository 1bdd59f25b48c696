"""The ONNX Runtime runner: Runner contract, provider reporting, input validation, corrupt files."""

from __future__ import annotations

import numpy as np
import pytest

from tiny_pad_model import CONTRACT, SIZE
from edge.errors import EngineError, ModelError
from engines.runner import Runner, open_runner


def batch(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, 3, SIZE, SIZE), dtype=np.float32), rng.random((n, 1, SIZE, SIZE), dtype=np.float32)


def test_runner_contract(tiny_onnx):
    runner = open_runner(tiny_onnx, threads=1)
    try:
        assert isinstance(runner, Runner)
        assert runner.input_size == SIZE and runner.threshold == 0.5
        assert dict(runner.contract) == CONTRACT
        out = runner.run(*batch(3))
        assert out.score.shape == (3,) and out.score.dtype == np.float32
        assert out.spoof_map.shape[:2] == (3, 1)
        assert out.trace_rgb.shape == (3, 3, SIZE, SIZE) and out.trace_depth.shape == (3, 1, SIZE, SIZE)
        assert (out.backend, out.provider) == ("onnxruntime", "CPUExecutionProvider")
        single = runner.run(*(a[:1] for a in batch(3)))
        assert single.score[0] == pytest.approx(out.score[0], abs=1e-5)  # batch-independent
    finally:
        runner.close()


def test_score_variant_has_no_traces(tiny_score_onnx):
    runner = open_runner(tiny_score_onnx, threads=1)
    out = runner.run(*batch(2))
    assert out.trace_rgb is None and out.trace_depth is None


@pytest.mark.parametrize("mutate,message", [
    (lambda r, d: (r.astype(np.float64), d), "rgb must be float32"),
    (lambda r, d: (r, d[:, :, :16, :16]), r"depth must have shape \[N, 1, 32, 32\]"),
    (lambda r, d: (r[0], d), r"rgb must have shape \[N, 3, 32, 32\], got \[3, 32, 32\]"),
    (lambda r, d: (r, d[:1]), "rgb has batch 2 but depth has batch 1"),
    (lambda r, d: (r.tolist(), d), "rgb must be a numpy array"),
])
def test_input_validation_names_the_array(tiny_onnx, mutate, message):
    runner = open_runner(tiny_onnx, threads=1)
    with pytest.raises((ValueError, TypeError), match=message):
        runner.run(*mutate(*batch(2)))


def test_missing_gpu_provider_is_engine_error(tiny_onnx):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has CUDA: the no-GPU refusal cannot be shown here")
    with pytest.raises(EngineError, match="no CUDAExecutionProvider.*--allow-cpu-fallback"):
        open_runner(tiny_onnx, providers=["cuda"])


def test_allowed_cpu_fallback_is_reported(tiny_onnx, caplog):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has CUDA: no fallback happens here")
    runner = open_runner(tiny_onnx, providers=["cuda"], allow_cpu_fallback=True, threads=1)
    assert runner.run(*batch(1)).provider == "CPUExecutionProvider"


def test_corrupt_onnx_is_one_line_model_error(tmp_path, tiny_onnx):
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(tiny_onnx.read_bytes()[:500])  # truncated mid-weights
    with pytest.raises(ModelError) as info:
        open_runner(bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


def test_model_without_contract_is_refused(tmp_path, tiny_onnx):
    onnx = pytest.importorskip("onnx", reason="the onnx package is needed to strip metadata")
    model = onnx.load(str(tiny_onnx))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    with pytest.raises(ModelError, match="no edgefas metadata"):
        open_runner(bare)


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        open_runner(tmp_path / "absent.onnx")
    odd = tmp_path / "model.bin"
    odd.write_bytes(b"\0")
    with pytest.raises(ModelError, match="onnxruntime .*tensorrt"):
        open_runner(odd)
