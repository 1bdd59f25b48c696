"""ISO/IEC 30107-3 metrics against a case small enough to work out by hand.

The set: 4 live scores and 6 attacks of two species (higher = attack; score >= threshold => attack).

    live   : 0.10 0.20 0.30 0.60
    print  : 0.40 0.70 0.90
    replay : 0.55 0.80 0.95
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from calibration.metrics import (
    apcer_at_bpcer,
    area_under_curve,
    bpcer_at_apcer,
    classify_attack,
    det_points,
    equal_error_rate,
    hter_at,
    pad_report,
    scored_set,
)
from edge.errors import DatasetError

LIVE = [0.10, 0.20, 0.30, 0.60]
PRINT = [0.40, 0.70, 0.90]
REPLAY = [0.55, 0.80, 0.95]
SCORES = LIVE + PRINT + REPLAY
ATTACK = [0] * 4 + [1] * 6
SPECIES = [""] * 4 + ["print"] * 3 + ["replay"] * 3


def test_decision_at_equality_is_attack():
    assert classify_attack(np.array([0.5, 0.49999]), 0.5).tolist() == [True, False]


def test_report_at_half():
    # At t = 0.5: live 0.60 is refused (BPCER 1/4); print 0.40 passes (1/3); no replay passes (0).
    rep = pad_report(SCORES, ATTACK, 0.5, SPECIES)
    assert rep.apcer == {"print": pytest.approx(1 / 3), "replay": 0.0}
    assert rep.apcer_max == pytest.approx(1 / 3)
    assert rep.apcer_pooled == pytest.approx(1 / 6)
    assert rep.bpcer == pytest.approx(1 / 4)
    assert rep.acer == pytest.approx((1 / 3 + 1 / 4) / 2)
    assert rep.hter == pytest.approx((1 / 6 + 1 / 4) / 2)
    assert (rep.n_live, rep.n_spoof) == (4, 6)
    assert dict(rep.n_per_species) == {"print": 3, "replay": 3}


def test_auc_counts_pairs():
    # Live scores below each attack: 0.40->3, 0.70->4, 0.90->4, 0.55->3, 0.80->4, 0.95->4 = 22 of 24.
    assert area_under_curve(scored_set(SCORES, ATTACK, SPECIES)) == pytest.approx(22 / 24)


def test_auc_ties_count_half():
    # One live and one attack with the same score: P(attack > live) = 1/2.
    assert area_under_curve(scored_set([0.3, 0.3], [0, 1])) == pytest.approx(0.5)


def test_eer_takes_smallest_gap():
    # t=0.40: APCER 0, BPCER 1/4 (gap 1/4); t=0.55: APCER 1/6, BPCER 1/4 (gap 1/12, first minimum).
    eer = equal_error_rate(scored_set(SCORES, ATTACK, SPECIES))
    assert eer.threshold == pytest.approx(0.55)
    assert eer.eer == pytest.approx((1 / 6 + 1 / 4) / 2)


def test_bpcer_at_apcer_worst_case_vs_pooled():
    data = scored_set(SCORES, ATTACK, SPECIES)
    # Worst case: at t=0.55 print already has APCER 1/3 > 0.2, so t stays at 0.40 (BPCER 1/4).
    assert bpcer_at_apcer(data, 0.2, worst_case=True) == (pytest.approx(0.25), pytest.approx(0.40))
    # Pooled: t=0.55 has pooled APCER 1/6 <= 0.2; t=0.60 has 2/6 > 0.2.
    assert bpcer_at_apcer(data, 0.2, worst_case=False) == (pytest.approx(0.25), pytest.approx(0.55))
    # Allowing 1/3 per species reaches t=0.70 where no live sample is refused.
    assert bpcer_at_apcer(data, 0.34) == (pytest.approx(0.0), pytest.approx(0.70))


def test_apcer_at_bpcer():
    data = scored_set(SCORES, ATTACK, SPECIES)
    # BPCER 0 needs t above 0.60: the next candidate is 0.70, where print and replay each pass 1 of 3.
    assert apcer_at_bpcer(data, 0.01) == (pytest.approx(1 / 3), pytest.approx(0.70))
    assert apcer_at_bpcer(data, 0.30) == (pytest.approx(0.0), pytest.approx(0.40))


def test_hter_at():
    assert hter_at(scored_set(SCORES, ATTACK, SPECIES), 0.7) == pytest.approx((2 / 6 + 0) / 2)


def test_det_points_are_monotone():
    points = det_points(scored_set(SCORES, ATTACK, SPECIES))
    assert len(points) == len(set(SCORES)) + 1  # every observed score plus +inf
    apcer = [p.apcer for p in points]
    bpcer = [p.bpcer for p in points]
    assert apcer == sorted(apcer) and bpcer == sorted(bpcer, reverse=True)
    assert (apcer[0], bpcer[0], apcer[-1], bpcer[-1]) == (0.0, 1.0, 1.0, 0.0)


def test_report_json_has_contract_keys():
    rep = json.loads(pad_report(SCORES, ATTACK, 0.5, SPECIES).dumps())
    for key in ("apcer", "apcer_max", "apcer_pooled", "bpcer", "acer", "eer", "auc", "threshold",
                "n_live", "n_spoof"):
        assert key in rep
    assert rep["apcer"]["print"] == pytest.approx(1 / 3)


def test_missing_species_is_one_attack_class():
    rep = pad_report(SCORES, ATTACK, 0.5)
    assert list(rep.apcer) == ["attack"]
    assert rep.apcer_max == rep.apcer_pooled == pytest.approx(1 / 6)


def test_one_class_is_a_dataset_error():
    with pytest.raises(DatasetError, match="no attack samples"):
        scored_set([0.1, 0.2], [0, 0])
    with pytest.raises(DatasetError, match="no bona fide"):
        scored_set([0.1, 0.2], [True, True])


def test_bad_inputs_name_the_field():
    with pytest.raises(ValueError, match=r"scores\[1\]"):
        scored_set([0.1, float("nan")], [0, 1])
    with pytest.raises(ValueError, match="is_attack has 1"):
        scored_set([0.1, 0.2], [0])
    with pytest.raises(ValueError, match="0/1"):
        scored_set([0.1, 0.2], [0, 2])
