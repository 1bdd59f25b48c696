"""tools/contact_sheet.py: the owners a model refuses and the attacks it passes, picked at its stored
threshold and drawn as pictures (colour beside depth) with a list naming each face."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from dataset_fixture_loader import load_tool
from edge.datasets.sampleset import SampleSet
from mean_score_model import write_mean_score_model

# dev faces of a labels.csv folder: (label, species, grey level 0-255). The mean-score model scores a
# face by its brightness (about 0.44 of it: the crop window is padded around a pre-cropped face), so
# at threshold 0.2 the bright owners (200, 230) are refused and the dark mannequin
# (40) passes; the dark print (30) passes too, and is the first of all passed attacks (lowest score).
ROWS = [("live", "", 60), ("live", "", 70), ("live", "", 200), ("live", "", 230),
        ("spoof", "print", 220), ("spoof", "print", 30), ("spoof", "mannequin", 180), ("spoof", "mannequin", 40)]
THRESHOLD = 0.2


@pytest.fixture(scope="module")
def tool():
    return load_tool("contact_sheet")


def faces_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    lines = ["color,depth,label,pai,subject,split"]
    for i, (label, pai, level) in enumerate(ROWS):
        cv2.imwrite(str(root / f"c{i}.png"), np.full((24, 24, 3), level, np.uint8))
        cv2.imwrite(str(root / f"d{i}.png"), np.full((24, 24), 100 + i, np.uint8))
        lines.append(f"c{i}.png,d{i}.png,{label},{pai},p{i},dev")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


def model_with_threshold(path: Path) -> Path:
    from engines.metadata import read_metadata, write_metadata

    write_mean_score_model(path)
    write_metadata(path, replace(read_metadata(path, check_threshold=False), threshold=THRESHOLD))
    return path


def test_wrong_side_orders_each_kind_of_mistake_and_keeps_the_runtime_decision(tool):
    scores = np.array([0.1, 0.9, 0.5, 0.7, 0.2, 0.05, 0.6, 0.3])
    is_attack = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    pai = np.array(["", "", "", "", "print", "mannequin", "mannequin", "mannequin"])
    refused, passed = tool.wrong_side(scores, is_attack, pai, 0.5)
    assert refused.tolist() == [1, 3, 2]  # highest first; a score equal to the threshold is an attack
    assert passed.tolist() == [5, 4, 7]  # lowest first; 6 is caught
    _, mannequins = tool.wrong_side(scores, is_attack, pai, 0.5, "mannequin")
    assert mannequins.tolist() == [5, 7]


def test_a_sheet_puts_colour_beside_depth_in_rows_and_nothing_for_no_faces(tool):
    n, size = 7, 16
    rgb = np.zeros((n, 3, size, size), np.uint8)
    rgb[:, 0] = 200  # red in RGB order
    depth = np.full((n, 1, size, size), 65535 // 2, np.uint16)
    samples = SampleSet(rgb, depth, np.zeros(n, np.int8), np.array([""] * n), np.array([f"p{i}" for i in range(n)]),
                        np.array([""] * n))
    picture = tool.sheet(samples, np.arange(n), np.linspace(0, 1, n), columns=3)
    tile_h, tile_w = tool.LABEL_PX + size, 2 * size
    assert picture.shape == (3 * tile_h, 3 * tile_w, 3)  # 7 tiles in rows of 3, the last row padded
    colour = picture[tool.LABEL_PX + 4, 4]
    assert colour.tolist() == [0, 0, 200]  # BGR on disk: the red channel stayed red
    assert picture[tool.LABEL_PX + 4, size + 4].tolist() == [127, 127, 127]  # depth beside it, grey
    assert not picture[2 * tile_h:, 2 * tile_w:].any()  # the padding tiles are blank
    assert tool.sheet(samples, np.array([], int), np.zeros(n)) is None


def test_the_tool_scores_a_split_and_writes_both_sheets_and_the_list(tool, tmp_path, capsys):
    folder = faces_folder(tmp_path / "faces")
    model = model_with_threshold(tmp_path / "m.onnx")
    out = tmp_path / "sheets" / "m-dev"
    out.parent.mkdir()
    code = tool.main(["--model", str(model), "--dataset", f"folder:{folder}", "--split", "dev", "--out", str(out),
                      "--cache-dir", str(tmp_path / "cache")])
    assert code == 0, capsys.readouterr()
    summary = json.loads(out.with_name("m-dev.json").read_text())
    assert summary["threshold"] == pytest.approx(THRESHOLD) and summary["faces"] == len(ROWS)
    assert summary["refused"] == 2 and summary["passed"] == 2 and summary["live"] == 4 and summary["attacks"] == 4
    assert [e["subject"] for e in summary["shown_refused"]] == ["p3", "p2"]  # the brightest owner first
    assert [(e["subject"], e["species"]) for e in summary["shown_passed"]] == [("p5", "print"), ("p7", "mannequin")]
    assert summary["shown_refused"][0]["score"] > summary["shown_refused"][1]["score"] >= THRESHOLD
    refused = cv2.imread(str(out.with_name("m-dev-refused.png")))
    assert refused is not None and refused.shape[0] > tool.LABEL_PX  # drawn and readable
    assert "2 of 4 owners refused, 2 of 4 attacks passed" in capsys.readouterr().out

    # one species: only its passed attacks, counted against that species alone
    assert tool.main(["--model", str(model), "--dataset", f"folder:{folder}", "--split", "dev", "--out", str(out),
                      "--cache-dir", str(tmp_path / "cache"), "--species", "mannequin", "--count", "1"]) == 0
    summary = json.loads(out.with_name("m-dev.json").read_text())
    assert summary["attacks"] == 2 and summary["passed"] == 1 and len(summary["shown_refused"]) == 1
    assert [e["subject"] for e in summary["shown_passed"]] == ["p7"]


def test_bad_options_are_one_line_and_write_nothing(tool, tmp_path, capsys):
    folder = faces_folder(tmp_path / "faces")
    model = model_with_threshold(tmp_path / "m.onnx")
    base = ["--model", str(model), "--dataset", f"folder:{folder}", "--split", "dev", "--cache-dir", str(tmp_path / "c")]
    cases = {"no such attacks": [*base, "--out", str(tmp_path / "x"), "--species", "silicone"],
             "does not exist": [*base, "--out", str(tmp_path / "missing" / "x")],
             "is not one of": [*base, "--out", str(tmp_path / "x"), "--copy", "sepia"],
             "show at least one": [*base, "--out", str(tmp_path / "x"), "--count", "0"],
             "nope.onnx": [*base[2:], "--model", str(tmp_path / "nope.onnx"), "--out", str(tmp_path / "x")],
             "no stored threshold": [*base[2:], "--model", str(write_mean_score_model(tmp_path / "bare.onnx")),
                                     "--out", str(tmp_path / "x")]}
    for expected, argv in cases.items():
        assert tool.main(argv) == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and expected in errors[0], errors  # one line (log lines may precede it)
    assert not list(tmp_path.glob("x*"))
