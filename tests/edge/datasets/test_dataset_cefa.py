"""CeFA reader on a fixture written in the ChaLearn 2020 challenge layout (tools/make_dataset_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.errors import DatasetError
from edge.datasets import open_dataset


from dataset_fixture_loader import load_fixture_writer, truth, expected

fixtures = load_fixture_writer()
PROTOCOL = fixtures.CEFA_PROTOCOL


@pytest.mark.parametrize("live_label", ["1", "0"])
@pytest.mark.parametrize("split", ["train", "dev"])
def test_both_polarities_read_back_correctly(tmp_path, live_label, split):
    manifest = fixtures.write_cefa(tmp_path, live_label=live_label)
    dataset = open_dataset(f"cefa:{tmp_path}#{PROTOCOL}", split)
    samples = list(dataset)
    assert dataset.live_value == live_label
    assert truth(samples) == expected(manifest, split)
    assert len(dataset) == len(samples)
    for sample in samples:
        assert sample.depth_kind == "normalised8" and sample.precropped
        assert sample.depth.dtype == np.uint8
        assert "profile" in Path(sample.path).parts


def test_depth_is_the_frame_beside_profile(tmp_path):
    fixtures.write_cefa(tmp_path)
    sample = next(iter(open_dataset(f"cefa:{tmp_path}#{PROTOCOL}", "train")))
    depth_file = Path(sample.path.replace("/profile/", "/depth/"))
    import cv2

    assert np.array_equal(sample.depth, cv2.imread(str(depth_file), cv2.IMREAD_GRAYSCALE))


def test_unlabelled_test_list_is_refused_with_the_expected_file(tmp_path):
    fixtures.write_cefa(tmp_path)
    with pytest.raises(DatasetError, match=rf"{PROTOCOL}_test_ref\.txt.*{PROTOCOL}_test_res\.txt.*no labels"):
        open_dataset(f"cefa:{tmp_path}#{PROTOCOL}", "test")


def test_other_protocol_names_its_missing_train_list(tmp_path):
    fixtures.write_cefa(tmp_path)
    with pytest.raises(DatasetError, match=r"expected 4@2_train\.txt"):
        open_dataset(f"cefa:{tmp_path}#4@2", "train")


def test_malformed_protocol_is_refused(tmp_path):
    fixtures.write_cefa(tmp_path)
    with pytest.raises(DatasetError, match="must look like 4@1"):
        open_dataset(f"cefa:{tmp_path}#protocol4", "train")


def test_protocol_is_required(tmp_path):
    with pytest.raises(DatasetError, match="needs a protocol"):
        open_dataset(f"cefa:{tmp_path}", "train")


def test_empty_split_is_refused(tmp_path):
    fixtures.write_cefa(tmp_path)
    (tmp_path / f"{PROTOCOL}_dev_ref.txt").write_text("")
    (tmp_path / f"{PROTOCOL}_dev_res.txt").unlink()
    with pytest.raises(DatasetError, match="empty"):
        open_dataset(f"cefa:{tmp_path}#{PROTOCOL}", "dev")


def test_polarity_needs_named_videos(tmp_path):
    fixtures.write_cefa(tmp_path)
    train = tmp_path / f"{PROTOCOL}_train.txt"
    renamed = [line.replace("1_000_1_1_", "clip").replace("1_001_1_1_", "clip").replace("1_001_1_2_", "clip")
               for line in train.read_text().splitlines()]
    train.write_text("\n".join(renamed) + "\n")
    with pytest.raises(DatasetError, match="cannot tell which label means live"):
        open_dataset(f"cefa:{tmp_path}#{PROTOCOL}", "train")


def test_missing_dev_video_names_the_list_line(tmp_path):
    fixtures.write_cefa(tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "dev" / "003001")
    with pytest.raises(DatasetError, match=rf"{PROTOCOL}_dev_ref\.txt line 2 names video dev/003001"):
        open_dataset(f"cefa:{tmp_path}#{PROTOCOL}", "dev")
