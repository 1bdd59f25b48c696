"""``edgefas dataset build``: sessions -> a folder dataset with subject-disjoint, balanced splits; refusals are
one line."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections import Counter

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from edge.cli.app import app
from edge.datasets.build import plan_splits
from site_cli import one_line_error

SUBJECTS = ("s01", "s02", "s03", "s04")


def run(*argv: str):
    return CliRunner().invoke(app, list(argv))




@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """Four subjects, each a live and a print session of three rendered frames (plus s05: live only)."""
    root = tmp_path_factory.mktemp("sessions")
    for k, subject in enumerate(SUBJECTS + ("s05",)):
        for label in ("live", "print") if subject != "s05" else ("live",):
            result = run("collect", "--source", f"synthetic:{label}", "--seed", str(10 + k), "--out",
                         str(root / f"{subject}-{label}"), "--subject", subject, "--label", label, "--site", "lab",
                         "--frames", "3", "--detector", "haar")
            assert result.exit_code == 0, result.output
    return root


def build(sessions, out, *more, subjects=SUBJECTS):
    folders = sorted(str(p) for p in sessions.iterdir() if p.name.split("-")[0] in subjects)
    return run("dataset", "build", *folders, "--out", str(out), "--detector", "haar", *more)


def test_the_dataset_holds_every_face_once_with_each_subject_in_one_split(sessions, tmp_path):
    from edge.datasets.folder import FolderDataset

    out = tmp_path / "ds"
    result = build(sessions, out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    with (out / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == report["frames_read"] - report["no_face"] > 0
    split_of = {}
    for row in rows:
        assert split_of.setdefault(row["subject"], row["split"]) == row["split"], "a subject spans splits"
    assert split_of == report["splits"] and set(split_of) == set(SUBJECTS)
    assert sorted(Counter(split_of.values()).items()) == [("dev", 1), ("test", 1), ("train", 2)]
    # the report counts what labels.csv holds, per split, subject and presentation
    counted = Counter((r["split"], r["subject"], r["pai"] or r["label"]) for r in rows)
    assert counted == Counter({(split, subject, p): n for split, per in report["counts"].items()
                               for subject, kinds in per.items() for p, n in kinds.items()})
    # every split opens as a folder: dataset with live faces and attacks, frames as the sessions hold them
    for split in ("train", "dev", "test"):
        labels = {r.label for r in FolderDataset(out, split)}
        assert labels == {"live", "spoof"}, split
    first = rows[0]
    take = sessions / f"{first['subject']}-{first['pai'] or 'live'}" / "take-01"
    index = int(first["color"].rsplit("-", 1)[1].split(".")[0])
    assert np.array_equal(cv2.imread(str(out / first["color"])), cv2.imread(str(take / f"color/{index:06d}.png")))
    assert np.array_equal(cv2.imread(str(out / first["depth"]), cv2.IMREAD_ANYDEPTH),
                          cv2.imread(str(take / f"depth/{index:06d}.png"), cv2.IMREAD_ANYDEPTH))


def test_pins_put_a_subject_where_asked(sessions, tmp_path):
    result = build(sessions, tmp_path / "ds", "--assign", "s02=test", "--assign", "s03=dev", "--json")
    assert result.exit_code == 0, result.output
    splits = json.loads(result.stdout)["splits"]
    assert (splits["s02"], splits["s03"]) == ("test", "dev")
    assert sorted(Counter(splits.values()).items()) == [("dev", 1), ("test", 1), ("train", 2)]


def test_the_plan_balances_every_presentation_and_is_deterministic():
    # ten subjects: all show live faces, half also prints, the other half replays
    counts = {f"s{i:02d}": Counter({"live": 10, ("print" if i % 2 else "replay"): 10}) for i in range(10)}
    plan = plan_splits(counts, {"train": 0.6, "dev": 0.2, "test": 0.2}, seed=0)
    assert plan == plan_splits(counts, {"train": 0.6, "dev": 0.2, "test": 0.2}, seed=0)
    per = {s: Counter() for s in ("train", "dev", "test")}
    for subject, split in plan.items():
        per[split].update(counts[subject])
    assert [sum(1 for s in plan.values() if s == split) for split in ("train", "dev", "test")] == [6, 2, 2]
    for split in ("dev", "test"):  # every species reaches dev and test, not only live faces
        assert per[split]["print"] > 0 and per[split]["replay"] > 0, per


def test_three_subjects_fill_three_splits():
    counts = {s: Counter({"live": 5 + i, "print": 5}) for i, s in enumerate(("a", "b", "c"))}
    assert sorted(plan_splits(counts, {"train": 0.6, "dev": 0.2, "test": 0.2}).values()) == ["dev", "test", "train"]


def test_too_few_subjects_is_refused_before_a_frame_is_read(sessions, tmp_path):
    message = one_line_error(build(sessions, tmp_path / "ds", subjects=("s01", "s02")))
    assert message.startswith("a split would be empty") and "2 subject(s)" in message
    assert not (tmp_path / "ds").exists()


def test_a_subject_asked_into_two_splits_is_refused(sessions, tmp_path):
    message = one_line_error(build(sessions, tmp_path / "ds", "--assign", "s01=dev", "--assign", "s01=test"))
    assert "subject s01 would span splits dev and test" in message
    assert not (tmp_path / "ds").exists()


def test_a_split_without_attacks_is_refused_and_nothing_is_left(sessions, tmp_path):
    result = build(sessions, tmp_path / "ds", "--assign", "s05=test", "--assign", "s01=train", "--assign", "s02=train",
                   "--assign", "s03=dev", "--assign", "s04=train", subjects=SUBJECTS + ("s05",))
    message = one_line_error(result)
    assert message.startswith("split test would hold no attacks (subjects s05)")
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("value,needle", [("s01", "must be SUBJECT=SPLIT"), ("s01=later", "must be SUBJECT=SPLIT"),
                                          ("s09=dev", "names subject s09, which none of the sessions holds")])
def test_a_bad_assignment_is_one_line(sessions, tmp_path, value, needle):
    message = one_line_error(build(sessions, tmp_path / "ds", "--assign", value))
    assert needle in message and "--assign" in message


def test_a_folder_that_is_not_a_session_is_named(tmp_path, sessions):
    (tmp_path / "loose").mkdir()
    result = run("dataset", "build", str(tmp_path / "loose"), str(sessions / "s01-live"), "--out", str(tmp_path / "ds"))
    message = one_line_error(result)
    assert f"'{tmp_path / 'loose'}' is not a capture session" in message


def test_an_existing_dataset_is_never_overwritten(tmp_path, sessions):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "labels.csv").write_text("keep me\n")
    result = build(sessions, tmp_path / "ds")
    assert result.exit_code == 2 and "--out" in result.output and "not an empty folder" in result.output
    assert (tmp_path / "ds" / "labels.csv").read_text() == "keep me\n"


def test_a_camera_session_is_read_from_its_recording(sessions, tmp_path):
    """A camera take is a raw .db3 (edgefas collect --source realsense); the builder plays it through bag:."""
    pytest.importorskip("pyrealsense2", reason="recordings are played through pyrealsense2")
    from edge.capture.software_device import record_synthetic
    from edge.collect.session import utc_now
    from edge.collect.sidecar import TakeRecord, new_session_info, write_session

    camera = tmp_path / "s06-live"
    camera.mkdir()
    recorded = record_synthetic("live", 11, 3, camera / "take-01.db3")  # a seed whose face Haar finds
    take = TakeRecord(recorded.path.name, "recording", "realsense:000000000000", utc_now(), "", {"frames": 3})
    write_session(camera, dataclasses.replace(new_session_info("s06", "live", "lab"), takes=(take,)))
    folders = sorted(str(p) for p in sessions.iterdir() if p.name.split("-")[0] in SUBJECTS) + [str(camera)]
    result = run("dataset", "build", *folders, "--out", str(tmp_path / "ds"), "--detector", "haar", "--json")
    assert result.exit_code == 0, result.output
    with (tmp_path / "ds" / "labels.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["subject"] == "s06"]
    assert len(rows) == 3 and all(r["label"] == "live" for r in rows)
    assert cv2.imread(str(tmp_path / "ds" / rows[0]["color"])).shape == (480, 640, 3)
