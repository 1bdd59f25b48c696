"""``edgefas collect``: a take of one subject into a session folder with its sidecar; every refusal is one line."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from edge.cli.app import app
from site_cli import one_line_error


def collect(session, *more, subject="s01", label="live", source="synthetic:live", frames=4, seed=3):
    argv = ["collect", "--source", source, "--out", str(session), "--subject", subject, "--label", label,
            "--site", "lab-door", "--frames", str(frames), "--seed", str(seed), "--detector", "haar", *more]
    return CliRunner().invoke(app, argv)




def test_a_take_writes_the_source_frames_and_a_sidecar_with_its_summary(tmp_path):
    from edge.capture.source import SourceOptions, open_source

    session = tmp_path / "s01-live"
    # seed 5: a subject the Haar cascade finds in all five frames (it misses some procedural faces)
    result = collect(session, "--note", "first visit", "--json", frames=5, seed=5)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    sidecar = json.loads((session / "session.json").read_text())
    assert (sidecar["subject"], sidecar["label"], sidecar["pai"], sidecar["site"]) == ("s01", "live", "", "lab-door")
    take = sidecar["takes"][0]
    assert (take["name"], take["kind"], take["source"], take["note"]) == ("take-01", "folder", "synthetic:live",
                                                                          "first visit")
    assert take["summary"]["frames"] == printed["frames"] == 5
    # the folder take is the source's frames, bit for bit (depth in millimetres), read back through folder:
    with open_source("synthetic:live", SourceOptions(seed=5, max_frames=5)) as original, \
            open_source(f"folder:{session / 'take-01'}") as written:
        pairs = list(zip(original, written, strict=True))
    for a, b in pairs:
        assert np.array_equal(a.color_bgr, b.color_bgr)
        assert np.array_equal(np.rint(a.depth_raw * (a.depth_scale_m * 1000)), b.depth_raw)
        assert (b.truth.label, b.truth.pai) == ("live", "")
    # the summary measured these frames: the face is found, at the depth the renderer gave its inner face
    # (the truth's distance_m is the head's centre plane, behind the face by the head's own depth)
    truth_m = np.median([np.median(a.depth_raw[a.truth.face_mask & (a.depth_raw > 0)]) * a.depth_scale_m
                         for a, _ in pairs])
    summary = take["summary"]
    assert summary["faces"] == 5
    assert abs(summary["distance_m"]["median"] - truth_m) < 0.05, (summary, truth_m)
    assert 0.5 < summary["valid_depth"] <= 1.0
    assert summary["lighting"] in ("dark", "ok", "bright") and summary["face_luma"] > 0


def test_a_second_take_of_the_same_subject_and_label_joins_the_session(tmp_path):
    session = tmp_path / "s01-live"
    assert collect(session, frames=2).exit_code == 0
    assert collect(session, "--note", "later", frames=3, seed=4).exit_code == 0
    takes = json.loads((session / "session.json").read_text())["takes"]
    assert [(t["name"], t["summary"]["frames"], t["note"]) for t in takes] == [("take-01", 2, ""),
                                                                              ("take-02", 3, "later")]
    assert len(list((session / "take-02" / "color").iterdir())) == 3


def test_another_subject_in_an_existing_session_is_refused_before_the_source_opens(tmp_path):
    session = tmp_path / "s01-live"
    assert collect(session, frames=2).exit_code == 0
    before = sorted(p.name for p in session.iterdir())
    message = one_line_error(collect(session, subject="s02", source="bag:/nonexistent.db3", frames=2))
    assert "holds subject s01, not s02" in message and "one subject per session" in message
    assert sorted(p.name for p in session.iterdir()) == before


def test_another_label_in_an_existing_session_is_refused(tmp_path):
    session = tmp_path / "s01"
    assert collect(session, frames=2).exit_code == 0
    message = one_line_error(collect(session, label="print", source="synthetic:print", frames=2))
    assert "holds live takes, not print" in message


def test_a_rendered_take_that_shows_two_people_is_refused_and_leaves_nothing(tmp_path):
    """synthetic:mixed at seed 1: a live person for 45 frames, then a replay attack of someone else."""
    session = tmp_path / "s01-live"
    message = one_line_error(collect(session, source="synthetic:mixed", frames=50, seed=1))
    assert "showed more than one person" in message and "one subject per session" in message
    assert not session.exists()


def test_a_rendered_take_that_contradicts_the_label_is_refused(tmp_path):
    message = one_line_error(collect(tmp_path / "s", label="live", source="synthetic:print", frames=2))
    assert "shows print frames but the session is labelled live" in message
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("option,value,needle", [
    ("--subject", "Jane Doe", "--subject 'Jane Doe' is not an id"),
    ("--subject", "../up", "--subject '../up' is not an id"),
    ("--site", "", "--site '' is not an id"),
    ("--label", "puppet", "--label must be one of live, print"),
    ("--note", "two\nlines", "--note must be one line"),
])
def test_a_bad_description_is_one_line_naming_the_option(tmp_path, option, value, needle):
    session = tmp_path / "s"
    args = {"subject": "s01", "label": "live"}
    extra = []
    if option == "--subject":
        args["subject"] = value
    elif option == "--label":
        args["label"] = value
    else:
        extra = [option, value]
    message = one_line_error(collect(session, *extra, **args))
    assert needle in message
    assert not session.exists()


def test_a_folder_that_is_not_a_session_is_refused(tmp_path):
    (tmp_path / "mine").mkdir()
    cv2.imwrite(str(tmp_path / "mine" / "photo.png"), np.zeros((4, 4, 3), np.uint8))
    message = one_line_error(collect(tmp_path / "mine"))
    assert "non-empty folder without session.json" in message
