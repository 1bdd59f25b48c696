"""One cache root for every edgefas cache: ``$EDGEFAS_CACHE``, else the XDG cache folder, never the working folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge.cache import CACHE_KINDS, cache_dir, cache_root
from edge.cli.app import app


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh home with neither variable set, and a working folder elsewhere."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EDGEFAS_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "home"


def test_default_root_is_under_home(home):
    assert cache_root() == home / ".cache" / "edgefas"
    assert cache_root().is_absolute(), "never relative to the working folder"


def test_edgefas_cache_wins(home, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"


def test_xdg_cache_home_moves_the_default(home, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "edgefas"


def test_every_user_of_a_cache_takes_its_folder_from_the_root(home, monkeypatch, tmp_path):
    from edge.bench.feed import default_cache_dir
    from edge.capture.photo.lift import cache_dir as photo_cache_dir

    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine" / "bench"
    assert photo_cache_dir() == tmp_path / "mine" / "photo"
    assert cache_dir("samples") == tmp_path / "mine" / "samples"
    with pytest.raises(ValueError, match="cache kind must be one of"):
        cache_dir("elsewhere")


def test_sample_cache_default_is_left_to_prepare_samples():
    """No library entry point has a folder of its own as default: None reaches prepare_samples, which takes the
    root's ``samples`` folder (tests/calibration/test_threshold_datasets.py runs it with a monkeypatched root)."""
    import inspect

    from calibration.operating_point import calibrate_threshold
    from edge.datasets.sampleset import prepare_samples
    from train.evaluate import evaluate
    from train.run import TrainJob

    assert inspect.signature(prepare_samples).parameters["cache_dir"].default is None
    assert inspect.signature(evaluate).parameters["cache_dir"].default is None
    assert inspect.signature(calibrate_threshold).parameters["cache_dir"].default is None
    assert TrainJob().cache_dir is None


@pytest.mark.parametrize("argv", [["eval", "--help"], ["train", "--help"], ["calibrate", "threshold", "--help"],
                                  ["bench", "--help"]])
def test_cache_dir_help_names_the_root(argv):
    result = CliRunner().invoke(app, argv, env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    line = next(l for l in result.output.splitlines() if "--cache-dir" in l)
    assert "$EDGEFAS_CACHE" in line and str(cache_root()) in line, line
    assert any(what in line for what in CACHE_KINDS.values())


def test_a_rendered_world_that_draws_differently_gets_a_new_sample_cache(monkeypatch, tmp_path):
    from edge.datasets import photo, synthetic
    from edge.datasets.sampleset import cache_path
    from edge.face.preprocess import PreprocessConfig

    config = PreprocessConfig()
    before = {k: cache_path(tmp_path, f"{k}:100", "train", config, "yunet") for k in ("photo", "synthetic")}
    folder = cache_path(tmp_path, "folder:/data/site", "train", config, "yunet")
    monkeypatch.setattr(photo, "WORLD_VERSION", photo.WORLD_VERSION + 1)
    assert cache_path(tmp_path, "photo:100", "train", config, "yunet") != before["photo"]
    assert cache_path(tmp_path, "synthetic:100", "train", config, "yunet") == before["synthetic"], "only that world's"
    monkeypatch.setattr(synthetic, "WORLD_VERSION", synthetic.WORLD_VERSION + 1)
    assert cache_path(tmp_path, "synthetic:100", "train", config, "yunet") != before["synthetic"]
    assert cache_path(tmp_path, "folder:/data/site", "train", config, "yunet") == folder, "recorded data has no version"


def test_a_folder_dataset_rebuilt_at_the_same_path_gets_a_new_sample_cache(tmp_path):
    import os

    from edge.datasets.sampleset import cache_path
    from edge.face.preprocess import PreprocessConfig

    site = tmp_path / "site"
    site.mkdir()
    (site / "c0.png").write_bytes(b"png")
    (site / "labels.csv").write_text("color,depth,label,pai,subject\nc0.png,d0.png,live,,s01\n")
    config, spec = PreprocessConfig(), f"folder:{site}"
    first = cache_path(tmp_path, spec, "dev", config, "yunet")
    assert cache_path(tmp_path, spec, "dev", config, "yunet") == first, "the same folder keeps its cache"
    (site / "labels.csv").write_text("color,depth,label,pai,subject\nc0.png,d0.png,spoof,print,s01\n")
    relabelled = cache_path(tmp_path, spec, "dev", config, "yunet")
    assert relabelled != first
    stat = (site / "c0.png").stat()
    os.utime(site / "c0.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # an image replaced
    assert cache_path(tmp_path, spec, "dev", config, "yunet") not in (first, relabelled)
