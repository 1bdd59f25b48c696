"""The default model shipped in the package: present, self-describing, and usable by the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.face.preprocess import PreprocessConfig
from engines.bundled import VARIANTS, default_model_path
from engines.runner import open_runner


def _checks() -> dict:
    """The bundled model's checks file (tools/bundle_default_model.py): what shipped, what was refused."""
    return json.loads((default_model_path().parent / "edge-synthetic.checks.json").read_text())


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_variant_carries_contract_and_threshold(variant):
    checks = _checks()
    if variant in checks["int8_refused"]:
        pytest.skip(f"the {variant} flavour of this model was refused by its accuracy checks and is not shipped "
                    "(edge-synthetic.checks.json, int8_refused)")
    runner = open_runner(default_model_path(variant))
    try:
        config = PreprocessConfig.from_metadata(runner.contract)
        assert config.size_px == runner.input_size == 128
        assert runner.threshold is not None and math.isfinite(runner.threshold)
        rng = np.random.default_rng(0)
        out = runner.run(rng.random((2, 3, 128, 128), dtype=np.float32), rng.random((2, 1, 128, 128), dtype=np.float32))
        assert out.score.shape == (2,) and np.all(np.isfinite(out.score))
        assert (out.trace_rgb is not None) == (variant == "full")
    finally:
        runner.close()


def test_variants_agree_on_the_same_input():
    rng = np.random.default_rng(1)
    rgb, depth = rng.random((4, 3, 128, 128), dtype=np.float32), rng.random((4, 1, 128, 128), dtype=np.float32)
    scores = {}
    for variant in ("score", "full"):
        runner = open_runner(default_model_path(variant))
        scores[variant] = runner.run(rgb, depth).score
        runner.close()
    np.testing.assert_allclose(scores["score"], scores["full"], atol=1e-5)


@pytest.mark.parametrize(("variant", "target"), [("int8", "tensorrt"), ("int8-cpu", "cpu")])
def test_each_int8_file_is_its_flavour_of_this_model_and_passed_its_gate(variant, target):
    """``int8`` is the symmetric file TensorRT compiles, ``int8-cpu`` what ONNX Runtime runs fast (zero
    points); both made from this fp32 file with its threshold, both accepted by the accuracy gate, both
    with the depth entry left in fp32, and both checked against fp32 on the held-out split."""
    from engines.metadata import load_onnx, read_metadata
    from engines.quantize import int8_target_of

    checks = _checks()
    if variant in checks["int8_refused"]:  # refused: the evidence ships, the file does not
        gate = json.loads((default_model_path().parent / VARIANTS[variant]).with_suffix(".gate.json").read_text())
        held_out = checks.get("int8_refused_held_out", {}).get(variant)
        # by the gate on dev faces, or after it by the held-out split
        assert (not gate["accepted"] and gate["agreement"] < 0.99) or held_out["fp32_decision_agreement"] < 0.99
        assert not (default_model_path().parent / VARIANTS[variant]).exists()
        return
    path = default_model_path(variant)
    assert int8_target_of(load_onnx(path)) == target
    fp32, meta = read_metadata(default_model_path()), read_metadata(path)
    assert meta.model_sha256 == fp32.model_sha256 and meta.calibration_sha256
    assert meta.threshold == fp32.threshold
    gate = json.loads(path.with_suffix(".gate.json").read_text())
    assert gate["accepted"] and gate["agreement"] >= 0.99
    assert checks["int8"][variant]["file"] == path.name and checks["int8"][variant]["target"] == target
    assert checks["int8"][variant]["fp32_decision_agreement"] >= 0.99
    assert variant not in checks["int8_refused"]


def test_model_card_states_what_it_was_trained_on():
    card = (default_model_path().parent / "MODEL_CARD.md").read_text().lower()
    for phrase in ("synthetic", "not fit", "acer", "edgefas train"):
        assert phrase in card


def test_readme_main_job_prints_one_json_object_per_frame(shared_data):
    cmd = [sys.executable, "-m", "edge.cli.app", "live", "--camera", "synthetic:mixed", "--headless", "--frames", "12",
           "--model-dir", str(shared_data / "models")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 12
    for row in rows:
        assert {"frame", "t_ms", "face", "score", "state", "reason", "stage_ms"} <= set(row)
        assert row["state"] in ("live", "spoof", "unknown")
    assert "12 frames" in out.stderr


def test_the_int8_preset_files_describe_themselves_and_run():
    """edge-wide-synthetic (fp32 and INT8): the preset, one contract and threshold, the right precision."""
    from engines.metadata import read_metadata

    folder = default_model_path().parent
    fp32, int8 = folder / "edge-wide-synthetic.onnx", folder / "edge-wide-synthetic.int8.onnx"
    meta32, meta8 = read_metadata(fp32), read_metadata(int8)
    assert (meta32.preset, meta32.precision, meta8.preset, meta8.precision) == ("edge-wide", "fp32", "edge-wide", "int8")
    assert dict(meta32.preprocess) == dict(meta8.preprocess) == dict(read_metadata(default_model_path()).preprocess)
    assert meta32.threshold == meta8.threshold and meta8.calibration_sha256
    rng = np.random.default_rng(2)
    rgb, depth = rng.random((2, 3, 128, 128), dtype=np.float32), rng.random((2, 1, 128, 128), dtype=np.float32)
    for path in (fp32, int8):
        runner = open_runner(path, threads=1)
        assert np.all(np.isfinite(runner.run(rgb, depth).score))
        runner.close()


def test_each_bundled_checkpoint_is_the_one_its_onnx_was_exported_from():
    """engines/models/edge-synthetic.pt and edge-wide-synthetic.pt are there so users can fine-tune them
    (`edgefas train --init`); each must be the very weights of its ONNX files (their metadata carry its sha256)."""
    from edge.digest import file_sha256
    from engines.metadata import read_metadata

    for onnx in (default_model_path(), default_model_path().with_name("edge-wide-synthetic.onnx")):
        checkpoint = onnx.with_suffix(".pt")
        assert checkpoint.is_file(), checkpoint
        assert read_metadata(onnx).model_sha256 == file_sha256(checkpoint), onnx.name


def test_cpu_model_is_the_int8_cpu_flavour_when_it_shipped_else_fp32(tmp_path, monkeypatch):
    import engines.bundled as bundled

    monkeypatch.setattr(bundled, "MODELS_DIR", tmp_path)
    (tmp_path / VARIANTS["score"]).write_bytes(b"fp32")
    assert bundled.cpu_model_path() == tmp_path / VARIANTS["score"]
    (tmp_path / VARIANTS["int8-cpu"]).write_bytes(b"int8")
    assert bundled.cpu_model_path() == tmp_path / VARIANTS["int8-cpu"]


def test_an_int8_flavour_that_changes_held_out_decisions_is_refused():
    from dataset_fixture_loader import load_tool

    bundle = load_tool("bundle_default_model")
    check = {"file": "m.int8.onnx", "target": "tensorrt", "method": "minmax", "fp32_decision_agreement": 0.9813,
             "grandtest": {"acer": 0.1008}}
    reason = bundle.held_out_refusal(check, 256, 2302, 0.99)
    assert "m.int8.onnx" in reason and "98.13%" in reason and "256 dev faces" in reason and "2302 held-out" in reason
    assert bundle.held_out_refusal({**check, "fp32_decision_agreement": 0.995}, 256, 2302, 0.99) is None


def test_bench_contestants_are_fp32_and_the_cpu_flavour_only_when_it_shipped(tmp_path, monkeypatch):
    import engines.bundled as bundled
    from edge.bench.contestants import default_models
    from edge.errors import ModelError

    monkeypatch.setattr(bundled, "MODELS_DIR", tmp_path)
    with pytest.raises(ModelError, match="--model PATH"):
        default_models()
    (tmp_path / VARIANTS["score"]).write_bytes(b"fp32")
    assert default_models() == [tmp_path / VARIANTS["score"]]
    (tmp_path / VARIANTS["int8-cpu"]).write_bytes(b"int8")
    assert default_models() == [tmp_path / VARIANTS["score"], tmp_path / VARIANTS["int8-cpu"]]


def test_a_made_calibration_set_is_kept_in_the_projects_out_folder_whatever_out_is():
    from dataset_fixture_loader import load_tool

    bundle = load_tool("bundle_default_model")
    root = bundle.PROJECT
    assert (root / "tools" / "bundle_default_model.py").is_file() and (root / "engines" / "models").is_dir()
    assert bundle.default_calibration_path(bundle.CALIB_COUNT) == root / "out" / "calib-dev.npz"
    assert bundle.default_calibration_path(512) == root / "out" / "calib-dev-512.npz"
    assert bundle.shown_path(root / "out" / "calib-dev.npz") == str(Path("out") / "calib-dev.npz")
    assert bundle.shown_path(Path("/elsewhere/c.npz")) == "/elsewhere/c.npz"


def test_a_missing_run_is_one_line_from_the_bundle_tool(tmp_path):
    tool = Path(__file__).resolve().parents[2] / "tools" / "bundle_default_model.py"
    done = subprocess.run([sys.executable, str(tool), "--run", str(tmp_path / "none"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: checkpoint") and "model.pt" in done.stderr
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_the_bundle_tool_takes_a_dev_split_or_a_calibration_set_not_both(tmp_path):
    tool = Path(__file__).resolve().parents[2] / "tools" / "bundle_default_model.py"
    run = tmp_path / "run"
    run.mkdir()
    for extra, said in ((["--dev", "photo:1200", "--calib-set", str(tmp_path / "c.npz")], "not allowed with"),
                        (["--calib-set", str(tmp_path / "c.npz")], "--calib-set")):
        done = subprocess.run([sys.executable, str(tool), "--run", str(run), "--out", str(tmp_path / "o"), *extra],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert said in done.stderr.strip().splitlines()[-1]
        assert not (tmp_path / "o").exists()  # refused before anything is exported
