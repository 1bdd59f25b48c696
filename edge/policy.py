"""The decision policy: per-frame scores in, one fail-closed decision per frame out (DESIGN §7).

A single frame never opens a door. ``live`` needs K of the last N frames of the *same tracked face*
to look live (score below the artifact's threshold, every quality gate passed) inside a time window;
a new face identity starts a new attempt from zero; attempts are rate-limited; repeated attack
decisions lock the policy out for a while. Anything that makes a frame untrustworthy (no camera,
stale frame, engine failure, NaN score, latency over budget, time running backwards) is "unknown"
with its reason and clears the evidence collected so far, so a fault can never be bridged.

Time is passed in (``Observation.t_ms``, a monotonic clock in milliseconds): there is no wall clock in
here, so tests are deterministic and a replayed clock cannot be confused with a real one.
The policy is not thread-safe; one pipeline thread owns it. See docs/decision-policy.md.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

DecisionState = Literal["live", "spoof", "unknown"]

RATE_WINDOW_MS = 60_000.0  # max_attempts_per_minute counts attempts started in the last minute


@dataclass(frozen=True)
class PolicyConfig:
    """Tunables of the policy. Defaults are derived in docs/decision-policy.md.

    The decision threshold is *not* here: it belongs to the model artifact (DESIGN §2) and is passed
    to :class:`DecisionPolicy` separately.
    """

    k: int = 8  # live frames needed among the last n (binomial derivation: docs/decision-policy.md)
    n: int = 10  # frames of one track considered; 10 frames = 0.33 s at the D4xx's 30 fps
    window_s: float = 1.5  # the k frames must lie within this span: still k-of-n down to ~7 fps
    spoof_frames_to_reject: int = 4  # attack frames among the last n that make a "spoof" decision
    lockout_after: int = 3  # spoof decisions within lockout_window_s that trigger a lockout
    lockout_window_s: float = 600.0  # how long a spoof decision counts toward a lockout
    lockout_s: float = 60.0  # NIST SP 800-63B §5.2.3 asks for >= 30 s after repeated biometric failures
    max_attempts_per_minute: int = 6  # new tracked faces per minute before new ones are refused
    max_latency_ms: float = 250.0  # capture-to-score budget; beyond it the score describes the past
    max_frame_age_ms: float = 500.0  # a frame older than this when scored is stale

    def __post_init__(self) -> None:
        for name in ("k", "n", "spoof_frames_to_reject", "lockout_after", "max_attempts_per_minute"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"PolicyConfig.{name} must be a positive integer, got {value!r}")
        for name in ("window_s", "lockout_window_s", "lockout_s", "max_latency_ms", "max_frame_age_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
                    or not math.isfinite(value):
                raise ValueError(f"PolicyConfig.{name} must be a positive finite number, got {value!r}")
        if self.k > self.n:
            raise ValueError(f"PolicyConfig.k ({self.k}) must not exceed PolicyConfig.n ({self.n})")
        if self.spoof_frames_to_reject > self.n:
            raise ValueError(f"PolicyConfig.spoof_frames_to_reject ({self.spoof_frames_to_reject}) "
                             f"must not exceed PolicyConfig.n ({self.n})")

    @property
    def owner_wait_bound_s(self) -> float:
        """The longest an attacker's attempts keep a live owner out once the attacker has gone.

        Both counters that refuse a face are windows that end with the attacker's own actions: a
        lockout ends ``lockout_s`` after the spoof decision that set it, and the rate limit counts
        attempts *started* (refused faces are not counted) in the last minute. So an owner who
        arrives after the attacker's last presentation is scored again at most this long after it,
        however many attacks came before (docs/decision-policy.md, "Whose attempts count")."""
        return max(self.lockout_s, RATE_WINDOW_MS / 1000.0)


@dataclass(frozen=True)
class Observation:
    """What the live pipeline knows about one frame when it asks for a decision.

    ``track_id`` is None when no face was found, ``FaceBox.track_id`` otherwise (negative means the
    tracker did not identify the face, which the policy refuses to accumulate). ``score`` is None
    when the model did not run (no face, gated, fault). ``gate`` is ``FaceSample.gate``. ``fault``
    is set by the pipeline for anything that makes the frame untrustworthy: camera error, engine
    failing its manifest, runner exception; the policy adds stale/latency/NaN faults itself.
    """

    t_ms: float  # monotonic time of this decision
    frame_age_ms: float = 0.0  # age of the frame when it was scored
    track_id: int | None = None
    score: float | None = None  # higher = more likely an attack (DESIGN §4)
    gate: str | None = None
    latency_ms: float = 0.0  # capture to score
    fault: str | None = None

    def __post_init__(self) -> None:
        for name in ("t_ms", "frame_age_ms", "latency_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"Observation.{name} must be a number, got {type(value).__name__}")
        if not math.isfinite(self.t_ms):
            raise ValueError(f"Observation.t_ms must be finite, got {self.t_ms}")
        if self.track_id is not None and (isinstance(self.track_id, bool) or not isinstance(self.track_id, int)):
            raise TypeError(f"Observation.track_id must be an int or None, got {type(self.track_id).__name__}")
        if self.score is not None and (isinstance(self.score, bool) or not isinstance(self.score, (int, float))):
            raise TypeError(f"Observation.score must be a number or None, got {type(self.score).__name__}")
        for name in ("gate", "fault"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"Observation.{name} must be a str or None, got {type(value).__name__}")

    @classmethod
    def failure(cls, t_ms: float, reason: str) -> Observation:
        """An observation for a frame that could not be produced or scored (camera, engine, runner)."""
        return cls(t_ms=t_ms, fault=reason)


@dataclass(frozen=True)
class Decision:
    """The policy's answer for one frame. Only ``state == "live"`` may open anything.

    ``code`` is a stable machine-readable reason (see :data:`REASON_CODES`); ``reason`` is the
    human sentence logged and audited. ``attempt_id`` numbers tracked-face attempts from 1 (0 = no
    attempt). ``live_frames``/``spoof_frames`` count the evidence behind the decision.
    """

    state: DecisionState
    code: str
    reason: str
    t_ms: float
    score: float | None = None
    threshold: float = float("nan")
    attempt_id: int = 0
    track_id: int | None = None
    live_frames: int = 0
    spoof_frames: int = 0

    @property
    def live(self) -> bool:
        return self.state == "live"


REASON_CODES: tuple[str, ...] = (
    "live", "spoof", "collecting", "gated", "no_face", "untracked", "fault", "stale_frame",
    "over_latency", "bad_score", "clock", "rate_limited", "locked_out", "decided_spoof",
)


@dataclass
class _Attempt:
    attempt_id: int
    track_id: int
    frames: deque  # of (t_ms, verdict) with verdict in {"live", "spoof", "gated"}
    spoofed: bool = False  # a spoof decision was made: the track stays refused


class DecisionPolicy:
    """K-of-N per tracked face, with rate limit and lockout; one :meth:`update` per frame."""

    def __init__(self, config: PolicyConfig, threshold: float) -> None:
        if not isinstance(config, PolicyConfig):
            raise TypeError(f"config must be a PolicyConfig, got {type(config).__name__}")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number from the model artifact, got {threshold!r}")
        self.config = config
        self.threshold = float(threshold)
        self._attempt: _Attempt | None = None
        self._next_attempt_id = 1
        self._attempt_starts_ms: deque[float] = deque()
        self._spoof_decisions_ms: deque[float] = deque()
        self._locked_until_ms = -math.inf
        self._last_t_ms = -math.inf

    @property
    def locked_until_ms(self) -> float:
        return self._locked_until_ms

    def describe(self) -> str:
        """One line for health reports: lockout and current attempt."""
        if self._last_t_ms < self._locked_until_ms:
            return f"locked out for {(self._locked_until_ms - self._last_t_ms) / 1000:.0f} s"
        if self._attempt is None:
            return "idle"
        return f"attempt {self._attempt.attempt_id} on track {self._attempt.track_id}"

    def update(self, obs: Observation) -> Decision:
        """Fold one frame's observation in and return the decision for this instant."""
        if not isinstance(obs, Observation):
            raise TypeError(f"obs must be an Observation, got {type(obs).__name__}")
        cfg = self.config
        if obs.t_ms < self._last_t_ms:
            self._clear_evidence()
            return self._decide(obs, "unknown", "clock",
                                f"time went backwards ({obs.t_ms:.0f} ms after {self._last_t_ms:.0f} ms): "
                                "evidence discarded")
        self._last_t_ms = obs.t_ms
        self._forget_old(obs.t_ms)

        # Faults first: they discard evidence, so a fault can never sit between K good frames.
        fault = self._fault_of(obs)
        if fault is not None:
            self._clear_evidence()
            return self._decide(obs, "unknown", *fault)
        if obs.t_ms < self._locked_until_ms:
            wait_s = (self._locked_until_ms - obs.t_ms) / 1000.0
            return self._decide(obs, "unknown", "locked_out",
                                f"locked out after {cfg.lockout_after} spoof decisions; retry in {wait_s:.0f} s")
        if obs.track_id is None:
            return self._decide(obs, "unknown", "no_face", "no face in view")
        if obs.track_id < 0:
            return self._decide(obs, "unknown", "untracked",
                                "face is not tracked (track_id < 0): K-of-N needs a face tracker")

        attempt = self._attempt_for(obs)
        if attempt is None:
            recent = len(self._attempt_starts_ms)
            wait_s = (self._attempt_starts_ms[0] + RATE_WINDOW_MS - obs.t_ms) / 1000.0
            return self._decide(obs, "unknown", "rate_limited",
                                f"rate limited: {recent} attempts in the last minute; "
                                f"next allowed in {max(wait_s, 0):.0f} s")
        if attempt.spoofed:
            return self._decide(obs, "spoof", "decided_spoof",
                                "this face was already decided to be an attack; a new attempt needs a new face",
                                attempt)

        verdict = "gated" if obs.gate is not None else ("spoof" if obs.score >= self.threshold else "live")
        attempt.frames.append((obs.t_ms, verdict))
        self._trim(attempt, obs.t_ms)
        live_n = sum(1 for _, v in attempt.frames if v == "live")
        spoof_n = sum(1 for _, v in attempt.frames if v == "spoof")
        if spoof_n >= cfg.spoof_frames_to_reject:  # checked before live: fail closed on a tie
            return self._reject(obs, attempt, spoof_n)
        if live_n >= cfg.k:
            return self._decide(obs, "live", "live",
                                f"{live_n} of the last {len(attempt.frames)} frames looked live "
                                f"(score < {self.threshold:g}) within {cfg.window_s:g} s", attempt)
        if verdict == "gated":
            return self._decide(obs, "unknown", "gated", f"quality gate: {obs.gate}", attempt)
        return self._decide(obs, "unknown", "collecting",
                            f"collecting: {live_n}/{cfg.k} live frames, {spoof_n} attack frames", attempt)

    # -- internals -------------------------------------------------------------------------------

    def _fault_of(self, obs: Observation) -> tuple[str, str] | None:
        cfg = self.config
        if obs.fault is not None:
            return "fault", obs.fault
        if not math.isfinite(obs.frame_age_ms) or obs.frame_age_ms > cfg.max_frame_age_ms:
            return "stale_frame", f"stale frame: {obs.frame_age_ms:.0f} ms old (limit {cfg.max_frame_age_ms:g} ms)"
        if not math.isfinite(obs.latency_ms) or obs.latency_ms > cfg.max_latency_ms:
            return "over_latency", f"latency {obs.latency_ms:.0f} ms over the {cfg.max_latency_ms:g} ms budget"
        if obs.track_id is not None and obs.track_id >= 0 and obs.gate is None:
            if obs.score is None:
                return "bad_score", "a face passed the quality gates but has no score"
            if not math.isfinite(obs.score):
                return "bad_score", f"score is not a finite number ({obs.score})"
        return None

    def _attempt_for(self, obs: Observation) -> _Attempt | None:
        """The attempt of this track, starting one if allowed; None when the rate limit refuses."""
        if self._attempt is not None and self._attempt.track_id == obs.track_id:
            return self._attempt
        if len(self._attempt_starts_ms) >= self.config.max_attempts_per_minute:
            self._attempt = None  # the previous face left; the new one is refused and not counted
            return None
        self._attempt_starts_ms.append(obs.t_ms)
        self._attempt = _Attempt(self._next_attempt_id, obs.track_id, deque(maxlen=self.config.n))
        self._next_attempt_id += 1
        return self._attempt

    def _reject(self, obs: Observation, attempt: _Attempt, spoof_n: int) -> Decision:
        cfg = self.config
        attempt.spoofed = True
        self._spoof_decisions_ms.append(obs.t_ms)
        if len(self._spoof_decisions_ms) >= cfg.lockout_after:
            self._locked_until_ms = obs.t_ms + cfg.lockout_s * 1000.0
            self._spoof_decisions_ms.clear()  # the attempt stays refused after the lockout ends
            return self._decide(obs, "spoof", "spoof",
                                f"{spoof_n} attack frames (score >= {self.threshold:g}); "
                                f"{cfg.lockout_after} spoof decisions: locked out for {cfg.lockout_s:g} s",
                                attempt, spoof_n=spoof_n)
        return self._decide(obs, "spoof", "spoof",
                            f"{spoof_n} of the last {len(attempt.frames)} frames looked like an attack "
                            f"(score >= {self.threshold:g})", attempt, spoof_n=spoof_n)

    def _trim(self, attempt: _Attempt, t_ms: float) -> None:
        horizon = t_ms - self.config.window_s * 1000.0
        while attempt.frames and attempt.frames[0][0] < horizon:
            attempt.frames.popleft()

    def _forget_old(self, t_ms: float) -> None:
        while self._attempt_starts_ms and self._attempt_starts_ms[0] <= t_ms - RATE_WINDOW_MS:
            self._attempt_starts_ms.popleft()
        horizon = t_ms - self.config.lockout_window_s * 1000.0
        while self._spoof_decisions_ms and self._spoof_decisions_ms[0] <= horizon:
            self._spoof_decisions_ms.popleft()

    def _clear_evidence(self) -> None:
        if self._attempt is not None and not self._attempt.spoofed:
            self._attempt.frames.clear()

    def _decide(self, obs: Observation, state: DecisionState, code: str, reason: str,
                attempt: _Attempt | None = None, spoof_n: int | None = None) -> Decision:
        live_n = spoof_count = 0
        if attempt is not None:
            live_n = sum(1 for _, v in attempt.frames if v == "live")
            spoof_count = sum(1 for _, v in attempt.frames if v == "spoof")
        score = obs.score if obs.score is not None and math.isfinite(obs.score) else None
        return Decision(state=state, code=code, reason=reason, t_ms=float(obs.t_ms), score=score,
                        threshold=self.threshold, attempt_id=attempt.attempt_id if attempt else 0,
                        track_id=obs.track_id, live_frames=live_n,
                        spoof_frames=spoof_n if spoof_n is not None else spoof_count)
