"""Faces not found are reported per class beside the error rates (ISO/IEC 30107-3 non-response)."""

from __future__ import annotations

import numpy as np

from train.evaluate import non_response
from edge.datasets.sampleset import SampleSet, concatenate


def _set(pai: list[str], missed: dict[str, int]) -> SampleSet:
    n = len(pai)
    arr = np.array(pai)
    return SampleSet(np.zeros((n, 3, 4, 4), np.uint8), np.zeros((n, 1, 4, 4), np.uint16), (arr != "").astype(np.int8),
                     arr, np.array(["s"] * n), np.array([""] * n), {"missed_by_pai": missed})


def test_per_species_counts_and_rates():
    nr = non_response(_set(["", "", "", "print", "print", "mask"], {"replay": 2, "print": 1}))
    assert nr["replay"] == {"no_face": 2, "scored": 0, "rate": 1.0}, "a species the detector never finds still shows"
    assert nr["print"]["no_face"] == 1 and nr["print"]["scored"] == 2 and abs(nr["print"]["rate"] - 1 / 3) < 1e-9
    assert nr["live"] == {"no_face": 0, "scored": 3, "rate": 0.0}
    assert nr["attack (all species)"]["no_face"] == 3 and nr["attack (all species)"]["scored"] == 3


def test_joined_sets_add_up_their_parts():
    joined = concatenate([_set(["", "cutout"], {"live": 1}), _set(["", "cutout"], {"cutout": 2})], "a+b")
    nr = non_response(joined)
    assert nr["live"]["no_face"] == 1 and nr["live"]["scored"] == 2
    assert nr["cutout"]["no_face"] == 2 and nr["cutout"]["scored"] == 2


def test_a_leave_one_out_protocol_reports_only_its_own_species_faces_not_found():
    """Every protocol of a rendered world shares its grand test's cache, and with it the grand test's
    count of faces not found: the protocol's test keeps the left-out species' count alone."""
    from edge.datasets.rendered import protocol_keeps
    from edge.datasets.sampleset import protocol_subset

    grand = _set(["", "", "glasses", "replay", "mannequin"], {"replay": 23, "mannequin": 4, "live": 1})
    loo = protocol_subset(grand, lambda pai: protocol_keeps("LOO_glasses", "test", pai))
    assert sorted(loo.pai.tolist()) == ["", "", "glasses"]
    nr = non_response(loo)
    assert "replay" not in nr and "mannequin" not in nr
    assert nr["attack (all species)"] == {"no_face": 0, "scored": 1, "rate": 0.0}
    assert nr["live"]["no_face"] == 1
    assert non_response(grand)["attack (all species)"]["no_face"] == 27, "the grand test keeps every count"


def test_bpcer_per_person_counts_only_that_persons_live_faces():
    from train.evaluate import bpcer_by_subject

    n = 7
    samples = SampleSet(np.zeros((n, 3, 4, 4), np.uint8), np.zeros((n, 1, 4, 4), np.uint16),
                        np.array([0, 0, 0, 0, 0, 1, 1], np.int8), np.array(["", "", "", "", "", "print", "print"]),
                        np.array(["ann", "ann", "ann", "bob", "bob", "ann", "bob"]), np.array([""] * n), {})
    scores = np.array([0.9, 0.1, 0.5, 0.2, 0.1, 0.1, 0.9])  # attack at score >= threshold
    by = bpcer_by_subject(samples, scores, threshold=0.5)
    assert by["ann"] == {"scored": 3, "refused": 2, "bpcer": 2 / 3}, "a score on the threshold is refused"
    assert by["bob"] == {"scored": 2, "refused": 0, "bpcer": 0.0}, "attacks (bob's missed print) are not BPCER"
