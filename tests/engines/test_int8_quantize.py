"""INT8 Q/DQ quantisation of the test model and the accuracy gate against fp32."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calibration.calibset import CalibItem, build_calibration_set, load_calibration_set, save_calibration_set
from edge.errors import ConfigError, ModelError
from tiny_pad_model import CONTRACT, sample_batch

onnx = pytest.importorskip("onnx", reason="the onnx package (edgefas[train]) is needed for quantisation")


def calib_file(path, contract=CONTRACT, n=48, seed=1):
    rgb, depth = sample_batch(n, seed=seed)
    items = (CalibItem(r, d) for r, d in zip(rgb, depth))
    return save_calibration_set(build_calibration_set(items, n, "test:sample_batch", contract), path)


def calib_set(path, contract=CONTRACT, n=48, seed=1):
    """The set as quantisation takes it: loaded (and verified) from the file it was saved to."""
    return load_calibration_set(calib_file(path, contract, n, seed))


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory, tiny_score_onnx):
    from engines.quantize import quantize_int8

    work = tmp_path_factory.mktemp("int8")
    result = quantize_int8(tiny_score_onnx, calib_set(work / "calib.npz"), work / "tiny.int8.onnx")
    return result


def test_qdq_graph_and_metadata(int8_model):
    from engines.metadata import read_metadata

    model = onnx.load(str(int8_model.onnx_path))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert int8_model.qdq_nodes >= 6  # at least the input of each of the three convs, quantised and back
    meta = read_metadata(int8_model.onnx_path)
    assert meta.precision == "int8" and dict(meta.preprocess) == CONTRACT
    assert meta.calibration_sha256 == int8_model.calibration_sha256
    # TensorRT takes only symmetric INT8: every zero point must be 0.
    zero_points = {n.input[2] for n in model.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2}
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    assert zero_points and all(not inits[z].any() for z in zero_points if z in inits)


def test_int8_agrees_with_fp32(tmp_path, int8_model, tiny_score_onnx):
    from engines.accuracy_gate import run_accuracy_gate
    from engines.runner import open_runner

    fp32 = open_runner(tiny_score_onnx, threads=1)
    int8 = open_runner(int8_model.onnx_path, threads=1)
    rgb, depth = sample_batch(64, seed=9)  # not the calibration samples
    reference = fp32.run(rgb, depth).score
    threshold = float(np.median(reference))  # the hardest place: half the samples on each side
    batches = [(rgb[i:i + 16], depth[i:i + 16]) for i in range(0, 64, 16)]
    result = run_accuracy_gate(fp32, int8, batches, threshold=threshold)
    assert result.samples == 64 and result.reference.startswith("onnxruntime/CPUExecutionProvider/fp32")
    assert result.candidate.endswith("/int8")
    assert 0 < result.max_abs_score <= 0.05  # quantisation changes scores, but little
    assert result.agreement >= 0.9
    record = json.loads(result.write(tmp_path / "gate.json").read_text())
    assert record["accepted"] == result.accepted and record["tolerance"]["min_agreement"] == 0.99


def test_contract_mismatch_refused(tmp_path, tiny_score_onnx):
    from engines.quantize import quantize_int8

    from edge.face.preprocess import PreprocessConfig

    other_contract = PreprocessConfig(size_px=32, depth_window_mm=150.0).to_metadata()
    other = calib_set(tmp_path / "other.npz", contract=other_contract, n=4)
    with pytest.raises(ModelError, match="preprocess.depth_window_mm: model=100.0 set=150.0"):
        quantize_int8(tiny_score_onnx, other, tmp_path / "x.onnx")


def test_unknown_method(tmp_path, tiny_score_onnx):
    from engines.quantize import quantize_int8

    with pytest.raises(ConfigError, match="minmax"):
        quantize_int8(tiny_score_onnx, calib_set(tmp_path / "c.npz", n=4), tmp_path / "x.onnx", method="kl")


def test_gate_arithmetic_refuses_flips():
    from engines.accuracy_gate import GateTolerance, judge_scores

    ref = np.array([0.1, 0.2, 0.49, 0.51, 0.9], dtype=np.float32)
    cand = np.array([0.1, 0.2, 0.51, 0.51, 0.9], dtype=np.float32)  # one decision flips at 0.5
    result = judge_scores(ref, cand, 0.5, GateTolerance())
    assert (result.flips, result.agreement) == (1, pytest.approx(0.8))
    assert result.max_abs_score == pytest.approx(0.02) and result.median_abs_score == 0.0
    assert not result.accepted and any("agreement" in r for r in result.reasons)
    assert judge_scores(ref, ref.copy(), 0.5, GateTolerance()).accepted


def test_gate_needs_a_threshold(tiny_score_onnx, tmp_path):
    from engines.accuracy_gate import run_accuracy_gate
    from engines.metadata import read_metadata, write_metadata
    from engines.runner import open_runner
    from dataclasses import replace

    bare = write_metadata(tiny_score_onnx, replace(read_metadata(tiny_score_onnx), threshold=None), tmp_path / "t.onnx")
    runner = open_runner(bare, threads=1)
    with pytest.raises(ConfigError, match="calibrate threshold"):
        run_accuracy_gate(runner, runner, [sample_batch(2)])


@pytest.fixture(scope="module")
def cpu_int8_model(tmp_path_factory, tiny_score_onnx):
    from engines.quantize import quantize_int8

    work = tmp_path_factory.mktemp("int8cpu")
    return quantize_int8(tiny_score_onnx, calib_set(work / "calib.npz"), work / "tiny.cpu.onnx", target="cpu")


def test_cpu_flavour_is_asymmetric_and_agrees(cpu_int8_model, int8_model, tiny_score_onnx):
    from engines.accuracy_gate import run_accuracy_gate
    from engines.metadata import read_metadata
    from engines.quantize import int8_target_of
    from engines.runner import open_runner

    assert cpu_int8_model.target == "cpu" and cpu_int8_model.to_json()["target"] == "cpu"
    assert int8_target_of(onnx.load(str(cpu_int8_model.onnx_path))) == "cpu"  # zero points TensorRT refuses
    assert int8_target_of(onnx.load(str(int8_model.onnx_path))) == "tensorrt"
    assert read_metadata(cpu_int8_model.onnx_path).precision == "int8"
    fp32 = open_runner(tiny_score_onnx, threads=1)
    cpu = open_runner(cpu_int8_model.onnx_path, threads=1)
    rgb, depth = sample_batch(64, seed=9)
    threshold = float(np.median(fp32.run(rgb, depth).score))
    result = run_accuracy_gate(fp32, cpu, [(rgb[i:i + 16], depth[i:i + 16]) for i in range(0, 64, 16)], threshold)
    assert 0 < result.max_abs_score <= 0.05 and result.agreement >= 0.9


def test_tensorrt_build_refuses_the_cpu_flavour_and_takes_the_symmetric_one(cpu_int8_model, int8_model):
    """A CPU-flavour INT8 file would fail deep inside TensorRT's parser: refuse it first, naming the file."""
    from engines.metadata import read_metadata
    from engines.tensorrt_build import BuildRequest, check_int8_inputs

    cpu = cpu_int8_model.onnx_path
    with pytest.raises(ConfigError, match=r"CPU flavour.*--build tensorrt") as err:
        check_int8_inputs(BuildRequest(cpu, "int8", cpu.parent), read_metadata(cpu))
    assert str(cpu) in str(err.value)
    sym = int8_model.onnx_path
    check_int8_inputs(BuildRequest(sym, "int8", sym.parent), read_metadata(sym))  # no error


def test_tensorrt_build_check_needs_no_onnx_package(cpu_int8_model, monkeypatch):
    """A Jetson may lack the onnx package: the flavour check is skipped there instead of demanding the
    train extra (TensorRT's parser then refuses the zero points itself)."""
    import engines.tensorrt_build as build
    from engines.metadata import read_metadata

    def no_onnx(name, *args):
        assert name == "onnx"
        return None

    monkeypatch.setattr(build.importlib.util, "find_spec", no_onnx)
    cpu = cpu_int8_model.onnx_path
    build.check_int8_inputs(build.BuildRequest(cpu, "int8", cpu.parent), read_metadata(cpu))  # no error


def test_unknown_target(tmp_path, tiny_score_onnx):
    from engines.quantize import quantize_int8

    with pytest.raises(ConfigError, match="tensorrt, cpu"):
        quantize_int8(tiny_score_onnx, calib_set(tmp_path / "c.npz", n=4), tmp_path / "x.onnx", target="gpu")


def test_bench_tool_measures_both_flavours(tmp_path, tiny_score_onnx, capsys):
    from dataset_fixture_loader import load_tool

    bench = load_tool("bench_int8")
    calib = calib_file(tmp_path / "calib.npz", n=16)
    holdout = calib_file(tmp_path / "holdout.npz", n=32, seed=5)
    code = bench.main(["--fp32", str(tiny_score_onnx), "--calib", str(calib), "--holdout", str(holdout),
                       "--runs", "3", "--warmup", "1", "--threads", "1", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and set(report["speedup"]) == {"int8-tensorrt", "int8-cpu"}
    assert all(value > 0 for value in report["speedup"].values())
    assert {row["samples"] for row in report["agreement"].values()} == {32}
    assert all(0.0 <= row["agreement"] <= 1.0 for row in report["agreement"].values())


def test_named_scopes_stay_fp32(tmp_path, tiny_score_onnx):
    """``fp32_scopes``: every node under a named scope keeps fp32 inputs, the rest is still quantised."""
    from engines.quantize import quantize_int8

    convs = [n.name for n in onnx.load(str(tiny_score_onnx)).graph.node if n.op_type == "Conv"]
    assert len(convs) >= 2
    kept = convs[0]
    calib = calib_set(tmp_path / "calib.npz")
    # no default parts kept, so the scope is the only thing left in fp32
    result = quantize_int8(tiny_score_onnx, calib, tmp_path / "part.int8.onnx", fp32_scopes=(kept,), fp32_parts=())
    bare = quantize_int8(tiny_score_onnx, calib, tmp_path / "bare.int8.onnx", fp32_parts=())
    graph = onnx.load(str(result.onnx_path)).graph
    producers = {o: n for n in graph.node for o in n.output}
    node = next(n for n in graph.node if n.name.startswith(kept) and n.op_type == "Conv")
    weight = producers.get(node.input[1])
    assert weight is None or weight.op_type != "DequantizeLinear", "the excluded conv keeps fp32 weights"
    others = [n for n in graph.node if n.op_type == "Conv" and not n.name.startswith(kept)]
    assert all(producers.get(n.input[1]) is not None and producers[n.input[1]].op_type == "DequantizeLinear"
               for n in others), "every other conv is still quantised"
    assert 0 < result.qdq_nodes < bare.qdq_nodes, "fewer Q/DQ nodes, but the rest still quantised"


def test_depth_entry_is_found_from_the_graph(tiny_score_onnx):
    """The depth-only nodes: the tiny model's depth block and depth trace head, nothing that also reads rgb."""
    from engines.quantize import depth_entry_nodes

    graph = onnx.load(str(tiny_score_onnx)).graph
    names = depth_entry_nodes(graph)
    convs = {n.name for n in graph.node if n.op_type == "Conv" and n.name in names}
    assert convs == {n.name for n in graph.node if n.op_type == "Conv" and ("/depth/" in n.name or "trace_depth" in n.name)}
    # the concatenation of both streams and everything after it read rgb too
    later = [n.name for n in graph.node if n.op_type == "Concat" or n.name.startswith(("/fuse", "/head", "/rgb"))]
    assert later and not set(later) & set(names)


def test_cpu_flavour_keeps_the_depth_entry_in_fp32_by_default(tmp_path, tiny_score_onnx):
    from engines.quantize import quantize_int8

    calib = calib_set(tmp_path / "calib.npz")
    kept = quantize_int8(tiny_score_onnx, calib, tmp_path / "cpu.onnx", target="cpu")
    bare = quantize_int8(tiny_score_onnx, calib, tmp_path / "bare.onnx", target="cpu", fp32_parts=())
    assert kept.fp32_parts == ("depth-entry", "depth-decoder") and bare.fp32_parts == ()
    assert kept.to_json()["fp32_parts"] == ["depth-entry", "depth-decoder"]
    assert 0 < kept.qdq_nodes < bare.qdq_nodes

    def conv_weight_quantised(path, depth_only):
        graph = onnx.load(str(path)).graph
        producers = {o: n for n in graph.node for o in n.output}
        convs = [n for n in graph.node if n.op_type == "Conv" and ("depth" in n.name) == depth_only
                 and "trace" not in n.name]
        assert convs
        return [producers.get(n.input[1]) is not None and producers[n.input[1]].op_type == "DequantizeLinear"
                for n in convs]

    assert not any(conv_weight_quantised(kept.onnx_path, True)), "the depth entry's convs keep fp32 weights"
    assert all(conv_weight_quantised(kept.onnx_path, False)), "the colour stream and fusion are still quantised"
    assert all(conv_weight_quantised(bare.onnx_path, True)), "with no parts kept the depth entry is quantised"
    tensorrt = quantize_int8(tiny_score_onnx, calib, tmp_path / "trt.onnx")
    assert tensorrt.fp32_parts == ("depth-entry", "depth-decoder")  # both flavours keep the depth entry by default
    assert not any(conv_weight_quantised(tensorrt.onnx_path, True))


def test_fp32_parts_are_parsed_with_a_clear_error():
    from engines.quantize import parse_fp32_parts

    assert parse_fp32_parts("none") == ()
    assert parse_fp32_parts("depth-entry, decoders") == ("depth-entry", "decoders")
    for bad in ("depth", "", "none,decoders"):
        with pytest.raises(ConfigError, match="--keep-fp32"):
            parse_fp32_parts(bad)


def test_weight_width_is_recorded_and_8_bit_weights_warn_on_a_cpu_without_vnni(tmp_path, tiny_score_onnx, caplog):
    """Both flavours record their weight width; an 8-bit file on ONNX Runtime CPU of an x86 CPU without
    VNNI is named in a WARNING (it can decide differently there than its gate measured), a 7-bit one not."""
    import logging

    from engines.metadata import read_metadata
    from engines.ort_runner import cpu_has_vnni, warn_if_int8_may_saturate
    from engines.ort_session import CPU
    from engines.quantize import quantize_int8

    calib = calib_set(tmp_path / "calib.npz")
    seven = quantize_int8(tiny_score_onnx, calib, tmp_path / "cpu.onnx", target="cpu").onnx_path
    eight = quantize_int8(tiny_score_onnx, calib, tmp_path / "trt.onnx", target="tensorrt").onnx_path
    assert read_metadata(seven).int8_weight_bits == 7 and read_metadata(eight).int8_weight_bits == 8
    assert read_metadata(tiny_score_onnx).int8_weight_bits is None
    caplog.set_level(logging.WARNING, logger="engines.ort_runner")
    assert warn_if_int8_may_saturate(eight, read_metadata(eight), CPU, vnni=False)
    assert "trt.onnx has 8-bit INT8 weights" in caplog.text and "--build cpu" in caplog.text
    assert not warn_if_int8_may_saturate(seven, read_metadata(seven), CPU, vnni=False)
    assert not warn_if_int8_may_saturate(eight, read_metadata(eight), CPU, vnni=True)
    assert not warn_if_int8_may_saturate(eight, read_metadata(eight), "CUDAExecutionProvider", vnni=False)
    assert not warn_if_int8_may_saturate(tiny_score_onnx, read_metadata(tiny_score_onnx), CPU, vnni=False)

    assert cpu_has_vnni("flags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n", "x86_64") is True
    assert cpu_has_vnni("flags\t\t: fpu sse2 avx2 fma\n", "x86_64") is False
    assert cpu_has_vnni("flags\t\t: fpu avx2 avx_vnni\n", "AMD64") is True
    assert cpu_has_vnni("Features\t: fp asimd\n", "aarch64") is None
    assert cpu_has_vnni("processor\t: 0\n", "x86_64") is None


def test_runner_names_an_8_bit_file_when_the_cpu_has_no_vnni(tmp_path, tiny_score_onnx, caplog, monkeypatch):
    import logging

    import engines.ort_runner as ort_runner
    from engines.quantize import quantize_int8
    from engines.runner import open_runner

    eight = quantize_int8(tiny_score_onnx, calib_set(tmp_path / "calib.npz"), tmp_path / "old.onnx").onnx_path
    monkeypatch.setattr(ort_runner, "cpu_has_vnni", lambda: False)
    caplog.set_level(logging.WARNING, logger="engines.ort_runner")
    open_runner(eight, threads=1).close()
    assert "old.onnx has 8-bit INT8 weights" in caplog.text


def test_a_tensor_too_narrow_to_histogram_is_one_line_naming_the_method(tmp_path, tiny_score_onnx, monkeypatch):
    """The percentile and entropy calibrators histogram every tensor in 2048 bins; a tensor whose values
    barely vary (float32 denormals, e.g. behind a saturated sigmoid) cannot be split so finely, and ONNX
    Runtime's collector let numpy's ValueError through `calibrate int8` and the bundling tool (the tenth
    session's bundle of a new default). The collector is handed such a tensor here: the real model's
    activations cannot be steered there from its inputs."""
    import onnxruntime.quantization as ortq

    from edge.errors import EngineError
    from engines.quantize import quantize_int8

    def collector_meets_a_denormal_tensor(*args, **kwargs):
        denormal = (np.random.default_rng(0).random(64) * 1e-43).astype(np.float32)
        np.histogram(np.abs(denormal), bins=2048)  # numpy: "Too many bins for data range ..."
        raise AssertionError("numpy split the denormal range after all")

    monkeypatch.setattr(ortq, "quantize_static", collector_meets_a_denormal_tensor)
    with pytest.raises(EngineError, match="percentile") as err:
        quantize_int8(tiny_score_onnx, calib_set(tmp_path / "c.npz", n=4), tmp_path / "x.onnx", method="percentile")
    assert "\n" not in str(err.value) and "--method minmax" in str(err.value)
    assert not (tmp_path / "x.onnx").exists()
