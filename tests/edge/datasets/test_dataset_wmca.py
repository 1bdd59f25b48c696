"""WMCA / HQ-WMCA reader on fixtures in Idiap's file-list + FrameContainer layout (tools/make_dataset_fixtures.py)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

pytest.importorskip("h5py", reason="WMCA files are HDF5: the reader needs h5py (pip install 'edgefas[train]')")

from edge.errors import DatasetError  # noqa: E402
from edge.datasets import open_dataset  # noqa: E402


from dataset_fixture_loader import load_fixture_writer, truth, expected

fixtures = load_fixture_writer()


@pytest.fixture(scope="module")
def wmca(tmp_path_factory):
    root = tmp_path_factory.mktemp("wmca")
    return root, fixtures.write_wmca(root)


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_grandtest_reads_back_every_split(wmca, split):
    root, manifest = wmca
    dataset = open_dataset(f"wmca:{root}#grandtest", split)
    samples = list(dataset)
    assert truth(samples) == expected(manifest, split)
    assert len(dataset) == len(samples)


def test_cdit_planes_become_gray_colour_and_depth(wmca, caplog):
    root, _ = wmca
    with caplog.at_level(logging.WARNING):
        sample = next(iter(open_dataset(f"wmca:{root}#grandtest", "train")))
    planes = fixtures.WMCA_PLANES
    assert sample.color_is_gray
    assert np.all(sample.color_bgr == planes["gray"])  # frame 0 carries the plane values as written
    assert np.all(sample.depth == planes["depth"])
    assert sample.depth_kind == "normalised8" and sample.precropped
    assert "grayscale" in caplog.text  # the substitution is said, not silent


@pytest.mark.parametrize("split", ["train", "dev"])
def test_leave_one_out_removes_the_attack_from_training_splits(wmca, split):
    root, manifest = wmca
    grand = truth(open_dataset(f"wmca:{root}#grandtest", split))
    loo = truth(open_dataset(f"wmca:{root}#LOO_fakehead", split))
    assert any(code == "fakehead" for _, _, code, _ in grand)
    assert loo == [row for row in expected(manifest, split) if row[2].lower() != "fakehead"]


def test_leave_one_out_tests_only_bona_fide_and_the_left_out_attack(wmca):
    root, manifest = wmca
    loo = truth(open_dataset(f"wmca:{root}#LOO_fakehead", "test"))
    assert loo == [row for row in expected(manifest, "test") if row[0] == "live" or row[2].lower() == "fakehead"]
    assert {row[1] for row in loo if row[0] == "spoof"} == {"mask"}


def test_own_protocol_folder_takes_precedence_over_derivation(tmp_path):
    fixtures.write_wmca(tmp_path)
    own = tmp_path / "protocols" / "LOO_prints"
    for group in ("train", "dev", "eval"):
        source = tmp_path / "protocols" / "grandtest" / group
        (own / group).mkdir(parents=True)
        (own / group / "for_real.lst").write_text((source / "for_real.lst").read_text())
        (own / group / "for_attack.lst").write_text("")  # this protocol's own lists: bona fide only
    labels = {s.label for s in open_dataset(f"wmca:{tmp_path}#LOO_prints", "train")}
    assert labels == {"live"}


def test_unknown_left_out_attack_is_refused(wmca):
    root, _ = wmca
    with pytest.raises(DatasetError, match="one of: fakehead, prints, replay"):
        open_dataset(f"wmca:{root}#LOO_fakehed", "train")


def test_missing_protocol_names_the_expected_list(wmca):
    root, _ = wmca
    with pytest.raises(DatasetError, match=r"protocols/nosuch/train/for_real\.lst"):
        open_dataset(f"wmca:{root}#nosuch", "train")


def test_list_that_disagrees_with_file_names_is_refused(tmp_path):
    fixtures.write_wmca(tmp_path)
    group = tmp_path / "protocols" / "grandtest" / "train"
    real = (group / "for_real.lst").read_text()
    attacks = (group / "for_attack.lst").read_text().splitlines()
    moved = attacks[0].rsplit(" ", 1)[0]  # an attack file listed as bona fide
    (group / "for_real.lst").write_text(real + moved + "\n")
    with pytest.raises(DatasetError, match="listed as bona fide but its type field"):
        open_dataset(f"wmca:{tmp_path}#grandtest", "train")


def test_empty_split_is_refused(tmp_path):
    fixtures.write_wmca(tmp_path)
    group = tmp_path / "protocols" / "grandtest" / "dev"
    (group / "for_real.lst").write_text("")
    (group / "for_attack.lst").write_text("")
    with pytest.raises(DatasetError, match="empty"):
        open_dataset(f"wmca:{tmp_path}#grandtest", "dev")


def test_missing_video_file_is_named(tmp_path):
    fixtures.write_wmca(tmp_path)
    first = (tmp_path / "protocols" / "grandtest" / "train" / "for_real.lst").read_text().split()[0]
    (tmp_path / (first + ".hdf5")).unlink()
    with pytest.raises(DatasetError, match=r"neither .*\.hdf5 nor .*\.h5"):
        open_dataset(f"wmca:{tmp_path}#grandtest", "train")


def test_hqwmca_rgbd_crops_keep_colour_in_bgr_order(tmp_path):
    manifest = fixtures.write_hqwmca(tmp_path)
    samples = list(open_dataset(f"wmca:{tmp_path}#grand_test", "train"))
    assert truth(samples) == expected(manifest, "train")
    planes = fixtures.HQWMCA_PLANES
    first = samples[0]
    assert not first.color_is_gray
    assert tuple(first.color_bgr[0, 0]) == (planes["B"], planes["G"], planes["R"])
    assert np.all(first.depth == planes["depth"])
    assert {s.pai for s in samples if s.label == "spoof"} == {"mask"}  # Mannequin is a 3D attack


def test_hqwmca_leave_one_out_derives_from_grand_test(tmp_path):
    manifest = fixtures.write_hqwmca(tmp_path)
    loo = truth(open_dataset(f"wmca:{tmp_path}#LOO_Mannequin", "train"))
    assert loo == [row for row in expected(manifest, "train") if row[2] != "Mannequin"]
