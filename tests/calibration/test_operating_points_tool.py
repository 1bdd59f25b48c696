"""tools/operating_points.py: thresholds chosen on dev by calibrate-threshold targets, read on test sets."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.threshold import choose_threshold
from dataset_fixture_loader import load_tool
from edge.errors import ConfigError


@pytest.fixture(scope="module")
def tool():
    return load_tool("operating_points")


def scored(tool, seed: int):
    """Live faces low, prints high, and a 'silicone' species that overlaps the live faces."""
    rng = np.random.default_rng(seed)
    live = rng.normal(0.2, 0.1, 400)
    prints = rng.normal(0.9, 0.05, 200)
    silicone = rng.normal(0.35, 0.15, 200)
    scores = np.concatenate([live, prints, silicone])
    pai = np.array([""] * 400 + ["print"] * 200 + ["silicone"] * 200)
    return tool.Scored(scores, pai != "", pai)


def test_each_target_picks_its_threshold_on_dev_and_reads_it_on_test(tool):
    dev, test = scored(tool, 1), scored(tool, 2)
    rows = tool.operating_points(dev, {"test": test}, ["eer", "bpcer=5%", "bpcer=20%"])
    assert [r["target"] for r in rows] == ["eer", "bpcer=0.05", "bpcer=0.2"]
    eer = choose_threshold(dev.scores, dev.is_attack, "eer", dev.pai).threshold
    assert rows[0]["threshold"] == pytest.approx(eer)
    # a looser owner budget moves the threshold down: more owners refused, fewer silicone masks through
    assert rows[2]["threshold"] < rows[1]["threshold"]
    assert rows[2]["dev"]["bpcer"] <= 0.2 and rows[1]["dev"]["bpcer"] <= 0.05
    assert rows[2]["test"]["bpcer"] > rows[1]["test"]["bpcer"]
    assert rows[2]["test"]["apcer"]["silicone"] < rows[1]["test"]["apcer"]["silicone"]
    assert rows[1]["test"]["apcer"]["print"] == 0.0  # the separable species is caught at every point
    table = tool.markdown(rows, ["test"])
    assert sum(line.startswith("| bpcer=") or line.startswith("| eer") for line in table.splitlines()) == 3
    assert "(silicone)" in table


def test_a_mistyped_target_is_refused_before_anything_is_scored(tool):
    dev = scored(tool, 1)
    with pytest.raises(ConfigError, match="unknown threshold target"):
        tool.operating_points(dev, {}, ["bpcer=5"])


def test_across_people_chooses_without_the_held_out_person_and_reads_only_their_faces(tool):
    """Three people like the rest and one whose masks score like live faces: held out, that person's
    masks pass at a threshold chosen on the others, and the others' are caught."""
    rng = np.random.default_rng(3)
    scores, pai, subject = [], [], []
    for person, mask_mean in (("photo/a", 0.9), ("photo/b", 0.9), ("photo/c", 0.9), ("photo/d", 0.2)):
        scores += list(rng.normal(0.2, 0.05, 50)) + list(rng.normal(mask_mean, 0.05, 30))
        pai += [""] * 50 + ["mannequin"] * 30
        subject += [person] * 80
    scores += list(rng.normal(0.9, 0.05, 40))  # another world's attacks: never held out, always in the rest
    pai += ["print"] * 40
    subject += ["synthetic/7"] * 40
    pai = np.array(pai)
    dev = tool.Scored(np.array(scores), pai != "", pai, np.array(subject))
    rows = tool.across_people(dev, ["eer"])
    assert [r["person"] for r in rows] == ["photo/a", "photo/b", "photo/c", "photo/d"]
    by = {r["person"]: r for r in rows}
    assert by["photo/d"]["report"]["apcer"]["mannequin"] > 0.5
    assert by["photo/a"]["report"]["apcer"]["mannequin"] == 0.0
    # each person's report counts only their faces
    assert by["photo/a"]["report"]["n_live"] == 50 and by["photo/a"]["report"]["n_spoof"] == 30
    # the threshold held out of d is chosen without d's masks, so it differs from the one without a
    thresholds = {r["person"]: r["threshold"] for r in rows}
    assert thresholds["photo/d"] != thresholds["photo/a"]
    assert "| eer | photo/d |" in tool.across_people_markdown(rows)


def test_across_people_needs_subjects_and_two_people(tool):
    dev = scored(tool, 1)
    with pytest.raises(ValueError, match="subject"):
        tool.across_people(dev, ["eer"])
    one = tool.Scored(dev.scores, dev.is_attack, dev.pai, np.array(["photo/a"] * len(dev.scores)))
    with pytest.raises(ValueError, match="two or more"):
        tool.across_people(one, ["eer"])


def test_by_person_reads_each_subjects_faces_at_one_threshold(tool):
    pai = np.array(["", "", "mannequin", "", "mannequin", "mannequin"])
    s = tool.Scored(np.array([0.1, 0.2, 0.9, 0.1, 0.3, 0.8]), pai != "", pai,
                    np.array(["a", "a", "a", "b", "b", "b"]))
    reports = tool.by_person(s, 0.5)
    assert set(reports) == {"a", "b"}
    assert reports["a"]["apcer"]["mannequin"] == 0.0 and reports["b"]["apcer"]["mannequin"] == 0.5
    assert reports["b"]["n_live"] == 1 and reports["b"]["n_spoof"] == 2
