"""Composite faces of the photo world: made only from one split's people, blended where the face is,
and a training set only (dev and test stay real photographs)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.capture.photo.library import PhotoLibrary
from edge.errors import DatasetError


def test_composites_pair_two_different_people_of_the_same_split(library):
    from edge.capture.photo.library import SPLITS

    for split in SPLITS:
        own = library.photos_in(split)
        people = {p.identity for p in own}
        paths = {p.path for p in own}
        mixes = library.composites_in(split)
        assert len(mixes) == len(own), f"{split}: one composite per photo"
        for mix in mixes:
            head, _, donor = mix.identity.partition("~")
            assert head != donor and {head, donor} <= people, f"{mix.identity} is not two {split} people"
            assert mix.path in paths and mix.donor in paths and mix.donor != mix.path
        assert len({m.donor for m in mixes}) > 1, "donors vary"
    reordered = PhotoLibrary(library.root, tuple(reversed(library.photos)))  # the manifest in another order
    assert set(reordered.composites_in("train")) == set(library.composites_in("train")), "pairs follow names only"


def _pair(library, shared_data):
    from edge.capture.photo.lift import _detect

    yunet = shared_data / "models" / "face_detection_yunet.onnx"
    mix = library.composites_in("train")[0]
    head, donor = cv2.imread(str(mix.path)), cv2.imread(str(mix.donor))
    return head, _detect(head, yunet), donor, _detect(donor, yunet)


def test_a_composite_changes_the_inner_face_only_and_takes_it_from_the_donor(library, shared_data):
    from edge.capture.photo.composite import blend_region, composite_face

    head, head_lms, donor, donor_lms = _pair(library, shared_data)
    out = composite_face(head, head_lms, donor, donor_lms)
    inside = blend_region(head_lms, head.shape[:2]) > 0
    assert out.shape == head.shape and inside.sum() > 1000
    # hair, ears, clothes, room stay the head photo's: Poisson blending solves over the region's box only
    ys, xs = np.nonzero(inside)
    box = np.zeros_like(inside)
    box[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
    np.testing.assert_array_equal(out[~box], head[~box])
    changed = np.abs(out.astype(int) - head.astype(int)).sum(axis=2)[inside]
    assert np.mean(changed > 12) > 0.5, "the inner face is replaced"
    # the donor's features: the composite's inner face follows the aligned donor's, not the head's
    matrix, _ = cv2.estimateAffinePartial2D(donor_lms, head_lms)
    warped = cv2.warpAffine(donor, matrix, (head.shape[1], head.shape[0]))
    gray = [cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_BGR2GRAY), cv2.CV_32F)[inside] for x in (out, warped, head)]
    to_donor, to_head = np.corrcoef(gray[0], gray[1])[0, 1], np.corrcoef(gray[0], gray[2])[0, 1]
    assert to_donor > 0.5 > to_head, (to_donor, to_head)


def test_a_face_at_the_photo_edge_is_refused_not_smeared(library, shared_data):
    from edge.capture.photo.composite import composite_face

    head, head_lms, donor, donor_lms = _pair(library, shared_data)
    shifted = head_lms - head_lms[:2].mean(axis=0) + np.float32([3, 3])  # eyes at the corner
    with pytest.raises(ValueError, match="edge"):
        composite_face(head, shifted, donor, donor_lms)


def test_photomix_trains_on_composites_and_refuses_to_be_dev_or_test(library):
    from edge.datasets.registry import open_dataset, parse_dataset_spec

    subjects = {raw.subject for raw in open_dataset(parse_dataset_spec("photomix:24"), "train")}
    train_people = {p.identity for p in library.photos_in("train")}
    assert any("~" in s for s in subjects), "composite faces are drawn"
    assert any(s in train_people for s in subjects), "real train people are drawn too"
    assert all(set(s.split("~")) <= train_people for s in subjects), "only train people"
    for split in ("dev", "test"):
        with pytest.raises(DatasetError, match="photomix is a training set") as err:
            open_dataset(parse_dataset_spec("photomix:24"), split)
        assert "\n" not in str(err.value) and "photo:" in str(err.value)
