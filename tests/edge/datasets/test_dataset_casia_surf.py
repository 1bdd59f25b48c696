"""CASIA-SURF reader on a fixture written in the challenge's layout (tools/make_dataset_fixtures.py)."""

from __future__ import annotations


import numpy as np
import pytest

from edge.errors import DatasetError
from edge.datasets import open_dataset


from dataset_fixture_loader import load_fixture_writer, truth, expected

fixtures = load_fixture_writer()


@pytest.fixture(scope="module")
def surf(tmp_path_factory):
    root = tmp_path_factory.mktemp("casia-surf")
    return root, fixtures.write_casia_surf(root)


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_each_split_reads_back_labels_species_and_subjects(surf, split):
    root, manifest = surf
    dataset = open_dataset(f"casia-surf:{root}", split)
    samples = list(dataset)
    assert truth(samples) == expected(manifest, split)
    assert len(dataset) == len(samples)
    for sample in samples:
        assert sample.depth_kind == "normalised8" and sample.precropped
        assert sample.depth.dtype == np.uint8 and sample.depth.ndim == 2
        assert sample.color_bgr.shape[2] == 3 and not sample.color_is_gray
        assert sample.dataset == "casia-surf"


def test_spec_fragment_selects_the_split(surf):
    root, manifest = surf
    assert truth(open_dataset(f"casia-surf:{root}#dev")) == expected(manifest, "dev")


def test_spec_split_and_requested_split_must_agree(surf):
    root, _ = surf
    with pytest.raises(DatasetError, match="names split 'dev'"):
        open_dataset(f"casia-surf:{root}#dev", "train")


def test_polarity_is_read_from_the_list_not_assumed(tmp_path):
    manifest = fixtures.write_casia_surf(tmp_path, real_label="0")
    dataset = open_dataset(f"casia-surf:{tmp_path}", "train")
    assert dataset.live_label == "0"
    assert truth(dataset) == expected(manifest, "train")


def test_a_list_that_contradicts_its_paths_is_refused(tmp_path):
    fixtures.write_casia_surf(tmp_path)
    lines = (tmp_path / "train_list.txt").read_text().splitlines()
    lines = [" ".join(line.split()[:3] + ["1"]) for line in lines]  # every line "real"
    (tmp_path / "train_list.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match="contradicts"):
        open_dataset(f"casia-surf:{tmp_path}", "train")


def test_wrong_layout_names_the_expected_list(tmp_path):
    (tmp_path / "something.txt").write_text("x\n")
    with pytest.raises(DatasetError, match="expected train_list.txt"):
        open_dataset(f"casia-surf:{tmp_path}", "train")


def test_unlabelled_public_list_is_named_but_not_used(tmp_path):
    fixtures.write_casia_surf(tmp_path)
    (tmp_path / "val_private_list.txt").unlink()
    with pytest.raises(DatasetError, match=r"val_private_list\.txt.*val_public_list\.txt.*no labels"):
        open_dataset(f"casia-surf:{tmp_path}", "dev")


def test_empty_split_is_refused(tmp_path):
    fixtures.write_casia_surf(tmp_path)
    (tmp_path / "test_private_list.txt").write_text("\n")
    with pytest.raises(DatasetError, match="empty"):
        open_dataset(f"casia-surf:{tmp_path}", "test")


def test_swapped_columns_are_refused(tmp_path):
    fixtures.write_casia_surf(tmp_path)
    lines = (tmp_path / "train_list.txt").read_text().splitlines()
    swapped = []
    for line in lines:
        color, depth, ir, label = line.split()
        swapped.append(f"{color} {ir} {depth} {label}")
    (tmp_path / "train_list.txt").write_text("\n".join(swapped) + "\n")
    with pytest.raises(DatasetError, match="expected 'color depth ir label'"):
        open_dataset(f"casia-surf:{tmp_path}", "train")


def test_missing_image_names_the_list_line(tmp_path):
    fixtures.write_casia_surf(tmp_path)
    first = (tmp_path / "train_list.txt").read_text().split()[0]
    (tmp_path / first).unlink()
    dataset = open_dataset(f"casia-surf:{tmp_path}", "train")
    with pytest.raises(DatasetError, match="train_list.txt line 1"):
        next(iter(dataset))


def test_iteration_is_repeatable_and_in_list_order(surf):
    root, _ = surf
    dataset = open_dataset(f"casia-surf:{root}", "train")
    listed = [str(root.joinpath(*line.split()[0].split("/")))
              for line in (root / "train_list.txt").read_text().splitlines()]
    first = [s.path for s in dataset]
    assert first == listed
    assert [s.path for s in dataset] == first
