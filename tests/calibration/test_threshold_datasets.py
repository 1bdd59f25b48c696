"""`edgefas calibrate threshold --dataset SPEC` reads the dataset grammar at a split (dev by default).

The faces come through the same prepare/cache path as `edgefas eval` and `train`, and the scores
through the same function, so eval on the split the threshold was chosen on reports the metrics the
model stores. Every dataset kind works: a folder with a split column, the public-set fixtures
(CASIA-SURF, CeFA, WMCA), the rendered world. A frame-source spec (`synthetic:live`) or any other bad
spec is one line and exit code 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from dataset_fixture_loader import REPO, load_fixture_writer
from edge.cli.app import app
from edge.errors import DatasetSpecError
from mean_score_model import write_mean_score_model

runner = CliRunner()

# Grey levels (0-255) of the folder's faces. The mean-score model scores a face by its brightness, so
# dev separates live (dark) from attacks (bright); train and test are the other way round, so a
# threshold chosen on any split but dev refuses every live face of dev.
FOLDER_ROWS = ([("dev", "live", v) for v in (60, 70, 80)] + [("dev", "spoof", v) for v in (180, 200, 220)]
               + [(s, "live", v) for s in ("train", "test") for v in (190, 210)]
               + [(s, "spoof", v) for s in ("train", "test") for v in (50, 65)])


def write_split_folder(root: Path) -> Path:
    """Pre-cropped faces (8-bit normalised depth) with a split column: no face detector is involved."""
    root.mkdir(parents=True)
    lines = ["color,depth,label,pai,subject,split"]
    for i, (split, label, level) in enumerate(FOLDER_ROWS):
        cv2.imwrite(str(root / f"c{i}.png"), np.full((24, 24, 3), level, np.uint8))
        cv2.imwrite(str(root / f"d{i}.png"), np.full((24, 24), 128, np.uint8))
        lines.append(f"c{i}.png,d{i}.png,{label},{'print' if label == 'spoof' else ''},p{i},{split}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


def calibrate(model: Path, spec: str, cache: Path, *extra: str):
    result = runner.invoke(app, ["calibrate", "threshold", "--model", str(model), "--dataset", spec,
                                 "--cache-dir", str(cache), "--json", *extra])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return json.loads(result.stdout)


def test_folder_with_split_column_is_calibrated_on_its_dev_rows(tmp_path):
    from engines.metadata import read_metadata

    folder = write_split_folder(tmp_path / "faces")
    model = write_mean_score_model(tmp_path / "m.onnx")
    cache = tmp_path / "cache"
    payload = calibrate(model, f"folder:{folder}", cache)
    metrics = payload["metrics"]
    assert payload["split"] == "dev" and payload["dataset"] == f"folder:{folder}"
    assert (metrics["n_live"], metrics["n_spoof"]) == (3, 3), "only the dev rows"
    assert metrics["bpcer"] == 0.0 and metrics["apcer_max"] == 0.0, "a threshold from train/test rows fails on dev"
    meta = read_metadata(model)
    assert meta.threshold == pytest.approx(payload["threshold"]) and meta.threshold_target == "bpcer@apcer=0.01"
    assert [p.name.split("-")[:2] for p in cache.iterdir()] == [["folder", "dev"]], "the samples cache of eval/train"

    # eval on the same split scores the same faces the same way: it reports what the model stores
    report = tmp_path / "eval.json"
    result = runner.invoke(app, ["eval", "--model", str(model), "--dataset", f"folder:{folder}", "--split", "dev",
                                 "--json", str(report), "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    evaluated, stored = json.loads(report.read_text()), json.loads(meta.threshold_metrics)
    for key in ("threshold", "apcer", "apcer_pooled", "bpcer", "eer", "auc", "n_live", "n_spoof"):
        assert evaluated[key] == pytest.approx(stored[key]), key


def test_split_option_picks_another_split(tmp_path):
    folder = write_split_folder(tmp_path / "faces")
    model = write_mean_score_model(tmp_path / "m.onnx")
    payload = calibrate(model, f"folder:{folder}", tmp_path / "cache", "--split", "test", "--target", "eer")
    assert payload["split"] == "test"
    assert (payload["metrics"]["n_live"], payload["metrics"]["n_spoof"]) == (2, 2)


def _public_sets():
    fixtures = load_fixture_writer()
    cases = [("casia-surf", fixtures.write_casia_surf, "casia-surf:{root}"),
             ("cefa", fixtures.write_cefa, "cefa:{root}#" + fixtures.CEFA_PROTOCOL),
             ("wmca", fixtures.write_wmca, "wmca:{root}#grandtest")]
    return [pytest.param(*case, id=case[0]) for case in cases]


@pytest.mark.parametrize("kind,write,form", _public_sets())
def test_public_set_fixture_is_calibrated_on_its_dev_split(tmp_path, kind, write, form):
    from engines.metadata import read_metadata

    if kind == "wmca":
        pytest.importorskip("h5py", reason="WMCA files are HDF5: the reader needs h5py")
    root = tmp_path / kind
    manifest = write(root)
    dev = [f for f in manifest if f.split == "dev"]
    model = write_mean_score_model(tmp_path / "m.onnx")
    payload = calibrate(model, form.format(root=root), tmp_path / "cache", "--target", "eer")
    metrics = payload["metrics"]
    assert payload["split"] == "dev"
    assert metrics["n_live"] == sum(f.label == "live" for f in dev) > 0
    assert metrics["n_spoof"] == sum(f.label == "spoof" for f in dev) > 0
    assert set(metrics["apcer"]) == {f.pai for f in dev if f.label == "spoof"}
    assert read_metadata(model).threshold == pytest.approx(payload["threshold"])


@pytest.mark.slow
def test_rendered_world_count_spec(tmp_path, shared_data):
    model = write_mean_score_model(tmp_path / "m.onnx", size_px=32, depth_mode="window")
    cache = tmp_path / "cache"
    payload = calibrate(model, "synthetic:8", cache, "--target", "eer", "--detector", "yunet",
                        "--model-dir", str(shared_data / "models"))
    metrics = payload["metrics"]
    assert payload["split"] == "dev" and payload["frames"] == 8
    assert metrics["n_live"] > 0 and metrics["n_spoof"] > 0
    assert metrics["n_live"] + metrics["n_spoof"] + payload["skipped"] == 8
    assert [p.name.split("-")[:2] for p in cache.iterdir()] == [["synthetic", "dev"]]


@pytest.mark.parametrize("spec,says", [
    ("synthetic:live", "synthetic:COUNT"),  # the old frame-source form: what to write instead
    ("photo:mixed", "photo:COUNT"),
    ("bag:take.db3", "folder:PATH"),
    ("realsense", "folder:PATH"),
    ("oulu:/data/oulu", "casia-surf:PATH"),
    ("synthetic:8+", "empty part"),
    ("cefa:/data/cefa", "#PROTOCOL"),
])
def test_a_bad_spec_is_one_line_before_anything_is_read(tmp_path, spec, says):
    from engines.metadata import read_metadata

    model = write_mean_score_model(tmp_path / "m.onnx")
    result = runner.invoke(app, ["calibrate", "threshold", "--model", str(model), "--dataset", spec,
                                 "--cache-dir", str(tmp_path / "cache")])
    assert isinstance(result.exception, DatasetSpecError), repr(result.exception)
    message = str(result.exception)
    assert "\n" not in message and "--dataset" in message and says in message, message
    assert result.exception.exit_code == 2
    assert read_metadata(model).threshold is None and not (tmp_path / "cache").exists()


def test_a_bad_split_is_one_line(tmp_path):
    model = write_mean_score_model(tmp_path / "m.onnx")
    result = runner.invoke(app, ["calibrate", "threshold", "--model", str(model), "--dataset", "synthetic:8",
                                 "--split", "validation"])
    assert isinstance(result.exception, DatasetSpecError)
    assert str(result.exception) == "--split must be one of train, dev, test, got 'validation'"


def test_the_command_line_gets_one_line_and_exit_code_2(tmp_path):
    model = write_mean_score_model(tmp_path / "m.onnx")
    proc = subprocess.run([sys.executable, "-m", "edge.cli.app", "calibrate", "threshold", "--model", str(model),
                           "--dataset", "synthetic:live"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("error: --dataset: 'synthetic:live'") and "synthetic:COUNT" in lines[0]


def test_default_cache_is_under_the_cache_root_not_the_working_folder(tmp_path, monkeypatch):
    folder = write_split_folder(tmp_path / "faces")
    model = write_mean_score_model(tmp_path / "m.onnx")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "root"))
    result = runner.invoke(app, ["calibrate", "threshold", "--model", str(model), "--dataset", f"folder:{folder}"])
    assert result.exit_code == 0, result.output
    assert list(work.iterdir()) == [], "nothing is written to the working folder (.cache/edgefas was)"
    assert [p.name.split("-")[:2] for p in (tmp_path / "root" / "samples").iterdir()] == [["folder", "dev"]]


def test_eval_protocol_option_completes_a_spec_that_needs_one(tmp_path):
    """`eval --dataset cefa:PATH --protocol 4@1` stays valid: the spec is checked with its --protocol."""
    fixtures = load_fixture_writer()
    root = tmp_path / "cefa"
    fixtures.write_cefa(root)
    model = write_mean_score_model(tmp_path / "m.onnx")
    cache = tmp_path / "cache"
    stored = calibrate(model, f"cefa:{root}#{fixtures.CEFA_PROTOCOL}", cache, "--target", "eer")
    report = tmp_path / "eval.json"
    result = runner.invoke(app, ["eval", "--model", str(model), "--dataset", f"cefa:{root}", "--protocol",
                                 fixtures.CEFA_PROTOCOL, "--split", "dev", "--json", str(report),
                                 "--cache-dir", str(cache)])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    evaluated = json.loads(report.read_text())
    assert evaluated["threshold"] == pytest.approx(stored["threshold"])
    assert evaluated["eer"] == pytest.approx(stored["metrics"]["eer"])
    result = runner.invoke(app, ["eval", "--model", str(model), "--dataset", f"cefa:{root}", "--split", "dev"])
    assert isinstance(result.exception, DatasetSpecError) and "needs a protocol" in str(result.exception)
