"""`edgefas synth` writes a folder dataset; `folder:` reads it back; bad folders fail in one line."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edge.capture.source import SourceOptions, open_source
from edge.capture.synthetic.dataset import DATASET_CYCLE, write_synthetic_dataset
from edge.cli.app import app
from edge.errors import DatasetError, EdgefasError

COUNT = 18  # two full cycles of every scenario


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "synth"
    result = CliRunner().invoke(app, ["synth", "--out", str(out), "--count", str(COUNT), "--seed", "1"])
    assert result.exit_code == 0, result.output
    return out


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_synth_covers_every_scenario_with_labels(dataset):
    rows = list(csv.DictReader((dataset / "labels.csv").open()))
    assert len(rows) == COUNT
    species = {r["pai"] for r in rows if r["label"] == "spoof"}
    assert species == {"print", "replay", "mask", "cutout"}
    assert {r["label"] for r in rows} == {"live", "spoof", "none"}
    depth = __import__("cv2").imread(str(dataset / rows[0]["depth"]), -1)
    assert depth.dtype == np.uint16 and 300 < np.median(depth[depth > 0]) < 4000  # millimetres


def test_same_seed_writes_byte_identical_files(dataset, tmp_path):
    again = tmp_path / "again"
    write_synthetic_dataset(again, COUNT, seed=1)
    assert tree_digest(again) == tree_digest(dataset)
    other = tmp_path / "other"
    write_synthetic_dataset(other, 2, seed=2)
    assert tree_digest(other)["color/000000.png"] != tree_digest(dataset)["color/000000.png"]


def test_folder_source_reads_frames_back_with_labels(dataset):
    with open_source(f"folder:{dataset}", SourceOptions()) as source:
        frames = list(source)
    assert len(frames) == COUNT
    assert [f.truth.label for f in frames[:2]] == ["live", "spoof"]
    assert frames[1].truth.pai == DATASET_CYCLE[1]
    assert frames[0].depth_raw.dtype == np.uint16 and frames[0].color_bgr.shape == (480, 640, 3)


def test_interrupted_synth_leaves_nothing_behind(tmp_path):
    def interrupt(i):
        if i == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_synthetic_dataset(tmp_path / "half", 5, seed=0, on_sample=interrupt)
    assert list(tmp_path.iterdir()) == []


def test_synth_refuses_to_overwrite(dataset):
    with pytest.raises(DatasetError, match="already exists"):
        write_synthetic_dataset(dataset, 1, seed=0)


def _copy(dataset: Path, tmp_path: Path) -> Path:
    import shutil

    dst = tmp_path / "copy"
    shutil.copytree(dataset, dst)
    return dst


def test_missing_column_is_named(dataset, tmp_path):
    folder = _copy(dataset, tmp_path)
    text = (folder / "labels.csv").read_text().replace("color,depth,label,pai,subject", "color,depth,label,subject")
    (folder / "labels.csv").write_text(text)
    with pytest.raises(EdgefasError, match=r"labels.csv' lacks column\(s\) pai"):
        open_source(f"folder:{folder}")


def test_unreadable_image_names_file_row_and_column(dataset, tmp_path):
    folder = _copy(dataset, tmp_path)
    (folder / "depth" / "000001.png").write_bytes(b"not a png")
    with open_source(f"folder:{folder}") as source, pytest.raises(EdgefasError) as err:
        list(source)
    assert "row 2, column depth" in str(err.value) and "000001.png" in str(err.value)


def test_missing_folder_and_bad_label(tmp_path):
    with pytest.raises(EdgefasError, match="does not exist"):
        open_source(f"folder:{tmp_path / 'nope'}")
    (tmp_path / "labels.csv").write_text("color,depth,label,pai,subject\na.png,b.png,maybe,,1\n")
    with pytest.raises(EdgefasError, match="row 1, column label"):
        open_source(f"folder:{tmp_path}")


def test_stream_folder_replays_the_synthetic_video_frame_for_frame(tmp_path):
    from edge.capture.synthetic.world import SyntheticWorld

    out = tmp_path / "video"
    result = CliRunner().invoke(app, ["synth", "--out", str(out), "--count", "3", "--seed", "4", "--stream",
                                      "--scenario", "live"])
    assert result.exit_code == 0, result.output
    with open_source(f"folder:{out}", SourceOptions()) as source:
        frames = list(source)
    world = SyntheticWorld("live", 4)
    assert len(frames) == 3
    for i, frame in enumerate(frames):
        rendered = world.frame(i)
        np.testing.assert_array_equal(frame.color_bgr, rendered.color_bgr)
        np.testing.assert_array_equal(frame.depth_raw, rendered.depth_raw)
        assert frame.truth.label == "live" and frame.truth.subject == rendered.truth.subject
    assert [f.t_ms for f in frames] == sorted(f.t_ms for f in frames) and frames[0].t_ms < frames[2].t_ms


def test_stream_of_an_unknown_scenario_is_one_line_and_leaves_nothing(tmp_path):
    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "v"), "--count", "2", "--stream",
                                      "--scenario", "selfie"])
    # in process the error reaches the console script's boundary (edge.cli.app.main) as an EdgefasError
    assert isinstance(result.exception, EdgefasError)
    assert str(result.exception).startswith("--scenario must be one of live, print")
    assert "got 'selfie'" in str(result.exception)
    assert list(tmp_path.iterdir()) == []


def test_a_16_bit_colour_image_is_refused_in_one_line(dataset, tmp_path):
    """It used to be scaled down to 8 bits without a word; in a colour column it is usually a depth map."""
    import shutil

    import cv2

    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    rows = list(csv.DictReader((copy / "labels.csv").open()))
    colour = copy / rows[0]["color"]
    cv2.imwrite(str(colour), cv2.imread(str(colour)).astype(np.uint16) * 257)
    with pytest.raises(DatasetError, match=r"row 1, column color: .*uint16 pixels; colour images must be 8 bits") as err:
        with open_source(f"folder:{copy}", SourceOptions()) as source:
            list(source)
    assert "\n" not in str(err.value)
    result = CliRunner().invoke(app, ["faces", str(colour)])
    assert result.exit_code != 0 and isinstance(result.exception, EdgefasError) and "8 bits" in str(result.exception)


def test_a_partial_folder_left_by_a_killed_synth_is_removed_by_the_next_run(tmp_path):
    """SIGKILL gives no chance to clean up; the next run for the same --out removes what a dead process
    left, and leaves a live writer's folder alone."""
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    stale = tmp_path / f".ds.partial-{dead_pid}"
    (stale / "color").mkdir(parents=True)
    alive = tmp_path / f".ds.partial-{__import__('os').getppid()}"  # a process that is still running
    alive.mkdir()
    write_synthetic_dataset(tmp_path / "ds", 1, seed=0)
    assert not stale.exists() and alive.exists()
    assert (tmp_path / "ds" / "labels.csv").is_file()
