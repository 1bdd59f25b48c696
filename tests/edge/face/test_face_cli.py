"""``edgefas faces`` and ``edgefas models`` through the typer app and the installed script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
from face_fixtures import FACES, MODELS, require_dir
from typer.testing import CliRunner

from edge.cli.app import app

runner = CliRunner()


def edgefas_script() -> str:
    beside = Path(sys.executable).with_name("edgefas")
    return str(beside) if beside.exists() else (shutil.which("edgefas") or "edgefas")


def test_faces_json_lists_each_face_with_box_landmarks_score_and_detector(tmp_path):
    require_dir(FACES)
    require_dir(MODELS)
    photos = [str(FACES / "astronaut.png"), str(FACES / "sergey.png")]
    result = runner.invoke(app, ["faces", *photos, "--json", "--model-dir", str(MODELS), "--crops", str(tmp_path)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [Path(item["path"]).name for item in payload] == ["astronaut.png", "sergey.png"]
    for item in payload:
        assert len(item["faces"]) == 1
        face = item["faces"][0]
        assert face["detector"] == "yunet" and 0.5 < face["score"] <= 1.0
        assert len(face["landmarks_xy"]) == 5 and len(face["box_xyxy"]) == 4
        crop = cv2.imread(item["crops"][0])
        assert crop is not None and crop.shape == (128, 128, 3)


def test_faces_with_haar_and_a_table(tmp_path):
    require_dir(FACES)
    result = runner.invoke(app, ["faces", str(FACES / "sergey.png"), "--detector", "haar"])
    assert result.exit_code == 0, result.output
    assert "haar" in result.stdout and "sergey.png" in result.stdout


def test_models_shows_path_sha256_and_release():
    require_dir(MODELS)
    result = runner.invoke(app, ["models", "--model-dir", str(MODELS), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["searched"] == [str(MODELS)]
    (model,) = payload["models"]
    assert model["path"].endswith("face_detection_yunet.onnx") and len(model["sha256"]) == 64
    assert model["release"].startswith("yunet-") and model["used"] is True


def test_models_with_an_empty_folder_says_where_to_get_yunet(tmp_path):
    result = runner.invoke(app, ["models", "--model-dir", str(tmp_path)])
    assert result.exit_code == 0
    assert "opencv_zoo" in result.stdout and str(tmp_path) in result.stdout.replace("\n", "")


def test_unreadable_file_and_missing_model_are_one_line_errors(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a PNG")
    script = edgefas_script()
    done = subprocess.run([script, "faces", str(broken), "--detector", "haar"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.png" in errors[0] and "Traceback" not in done.stderr
    done = subprocess.run([script, "faces", str(broken), "--detector", "yunet", "--model-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "opencv_zoo" in done.stderr and "Traceback" not in done.stderr


def test_help_does_not_import_torch():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom edge.cli.app import app\n"
            "r = CliRunner().invoke(app, ['faces', '--help'])\nassert r.exit_code == 0, r.output\n"
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
