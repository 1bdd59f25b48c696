"""End to end on the synthetic world with the bundled default model (issue 7's must-shows).

The full-length attack runs (20 seeds x 30 s per species) and the 20,000-frame soak take hours of
rendering on two cores; the suite runs shortened versions of the same code, and the full runs are
`tools/attack_runs.py` and `tools/soak.py` (numbers in the issue note and docs/kiosk-results.md).

A rendered source is judged in stream time (edge.live.clock), so these results do not depend on how
fast or loaded the machine is; every test that expects decisions also checks that frames were
actually scored, so a run in which every frame faulted (over latency, stale) cannot pass.
"""

from __future__ import annotations

import sqlite3

import pytest

from edge.capture.synthetic import SyntheticWorld
from edge.errors import ConfigError, ModelError
from edge.live.clock import WallClock
from edge.live.session import LiveOptions, LiveSession
from edge.policy import PolicyConfig
from engines.bundled import default_model_path
from free_port import free_port
from kiosk_toml import write_kiosk_toml
from live_fakes import SlowSource, StallingSource, SteppingClock

MODEL = default_model_path()
CLOCK_FAULTS = {"over_latency", "stale_frame", "clock"}  # codes a software source must never get from machine speed
FAULTS = CLOCK_FAULTS | {"fault", "bad_score"}  # a frame with one of these was not judged at all


@pytest.fixture(scope="module")
def model_dir(shared_data):
    return shared_data / "models"  # YuNet, the detector the default model was trained with


def first_grant_delay_ms(seed: int, model_dir, frames: int = 90) -> tuple[float | None, int, set[str]]:
    """(delay from the first face to the first grant, frames scored, decision codes seen)."""
    options = LiveOptions(spec="synthetic:live", seed=seed, frames=frames, model_dir=model_dir)
    first_face = None
    scored, codes = 0, set()
    with LiveSession(options) as session:
        for result in session:
            scored += result.score is not None
            codes.add(result.decision.code)
            if result.face is not None and first_face is None:
                first_face = result.t_ms
            if result.decision.live:
                return result.t_ms - first_face, scored, codes
    return None, scored, codes


@pytest.mark.parametrize("seed", range(20))
def test_live_person_is_granted_within_3_s(seed, model_dir):
    delay, scored, codes = first_grant_delay_ms(seed, model_dir)
    assert scored > 0 and not codes & CLOCK_FAULTS, (scored, codes)
    assert delay is not None and delay <= 3000.0


@pytest.mark.parametrize("species", ["print", "replay", "mask", "cutout"])
def test_attacks_are_never_granted(species, model_dir):
    frames_live = frames_scored = 0
    for seed in range(5):
        options = LiveOptions(spec=f"synthetic:{species}", seed=seed, frames=45, model_dir=model_dir)
        judged_this_seed = 0
        with LiveSession(options) as session:
            for result in session:
                assert result.decision.state != "live", (seed, result.frame_number, result.decision.reason)
                assert result.decision.code not in CLOCK_FAULTS, (seed, result.frame_number, result.decision.reason)
                # judged: a face passed the fault checks and was refused by the quality gates (a flat
                # print's depth) or scored by the model
                judged_this_seed += result.sample is not None and result.decision.code not in FAULTS
                if result.score is not None:
                    frames_scored += 1
                    frames_live += result.score < result.decision.threshold
        # never granted must mean "judged and refused", not "every frame faulted before judging"
        assert judged_this_seed > 0, f"{species} seed {seed}: no face was judged"
    # the per-frame APCER may be above zero: the K-of-N policy is what keeps the door shut
    print(f"{species}: per-frame APCER {frames_live}/{frames_scored}")


def live_frames(n: int):
    world = SyntheticWorld("live", 3, distance_m=0.5)
    return [world.frame(i) for i in range(n)]


def test_stall_mid_attempt_never_grants_and_recovers(model_dir):
    frames = live_frames(40)
    source = StallingSource(frames, before=5)
    # a deep queue: this test is about the stall, not about dropping frames a fast source outruns
    options = LiveOptions(model=MODEL, model_dir=model_dir, stall_timeout_s=0.2, frames=60, queue_size=64)
    states = []
    with LiveSession(options, source=source) as session:
        for result in session:
            states.append((result.decision.state, result.decision.code, result.frame_number))
            stalls = sum(1 for s in states if s[1] in ("fault", "camera"))
            if stalls >= 3:
                source.release.set()
    stall_index = next(i for i, s in enumerate(states) if s[2] == -1)
    assert all(s[0] == "unknown" for s in states[stall_index:stall_index + 3])
    assert not any(s[0] == "live" for s in states[:stall_index + 3])
    assert any(s[0] == "live" for s in states[stall_index + 3:]), "no recovery after frames returned"


def test_a_slow_renderer_is_judged_in_stream_time(model_dir):
    """Waiting 300 ms of wall time per frame (more than the 250 ms budget; a renderer on a loaded
    machine) does not make a software source's frames late: they are scored and the person is granted."""
    # a deep queue: this test is about the clock, not about dropping frames
    options = LiveOptions(model=MODEL, model_dir=model_dir, stall_timeout_s=5.0, frames=12, queue_size=16,
                          policy=PolicyConfig(k=5, n=6))
    with LiveSession(options, source=SlowSource(live_frames(12), delay_s=0.3)) as session:
        assert session.clock.name == "stream"
        results = list(session)
    assert all(r.score is not None for r in results), [r.decision.reason for r in results]
    assert not {r.decision.code for r in results} & CLOCK_FAULTS
    assert any(r.decision.live for r in results)


def test_a_slow_camera_fails_closed_in_wall_time(model_dir):
    """A camera is judged in wall time: on a machine too slow for the 250 ms budget (a wall clock that
    moves 300 ms at every reading, so the outcome does not depend on this machine) no frame passes."""
    options = LiveOptions(model=MODEL, model_dir=model_dir, stall_timeout_s=5.0, frames=6, queue_size=8)
    camera = SlowSource(live_frames(6), delay_s=0.0, spec="realsense:000000000001")
    with LiveSession(options, source=camera) as session:
        assert session.clock.name == "wall"  # the rule picks wall time for a camera spec
    with LiveSession(options, source=camera, clock=WallClock(SteppingClock(0.3))) as session:
        results = list(session)
    codes = {r.decision.code for r in results}
    assert len(results) == 6 and codes and codes <= {"over_latency", "stale_frame"}, codes  # late, never live


def test_disconnect_fails_closed(model_dir):
    from live_fakes import FailingSource

    options = LiveOptions(model=MODEL, model_dir=model_dir, stall_timeout_s=0.3)
    with LiveSession(options, source=FailingSource(live_frames(4))) as session:
        results = list(session)
    assert results[-1].decision.state == "unknown" and "disconnected" in results[-1].decision.reason


def kiosk_config(tmp_path, actuator: str, production: bool = False, digest: str | None = None,
                 source: str = "synthetic:live"):
    return write_kiosk_toml(tmp_path, source, production=production, actuator=actuator, digest=digest,
                            kiosk_extra="unlock_s = 0.1")


def test_kiosk_refuses_a_model_with_the_wrong_hash(tmp_path):
    from edge.kiosk.runtime import run_kiosk

    path = kiosk_config(tmp_path, 'type = "none"', digest="0" * 64)
    with pytest.raises(ModelError, match="was pinned"):
        run_kiosk(path, frames=5)


def test_production_kiosk_refuses_the_synthetic_source(tmp_path):
    from edge.kiosk.runtime import run_kiosk

    path = kiosk_config(tmp_path, 'type = "none"', production=True)
    with pytest.raises(ConfigError, match="production mode refuses"):
        run_kiosk(path, frames=5)


def test_a_kiosk_whose_source_never_opens_stops_with_one_line_and_locks(tmp_path, model_dir):
    """It used to report a camera fault every 2 s for ever (hardening issue)."""
    from edge.errors import SourceUnavailableError
    from edge.kiosk.runtime import run_kiosk

    path = kiosk_config(tmp_path, 'type = "none"', source="synthetic:nosuchscenario")
    with pytest.raises(SourceUnavailableError, match="unknown synthetic scenario 'nosuchscenario'"):
        run_kiosk(path, frames=5, model_dir=model_dir)
    with sqlite3.connect(tmp_path / "audit.sqlite") as db:
        rows = db.execute("SELECT source, action, outcome FROM events ORDER BY rowid").fetchall()
    assert ("service", "pipeline", "failed") in rows and rows[-1][:2] == ("service", "stop")


def test_webhook_down_means_no_grant_and_an_audit_line(tmp_path, model_dir, monkeypatch):
    from edge.kiosk.runtime import run_kiosk

    monkeypatch.setenv("EDGEFAS_TEST_WEBHOOK", "w" * 40)
    actuator = (f'type = "webhook"\nurl = "http://127.0.0.1:{free_port()}/unlock"\n'
                'secret_env = "EDGEFAS_TEST_WEBHOOK"\ntimeout_s = 0.5')
    path = kiosk_config(tmp_path, actuator)
    run = run_kiosk(path, frames=40, model_dir=model_dir)
    assert run.grants >= 1  # the policy said live ...
    with sqlite3.connect(tmp_path / "audit.sqlite") as db:
        unlocks = db.execute("SELECT outcome FROM events WHERE source='actuator' AND action='unlock'").fetchall()
        attempts = db.execute("SELECT count(*) FROM attempts").fetchone()[0]
    assert unlocks and all(o == "failed" for (o,) in unlocks)  # ... but the door never opened
    assert attempts >= 1


def test_kiosk_grants_once_per_attempt_through_a_command(tmp_path, model_dir):
    from edge.kiosk.runtime import run_kiosk

    marker = tmp_path / "opened"
    actuator = f'type = "command"\nunlock = ["/bin/sh", "-c", "echo $EDGEFAS_ATTEMPT_ID >> {marker}"]\ntimeout_s = 5.0'
    path = kiosk_config(tmp_path, actuator)
    run = run_kiosk(path, frames=40, model_dir=model_dir)
    assert run.grants == 1
    assert marker.read_text().split() == ["1"]
