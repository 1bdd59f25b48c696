"""``edgefas export``, ``build-engine`` and ``calibrate int8|threshold|collect`` through the real CLI."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edge.cli.app import app
from tiny_pad_model import CONTRACT, sample_batch

HAS_TRT = importlib.util.find_spec("tensorrt") is not None
EDGEFAS = Path(sys.executable).parent / "edgefas"
runner = CliRunner()


def calib_npz(path: Path, n: int = 32) -> Path:
    from calibration.calibset import CalibItem, build_calibration_set, save_calibration_set

    rgb, depth = sample_batch(n, seed=1)
    return save_calibration_set(build_calibration_set((CalibItem(r, d) for r, d in zip(rgb, depth)), n, "test",
                                                      CONTRACT), path)


def test_dry_run_prints_trtexec_line(tiny_score_onnx, tmp_path):
    result = runner.invoke(app, ["build-engine", "--onnx", str(tiny_score_onnx), "--precision", "fp16",
                                 "--out", str(tmp_path / "engines"), "--dry-run"])
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    assert line.startswith("trtexec --onnx=") and "--fp16" in line
    assert "--minShapes=rgb:1x3x32x32,depth:1x1x32x32" in line and "--saveEngine=" in line
    assert not (tmp_path / "engines").exists()  # a dry run writes nothing


def test_dry_run_int8_without_calibration_is_refused(tiny_score_onnx, tmp_path):
    result = runner.invoke(app, ["build-engine", "--onnx", str(tiny_score_onnx), "--precision", "int8",
                                 "--out", str(tmp_path), "--dry-run"])
    assert result.exit_code != 0 and "--calib" in str(result.exception)


@pytest.mark.skipif(HAS_TRT or not EDGEFAS.exists(), reason="needs the edgefas script and no TensorRT installed")
def test_build_engine_without_tensorrt_exits_2(tiny_score_onnx, tmp_path):
    proc = subprocess.run([str(EDGEFAS), "build-engine", "--onnx", str(tiny_score_onnx), "--precision", "fp16",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "needs TensorRT" in lines[0] and "--system-site-packages" in lines[0]
    assert proc.stdout == ""


@pytest.mark.skipif(HAS_TRT or not EDGEFAS.exists(), reason="needs the edgefas script and no TensorRT installed")
def test_build_engine_error_line_names_the_extra(tiny_score_onnx, tmp_path):
    proc = subprocess.run([str(EDGEFAS), "build-engine", "--onnx", str(tiny_score_onnx), "--precision", "fp16",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert "edgefas[tensorrt]" in proc.stderr


def test_calibrate_int8_writes_model_and_gate(tiny_score_onnx, tmp_path):
    calib = calib_npz(tmp_path / "calib.npz")
    out = tmp_path / "tiny.int8.onnx"
    result = runner.invoke(app, ["calibrate", "int8", "--onnx", str(tiny_score_onnx), "--calib", str(calib),
                                 "--out", str(out), "--min-agreement", "0.9", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    gate = json.loads((tmp_path / "tiny.int8.gate.json").read_text())
    assert payload["gate"]["accepted"] is True and gate["samples"] == 32
    assert payload["quantize"]["qdq_nodes"] > 0 and out.is_file()


@pytest.mark.parametrize("build", ["cpu", "tensorrt"])
def test_calibrate_int8_build_picks_the_qdq_flavour(tiny_score_onnx, tmp_path, build):
    import onnx

    from engines.quantize import int8_target_of

    calib = calib_npz(tmp_path / "calib.npz")
    out = tmp_path / f"tiny.{build}.int8.onnx"
    result = runner.invoke(app, ["calibrate", "int8", "--onnx", str(tiny_score_onnx), "--calib", str(calib),
                                 "--out", str(out), "--min-agreement", "0.9", "--max-abs", "1", "--median-abs", "1",
                                 "--build", build])
    assert result.exit_code == 0, result.output
    assert int8_target_of(onnx.load(str(out))) == build


def test_calibrate_int8_refused_by_gate_keeps_no_model(tiny_score_onnx, tmp_path):
    calib = calib_npz(tmp_path / "calib.npz", n=8)
    out = tmp_path / "strict.int8.onnx"
    result = runner.invoke(app, ["calibrate", "int8", "--onnx", str(tiny_score_onnx), "--calib", str(calib),
                                 "--out", str(out), "--max-abs", "1e-9"])
    assert result.exit_code != 0 and "accuracy gate" in str(result.exception)
    assert "--method percentile" in str(result.exception)  # minmax (the default) failed: the hint is another
    assert not out.exists() and (tmp_path / "strict.int8.gate.json").is_file()
    assert not list(tmp_path.glob(".*staging*"))
    again = runner.invoke(app, ["calibrate", "int8", "--onnx", str(tiny_score_onnx), "--calib", str(calib),
                                "--out", str(out), "--max-abs", "1e-9", "--method", "percentile"])
    assert "accuracy gate" in str(again.exception) and "--method minmax" in str(again.exception)


def test_calibrate_threshold_bad_target_is_one_line(tiny_score_onnx):
    result = runner.invoke(app, ["calibrate", "threshold", "--model", str(tiny_score_onnx),
                                 "--dataset", "synthetic:8", "--target", "apcer=5"])
    assert result.exit_code != 0 and "bpcer@apcer=RATE" in str(result.exception)


@pytest.fixture(scope="module")
def synthetic_folder(tmp_path_factory) -> Path:
    from edge.capture.synthetic.dataset import write_synthetic_dataset

    out = tmp_path_factory.mktemp("dev") / "dev"
    write_synthetic_dataset(out, 12, 0)
    return out


@pytest.mark.parametrize("alpha", [None, -1.0], ids=["stale threshold", "negative alpha"])
def test_calibrate_threshold_replaces_a_threshold_outside_the_score_range(tiny_score_onnx, synthetic_folder,
                                                                        tmp_path, alpha):
    """Every command refuses a model whose threshold is outside its score's range and names `calibrate
    threshold` as the fix; that command replaces the threshold instead of refusing in turn. A bad alpha
    is still refused: no threshold can fix it."""
    import dataclasses

    from edge.errors import ModelError
    from engines.metadata import read_metadata, write_metadata
    from engines.runner import open_runner

    model = tmp_path / "stale.onnx"
    stale = dataclasses.replace(read_metadata(tiny_score_onnx), threshold=5.0, alpha=alpha)
    write_metadata(tiny_score_onnx, stale, model)
    with pytest.raises(ModelError, match="calibrate threshold" if alpha is None else "alpha"):
        open_runner(model)
    result = runner.invoke(app, ["calibrate", "threshold", "--model", str(model), "--dataset",
                                 f"folder:{synthetic_folder}", "--target", "eer", "--cache-dir", str(tmp_path / "cache")])
    if alpha is not None:
        assert result.exit_code != 0 and "alpha" in str(result.exception)
        return
    assert result.exit_code == 0, result.output
    fixed = read_metadata(model)
    assert 0.0 <= fixed.threshold <= 1.0 and fixed.threshold_target == "eer"
    open_runner(model).close()  # opens again everywhere


def test_calibrate_threshold_on_folder_dataset(tiny_score_onnx, synthetic_folder, tmp_path):
    from engines.metadata import read_metadata

    model = tmp_path / "m.onnx"
    shutil.copy(tiny_score_onnx, model)
    result = runner.invoke(app, ["calibrate", "threshold", "--model", str(model), "--dataset",
                                 f"folder:{synthetic_folder}", "--target", "eer", "--det-plot",
                                 str(tmp_path / "det.png"), "--json", "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    meta = read_metadata(model)
    assert meta.threshold == pytest.approx(payload["threshold"]) and meta.threshold_target == "eer"
    assert json.loads(meta.threshold_metrics)["n_live"] == payload["metrics"]["n_live"] > 0
    # a folder without a split column is every split, dev included; rows with no face in view are no frames
    labelled = [r for r in (synthetic_folder / "labels.csv").read_text().splitlines()[1:] if ",none," not in r]
    assert payload["split"] == "dev" and payload["frames"] == len(labelled) > 0
    assert payload["metrics"]["n_spoof"] > 0
    assert payload["metrics"]["n_live"] + payload["metrics"]["n_spoof"] + payload["skipped"] == payload["frames"]
    assert (tmp_path / "m.threshold.json").is_file() and (tmp_path / "det.png").stat().st_size > 1000


def test_calibrate_collect_follows_model_contract(tiny_score_onnx, synthetic_folder, tmp_path):
    from calibration.calibset import check_contract, load_calibration_set
    from engines.metadata import read_metadata

    out = tmp_path / "c.npz"
    result = runner.invoke(app, ["calibrate", "collect", "--source", f"folder:{synthetic_folder}", "--count", "3",
                                 "--out", str(out), "--model", str(tiny_score_onnx), "--json"])
    assert result.exit_code == 0, result.output
    calib = load_calibration_set(out)
    assert calib.count == 3 and calib.input_size == 32 and calib.is_attack is not None
    meta = read_metadata(tiny_score_onnx)
    check_contract(calib, meta.preprocess, meta.input_size, "tiny")  # accepted: same contract
    assert np.all((calib.rgb >= 0) & (calib.rgb <= 1))


def test_help_does_not_import_torch():
    proc = subprocess.run([sys.executable, "-c", "import sys\nfrom typer.testing import CliRunner\n"
                           "from edge.cli.app import app\n"
                           "r = CliRunner().invoke(app, ['calibrate', '--help'])\n"
                           "r2 = CliRunner().invoke(app, ['build-engine', '--help'])\n"
                           "print(r.exit_code, r2.exit_code, 'torch' in sys.modules, 'tensorrt' in sys.modules)"],
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["0", "0", "False", "False"], proc.stderr
