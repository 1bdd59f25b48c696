"""Threshold targets: parsing, selection on the hand-worked set of test_pad_metrics, the DET plot."""

from __future__ import annotations

import pytest

from calibration.threshold import choose_threshold, parse_target, write_det_plot
from edge.errors import ConfigError

SCORES = [0.10, 0.20, 0.30, 0.60, 0.40, 0.70, 0.90, 0.55, 0.80, 0.95]
ATTACK = [0] * 4 + [1] * 6
SPECIES = [""] * 4 + ["print"] * 3 + ["replay"] * 3


@pytest.mark.parametrize("text,kind,rate", [
    ("eer", "eer", None),
    ("BPCER@APCER=0.01", "bpcer@apcer", 0.01),
    ("bpcer = 0.05", "bpcer", 0.05),
    ("bpcer@apcer=1e-3", "bpcer@apcer", 0.001),
])
def test_parse_target(text, kind, rate):
    target = parse_target(text)
    assert (target.kind, target.rate) == (kind, rate)


@pytest.mark.parametrize("text", ["apcer=0", "bpcer=2", "bpcer=0", "bpcer@apcer=abc", "", "eer=0.1"])
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
