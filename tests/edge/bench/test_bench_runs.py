"""The interleaved frame loop, the report and ``edgefas bench`` on a six-frame recording."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from conftest import BENCH_FEED, STALL_S

pytest.importorskip("pyrealsense2", reason="pyrealsense2 (edgefas[realsense]) plays the bench recordings")


@pytest.fixture(scope="module")
def played(bench_cache) -> str:
    from edge.bench.feed import prepare_feed

    return prepare_feed("synthetic:live", BENCH_FEED, bench_cache)


@pytest.fixture(scope="module")
def contestants(edge_fp32, edge_int8):
    from edge.bench.contestants import close_contestants, open_contestants

    opened, skipped = open_contestants([edge_fp32, edge_int8], threads=1)
    yield opened
    close_contestants(opened)


def test_synthetic_feed_is_recorded_once_and_reused(bench_cache, played):
    from edge.bench.feed import prepare_feed

    assert played.startswith("bag:") and played.endswith(".db3")
    path = played[len("bag:"):]
    before = (bench_cache / path.rsplit("/", 1)[1]).stat().st_mtime_ns
    assert prepare_feed("synthetic:live", BENCH_FEED, bench_cache) == played
    assert (bench_cache / path.rsplit("/", 1)[1]).stat().st_mtime_ns == before
    assert not list(bench_cache.glob(".*partial*")), "no partial recording is left behind"
    assert prepare_feed("bag:/some/file.db3", BENCH_FEED, bench_cache) == "bag:/some/file.db3"


@pytest.mark.parametrize("mode", ["sequential", "overlapped", "process"])
def test_frames_alternate_between_contestants_and_stages_add_up(played, contestants, yunet_dir, mode):
    from edge.bench.stages import STAGES
    from edge.bench.stream import StreamOptions, hand_out, run_stream

    options = StreamOptions(frames=4, warmup=1, mode=mode, detector="yunet", model_dir=yunet_dir, block=5,
                            stall_timeout_s=STALL_S)
    run = run_stream(played, contestants, options)
    labels = [c.label for c in contestants]
    assert labels == ["onnxruntime/fp32", "onnxruntime/int8"]
    # timed frames in the hand-out's order (a looped recording's restart frame is left out, never reordered)
    expected = [labels[k] for k, timed in hand_out(2, options) if timed]
    assert len(run.order) + run.restarts == len(expected) == 8
    if not run.restarts:
        assert list(run.order) == expected
    for label in labels:
        timings = run.timings[label]
        assert timings and all(t.interval_ms > 0 for t in timings)
        assert any(t.face for t in timings), "the pinned face at 0.6 m must be found"
        for t in timings:
            assert set(t.stage_ms) <= set(STAGES)
            assert all(v >= 0 for v in t.stage_ms.values())
            assert t.stage_ms["align"] > 0, "playback reports the host time of filters and align"
            if t.face:
                assert t.stage_ms["infer"] > 0 and t.stage_ms["crop"] > 0
            if mode == "sequential":
                # one thread: the stages are the frame, apart from a little loop bookkeeping
                assert 0.5 * t.interval_ms <= sum(t.stage_ms.values()) <= t.interval_ms * 1.01 + 0.1


def test_report_json_has_the_documented_keys(bench_cache, edge_fp32, edge_int8, yunet_dir):
    from edge.bench.report import BenchOptions, run_bench
    from train.eager import open_eager_runner

    report = run_bench(BenchOptions(spec="synthetic:live", models=(edge_fp32, edge_int8), frames=2, warmup=1,
                                    modes=("sequential",), threads=1, open_eager=open_eager_runner, detector="yunet",
                                    model_dir=yunet_dir, feed=BENCH_FEED, cache_dir=bench_cache, ceiling_side=128,
                                    ceiling_runs=2))
    data = json.loads(json.dumps(report.to_json()))  # JSON-serialisable as it stands
    for key in ("schema", "machine", "ceiling", "contestants", "skipped", "order", "ratios", "budget", "feed",
                "load_avg_end", "threads", "filters", "restarts"):
        assert key in data
    for key in ("cpu_model", "cores_usable", "libraries", "simd", "load_avg_start"):
        assert key in data["machine"]
    assert "onnxruntime" in data["machine"]["libraries"]
    labels = [c["label"] for c in data["contestants"]]
    assert labels[:2] == ["onnxruntime/fp32", "onnxruntime/int8"]
    for c in data["contestants"]:
        assert set(c["modes"]) == {"sequential"}
        mode = c["modes"]["sequential"]
        assert mode["fps"] > 0 and set(mode["stages"]) == {"capture", "align", "detect", "region", "crop", "infer",
                                                         "decide"}
        assert c["cost"]["macs"] > 0 and 0 < c["host_share"] < 1 and c["ceiling_fraction"] > 0
    assert "onnxruntime/int8 vs onnxruntime/fp32" in data["ratios"]
    if "torch-eager/fp32" in labels:
        assert "onnxruntime/fp32 vs torch-eager/fp32" in data["ratios"]
    else:
        assert data["skipped"] and data["skipped"][0]["label"] == "torch-eager/fp32"
    assert set(data["budget"]["met"]) == set(labels)
    assert all(set(met) == {"sequential"} for met in data["budget"]["met"].values())
    seq = data["contestants"][0]["modes"]["sequential"]
    # every frame of this feed has a face: the per-frame host time is the interval less the inference
    assert 0 < seq["frame_host_share"] < 1 and seq["host_ms"] > 0


def test_eager_row_is_skipped_with_a_reason_without_torch(monkeypatch, edge_fp32):
    import train.eager as eager
    from edge.bench.contestants import close_contestants, open_contestants
    from edge.errors import MissingExtraError

    def missing(module, extra, purpose):
        raise MissingExtraError(f"{purpose} needs the Python module '{module}'; install it with: "
                                f"pip install 'edgefas[{extra}]'")

    monkeypatch.setattr(eager, "import_optional", missing)
    opened, skipped = open_contestants([edge_fp32], threads=1, open_eager=eager.open_eager_runner)
    close_contestants(opened)
    assert [c.label for c in opened] == ["onnxruntime/fp32"]
    assert skipped[0].label == "torch-eager/fp32" and "edgefas[train]" in skipped[0].reason


def test_cli_writes_json_and_renders_tables(tmp_path, bench_cache, edge_fp32, edge_int8, yunet_dir):
    from edge.cli.app import app

    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, [
        "bench", "--camera", "synthetic:live", "--model", str(edge_fp32), "--model", str(edge_int8), "--no-eager",
        "--frames", "2", "--warmup", "1", "--mode", "overlapped", "--threads", "1", "--seed", str(BENCH_FEED.seed),
        "--record-frames", str(BENCH_FEED.frames), "--cache-dir", str(bench_cache), "--model-dir", str(yunet_dir),
        "--detector", "yunet", "--roi", "off", "--stall-timeout", str(STALL_S), "--json", str(out)],
        env={"COLUMNS": "200"})
    # the distance pin of BENCH_FEED is not a CLI option: the CLI records (and caches) its own scene
    assert result.exit_code == 0, result.output
    assert "overlapped: median (p90) ms per stage" in result.output and "onnxruntime/int8" in result.output
    assert "host ms" in result.output
    data = json.loads(out.read_text())
    # blocks of 32 with 3 untimed frames each: the 2 timed frames of each model come in one block apiece
    # (a frame after the looped recording's restart is left out)
    order = data["order"]["overlapped"]
    assert [label for label, _ in order] == ["onnxruntime/fp32", "onnxruntime/int8"]
    assert sum(count for _, count in order) + data["restarts"]["overlapped"] == 4
    row = data["contestants"][0]["modes"]["overlapped"]
    assert row["host_ms"] >= 0 and row["frame_host_share"] >= 0


def test_cli_refuses_bad_options_with_one_line(tmp_path, edge_fp32):
    from edge.cli.app import app

    result = CliRunner().invoke(app, ["bench", "--model", str(edge_fp32), "--mode", "fast"])
    assert result.exit_code != 0 and "--mode must be one of" in str(result.exception or result.output)
    result = CliRunner().invoke(app, ["bench", "--camera", f"folder:{tmp_path}", "--model", str(edge_fp32),
                                      "--filters", "raw", "--no-eager", "--frames", "1", "--mode", "sequential"])
    assert result.exit_code != 0 and "apply to RealSense cameras and recordings" in str(result.exception)


def test_bench_command_imports_no_torch():
    code = ("import sys; import edge.cli.app, edge.bench.report, edge.bench.contestants; "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"


def test_a_ratio_that_could_not_be_measured_prints_as_a_dash():
    """A short run where the face-first row scored no face has no inference ratio (null in the JSON):
    the table prints '-' for it instead of a traceback."""
    from edge.cli.bench import ratio_line

    line = ratio_line("a face-first vs a", {"inference_speedup": None, "fps_ratio_sequential": 3.852})
    assert line == "a face-first vs a: inference_speedup -, fps_ratio_sequential 3.85x"
