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
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edge.face.face_first import ScanPolicy
from edge.face.finder import FaceFinder
from edge.face.preprocess import PreprocessConfig, crop_and_normalise
from edge.face.staging import FacePreparer, Staged
from edge.frames import RGBDFrame
from edge.live.clock import PolicyClock, WallClock
from edge.policy import Decision, DecisionPolicy, Observation, PolicyConfig
from edge.samples import FaceBox, FaceSample

log = logging.getLogger(__name__)

STAGES = ("capture", "detect", "region", "crop", "infer", "decide")  # region: face-first depth only


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
    scan: str = "full"  # how the face was looked for: "full" (whole frame) or "window" (face first)
    frame: RGBDFrame | None = None  # the frame decided on, with its face-region depth on the face-first path

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


@dataclass(frozen=True)
class Prepared:
    """A frame after face finding and cropping, before the model (:meth:`LivePipeline.prepare`)."""

    frame: RGBDFrame  # with its face-window depth on the face-first path
    t_ms: float
    capture_ms: float
    frame_age_ms: float
    clock_started: float  # the pipeline clock when preparing began
    stage_ms: dict[str, float]
    face: FaceBox | None
    sample: FaceSample | None
    faces_in_view: int
    scan: str
    cropped: bool = True  # False: the face is still to be cropped, by infer() (on the model thread)


@dataclass(frozen=True)
class Inferred:
    """What the model said about a prepared frame (all None when it was not run)."""

    score: float | None
    spoof_map: np.ndarray | None
    fault: str | None
    infer_ms: float | None
    sample: FaceSample | None = None  # the crop infer() made (a Prepared with cropped=False)
    crop_ms: float | None = None


class LivePipeline:
    """Turns frames into decisions. Not thread-safe: the live loop owns it.

    ``clock`` measures the latency the policy judges (default: wall time, as for a camera; the
    live session passes :func:`edge.live.clock.clock_for` the source's spec).

    ``face_first`` (docs/face-first.md): find the face in a window around the tracked one with
    scheduled full scans (:class:`~edge.face.face_first.FaceFirstFinder`), and give a frame whose
    depth is pending (:class:`~edge.capture.region_depth.PendingDepthFrame`, from a librealsense
    source opened with ``face_first``) depth for the crop window only. None: the whole frame, every
    frame. The crop, the model and the policy are the same on both paths.
    """

    def __init__(self, runner, finder: FaceFinder, policy_config: PolicyConfig | None = None,
                 preprocess: PreprocessConfig | None = None, clock: PolicyClock | None = None,
                 face_first: ScanPolicy | None = None) -> None:
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
        self.policy = DecisionPolicy(policy_config or PolicyConfig(), self.threshold)
        self.preparer = FacePreparer(finder, self.preprocess, face_first)
        self.tracker = self.preparer.tracker
        self.face_first = self.preparer.face_first

    def capture_hook(self, queue_size: int = 2) -> Callable[[RGBDFrame], None] | None:
        """Work a capture thread can do for this pipeline on every frame it reads (:meth:`FacePreparer.capture_hook`)."""
        return self.preparer.capture_hook(queue_size)

    def process(self, frame: RGBDFrame, t_ms: float, capture_ms: float = 0.0,
                frame_age_ms: float = 0.0, wait_ms: float | None = None) -> FrameResult:
        """Decide on ``frame`` at policy time ``t_ms``.

        ``capture_ms`` (the time spent waiting for the frame) and ``frame_age_ms`` (its age when taken
        from the queue) are in the pipeline clock's time; the time to score it is measured on that
        clock too, and all three make the latency and age the policy judges. ``wait_ms`` is the same
        wait in wall time, reported as ``stage_ms["capture"]`` (default: ``capture_ms``).

        The same as :meth:`prepare`, :meth:`infer` and :meth:`finish` in a row; a caller that runs
        :meth:`infer` on another thread (:class:`edge.live.model_thread.ModelThread`) calls the three.
        """
        prepared = self.prepare(frame, t_ms, capture_ms, frame_age_ms, wait_ms)
        return self.finish(prepared, self.infer(prepared))

    def prepare(self, frame: RGBDFrame, t_ms: float, capture_ms: float = 0.0,
                frame_age_ms: float = 0.0, wait_ms: float | None = None, crop: bool = True) -> Prepared:
        """Find the face, give a pending frame its face-window depth, crop and normalise (no model, no policy).

        Touches the finder, the tracker and the region processor: call it from one thread, in frame order.
        ``crop=False`` leaves the crop to :meth:`infer`: the crop reads only the frame and the face, so a
        model thread can make it while the caller finds the face in the next frame
        (:class:`edge.live.model_thread.ModelThread`); the sample is the same.
        """
        clock_started = self.clock.now_ms()
        staged = self.preparer.stage(frame, t_ms, crop)
        return self.accept(staged, t_ms, capture_ms, frame_age_ms, wait_ms, clock_started)

    def process_staged(self, staged: Staged, t_ms: float, capture_ms: float = 0.0, frame_age_ms: float = 0.0,
                       wait_ms: float | None = None) -> FrameResult:
        """Decide on a frame staged elsewhere (a capture process), as :meth:`process` does on a raw one."""
        prepared = self.accept(staged, t_ms, capture_ms, frame_age_ms, wait_ms)
        return self.finish(prepared, self.infer(prepared))

    def accept(self, staged: Staged, t_ms: float, capture_ms: float = 0.0, frame_age_ms: float = 0.0,
               wait_ms: float | None = None, clock_started: float | None = None) -> Prepared:
        """A frame staged elsewhere (a capture process: :mod:`edge.capture.child_process`), ready for
        :meth:`infer` and :meth:`finish` like one from :meth:`prepare`. ``clock_started`` is when its
        scoring began on the pipeline's clock (default: now); the staging's own time is the caller's
        to count in ``frame_age_ms`` (:meth:`edge.live.clock.PolicyClock.work_ms`)."""
        stage = {"capture": capture_ms if wait_ms is None else wait_ms, **staged.stage_ms}
        started = self.clock.now_ms() if clock_started is None else clock_started
        return Prepared(staged.frame, t_ms, capture_ms, frame_age_ms, started, stage, staged.face, staged.sample,
                        staged.faces_in_view, staged.scan, cropped=staged.cropped)

    def infer(self, prepared: Prepared) -> Inferred:
        """The model on a prepared crop (nothing for no face or a gated crop: the policy would not
        count its score), after cropping when :meth:`prepare` left it. Touches only the runner (and the
        immutable preprocessing contract), so it may run on a model thread beside the next
        :meth:`prepare`. Any backend failure becomes a fault, never an exception (fail closed)."""
        sample, crop_ms = prepared.sample, None
        if not prepared.cropped:
            assert prepared.face is not None  # prepare() crops at once when there is no face
            started = time.perf_counter()
            sample = crop_and_normalise(prepared.frame, prepared.face, self.preprocess)
            crop_ms = (time.perf_counter() - started) * 1000.0
        if sample is None or sample.gate is not None:
            return Inferred(None, None, None, None, sample, crop_ms)
        started = time.perf_counter()
        score = spoof_map = fault = None
        try:
            out = self.runner.run(sample.rgb[np.newaxis], sample.depth[np.newaxis])
            score = float(out.score[0])
            spoof_map = out.spoof_map[0, 0]
        except Exception as exc:  # noqa: BLE001 - any backend failure must fail closed, not crash the door
            fault = f"runner error: {type(exc).__name__}: {exc}"
            log.error("%s", fault)
        return Inferred(score, spoof_map, fault, (time.perf_counter() - started) * 1000.0, sample, crop_ms)

    def finish(self, prepared: Prepared, inferred: Inferred) -> FrameResult:
        """The policy's decision on a prepared, scored frame; call in frame order."""
        p = prepared
        stage = dict(p.stage_ms)
        sample = p.sample if p.cropped else inferred.sample
        if inferred.crop_ms is not None:
            stage["crop"] = inferred.crop_ms
        if inferred.infer_ms is not None:
            stage["infer"] = inferred.infer_ms
        t3 = time.perf_counter()
        # the whole time since the frame was taken, also any wait for a model thread; 0 in stream time
        scoring_ms = self.clock.now_ms() - p.clock_started
        latency = p.capture_ms + scoring_ms
        obs = Observation(t_ms=p.t_ms, frame_age_ms=p.frame_age_ms + scoring_ms,
                          track_id=None if p.face is None else p.face.track_id, score=inferred.score,
                          gate=None if sample is None else sample.gate, latency_ms=latency, fault=inferred.fault)
        decision = self.policy.update(obs)
        stage["decide"] = (time.perf_counter() - t3) * 1000.0
        return FrameResult(p.frame.frame_number, p.t_ms, p.face, sample, inferred.score, decision, stage,
                           inferred.spoof_map, p.faces_in_view, p.scan, p.frame)

    def fault(self, t_ms: float, reason: str, frame_number: int = -1) -> FrameResult:
        """No usable frame (stall, camera fault): an "unknown" decision that also resets the evidence."""
        decision = self.policy.update(Observation.failure(t_ms, reason))
        return FrameResult(frame_number, t_ms, None, None, None, decision, {})
