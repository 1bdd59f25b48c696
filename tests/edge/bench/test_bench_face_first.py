"""``edgefas bench`` puts today's full-frame pipeline and the face-first one side by side in one run.

Structure, not speed (tests never depend on how fast this machine is): which rows exist, which
stages each path ran, the face-first/full-frame ratio pairs, and the one-thread mode's rows.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import BENCH_FEED, STALL_S

pytest.importorskip("pyrealsense2", reason="pyrealsense2 (edgefas[realsense]) plays the bench recordings")


@pytest.fixture(scope="module")
def report(bench_cache, edge_int8, yunet_dir):
    from edge.bench.report import BenchOptions, run_bench

    options = BenchOptions(spec="synthetic:live", models=(edge_int8,), frames=4, warmup=1,
                           modes=("sequential", "overlapped", "pipelined", "one-thread"), threads=1, detector="yunet",
                           model_dir=yunet_dir, feed=BENCH_FEED, cache_dir=bench_cache, ceiling_side=64,
                           ceiling_runs=1, stall_timeout_s=STALL_S)
    return json.loads(json.dumps(run_bench(options).to_json()))


def test_both_paths_are_rows_of_one_run(report):
    rows = {c["label"]: c for c in report["contestants"]}
    assert list(rows) == ["onnxruntime/int8", "onnxruntime/int8 face-first"]
    assert [rows[label]["path"] for label in rows] == ["full-frame", "face-first"]
    assert report["paths"] == ["face-first", "full-frame"]
    # interleaved in blocks: both rows appear in the hand-out order of every mode
    for mode in ("sequential", "overlapped", "pipelined", "one-thread"):
        assert {label for label, _ in report["order"][mode]} == set(rows)
        for label in rows:  # every timed frame was decided, the pipelined mode's last one too
            assert rows[label]["modes"][mode]["frames"] + report["restarts"][mode] >= 4


def test_each_path_runs_its_own_stages(report):
    full, first = (c["modes"]["sequential"] for c in report["contestants"])
    assert full["stages"]["region"]["frames"] == 0  # the whole frame was filtered and aligned by the source
    assert first["stages"]["region"]["frames"] > 0  # the face window was, by the pipeline
    assert first["stages"]["region"]["frames"] == first["stages"]["crop"]["frames"]
    assert full["face_fraction"] > 0 and first["face_fraction"] > 0


def test_face_first_is_compared_with_full_frame_in_every_mode(report):
    ratio = report["ratios"]["onnxruntime/int8 face-first vs onnxruntime/int8"]
    modes = ("sequential", "overlapped", "pipelined", "one-thread")
    assert set(ratio) == {"inference_speedup", *(f"fps_ratio_{m}" for m in modes)}
    rows = {c["label"]: c for c in report["contestants"]}
    for mode in modes:
        expected = rows["onnxruntime/int8 face-first"]["modes"][mode]["fps"] / rows["onnxruntime/int8"]["modes"][mode]["fps"]
        assert ratio[f"fps_ratio_{mode}"] == pytest.approx(expected, rel=1e-2)


def test_cli_renders_both_paths_and_the_ratio(tmp_path, bench_cache, edge_int8, yunet_dir):
    from edge.cli.app import app

    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, [
        "bench", "--camera", "synthetic:live", "--model", str(edge_int8), "--no-eager", "--frames", "2",
        "--warmup", "1", "--mode", "one-thread", "--seed", str(BENCH_FEED.seed), "--record-frames",
        str(BENCH_FEED.frames), "--cache-dir", str(bench_cache), "--model-dir", str(yunet_dir), "--detector", "yunet",
        "--stall-timeout", str(STALL_S), "--json", str(out)], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    assert "one-thread: median (p90) ms per stage" in result.output
    assert "onnxruntime/int8 face-first vs onnxruntime/int8" in result.output
    data = json.loads(out.read_text())
    assert [c["path"] for c in data["contestants"]] == ["full-frame", "face-first"]
    result = CliRunner().invoke(app, ["bench", "--model", str(edge_int8), "--roi", "sideways"])
    assert result.exit_code != 0 and "--roi must be one of both, on, off" in str(result.exception or result.output)


def test_process_mode_stages_face_first_frames_in_the_child(bench_cache, edge_int8, yunet_dir):
    """In process mode the face-first row's child finds, aligns and crops: the row still has window
    scans and a region stage, its parent pipeline's finder never ran, and the model scored its crops."""
    from edge.bench.report import BenchOptions, run_bench

    options = BenchOptions(spec="synthetic:live", models=(edge_int8,), frames=4, warmup=1, modes=("process",),
                           threads=1, detector="yunet", model_dir=yunet_dir, feed=BENCH_FEED, cache_dir=bench_cache,
                           ceiling_side=64, ceiling_runs=1, stall_timeout_s=STALL_S)
    report = json.loads(json.dumps(run_bench(options).to_json()))
    rows = {c["label"]: c["modes"]["process"] for c in report["contestants"]}
    first, full = rows["onnxruntime/int8 face-first"], rows["onnxruntime/int8"]
    assert first["stages"]["region"]["frames"] > 0 and full["stages"]["region"]["frames"] == 0
    assert first["stages"]["infer"]["frames"] > 0, "the parent scored the child's crops"
    assert "fps_ratio_process" in report["ratios"]["onnxruntime/int8 face-first vs onnxruntime/int8"]


def test_process_mode_refuses_face_first_rows_with_two_contracts():
    from edge.bench.stream import StreamOptions, _staging
    from edge.face.preprocess import PreprocessConfig

    class Row:
        def __init__(self, preprocess):
            self.preprocess, self.face_first = preprocess, object()

    rows = [Row(PreprocessConfig()), Row(PreprocessConfig(size_px=256))]
    with pytest.raises(ValueError, match="share one preprocessing contract"):
        _staging(rows, StreamOptions(mode="process"))
    assert _staging(rows[:1], StreamOptions(mode="process")).preprocess == PreprocessConfig()
