"""Operating points as an integrator writes them on the command line: ``--target bpcer=1%`` or ``apcer=5%``."""

from __future__ import annotations

import pytest

from calibration.threshold import ThresholdTarget, choose_threshold, parse_target
from edge.errors import ConfigError

# live faces score 0.1-0.6, prints 0.4/0.7/0.9, replays 0.55/0.8/0.95 (the hand-worked set of test_pad_metrics)
SCORES = [0.10, 0.20, 0.30, 0.60, 0.40, 0.70, 0.90, 0.55, 0.80, 0.95]
ATTACK = [0] * 4 + [1] * 6
SPECIES = [""] * 4 + ["print"] * 3 + ["replay"] * 3


@pytest.mark.parametrize("text,target", [
    ("bpcer=1%", ThresholdTarget("bpcer", 0.01)),
    ("BPCER = 2.5 %", ThresholdTarget("bpcer", 0.025)),
    ("apcer=0.05", ThresholdTarget("bpcer@apcer", 0.05)),
    ("apcer=5%", ThresholdTarget("bpcer@apcer", 0.05)),
    ("bpcer@apcer=1%", ThresholdTarget("bpcer@apcer", 0.01)),
])
def test_percentages_and_the_apcer_name_parse_to_the_canonical_target(text, target):
    assert parse_target(text) == target


@pytest.mark.parametrize("text", ["bpcer=100%", "apcer=0%", "bpcer=1%%", "apcer=%", "apcer@bpcer=1%"])
def test_a_rate_outside_zero_to_one_or_a_mangled_form_is_one_line(text):
    with pytest.raises(ConfigError) as info:
        parse_target(text)
    message = str(info.value)
    assert "\n" not in message and f"'{text}'" in message and "apcer=RATE" in message and "1%" in message


def test_apcer_target_chooses_what_bpcer_at_apcer_chooses():
    by_apcer = choose_threshold(SCORES, ATTACK, "apcer=34%", SPECIES)
    assert by_apcer.threshold == choose_threshold(SCORES, ATTACK, "bpcer@apcer=0.34", SPECIES).threshold
    # one of three prints (0.40) and one of three replays (0.55) may pass: at 0.70 no live face is refused
    assert by_apcer.threshold == pytest.approx(0.70)
    assert by_apcer.report.apcer_max == pytest.approx(1 / 3) and by_apcer.report.bpcer == 0.0
    assert str(by_apcer.target) == "bpcer@apcer=0.34"


def test_bpcer_one_percent_refuses_no_live_face_of_the_set():
    choice = choose_threshold(SCORES, ATTACK, "bpcer=1%", SPECIES)
    assert choice.report.bpcer == 0.0 and choice.threshold > 0.60  # above the highest live score
