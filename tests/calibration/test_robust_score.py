"""tools/robust_score.py: the selection score reads the robustness and unseen-heads tables and means four ACERs."""

from __future__ import annotations

import json

import pytest

from dataset_fixture_loader import load_tool


def _write(path, table):
    path.write_text(json.dumps(table))
    return path


@pytest.fixture
def tables(tmp_path):
    photo = _write(tmp_path / "photo.json", {"clean": {"acer": 0.02, "bpcer": 0.01}})
    copies = _write(tmp_path / "both.json", {"clean": {"acer": 0.5}, "flat": {"acer": 0.10},
                                             "depth-smooth": {"acer": 0.06}, "glasses": {"acer": 0.9}})
    heads = _write(tmp_path / "heads.json", {"runs/a/model.onnx": {"unseen heads": {"acer": 0.04},
                                                                   "scanned heads": {"acer": 0.7}}})
    return photo, copies, heads


def test_the_score_is_the_mean_of_the_clean_photo_flat_smoothed_and_unseen_heads_acers(tables):
    tool = load_tool("robust_score")
    parts = tool.robust_score(*tables)
    assert parts["photo"] == 0.02 and parts["flat"] == 0.10  # the photo file's clean row, not the copies file's
    assert parts["depth-smooth"] == 0.06 and parts["unseen heads"] == 0.04  # not the scanned heads
    assert parts["score"] == pytest.approx((0.02 + 0.10 + 0.06 + 0.04) / 4)


def test_a_heads_file_with_several_models_needs_one_named(tables, tmp_path):
    tool = load_tool("robust_score")
    photo, copies, _ = tables
    heads = _write(tmp_path / "two.json", {"a.onnx": {"unseen heads": {"acer": 0.04}},
                                           "b.onnx": {"unseen heads": {"acer": 0.08}}})
    with pytest.raises(tool.ScoreInputError, match="2 models"):
        tool.robust_score(photo, copies, heads)
    assert tool.robust_score(photo, copies, heads, model="b.onnx")["unseen heads"] == 0.08


def test_a_copies_file_without_the_flat_copy_is_one_line_naming_the_option(tables, tmp_path, capsys):
    tool = load_tool("robust_score")
    photo, _, heads = tables
    copies = _write(tmp_path / "no-flat.json", {"depth-smooth": {"acer": 0.06}})
    code = tool.main(["--photo", str(photo), "--copies", str(copies), "--heads", str(heads)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "--copies" in err and "--kinds flat" in err


def test_a_missing_file_is_one_line_and_the_json_is_written_when_all_are_there(tables, tmp_path, capsys):
    tool = load_tool("robust_score")
    photo, copies, heads = tables
    assert tool.main(["--photo", str(tmp_path / "nope.json"), "--copies", str(copies), "--heads", str(heads)]) == 2
    assert "nope.json: no such file" in capsys.readouterr().err
    out = tmp_path / "score.json"
    assert tool.main(["--photo", str(photo), "--copies", str(copies), "--heads", str(heads), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["score"] == pytest.approx(0.055)
