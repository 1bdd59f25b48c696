"""Threshold targets: parsing, selection on the hand-worked set of test_pad_metrics, the DET plot."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.threshold import choose_threshold, parse_target, write_det_plot
from edge.errors import ConfigError

SCORES = [0.10, 0.20, 0.30, 0.60, 0.40, 0.70, 0.90, 0.55, 0.80, 0.95]
ATTACK = [0] * 4 + [1] * 6
SPECIES = [""] * 4 + ["print"] * 3 + ["replay"] * 3


@pytest.mark.parametrize("text,kind,rate", [
    ("eer", "eer", None),
    ("Worst-EER", "worst-eer", None),
    ("acer", "acer", None),
    ("BPCER@APCER=0.01", "bpcer@apcer", 0.01),
    ("bpcer = 0.05", "bpcer", 0.05),
    ("bpcer@apcer=1e-3", "bpcer@apcer", 0.001),
])
def test_parse_target(text, kind, rate):
    target = parse_target(text)
    assert (target.kind, target.rate) == (kind, rate)


@pytest.mark.parametrize("text", ["apcer=0", "bpcer=2", "bpcer=0", "bpcer@apcer=abc", "", "eer=0.1",
                                  "acer=0.03", "worst_eer"])
def test_bad_target_is_one_line_config_error(text):
    with pytest.raises(ConfigError) as info:
        parse_target(text)
    message = str(info.value)
    assert "\n" not in message and "bpcer@apcer=RATE" in message


def test_bpcer_at_apcer_one_percent():
    # No attack of either species may pass: the highest such threshold is the lowest attack, 0.40.
    choice = choose_threshold(SCORES, ATTACK, "bpcer@apcer=0.01", SPECIES)
    assert choice.threshold == pytest.approx(0.40)
    assert choice.report.apcer_max == 0.0 and choice.report.bpcer == pytest.approx(0.25)


def test_eer_target():
    choice = choose_threshold(SCORES, ATTACK, "eer", SPECIES)
    assert choice.threshold == pytest.approx(0.55)
    assert choice.to_json()["target"] == "eer"


# Four live faces, an easy species and a hard one (a mask scored among the live faces).
DOOR_SCORES = [0.10, 0.20, 0.30, 0.50] + [0.60, 0.70, 0.80, 0.90] + [0.40, 0.45, 0.55, 0.95]
DOOR_ATTACK = [0] * 4 + [1] * 8
DOOR_SPECIES = [""] * 4 + ["print"] * 4 + ["mask"] * 4


def test_the_three_balanced_targets_differ_when_one_species_is_hard():
    # eer: at 0.50 one live of four is refused and two attacks of eight pass (pooled 25 % = 25 %),
    #   but two masks of four pass (50 %).
    # worst-eer: at 0.45 one mask of four passes and one live of four is refused (25 % = 25 %).
    # acer: at 0.40 no attack passes and one live is refused: (0 + 25 %) / 2 = 12.5 %, the lowest.
    by_target = {t: choose_threshold(DOOR_SCORES, DOOR_ATTACK, t, DOOR_SPECIES) for t in ("eer", "worst-eer", "acer")}
    assert {t: c.threshold for t, c in by_target.items()} == pytest.approx({"eer": 0.50, "worst-eer": 0.45, "acer": 0.40})
    assert by_target["eer"].report.apcer_max == pytest.approx(0.5)
    assert by_target["worst-eer"].report.apcer_max == pytest.approx(by_target["worst-eer"].report.bpcer)
    assert by_target["acer"].report.acer == pytest.approx(0.125)
    assert all(c.report.acer >= by_target["acer"].report.acer for c in by_target.values())
    assert by_target["worst-eer"].to_json()["target"] == "worst-eer"


def test_worst_eer_is_eer_with_one_species():
    one = ["print"] * 6
    assert choose_threshold(SCORES, ATTACK, "worst-eer", [""] * 4 + one).threshold == \
        choose_threshold(SCORES, ATTACK, "eer", [""] * 4 + one).threshold


def test_acer_tie_takes_the_stricter_threshold():
    # Live 0.1, 0.5; attacks 0.3, 0.9. At 0.3: (0 + 1/2) / 2; at 0.5: (1/2 + 1/2) / 2; at 0.9: (1/2 + 0) / 2.
    # 0.3 and 0.9 tie at 25 %: the lower threshold lets no attack through.
    choice = choose_threshold([0.1, 0.5, 0.3, 0.9], [0, 0, 1, 1], "acer", ["", "", "print", "print"])
    assert choice.threshold == pytest.approx(0.3) and choice.report.apcer_max == 0.0


def test_bpcer_target():
    # No live may be refused: first threshold above the highest live score (0.60) is 0.70.
    choice = choose_threshold(SCORES, ATTACK, "bpcer=0.01", SPECIES)
    assert choice.threshold == pytest.approx(0.70)
    assert choice.report.bpcer == 0.0 and choice.report.apcer_max == pytest.approx(1 / 3)


def test_target_met_only_by_accepting_everything_is_refused():
    # The highest score is live: BPCER 0 is reached only at +inf, which would disable detection.
    with pytest.raises(ConfigError, match="every sample as live"):
        choose_threshold([0.1, 0.9], [1, 0], "bpcer=0.01")


def test_det_plot_written(tmp_path):
    out = write_det_plot(SCORES, ATTACK, tmp_path / "det.png", SPECIES, threshold=0.55)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 2000


def test_held_out_thresholds_show_the_person_who_sets_the_point():
    """Four people; d's live faces score high. With d in, the EER point is lenient; without d it is strict."""
    from calibration.threshold import held_out_thresholds

    rng = np.random.default_rng(5)
    scores, attack, species, subjects = [], [], [], []
    for person, live_mean in (("a", 0.1), ("b", 0.1), ("c", 0.1), ("d", 0.7)):
        scores += list(rng.normal(live_mean, 0.03, 40)) + list(rng.normal(0.8, 0.1, 40))
        attack += [False] * 40 + [True] * 40
        species += [""] * 40 + ["mannequin"] * 40
        subjects += [person] * 80
    held = held_out_thresholds(scores, attack, "eer", species, subjects)
    assert set(held) == {"a", "b", "c", "d"}
    assert held["d"] < min(held["a"], held["b"], held["c"]) - 0.1  # without d the point is stricter
    everyone = choose_threshold(scores, attack, "eer", species).threshold
    assert held["a"] == pytest.approx(everyone, abs=0.1)  # a's absence barely moves it


def test_held_out_thresholds_need_three_people_and_one_subject_per_score():
    from calibration.threshold import held_out_thresholds

    scores, attack = [0.1, 0.2, 0.9, 0.8], [False, False, True, True]
    assert held_out_thresholds(scores, attack, "eer", None, ["a", "b", "a", "b"]) == {}
    with pytest.raises(ValueError, match="one subject per score"):
        held_out_thresholds(scores, attack, "eer", None, ["a"])
