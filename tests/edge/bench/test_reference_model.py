"""The MiniFASNetV2-sized reference of ``edgefas bench``: its graph, its cost against the published
figures, its cache, the interleaved model-only timing and its place in the report and the CLI."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import BENCH_FEED, STALL_S

pytest.importorskip("onnx", reason="onnx (edgefas[train]) builds the reference graph")


@pytest.fixture(scope="module")
def reference_file(tmp_path_factory):
    from edge.bench.reference import ensure_reference

    return ensure_reference(tmp_path_factory.mktemp("reference"))


def test_graph_takes_one_80x80_rgb_crop_and_returns_three_logits(reference_file):
    from edge.bench.reference import batch_one_inputs, open_session

    session = open_session(reference_file, threads=1)
    [value] = session.get_inputs()
    assert value.name == "rgb" and value.shape[1:] == [3, 80, 80]
    feeds = batch_one_inputs(session)
    assert feeds["rgb"].shape == (1, 3, 80, 80) and feeds["rgb"].dtype == np.float32
    [logits] = session.run(["logits"], feeds)
    assert logits.shape == (1, 3) and np.all(np.isfinite(logits))
    assert session.get_session_options().intra_op_num_threads == 1


def test_counted_cost_is_within_tolerance_of_the_published_figures(reference_file):
    from edge.bench.model_cost import count_onnx_cost
    from edge.bench.reference import MINIFASNET_V2, MINIFASNET_V2_PUBLISHED as published

    cost = count_onnx_cost(reference_file)
    assert cost.params == pytest.approx(published.params, rel=published.params_tolerance)
    # the published "flops" are multiply-adds: as two FLOPs per MAC the count would be about twice as far off
    assert cost.macs == pytest.approx(published.macs, rel=published.macs_tolerance)
    assert abs(2 * cost.macs - published.macs) > 0.5 * published.macs
    # 4 stride-2 layers take 80 to 5: the head's depthwise kernel covers the whole map
    assert MINIFASNET_V2.head_kernel == 5
    # stem (2) + head (2) + 3 convolutions per bottleneck, two Gemm
    bottlenecks = sum(1 + len(s.residual_expands) for s in MINIFASNET_V2.stages)
    assert cost.counted_nodes == 2 + 3 * bottlenecks + 2 + 2


def test_built_file_is_cached_by_its_config(tmp_path, reference_file):
    from dataclasses import replace

    from edge.bench.reference import MINIFASNET_V2, ensure_reference

    first = ensure_reference(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert ensure_reference(tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert first.read_bytes() == reference_file.read_bytes()  # same config and seed: the same graph
    other = ensure_reference(tmp_path, replace(MINIFASNET_V2, seed=1))
    assert other != first and other.is_file()
    assert not list(tmp_path.glob(".*partial*"))


def test_calls_take_turns_in_blocks_and_are_timed_by_the_given_clock():
    from edge.bench.reference import time_interleaved

    calls_made: list[str] = []
    ticks = iter(range(10_000))

    def clock() -> float:  # each reading 1 ms after the last: a call lasts 1 ms
        return next(ticks) / 1000.0

    calls = [lambda: calls_made.append("a"), lambda: calls_made.append("b")]
    times, order = time_interleaved(calls, frames=10, warmup=2, block=4, clock=clock)
    assert calls_made[:4] == ["a", "a", "b", "b"]  # warm-up first, untimed
    assert order == [0] * 4 + [1] * 4 + [0] * 4 + [1] * 4 + [0] * 2 + [1] * 2
    assert [len(t) for t in times] == [10, 10] and len(calls_made) == 24
    assert all(ms == pytest.approx(1.0) for t in times for ms in t)
    with pytest.raises(ValueError, match="frames >= 1"):
        time_interleaved(calls, frames=0, warmup=0)


def _bench(cache_dir, edge_fp32, yunet_dir, **extra):
    from edge.bench.report import BenchOptions, run_bench

    return run_bench(BenchOptions(spec="synthetic:live", models=(edge_fp32,), frames=3, warmup=1,
                                  modes=("sequential",), threads=1, detector="yunet", model_dir=yunet_dir,
                                  feed=BENCH_FEED, cache_dir=cache_dir, ceiling_side=64, ceiling_runs=1,
                                  paths=("full-frame",), stall_timeout_s=STALL_S, **extra))


@pytest.fixture()
def private_cache(tmp_path, bench_cache):
    """The bench's recording, in a cache folder of this test's own (no reference file built there yet)."""
    for path in bench_cache.glob("*.db3"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_bench_json_carries_the_reference_row_and_its_ratios(private_cache, edge_fp32, yunet_dir):
    from edge.bench.reference import REFERENCE_LABEL

    data = json.loads(json.dumps(_bench(private_cache, edge_fp32, yunet_dir).to_json()))
    ref = data["reference"]
    assert ref["label"] == REFERENCE_LABEL and ref["threads"] == data["threads"] == 1 and ref["batch"] == 1
    assert [r["label"] for r in ref["rows"]] == ["onnxruntime/fp32", REFERENCE_LABEL]
    model, reference = ref["rows"]
    assert model["model"] == str(edge_fp32) and reference["model"].startswith(str(private_cache))
    for row in ref["rows"]:
        assert row["ms"]["frames"] == 3 and row["ms"]["median_ms"] > 0
    ratio = ref["ratios"][f"onnxruntime/fp32 vs {REFERENCE_LABEL}"]
    assert ratio == model["over_reference"]
    assert ratio["ms_ratio"] == pytest.approx(model["ms"]["median_ms"] / reference["ms"]["median_ms"], abs=2e-3)
    assert ratio["macs_ratio"] == pytest.approx(model["cost"]["macs"] / reference["cost"]["macs"], abs=1e-3)
    assert ref["published"]["params"] == 430_000 and "Silent-Face-Anti-Spoofing" in ref["published"]["source"]
    assert ref["order"][:2] == [["onnxruntime/fp32", 3], [REFERENCE_LABEL, 3]]  # 3 frames: one block each
    assert not any(s["label"] == REFERENCE_LABEL for s in data["skipped"])


def test_reference_is_skipped_with_the_reason_without_onnx(monkeypatch, private_cache, edge_fp32, yunet_dir):
    from edge.bench.reference import REFERENCE_LABEL

    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now fails, as where the extra is missing
    report = _bench(private_cache, edge_fp32, yunet_dir)
    assert report.reference is None and report.to_json()["reference"] is None
    [skipped] = [s for s in report.skipped if s.label == REFERENCE_LABEL]
    assert "'onnx'" in skipped.reason and "pip install 'edgefas[train]'" in skipped.reason
    assert not list(private_cache.glob("reference-*"))


def test_no_reference_option_leaves_it_out(private_cache, edge_fp32, yunet_dir):
    report = _bench(private_cache, edge_fp32, yunet_dir, reference=False)
    assert report.reference is None and not report.skipped
    assert not list(private_cache.glob("reference-*"))


def test_cli_prints_the_model_only_table(tmp_path, bench_cache, edge_fp32, yunet_dir):
    from edge.cli.app import app

    args = ["bench", "--camera", "synthetic:live", "--model", str(edge_fp32), "--no-eager", "--frames", "2",
            "--warmup", "1", "--mode", "sequential", "--threads", "1", "--seed", str(BENCH_FEED.seed),
            "--record-frames", str(BENCH_FEED.frames), "--cache-dir", str(bench_cache), "--model-dir",
            str(yunet_dir), "--detector", "yunet", "--roi", "off", "--stall-timeout", str(STALL_S)]
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, [*args, "--json", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "model only (batch 1, 1 threads, interleaved)" in result.output
    assert "ms / reference" in result.output and "reference/minifasnetv2-80" in result.output
    data = json.loads(out.read_text())
    ms_ratio = data["reference"]["rows"][0]["over_reference"]["ms_ratio"]
    assert f"{ms_ratio:.2f}x" in result.output
    result = CliRunner().invoke(app, [*args, "--no-reference"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "model only" not in result.output and "onnxruntime/fp32" in result.output
