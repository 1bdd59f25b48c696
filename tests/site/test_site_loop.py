"""The site loop end to end at a tiny size: a rendered door -> collect -> dataset build -> train --init ->
export -> calibrate threshold -> INT8 -> pin -> the kiosk starts on the new hash and refuses the old file.

Every step is the `edgefas` command an integrator types (docs/site-loop.md), invoked in-process. The
sizes only prove the chain (3 frames per recording, 2 fine-tuning steps); whether fine-tuning helps is
measured by `make site-demo` (tools/site_demo.py), not asserted here.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sqlite3

import pytest
from typer.testing import CliRunner

from edge.cli.app import app
from edge.digest import file_sha256
from edge.errors import ModelError
from engines.bundled import MODELS_DIR, default_model_path
from kiosk_toml import write_kiosk_toml

pytest.importorskip("torch", reason="fine-tuning needs the training extra (torch)")
pytest.importorskip("pyrealsense2", reason="the rendered site is recorded through the RealSense software device")


def edgefas(*argv: str):
    result = CliRunner().invoke(app, [str(a) for a in argv])
    assert result.exit_code == 0, f"edgefas {' '.join(map(str, argv))}\n{result.output}\n{result.exception!r}"
    return result


@pytest.fixture(scope="module")
def photo_people(shared_data):
    from edge.capture.photo.segmenter import find_segmenter

    if find_segmenter((shared_data / "models",)) is None:
        pytest.skip("person segmenter not installed: run `python tools/fetch_segmenter.py` (make setup does)")
    return shared_data


@pytest.mark.slow
def test_a_rendered_site_becomes_a_pinned_fine_tuned_model_the_kiosk_runs(photo_people, tmp_path, monkeypatch):
    from edge.collect.rendered_site import SITE_CAMERA, read_site, render_site

    monkeypatch.setenv("EDGEFAS_MODEL_DIR", str(photo_people / "models"))
    detector = ("--detector", "yunet")
    render_site(tmp_path / "site", frames=3, attacks=("print", "silicone"))
    recordings = read_site(tmp_path / "site")
    assert {r.subject for r in recordings} == {"s01", "s02", "s03", "s04"} and len(recordings) == 12

    for rec in recordings:  # collect: one session per subject and presentation, from the door's recordings
        out = edgefas("collect", "--source", f"bag:{tmp_path / 'site' / rec.recording}", "--out",
                      tmp_path / "sessions" / rec.recording.removesuffix(".db3"), "--subject", rec.subject, "--label",
                      rec.presentation, "--site", "door-1", "--frames", rec.frames, "--json", *detector)
        summary = json.loads(out.stdout)
        assert summary["frames"] == 3 and summary["subject"] == rec.subject

    dataset = tmp_path / "dataset"
    edgefas("dataset", "build", *sorted((tmp_path / "sessions").iterdir()), "--out", dataset, *detector)
    splits = json.loads((dataset / "report.json").read_text())["splits"]
    with (dataset / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["subject"], r["split"]) for r in rows} == set(splits.items())  # one split per subject
    import cv2

    assert cv2.imread(str(dataset / rows[0]["color"])).shape[1::-1] == SITE_CAMERA  # the door's camera mode

    site = f"folder:{dataset}"
    cache = tmp_path / "cache"
    edgefas("train", "--init", MODELS_DIR / "edge-synthetic.pt", "--dataset", site, "--steps", 2, "--batch", 4,
            "--out", tmp_path / "run", "--cache-dir", cache, "--threads", 1, *detector)
    model = tmp_path / "site.onnx"
    edgefas("export", "--model", tmp_path / "run" / "model.pt", "--out", model)
    edgefas("calibrate", "threshold", "--model", model, "--dataset", site, "--target", "bpcer=1%", "--cache-dir", cache,
            *detector)
    chosen = json.loads(model.with_suffix(".threshold.json").read_text())
    assert chosen["target"] == "bpcer=0.01" and chosen["split"] == "dev"
    assert chosen["metrics"]["bpcer"] <= 0.01  # on the site's dev subject, at most 1 % of live faces refused

    calib = tmp_path / "calib.npz"
    train_subject = sorted(s for s, split in splits.items() if split == "train")[0]
    edgefas("calibrate", "collect", "--source", f"folder:{tmp_path / 'sessions' / (train_subject + '-live')}/take-01",
            "--count", 3, "--model", model, "--out", calib, *detector)
    int8 = tmp_path / "site.int8.onnx"
    # a tiny calibration set: the gate is loosened here (the demo uses the bundled model's tolerance)
    edgefas("calibrate", "int8", "--onnx", model, "--calib", calib, "--out", int8, "--max-abs", "1",
            "--median-abs", "1", "--min-agreement", "0")

    test_subject = sorted(s for s, split in splits.items() if split == "test")[0]
    config = write_kiosk_toml(tmp_path, f"bag:{tmp_path / 'site' / (test_subject + '-live.db3')}", production=False)
    old = file_sha256(default_model_path())
    assert f'model_sha256 = "{old}"' in config.read_text()  # the bundled model was pinned
    edgefas("pin", "--config", config, "--model", int8)
    new = file_sha256(int8)
    assert new != old and f'model_sha256 = "{new}"' in config.read_text()

    started = edgefas("kiosk", "--config", config, "--frames", 3, *detector)
    assert re.search(r"kiosk stopped after [1-9]\d* decisions", started.output), started.output
    with sqlite3.connect(tmp_path / "audit.sqlite") as db:
        assert ("service", "start", "ok") in db.execute("SELECT source, action, outcome FROM events").fetchall()
        assert {h for (h,) in db.execute("SELECT model_sha256 FROM attempts")} <= {new}

    shutil.copyfile(default_model_path(), int8)  # the old model put back in the pinned file's place
    refused = CliRunner().invoke(app, ["kiosk", "--config", str(config), "--frames", "3", *detector])
    assert refused.exit_code != 0 and isinstance(refused.exception, ModelError), refused.output
    message = str(refused.exception)
    assert "\n" not in message and f"has sha256 {old[:16]}" in message and f"{new[:16]}… was pinned" in message
