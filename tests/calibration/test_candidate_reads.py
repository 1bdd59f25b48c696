"""tools/candidate_reads.py: which tables a candidate is read on, where each column comes from, and its errors."""

from __future__ import annotations

import pytest

from dataset_fixture_loader import load_tool


def _report(acer: float, bpcer: float, **extra) -> dict:
    base = {"acer": acer, "bpcer": bpcer, "apcer": {"mannequin": 0.3, "print": 0.0}, "apcer_max": 0.3,
            "bpcer_worst_person": 0.04, "eer": 0.03, "auc_attack_high": 0.99, "threshold": 1.01}
    return {**base, **extra}


@pytest.fixture
def fake_reads(monkeypatch):
    """robustness.table and novel_heads.read_model replaced by recorders with distinct numbers per table."""
    robustness, novel_heads = load_tool("robustness"), load_tool("novel_heads")
    calls = []
    numbers = {"photo": 0.10, "procedural": 0.02, "both": 0.20}

    def table(model, dataset, split, cache_dir, model_dir, kinds):
        calls.append((dataset, split, kinds))
        world = "both" if "+" in dataset else "procedural" if dataset.startswith("synthetic") else "photo"
        return {k: _report(numbers[world] + i / 100, numbers[world] + i / 1000,
                           apcer={"mannequin": 0.3 + i / 100, "print": 0.0}) for i, k in enumerate(kinds)}

    def read_model(model, count, split, morphs, model_dir, cache_dir, scanned=None):
        calls.append((f"heads photo:{count}", split, tuple(morphs)))
        return {"scanned heads": scanned or _report(0.5, 0.5), "unseen heads": _report(0.06, 0.01)}

    monkeypatch.setattr(robustness, "table", table)
    monkeypatch.setattr(novel_heads, "read_model", read_model)
    return calls


def test_the_copies_are_read_on_both_worlds_joined_and_the_photo_split_doubles_on_test(fake_reads, tmp_path):
    tool = load_tool("candidate_reads")
    tool.read(tmp_path / "m.onnx", "x", "test", tmp_path, tmp_path / "cache", None)
    datasets = {d: kinds for d, split, kinds in fake_reads if split == "test"}
    assert datasets["photo:2400"] == ("clean", "flat", "depth-smooth", "low-key", "dim", "stop-under", "bright")
    assert datasets["synthetic:1200"] == ("clean",)
    assert datasets["synthetic:1200+photo:2400"] == ("flat", "grey", "glasses", "combined")
    assert "heads photo:2400" in datasets
    with pytest.raises(ValueError, match="dev or test"):
        tool.plan("train")


def test_each_column_comes_from_its_own_table_and_the_score_is_the_robust_score(fake_reads, tmp_path):
    tool = load_tool("candidate_reads")
    r = tool.read(tmp_path / "m.onnx", "x", "dev", tmp_path, tmp_path / "cache", None)
    assert r["photo ACER"] == pytest.approx(0.10)  # the photo table's clean row
    assert r["procedural ACER"] == pytest.approx(0.02)
    assert r["flat BPCER"] == pytest.approx(0.200) and r["grey BPCER"] == pytest.approx(0.201)  # the joined table
    assert r["combined BPCER"] == pytest.approx(0.203)
    assert r["flat worst APCER"] == pytest.approx(0.3) and r["mannequins pass"] == pytest.approx(0.3)
    assert r["low-key BPCER"] == pytest.approx(0.103)  # the photo table's low-key row
    assert r["low-key mannequins pass"] == pytest.approx(0.33) and r["dim mannequins pass"] == pytest.approx(0.34)
    assert r["stop-under mannequins pass"] == pytest.approx(0.35) and r["bright BPCER"] == pytest.approx(0.106)
    assert r["bright mannequins pass"] == pytest.approx(0.36)
    # clean photo, photo flat, photo depth-smooth, unseen heads
    assert r["score"] == pytest.approx((0.10 + 0.11 + 0.12 + 0.06) / 4)
    assert tool.row(tool.load(tmp_path, "x", "dev")) == r  # the files written give the same row back


def test_a_name_not_read_is_one_line_naming_the_read_command(tmp_path, capsys):
    tool = load_tool("candidate_reads")
    assert tool.main(["table", "--split", "dev", "--out", str(tmp_path), "nobody"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "nobody-dev-photo.json" in err and "candidate_reads.py read --name nobody" in err
    assert tool.main(["read", "--model", str(tmp_path / "none.onnx"), "--name", "n", "--out", str(tmp_path)]) == 2
    assert "none.onnx: no such file" in capsys.readouterr().err


def test_the_table_prints_rates_in_percent_and_the_threshold_as_a_number(fake_reads, tmp_path, capsys):
    tool = load_tool("candidate_reads")
    tool.read(tmp_path / "m.onnx", "x", "dev", tmp_path, tmp_path / "cache", None)
    assert tool.main(["table", "--split", "dev", "--out", str(tmp_path), "x"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("| x | ") and "| 10.00% |" in line and "| 1.0100 |" in line and "| 0.990 |" in line


def test_a_truncated_part_is_one_line_naming_the_file(fake_reads, tmp_path, capsys):
    tool = load_tool("candidate_reads")
    tool.read(tmp_path / "m.onnx", "x", "dev", tmp_path, tmp_path / "cache", None)
    (tmp_path / "x-dev-both.json").write_text('{"flat": {')  # a read cut short
    assert tool.main(["table", "--split", "dev", "--out", str(tmp_path), "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "x-dev-both.json: not a JSON table" in err


def test_a_larger_dev_read_takes_every_photo_table_at_that_count_and_keeps_its_own_files(fake_reads, tmp_path,
                                                                                         capsys):
    """--photo-count 2400 on dev: the photo split, the joined copies and the unseen heads all at 2400 faces
    of the dev split, the parts beside the 1,200-face ones (not over them), and the table finds each."""
    tool = load_tool("candidate_reads")
    tool.read(tmp_path / "m.onnx", "x", "dev", tmp_path, tmp_path / "cache", None)
    fake_reads.clear()
    assert tool.main(["read", "--model", __file__, "--name", "x", "--split", "dev", "--photo-count", "2400",
                      "--out", str(tmp_path), "--cache-dir", str(tmp_path / "cache")]) == 0
    assert {(d, split) for d, split, _ in fake_reads} == {("photo:2400", "dev"), ("synthetic:1200", "dev"),
                                                          ("synthetic:1200+photo:2400", "dev"),
                                                          ("heads photo:2400", "dev")}
    assert (tmp_path / "x-dev2400-photo.json").is_file() and (tmp_path / "x-dev-photo.json").is_file()
    capsys.readouterr()
    assert tool.main(["table", "--split", "dev", "--photo-count", "2400", "--out", str(tmp_path), "x"]) == 0
    assert "dev (photo:2400)" in capsys.readouterr().out
    assert tool.main(["table", "--split", "test", "--photo-count", "2400", "--out", str(tmp_path), "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert "x-test-photo.json: no such file" in err and "\n" not in err  # test at its own size: its own name
    with pytest.raises(SystemExit):
        tool.main(["table", "--photo-count", "0", "x"])
    assert "not a positive whole number" in capsys.readouterr().err


def test_the_scanned_heads_row_is_the_clean_photo_read_not_a_second_scoring(fake_reads, tmp_path):
    tool = load_tool("candidate_reads")
    tool.read(tmp_path / "m.onnx", "x", "dev", tmp_path, tmp_path / "cache", None)
    parts = tool.load(tmp_path, "x", "dev")
    assert parts["heads"][str(tmp_path / "m.onnx")]["scanned heads"] == parts["photo"]["clean"]


def test_novel_heads_takes_a_given_scanned_read_and_scores_only_the_unseen_heads(monkeypatch, tmp_path):
    """With ``scanned`` given, the scanned clips are never prepared; the row gains its face counts."""
    import numpy as np

    from edge.datasets.sampleset import DEPTH_SCALE, SampleSet
    from mean_score_model import write_mean_score_model

    novel_heads = load_tool("novel_heads")
    model = write_mean_score_model(tmp_path / "m.onnx")
    pai = np.array(["", "", "mannequin"])
    rgb = np.stack([np.full((3, 16, 16), v, np.uint8) for v in (40, 60, 200)])
    unseen = SampleSet(rgb, np.full((3, 1, 16, 16), int(0.5 * DEPTH_SCALE), np.uint16), (pai != "").astype(np.int8),
                       pai, np.array(["a", "b", "c"]), np.array([""] * 3), {})
    from dataclasses import replace

    from engines.metadata import read_metadata, write_metadata

    write_metadata(model, replace(read_metadata(model, check_threshold=False), threshold=0.5))

    def no_scans(*args, **kwargs):
        raise AssertionError("the scanned heads were prepared again")

    monkeypatch.setattr(novel_heads, "prepare_samples", no_scans)
    monkeypatch.setattr(novel_heads, "novel_samples", lambda *a, **k: unseen)
    given = {**_report(0.1, 0.02), "n_live": 1200, "n_spoof": 1128}
    got = novel_heads.read_model(model, 2400, "dev", novel_heads.EVAL_MORPHS, None, tmp_path, scanned=given)
    assert got["scanned heads"]["faces"] == {"live": 1200, "attack": 1128}
    assert got["scanned heads"]["acer"] == 0.1
    assert got["unseen heads"]["faces"] == {"live": 2, "attack": 1} and got["unseen heads"]["bpcer"] == 0.0


def test_a_part_read_before_the_exposure_copies_shows_a_dash_not_an_error(fake_reads, tmp_path, capsys):
    import json

    tool = load_tool("candidate_reads")
    tool.read(tmp_path / "m.onnx", "old", "dev", tmp_path, tmp_path / "cache", None)
    photo = tmp_path / "old-dev-photo.json"
    table = json.loads(photo.read_text())
    for kind in ("low-key", "dim", "stop-under", "bright"):
        del table[kind]
    photo.write_text(json.dumps(table))
    assert tool.main(["table", "--split", "dev", "--out", str(tmp_path), "old"]) == 0
    printed = capsys.readouterr().out
    header, _, cells = printed.strip().splitlines()[-3:]
    columns = [c.strip() for c in header.strip("|").split("|")]
    values = [c.strip() for c in cells.strip("|").split("|")]
    for column in ("low-key BPCER", "low-key mannequins pass", "dim mannequins pass", "stop-under mannequins pass",
                   "bright mannequins pass", "bright BPCER"):
        assert values[columns.index(column)] == "-", column
    assert values[columns.index("photo BPCER")].endswith("%")
