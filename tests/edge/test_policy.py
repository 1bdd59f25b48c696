"""DecisionPolicy: K-of-N per tracked face, window, rate limit, lockout, and every fail-closed path."""

from __future__ import annotations

import math

import pytest

from edge.policy import REASON_CODES, DecisionPolicy, Observation, PolicyConfig

THRESHOLD = 0.5
LIVE, ATTACK = 0.1, 0.9
FRAME_MS = 1000.0 / 30  # D4xx colour stream at 30 fps


def small_config(**overrides) -> PolicyConfig:
    base = dict(k=3, n=4, window_s=1.0, spoof_frames_to_reject=3, lockout_after=2, lockout_window_s=600.0,
                lockout_s=30.0, max_attempts_per_minute=3)
    base.update(overrides)
    return PolicyConfig(**base)


class Feeder:
    """Feeds one frame at a time at 30 fps unless a time is given."""

    def __init__(self, policy: DecisionPolicy) -> None:
        self.policy = policy
        self.t_ms = 0.0

    def frame(self, track_id=1, score=LIVE, gate=None, at_ms=None, **extra):
        self.t_ms = self.t_ms + FRAME_MS if at_ms is None else at_ms
        return self.policy.update(Observation(t_ms=self.t_ms, track_id=track_id, score=score, gate=gate, **extra))


def test_live_only_after_k_live_frames_of_one_track():
    feed = Feeder(DecisionPolicy(small_config(), THRESHOLD))
    first, second, third = feed.frame(), feed.frame(), feed.frame()
    assert [d.state for d in (first, second)] == ["unknown", "unknown"]
    assert first.code == second.code == "collecting"
    assert third.state == "live" and third.live and third.code == "live"
    assert third.live_frames == 3 and third.attempt_id == first.attempt_id == 1
    assert third.threshold == THRESHOLD and third.score == LIVE


def test_k_of_last_n_counts_attack_and_gated_frames_against_live():
    feed = Feeder(DecisionPolicy(small_config(), THRESHOLD))
    states = [feed.frame(score=s, gate=g).state
              for s, g in [(LIVE, None), (ATTACK, None), (LIVE, None), (None, "face too small")]]
    assert "live" not in states  # last 4 hold only 2 live frames
    gated = feed.policy.update(Observation(t_ms=feed.t_ms + 1, track_id=1, gate="valid depth 0.12 < 0.5"))
    assert gated.code == "gated" and "valid depth" in gated.reason and gated.state == "unknown"
    # the last 4 are now attack, live, gated, gated
    assert feed.frame().state == "unknown"  # live, gated, gated, live
    assert feed.frame().state == "unknown"  # gated, gated, live, live
    assert feed.frame().state == "live"  # gated, live, live, live


def test_score_equal_to_threshold_counts_as_attack():
    feed = Feeder(DecisionPolicy(small_config(), THRESHOLD))
    decisions = [feed.frame(score=THRESHOLD) for _ in range(3)]
    assert decisions[-1].state == "spoof" and decisions[-1].spoof_frames == 3


def test_new_track_restarts_the_count():
    feed = Feeder(DecisionPolicy(small_config(), THRESHOLD))
    feed.frame(track_id=1)
    feed.frame(track_id=1)
    switched = feed.frame(track_id=2)
    assert switched.state == "unknown" and switched.live_frames == 1 and switched.attempt_id == 2
    assert feed.frame(track_id=2).state == "unknown"
    assert feed.frame(track_id=2).state == "live"


def test_frames_outside_the_window_expire():
    feed = Feeder(DecisionPolicy(small_config(window_s=1.0), THRESHOLD))
    feed.frame(at_ms=0)
    feed.frame(at_ms=100)
    late = feed.frame(at_ms=1500)
    assert late.state == "unknown" and late.live_frames == 1
    assert feed.frame(at_ms=1600).state == "unknown"
    assert feed.frame(at_ms=1700).state == "live"


def test_attempts_are_rate_limited_per_minute():
    feed = Feeder(DecisionPolicy(small_config(max_attempts_per_minute=2), THRESHOLD))
    assert feed.frame(track_id=1, at_ms=0).attempt_id == 1
    assert feed.frame(track_id=2, at_ms=1000).attempt_id == 2
    refused = feed.frame(track_id=3, at_ms=2000)
    assert refused.state == "unknown" and refused.code == "rate_limited" and refused.attempt_id == 0
    for i in range(5):  # live-looking frames of the refused face do not accumulate
        assert feed.frame(track_id=3, at_ms=2100 + 33 * i).state == "unknown"
    allowed = feed.frame(track_id=3, at_ms=60_500)  # the first attempt left the one-minute window
    assert allowed.code == "collecting" and allowed.attempt_id == 3


def test_spoof_decision_sticks_to_the_track_and_lockout_follows():
    config = small_config(lockout_after=2, lockout_s=30.0)
    feed = Feeder(DecisionPolicy(config, THRESHOLD))
    decisions = [feed.frame(track_id=1, score=ATTACK) for _ in range(3)]
    assert decisions[-1].state == "spoof" and decisions[-1].code == "spoof"
    # never "retry until it passes": the same face stays refused however live it looks now
    after = [feed.frame(track_id=1, score=LIVE) for _ in range(10)]
    assert all(d.state == "spoof" and d.code == "decided_spoof" for d in after)

    second = [feed.frame(track_id=2, score=ATTACK) for _ in range(3)]
    assert second[-1].state == "spoof" and "locked out" in second[-1].reason
    locked = [feed.frame(track_id=3, score=LIVE) for _ in range(10)]
    assert all(d.state == "unknown" and d.code == "locked_out" for d in locked)

    unlocked_at = feed.policy.locked_until_ms
    resumed = [feed.frame(track_id=4, score=LIVE, at_ms=unlocked_at + 100 + 33 * i) for i in range(3)]
    assert resumed[-1].state == "live"


def test_live_decision_flips_to_spoof_when_attack_frames_follow():
    feed = Feeder(DecisionPolicy(small_config(), THRESHOLD))
    assert [feed.frame().state for _ in range(3)][-1] == "live"
    flipped = [feed.frame(score=ATTACK) for _ in range(3)]
    assert flipped[-1].state == "spoof"


FAIL_CLOSED = [
    ("fault", dict(fault="camera disconnected")),
    ("stale_frame", dict(frame_age_ms=5000.0)),
    ("stale_frame", dict(frame_age_ms=float("nan"))),
    ("over_latency", dict(latency_ms=900.0)),
    ("bad_score", dict(score=float("nan"))),
    ("bad_score", dict(score=float("inf"))),
    ("bad_score", dict(score=None)),
    ("untracked", dict(track_id=-1)),
    ("no_face", dict(track_id=None, score=None)),
]


@pytest.mark.parametrize(("code", "fields"), FAIL_CLOSED, ids=[f"{c}-{i}" for i, (c, _) in enumerate(FAIL_CLOSED)])
def test_every_fault_is_not_live_and_breaks_the_streak(code, fields):
    feed = Feeder(DecisionPolicy(small_config(), THRESHOLD))
    feed.frame()
    feed.frame()  # one more live frame would make it live
    obs = dict(t_ms=feed.t_ms + FRAME_MS, track_id=1, score=LIVE)
    obs.update(fields)
    feed.t_ms = obs["t_ms"]
    decision = feed.policy.update(Observation(**obs))
    assert decision.state == "unknown" and not decision.live
    assert decision.code == code and decision.code in REASON_CODES and decision.reason
    if decision.score is not None:
        assert math.isfinite(decision.score)
    following = feed.frame()
    if code in ("no_face", "untracked"):
        assert following.state == "live"  # a missed detection is not a fault: the evidence stays
    else:
        assert following.state == "unknown"  # the fault discarded the two earlier live frames


def test_time_going_backwards_is_not_live():
    feed = Feeder(DecisionPolicy(small_config(), THRESHOLD))
    feed.frame(at_ms=1000)
    feed.frame(at_ms=1033)
    back = feed.frame(at_ms=500)
    assert back.state == "unknown" and back.code == "clock"
    assert feed.frame(at_ms=1100).state == "unknown"


def test_failure_observation_carries_its_reason():
    policy = DecisionPolicy(small_config(), THRESHOLD)
    decision = policy.update(Observation.failure(10.0, "engine manifest mismatch: rebuild with edgefas build-engine"))
    assert decision.state == "unknown" and decision.code == "fault"
    assert "manifest" in decision.reason


@pytest.mark.parametrize("fields", [dict(k=0), dict(k=5, n=4), dict(window_s=0.0), dict(lockout_s=float("nan")),
                                    dict(spoof_frames_to_reject=9, n=4), dict(n=2.5)])
def test_config_refuses_nonsense(fields):
    with pytest.raises(ValueError, match=next(iter(fields))):
        PolicyConfig(**{**dict(k=3, n=4), **fields})


def test_default_config_is_consistent():
    config = PolicyConfig()
    assert config.k <= config.n and config.spoof_frames_to_reject <= config.n
    assert config.k + config.spoof_frames_to_reject > config.n  # live and spoof cannot both hold


@pytest.mark.parametrize("threshold", [float("nan"), None, "0.5"])
def test_policy_needs_a_real_threshold(threshold):
    with pytest.raises((ValueError, TypeError)):
        DecisionPolicy(PolicyConfig(), threshold)


def test_observation_rejects_wrong_types():
    with pytest.raises(TypeError, match="track_id"):
        Observation(t_ms=0.0, track_id="1")
    with pytest.raises(TypeError, match="score"):
        Observation(t_ms=0.0, track_id=1, score="0.2")
