"""A frame's work before the model: face finding, the face window's depth and the crop.

:class:`FacePreparer` needs no runner, only the model's preprocessing contract, so the live pipeline
(:class:`edge.live.pipeline.LivePipeline`) runs it in its own process, and a capture process
(:mod:`edge.capture.child_process`) can run it before a frame crosses to the parent. Its result,
:class:`Staged`, is what either hands to the model and the decision policy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from edge.capture.region_depth import PendingDepthFrame, window_bounds
from edge.face.crop import crop_window
from edge.face.face_first import LOOKAHEAD_FRAMES, FaceFirstFinder, Lookahead, ScanPolicy
from edge.face.finder import FaceFinder
from edge.face.preprocess import PreprocessConfig, crop_and_normalise, find_primary_face
from edge.face.tracker import FaceTracker
from edge.frames import RGBDFrame
from edge.samples import FaceBox, FaceSample


@dataclass(frozen=True)
class Staged:
    """A frame after the model-free work: face finding, its face-window depth and (unless left to
    :meth:`LivePipeline.infer`) the crop. Picklable once its depth is aligned, so a capture process
    can stage frames and send them (:mod:`edge.capture.child_process`)."""

    frame: RGBDFrame  # with its face-window depth on the face-first path
    stage_ms: dict[str, float]  # detect, region, crop: wall ms where the staging ran
    face: FaceBox | None
    sample: FaceSample | None
    faces_in_view: int
    scan: str
    cropped: bool = True
    depth_window: tuple[int, int, int, int] | None = None  # where the face-first path aligned depth (x1/y1 exclusive)


class FacePreparer:
    """Face finding, the face window's depth and the crop: a frame's work before the model. It needs no
    runner, only the model's preprocessing contract, so it runs in the live pipeline or in a capture
    process. Not thread-safe: one caller, in frame order (it owns the tracker and the scan schedule).

    ``face_first`` (docs/face-first.md): find the face in a window around the tracked one with
    scheduled full scans (:class:`~edge.face.face_first.FaceFirstFinder`), and give a frame whose
    depth is pending (:class:`~edge.capture.region_depth.PendingDepthFrame`) depth for the crop window
    only. None: the whole frame, every frame.
    """

    def __init__(self, finder: FaceFinder, preprocess: PreprocessConfig, face_first: ScanPolicy | None = None) -> None:
        self.finder, self.preprocess = finder, preprocess
        self.tracker = FaceTracker()
        self.face_first: FaceFirstFinder | None = None
        if face_first is not None:
            if not hasattr(finder, "detect_downscaled"):
                raise ValueError(f"the {finder.name} finder cannot detect in a window (no detect_downscaled)")
            self.face_first = FaceFirstFinder(finder, self.tracker, face_first)

    def capture_hook(self, queue_size: int = 2) -> Callable[[RGBDFrame], None] | None:
        """Work a capture thread can do for this preparer on every frame it reads, before the frame is
        queued (``CaptureThread(on_frame=...)``): on the face-first path, the frame's detection image
        and motion thumbnail (:class:`~edge.face.face_first.Lookahead`), which depend on the frame
        alone. None on the full-frame path. Decisions are the same with or without it. ``queue_size``: the
        capture queue's length; the views of that many frames (and a few more) are kept."""
        finder = self.face_first
        if finder is None:
            return None
        if finder.lookahead is None:
            finder.lookahead = Lookahead(finder.finder.detect_width_px, max(LOOKAHEAD_FRAMES, queue_size + 2))
        lookahead = finder.lookahead
        return lambda frame: lookahead.prepare(frame.color_bgr)

    def stage(self, frame: RGBDFrame, t_ms: float, crop: bool = True) -> Staged:
        """Find the face, give a pending frame its face-window depth, crop and normalise (``crop=False``:
        leave the crop to :meth:`LivePipeline.infer`). ``t_ms``: any monotonic milliseconds (the scan schedule's)."""
        stage: dict[str, float] = {}
        started = time.perf_counter()
        scan = "full"
        if self.face_first is not None:
            found = self.face_first.find(frame.color_bgr, t_ms)
            boxes, face, scan, in_view = found.boxes, found.primary, found.scan, found.faces_in_view
        else:
            boxes, face = find_primary_face(frame, self.finder, self.tracker)
            in_view = len(boxes)
        t1 = time.perf_counter()
        stage["detect"] = (t1 - started) * 1000.0
        sample = window = None
        if face is not None:
            if isinstance(frame, PendingDepthFrame):
                window = self.depth_window(face, frame.color_bgr.shape)
                frame = frame.with_window_depth(window)
                t_aligned = time.perf_counter()
                stage["region"] = (t_aligned - t1) * 1000.0
                t1 = t_aligned
            if crop:
                sample = crop_and_normalise(frame, face, self.preprocess)
                stage["crop"] = (time.perf_counter() - t1) * 1000.0
        return Staged(frame, stage, face, sample, in_view, scan, cropped=crop or face is None, depth_window=window)

    def depth_window(self, face: FaceBox, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """The crop window of ``face`` in a frame of ``shape``, clipped: where the face-first path aligns depth."""
        p = self.preprocess
        window = crop_window(face, p.crop_scale, p.size_px, p.align_roll)
        return window_bounds(window.frame_bounds(), shape[1], shape[0])
