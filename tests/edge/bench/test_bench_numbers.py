"""The bench's arithmetic: stage statistics, host share, matmul ceiling graph, MAC counting."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.bench.ceiling import matmul_model_bytes, measure_matmul_ceiling
from edge.bench.stages import STAGES, FrameTiming, host_share, summarise_ms, summarise_stages


def test_summary_is_median_and_p90():
    stats = summarise_ms([5.0, 1.0, 3.0, 2.0, 4.0])
    assert stats.median_ms == 3.0 and stats.frames == 5
    assert 4.0 < stats.p90_ms <= 5.0
    empty = summarise_ms([])
    assert empty.frames == 0 and math.isnan(empty.median_ms)


def test_stages_without_a_face_are_counted_only_where_they_ran():
    with_face = FrameTiming({"capture": 1.0, "align": 2.0, "detect": 3.0, "crop": 1.0, "infer": 10.0,
                             "decide": 0.1}, 17.5, True, 1)
    no_face = FrameTiming({"capture": 1.0, "align": 2.0, "detect": 3.0, "decide": 0.1}, 6.5, False, 0)
    stats = summarise_stages([with_face, no_face, with_face])
    assert set(stats) == set(STAGES)
    assert stats["infer"].frames == 2 and stats["detect"].frames == 3
    # host share: everything but inference over everything, from the medians
    assert host_share(stats) == pytest.approx(7.1 / 17.1)


@pytest.mark.parametrize("mode", ["sequential", "overlapped"])
def test_host_time_is_per_scored_frame_and_never_negative(mode):
    """Faceless frames (no inference, short intervals) are most of this run: the median interval of all
    frames (6.5 ms) is below the median inference (10 ms), so a difference of medians went negative."""
    from edge.bench.report import summarise_mode
    from edge.bench.stream import StreamRun

    scored = [FrameTiming({"detect": 3.0, "crop": 1.0, "infer": 10.0}, interval, True, 1) for interval in (12.0, 13.0, 16.0)]
    faceless = [FrameTiming({"detect": 3.0}, 6.5, False, 0)] * 5
    result = summarise_mode(StreamRun(mode, ("m",) * 8, {"m": scored + faceless}, 1.0, 1), "m")
    assert result.interval.median_ms == 6.5 and result.stages["infer"].median_ms == 10.0
    assert result.host_ms == pytest.approx(3.0)  # median of 2, 3 and 6 ms outside the model
    assert result.frame_host_share == pytest.approx(3.0 / 13.0)
    assert result.to_json()["host_ms"] == pytest.approx(3.0)


def test_pipelined_mode_has_no_host_time_of_its_own():
    from edge.bench.report import summarise_mode
    from edge.bench.stream import StreamRun

    timings = [FrameTiming({"infer": 10.0}, 12.0, True, 1)] * 3
    result = summarise_mode(StreamRun("pipelined", ("m",) * 3, {"m": timings}, 1.0, 1), "m")
    assert math.isnan(result.host_ms) and result.to_json()["host_ms"] is None


def test_matmul_graph_computes_a_matrix_product():
    import onnxruntime as ort

    session = ort.InferenceSession(matmul_model_bytes(16), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((16, 16), dtype=np.float32), rng.standard_normal((16, 16), dtype=np.float32)
    np.testing.assert_allclose(session.run(["c"], {"a": a, "b": b})[0], a @ b, rtol=1e-4, atol=1e-4)


def test_ceiling_reports_a_positive_rate():
    ceiling = measure_matmul_ceiling(threads=1, side=128, runs=3, warmup=1)
    assert ceiling.best_gflops >= ceiling.median_gflops > 0
    assert ceiling.library.startswith("onnxruntime") and ceiling.to_json()["runs"] == 3
    with pytest.raises(ValueError):
        measure_matmul_ceiling(threads=0)


def test_onnx_mac_count_matches_the_preset_count(edge_fp32, edge_int8):
    from edge.bench.model_cost import count_onnx_cost
    from train.model.complexity import count_macs, summarise_preset
    from train.model.network import build_model
    from train.model.presets import get_preset

    fp32, int8 = count_onnx_cost(edge_fp32), count_onnx_cost(edge_int8)
    # edge_fp32 is a score export with alpha = 0: the fused path only (docs/score-graph.md)
    macs, params = count_macs(build_model(get_preset("edge")), get_preset("edge"), fused_only=True)
    assert fp32.macs == pytest.approx(macs, rel=0.01)
    assert int8.macs == fp32.macs  # Q/DQ keeps the Conv nodes: the same arithmetic, in INT8
    assert fp32.params == pytest.approx(params, rel=0.05)  # BatchNorm folded into the convs
    assert fp32.gflop == pytest.approx(2 * fp32.macs / 1e9)
    full = summarise_preset("edge")
    assert 0.3 * full.macs_per_sample < macs < 0.6 * full.macs_per_sample


def test_mac_count_without_onnx_says_why(monkeypatch, edge_fp32):
    import edge.bench.model_cost as model_cost
    from edge.errors import MissingExtraError

    def missing(module, extra, purpose):
        raise MissingExtraError(f"{purpose} needs {module}")

    monkeypatch.setattr(model_cost, "import_optional", missing)
    cost = model_cost.count_onnx_cost(edge_fp32)
    assert cost.macs is None and "onnx" in cost.reason and math.isnan(cost.gflop)


@pytest.mark.parametrize("mode", ["sequential", "overlapped", "process"])
@pytest.mark.parametrize("contestants", [1, 2, 3])
def test_hand_out_gives_blocks_and_times_no_inherited_frame(mode, contestants):
    from edge.bench.stream import StreamOptions, hand_out

    options = StreamOptions(frames=50, warmup=4, mode=mode, block=8)
    schedule = list(hand_out(contestants, options))
    warmup, rest = schedule[:4 * contestants], schedule[4 * contestants:]
    assert warmup == [(k, False) for k in range(contestants) for _ in range(4)]
    for k in range(contestants):
        assert sum(timed for j, timed in schedule if j == k) == 50
    # blocks of `block` frames (the last of a contestant may be shorter), contestants taken in turn
    runs: list[list] = []
    for k, timed in rest:
        if runs and runs[-1][0] == k and len(runs[-1][1]) < 8:
            runs[-1][1].append(timed)
        else:
            runs.append([k, [timed]])
    assert [k for k, _ in runs][:2 * contestants] == list(range(contestants)) * 2
    settle = 0 if mode == "sequential" else 3  # queue_size 2 + 1: prefetched frames belong to the row before
    for _, flags in runs:
        assert flags[:settle] == [False] * min(settle, len(flags))
        assert all(flags[settle:])


def test_a_block_must_outlast_its_untimed_frames():
    from edge.bench.stream import StreamOptions

    assert StreamOptions(mode="sequential", block=1).settle == 0
    with pytest.raises(ValueError, match="block must exceed the 3 untimed frames"):
        StreamOptions(mode="process", block=3)


def test_a_saved_report_is_wide_enough_for_its_tables(monkeypatch):
    from edge.cli.bench import FILE_WIDTH, report_console

    monkeypatch.delenv("COLUMNS", raising=False)
    console = report_console()  # pytest captures stdout: not a terminal
    assert not console.is_terminal and console.width == FILE_WIDTH
    monkeypatch.setenv("COLUMNS", "100")
    assert report_console().width == 100  # an explicit width wins
