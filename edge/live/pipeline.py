"""One frame through face finding, the shared preprocessing, the runner and the decision policy.

The model's preprocessing contract and threshold are read from the runner (the artifact), never
from a config file. Every failure on the way — a runner exception, a NaN score, a camera stall —
becomes a policy observation with a fault, so the decision is "unknown" with its reason and the
door stays shut (DESIGN §7, fail closed).

Two kinds of time: ``FrameResult.stage_ms`` is always wall time (where this machine spent it, for
benchmarks and logs); the latency and frame age the policy judges are measured on the pipeline's
:class:`~edge.live.clock.PolicyClock`, so a software source is judged in its stream's time and a
camera in wall time (:mod:`edge.live.clock`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from edge.face.finder import FaceFinder
from edge.face.preprocess import PreprocessConfig, crop_and_normalise, find_primary_face
from edge.face.tracker import FaceTracker
from edge.frames import RGBDFrame
from edge.live.clock import PolicyClock, WallClock
from edge.policy import Decision, DecisionPolicy, Observation, PolicyConfig
from edge.samples import FaceBox, FaceSample

log = logging.getLogger(__name__)

STAGES = ("capture", "detect", "crop", "infer", "decide")


@dataclass(frozen=True)
class FrameResult:
    """What the live path decided for one frame, with where the time went."""

    frame_number: int
    t_ms: float  # the policy clock of this decision
    face: FaceBox | None
    sample: FaceSample | None
    score: float | None
    decision: Decision
    stage_ms: dict[str, float] = field(default_factory=dict)
    spoof_map: np.ndarray | None = None  # [h, w] of the scored face, for the overlay
    faces_in_view: int = 0

    def to_json(self, drops: int = 0) -> dict[str, object]:
        d = self.decision
        out: dict[str, object] = {
            "frame": self.frame_number, "t_ms": round(self.t_ms, 3), "face": self.face is not None,
            "faces": self.faces_in_view,
            "score": None if self.score is None or not math.isfinite(self.score) else round(self.score, 6),
            "threshold": None if not math.isfinite(d.threshold) else round(d.threshold, 6),
            "state": d.state, "reason": d.code, "detail": d.reason,
            "attempt": d.attempt_id, "track": d.track_id,
            "stage_ms": {k: round(v, 3) for k, v in self.stage_ms.items()}, "drops": drops,
        }
        if self.sample is not None:
            out["gate"] = self.sample.gate
            out["valid_depth"] = round(self.sample.valid_fraction, 3)
        return out


class LivePipeline:
    """Turns frames into decisions. Not thread-safe: the live loop owns it.

    ``clock`` measures the latency the policy judges (default: wall time, as for a camera; the
    live session passes :func:`edge.live.clock.clock_for` the source's spec).
    """

    def __init__(self, runner, finder: FaceFinder, policy_config: PolicyConfig | None = None,
                 preprocess: PreprocessConfig | None = None, clock: PolicyClock | None = None) -> None:
        self.runner = runner
        self.clock = clock or WallClock()
        self.finder = finder
        self.preprocess = preprocess or PreprocessConfig.from_metadata(runner.contract)
        if self.preprocess.size_px != runner.input_size:
            raise ValueError(f"preprocessing makes {self.preprocess.size_px} px crops but the model takes "
                             f"{runner.input_size} px")
        threshold = runner.threshold
        if threshold is None or not math.isfinite(threshold):
            from edge.errors import ModelError

            raise ModelError(f"model '{runner.path}' carries no decision threshold; set one with: edgefas calibrate "
                             f"threshold --model {runner.path} --dataset SPEC")
        self.threshold = float(threshold)
        self.tracker = FaceTracker()
        self.policy = DecisionPolicy(policy_config or PolicyConfig(), self.threshold)

    def process(self, frame: RGBDFrame, t_ms: float, capture_ms: float = 0.0,
                frame_age_ms: float = 0.0, wait_ms: float | None = None) -> FrameResult:
        """Decide on ``frame`` at policy time ``t_ms``.

        ``capture_ms`` (the time spent waiting for the frame) and ``frame_age_ms`` (its age when taken
        from the queue) are in the pipeline clock's time; the time to score it is measured on that
        clock too, and all three make the latency and age the policy judges. ``wait_ms`` is the same
        wait in wall time, reported as ``stage_ms["capture"]`` (default: ``capture_ms``).
        """
        stage = {"capture": capture_ms if wait_ms is None else wait_ms}
        clock_started = self.clock.now_ms()
        started = time.perf_counter()
        boxes, face = find_primary_face(frame, self.finder, self.tracker)
        t1 = time.perf_counter()
        stage["detect"] = (t1 - started) * 1000.0
        sample = score = spoof_map = None
        fault = None
        if face is not None:
            sample = crop_and_normalise(frame, face, self.preprocess)
            t2 = time.perf_counter()
            stage["crop"] = (t2 - t1) * 1000.0
            if sample.gate is None:  # a gated crop is not scored: the policy would not count its score
                try:
                    out = self.runner.run(sample.rgb[np.newaxis], sample.depth[np.newaxis])
                    score = float(out.score[0])
                    spoof_map = out.spoof_map[0, 0]
                except Exception as exc:  # noqa: BLE001 - any backend failure must fail closed, not crash the door
                    fault = f"runner error: {type(exc).__name__}: {exc}"
                    log.error("%s", fault)
                stage["infer"] = (time.perf_counter() - t2) * 1000.0
        t3 = time.perf_counter()
        scoring_ms = self.clock.now_ms() - clock_started  # 0 in stream time: scoring takes none of the stream's
        latency = capture_ms + scoring_ms
        obs = Observation(t_ms=t_ms, frame_age_ms=frame_age_ms + scoring_ms,
                          track_id=None if face is None else face.track_id, score=score,
                          gate=None if sample is None else sample.gate, latency_ms=latency, fault=fault)
        decision = self.policy.update(obs)
        stage["decide"] = (time.perf_counter() - t3) * 1000.0
        return FrameResult(frame.frame_number, t_ms, face, sample, score, decision, stage, spoof_map, len(boxes))

    def fault(self, t_ms: float, reason: str, frame_number: int = -1) -> FrameResult:
        """No usable frame (stall, camera fault): an "unknown" decision that also resets the evidence."""
        decision = self.policy.update(Observation.failure(t_ms, reason))
        return FrameResult(frame_number, t_ms, None, None, None, decision, {})
