"""tools/exposure_sweep.py: faces read at several colour exposures, depth kept, and its one-line errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from dataset_fixture_loader import load_tool
from edge.datasets.sampleset import DEPTH_SCALE, SampleSet

S = 16


def _faces() -> SampleSet:
    """Four owners at grey 100 and four mannequins at grey 180 of 255 (the mean-score model scores brightness)."""
    pai = np.array([""] * 4 + ["mannequin"] * 4)
    rgb = np.stack([np.full((3, S, S), 100 if p == "" else 180, np.uint8) for p in pai])
    depth = np.stack([np.full((1, S, S), int(0.3 * DEPTH_SCALE) + i, np.uint16) for i in range(len(pai))])
    return SampleSet(rgb, depth, (pai != "").astype(np.int8), pai, np.array([f"p{i}" for i in range(8)]),
                     np.array([""] * 8), {})


def test_exposed_faces_keep_their_depth_and_labels_and_scale_their_colour():
    tool = load_tool("exposure_sweep")
    faces = _faces()
    half = tool.exposed(faces, 0.5)
    assert np.array_equal(half.depth, faces.depth) and np.array_equal(half.is_attack, faces.is_attack)
    assert np.array_equal(half.rgb, np.rint(faces.rgb.astype(np.float32) * 0.5).astype(np.uint8))
    assert tool.exposed(faces, 2.0).rgb.max() == 255  # clipped to the 8-bit range, not wrapped


def test_a_model_that_reads_brightness_lets_darkened_attacks_through(tmp_path, monkeypatch, capsys):
    """The mean-score model at threshold 0.5: as rendered every mannequin (0.71) is refused and every owner
    (0.39) accepted; at gain 0.6 the mannequins (0.42) pass. At 25 % of owners refused the threshold
    follows the owners down, and at gain 0.6 it still refuses every mannequin."""
    from engines.metadata import read_metadata, write_metadata
    from mean_score_model import write_mean_score_model

    tool = load_tool("exposure_sweep")
    model = write_mean_score_model(tmp_path / "m.onnx")
    write_metadata(model, replace(read_metadata(model, check_threshold=False), threshold=0.5))
    monkeypatch.setattr(load_tool("robustness"), "prepare_samples", lambda *a, **k: _faces())
    result = tool.sweep(model, "photo:8", "dev", [1.0, 0.6], 0.25, tmp_path, None)
    as_rendered, dim = result["gains"]["1.0"], result["gains"]["0.6"]
    assert as_rendered["passing"]["mannequin"] == [0, 4] and as_rendered["owners refused"] == 0.0
    assert dim["passing"]["mannequin"] == [4, 4] and dim["owners refused"] == 0.0
    assert dim["owners refused 25%"]["passing"]["mannequin"] == 0
    assert tool.main(["--model", str(model), "--gains", "1", "0.6", "--dataset", "photo:8",
                      "--cache-dir", str(tmp_path)]) == 0
    assert "| 0.6 | 0.00% | 4 of 4 |" in capsys.readouterr().out


def test_bad_input_is_one_line(tmp_path, capsys):
    from mean_score_model import write_mean_score_model

    tool = load_tool("exposure_sweep")
    assert tool.main(["--model", str(tmp_path / "none.onnx")]) == 2
    assert "none.onnx: no such file" in capsys.readouterr().err
    bare = write_mean_score_model(tmp_path / "bare.onnx")
    assert tool.main(["--model", str(bare), "--gains", "1", "0"]) == 2
    assert "--gains 0.0" in capsys.readouterr().err
    assert tool.main(["--model", str(bare), "--bpcer", "2"]) == 2
    assert "--bpcer 2.0" in capsys.readouterr().err
    assert tool.main(["--model", str(bare), "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no stored threshold" in err and "\n" not in err
