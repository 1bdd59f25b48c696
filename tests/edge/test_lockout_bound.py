"""Whose attempts count: an attacker cannot keep the owner out for long, nor retry without limit.

The rule (docs/decision-policy.md, "Whose attempts count"): every counter that refuses a face is a
window that ends with the attacker's own actions, and refused faces are not counted, so an owner who
arrives after the attacker has gone is scored again within ``PolicyConfig.owner_wait_bound_s`` of
the attacker's last presentation. Meanwhile the attacker gets at most ``max_attempts_per_minute``
scored attempts in any minute, and a lockout after ``lockout_after`` spoof decisions.
"""

from __future__ import annotations

import random

import pytest

from edge.policy import RATE_WINDOW_MS, DecisionPolicy, Observation, PolicyConfig

THRESHOLD = 0.5
FRAME_MS = 1000.0 / 30


def attack_then_owner(seed: int, config: PolicyConfig, owner_delay_s: float):
    """A random attacker for up to 10 minutes (new faces at random gaps, presenting attack frames,
    sometimes live-looking ones, sometimes leaving the view), then the owner ``owner_delay_s`` after
    the attacker's last frame. Returns (decisions of the attacker, the owner's first grant time after
    arrival in s or None, the attacker's last frame time)."""
    rng = random.Random(seed)
    policy = DecisionPolicy(config, THRESHOLD)
    t, track, attacker = 0.0, 100, []
    end = rng.uniform(60_000, 600_000)
    while t < end:
        track += 1
        for _ in range(rng.randint(3, 90)):  # one presentation: 0.1-3 s in front of the camera
            t += FRAME_MS
            score = rng.uniform(0.55, 1.0) if rng.random() < 0.9 else rng.uniform(0.0, 0.45)
            attacker.append(policy.update(Observation(t_ms=t, track_id=track, score=score)))
        for _ in range(rng.randint(0, 60)):  # walks away and back, or swaps the artefact at once
            t += FRAME_MS
            policy.update(Observation(t_ms=t, track_id=None))
    last_attack = t
    t += owner_delay_s * 1000.0
    owner = track + 1
    arrived = t
    for _ in range(int(30 * (config.owner_wait_bound_s + 5))):
        t += FRAME_MS
        if policy.update(Observation(t_ms=t, track_id=owner, score=0.1)).live:
            return attacker, (t - arrived) / 1000.0, last_attack
    return attacker, None, last_attack


@pytest.mark.parametrize("seed", range(12))
def test_an_owner_arriving_after_the_attacker_is_granted_within_the_bound(seed):
    config = PolicyConfig()
    # the owner steps up the moment the attacker leaves: granted at most the bound (+ K frames) later
    _, wait_s, _ = attack_then_owner(seed, config, owner_delay_s=0.0)
    assert wait_s is not None and wait_s <= config.owner_wait_bound_s + config.window_s, wait_s
    # and an owner who comes after the bound has passed is not refused at all: K frames
    _, wait_s, _ = attack_then_owner(seed, config, owner_delay_s=config.owner_wait_bound_s)
    assert wait_s is not None and wait_s <= config.k * FRAME_MS / 1000.0 + 1e-6, wait_s


@pytest.mark.parametrize("seed", range(12))
def test_the_attacker_gets_bounded_attempts_and_is_locked_out(seed):
    config = PolicyConfig()
    attacker, _, _ = attack_then_owner(seed, config, owner_delay_s=0.0)
    starts = sorted({(d.attempt_id, d.t_ms) for d in attacker if d.attempt_id > 0 and d.code != "rate_limited"},
                    key=lambda a: a[1])
    first_seen: dict[int, float] = {}
    for attempt_id, t in starts:
        first_seen.setdefault(attempt_id, t)
    times = sorted(first_seen.values())
    for i, t in enumerate(times):  # any one-minute window holds at most max_attempts_per_minute attempts
        in_window = [u for u in times[i:] if u < t + RATE_WINDOW_MS]
        assert len(in_window) <= config.max_attempts_per_minute
    spoofs = sum(1 for d in attacker if d.code == "spoof")
    if spoofs >= config.lockout_after:
        assert any(d.code == "locked_out" for d in attacker)


def test_the_bound_follows_the_configuration():
    assert PolicyConfig().owner_wait_bound_s == 60.0
    assert PolicyConfig(lockout_s=300.0).owner_wait_bound_s == 300.0
    _, wait_s, _ = attack_then_owner(3, PolicyConfig(lockout_s=300.0), owner_delay_s=0.0)
    assert wait_s is not None and wait_s <= 300.0 + 1.5
