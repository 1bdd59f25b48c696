"""`edgefas eval` reports a split at a threshold fixed before it saw that split.

A threshold tuned on the split being reported flatters every number in the report (DESIGN §6: the
threshold is chosen on labelled dev data and stored in the artifact). The runner and the data are
stand-ins with known scores: the test split is perfectly separable, but only by a threshold in
(0.2, 0.3], far from the stored 0.9 and from anything the dev split supports, (0.8, 0.95]; a
report that decides in (0.2, 0.3] was tuned on test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edge.cli.app import app
from edge.errors import ModelError
from edge.face.preprocess import PreprocessConfig
from engines.outputs import Outputs
from edge.datasets.sampleset import SampleSet

SIZE = 8
STORED = 0.9
TEST_GAP = (0.2, 0.3)  # live scores below, attack scores from here up (test split)
DEV_GAP = (0.8, 0.95)  # the same for the dev split


def scored_set(live: np.ndarray, attack: np.ndarray) -> SampleSet:
    """Faces whose red channel encodes the score the stand-in runner gives them."""
    levels = np.concatenate([live, attack])
    n = len(levels)
    rgb = np.zeros((n, 3, SIZE, SIZE), np.uint8)
    rgb[:, 0] = np.round(levels * 255).astype(np.uint8)[:, None, None]
    is_attack = np.array([0] * len(live) + [1] * len(attack), np.int8)
    pai = np.where(is_attack == 1, "print", "")
    return SampleSet(rgb, np.zeros((n, 1, SIZE, SIZE), np.uint16), is_attack, pai,
                     np.array([f"s{i}" for i in range(n)]), np.array([""] * n))


SPLITS = {
    "test": scored_set(np.linspace(0.0, 0.2, 10), np.linspace(0.3, 0.5, 10)),
    "dev": scored_set(np.linspace(0.6, 0.8, 10), np.linspace(0.95, 1.0, 10)),
}


class ScoreRunner:
    """Runner stand-in: the score is the red channel's mean; the stored threshold is ``threshold``."""

    backend = "stand-in"
    input_size = SIZE
    contract = PreprocessConfig(size_px=SIZE).to_metadata()

    def __init__(self, threshold: float | None) -> None:
        self.threshold = threshold
        self.path = Path("model.onnx")

    def run(self, rgb: np.ndarray, depth: np.ndarray) -> Outputs:
        score = rgb[:, 0].mean(axis=(1, 2)).astype(np.float32)
        return Outputs(score, np.zeros((len(score), 1, 1, 1), np.float32), self.backend, "stand-in")

    def close(self) -> None:
        pass


@pytest.fixture
def stand_ins(monkeypatch):
    """Route eval's runner and data loading to the stand-ins; returns a setter for the stored threshold."""
    import engines.runner
    import train.evaluate

    stored = {"threshold": STORED}
    monkeypatch.setattr(engines.runner, "open_runner", lambda path, **kw: ScoreRunner(stored["threshold"]))
    monkeypatch.setattr(train.evaluate, "prepare_samples", lambda spec, split, *a, **kw: SPLITS[split])
    return stored


def assert_not_tuned_on_test(report: dict) -> None:
    threshold = report["threshold"]
    assert not TEST_GAP[0] < threshold <= TEST_GAP[1], f"threshold {threshold} was tuned on the test split"
    assert DEV_GAP[0] < threshold <= DEV_GAP[1], f"threshold {threshold} is neither the stored one nor a dev one"
    # at an honest threshold this model lets every test attack through; a tuned one would hide that
    assert report["apcer_pooled"] == 1.0 and report["bpcer"] == 0.0


def test_eval_reports_the_test_split_at_the_stored_threshold(stand_ins):
    from train.evaluate import evaluate

    result = evaluate(Path("model.onnx"), "synthetic:20", split="test")
    assert result.split == "test" and result.report["n_live"] + result.report["n_spoof"] == len(SPLITS["test"])
    assert result.report["threshold"] == pytest.approx(STORED)
    assert_not_tuned_on_test(result.report)


def test_eval_uses_a_given_threshold_as_is(stand_ins):
    from train.evaluate import evaluate

    result = evaluate(Path("model.onnx"), "synthetic:20", split="test", threshold=0.85)
    assert result.report["threshold"] == pytest.approx(0.85)
    assert_not_tuned_on_test(result.report)


def test_eval_without_a_stored_threshold_never_falls_back_to_tuning_on_test(stand_ins):
    from train.evaluate import evaluate

    stand_ins["threshold"] = math.nan
    try:
        result = evaluate(Path("model.onnx"), "synthetic:20", split="test")
    except ModelError as err:
        assert "threshold" in str(err)
    else:  # choosing one on dev is the other honest answer
        assert_not_tuned_on_test(result.report)


def test_eval_command_reports_the_stored_threshold(stand_ins, tmp_path):
    report = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["eval", "--model", str(tmp_path / "model.onnx"), "--dataset", "synthetic:20",
                                      "--split", "test", "--json", str(report), "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["split"] == "test" and data["threshold"] == pytest.approx(STORED)
    assert_not_tuned_on_test(data)
    assert f"{STORED:.4f}" in result.output
    people = data["bpcer_by_subject"]
    assert people and sum(p["scored"] for p in people.values()) == data["n_live"]
    assert "BPCER worst person" in result.output


def test_calibrate_threshold_chooses_on_dev_and_eval_reports_what_it_stored(stand_ins, monkeypatch, tmp_path):
    """calibrate threshold and eval share the faces (prepare_samples) and the scoring (calibration.scoring)."""
    import edge.datasets.sampleset
    from calibration.operating_point import calibrate_threshold
    from engines.metadata import read_metadata
    from mean_score_model import write_mean_score_model
    from train.evaluate import evaluate

    asked = []
    monkeypatch.setattr(edge.datasets.sampleset, "prepare_samples",
                        lambda spec, split, *a, **kw: asked.append(split) or SPLITS[split])
    model = write_mean_score_model(tmp_path / "m.onnx", size_px=SIZE)  # carries the metadata; scores: stand-in
    result = calibrate_threshold(model, "synthetic:20", "eer")
    assert asked == ["dev"] and result.split == "dev"
    assert DEV_GAP[0] < result.choice.threshold <= DEV_GAP[1], "chosen on dev, not on test"
    # each dev person with live faces left out in turn: ten people, each point still in dev's gap
    assert sorted(result.held_out) == sorted(f"s{i}" for i in range(10))
    assert all(DEV_GAP[0] < t <= DEV_GAP[1] for t in result.held_out.values())
    assert result.to_json()["threshold_without_each_person"] == result.held_out
    stored = json.loads(read_metadata(model).threshold_metrics)
    assert evaluate(model, "synthetic:20", split="dev", threshold=result.choice.threshold).report == stored
