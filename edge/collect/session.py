"""One take of a capture session: frames from a source into the session folder, measured as they pass.

A camera take is recorded raw (``.db3``, :func:`edge.capture.recorder.record_camera`), so it can be
replayed later through any depth-filter chain, and is then measured by playing the file back through
``bag:`` — the path the dataset builder reads it by. Every other source (``bag:``, ``folder:``,
``synthetic:``, ``photo:``) is software: its frames are written as they come, in the folder format
that ``folder:`` reads (``labels.csv``, colour PNGs, 16-bit depth PNGs in millimetres,
``intrinsics.json``), already aligned and filtered by the source.

Each frame is measured with the runtime's own face finder and preprocessing (DESIGN §2): whether a
face was found, its distance, its light, the fraction of valid depth on it, and which quality gate
it would fail. The summary tells the operator, before the subject leaves, whether the take is
usable. A rendered source knows who is in view (``RGBDFrame.truth``): a take that shows two people,
or something other than the session's label, is refused and removed.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from edge.capture.folder import COLUMNS, INTRINSICS_FILE, LABELS_FILE
from edge.capture.source import FrameSource, SourceOptions, open_source
from edge.collect.sidecar import SessionInfo, TakeRecord, write_session
from edge.errors import ConfigError, SourceError
from edge.face.finder import FaceFinder
from edge.face.preprocess import PreprocessConfig, crop_and_normalise, find_primary_face
from edge.frames import RGBDFrame, raw_depth_mm

log = logging.getLogger(__name__)

# What the operator asks of the subject, per presentation: a take should hold the variety the door
# will see (distance, pose, movement), not one frozen pose.
GUIDANCE = {
    "live": "stand 40-90 cm from the camera, look at it, turn the head slowly left and right, step closer and back",
    "print": "hold the printed photo before the camera, flat and then bent, moving it slowly at face distance",
    "replay": "show the face on the phone or tablet screen, tilt it slowly, near and far",
    "mask": "wear the rigid mask and move as a live person would",
    "cutout": "hold the cut-out print before the face, eyes showing through",
    "glasses": "wear the paper glasses and move as a live person would",
    "wrapped": "hold the print wrapped round the face and move slowly",
    "silicone": "wear the silicone mask and move as a live person would",
    "mannequin": "place the mannequin head at face height and turn it slowly",
    "other": "present the attack as an attacker would, for the whole take",
}
# Face brightness (mean BT.601 luma over the face box, 8 bit) as operator guidance, not a gate: a
# well-exposed face sits near mid-grey (18 % reflectance is about 118 in sRGB); at half of that the
# sensor noise is what the model sees, and above 200 skin highlights clip.
DARK_LUMA, BRIGHT_LUMA = 60.0, 200.0


@dataclass(frozen=True)
class FrameMeasure:
    """What one frame holds, for the progress display and the summary."""

    faces: int  # faces found
    distance_m: float = math.nan  # median depth of the inner face region; NaN without a face or depth
    face_luma: float = math.nan
    valid_depth: float = math.nan  # fraction of the face crop with depth
    gate: str | None = None  # the quality gate the face fails, None when it passes or without a face


@dataclass(frozen=True)
class TakeSummary:
    frames: int
    faces: int  # frames in which a face was found
    several_faces: int  # frames with more than one face in view (a bystander, or an attack beside its wearer)
    distance_m: tuple[float, float, float]  # median, min, max over the frames with a face
    face_luma: float  # median
    valid_depth: float  # median
    gated: dict[str, int] = field(default_factory=dict)  # quality-gate reason -> faces

    @property
    def lighting(self) -> str:
        if math.isnan(self.face_luma):
            return "n/a"
        return "dark" if self.face_luma < DARK_LUMA else "bright" if self.face_luma > BRIGHT_LUMA else "ok"

    def to_json(self) -> dict[str, object]:
        def num(x: float) -> float | None:
            return None if math.isnan(x) else round(float(x), 4)

        return {"frames": self.frames, "faces": self.faces, "several_faces": self.several_faces,
                "distance_m": {"median": num(self.distance_m[0]), "min": num(self.distance_m[1]),
                               "max": num(self.distance_m[2])},
                "face_luma": num(self.face_luma), "lighting": self.lighting, "valid_depth": num(self.valid_depth),
                "gated": dict(self.gated)}


class TakeMeter:
    """Measures frames with the runtime's face finder and preprocessing; :meth:`summary` at the end."""

    def __init__(self, finder: FaceFinder, config: PreprocessConfig) -> None:
        self.finder, self.config = finder, config
        self.measures: list[FrameMeasure] = []

    def measure(self, frame: RGBDFrame) -> FrameMeasure:
        boxes, face = find_primary_face(frame, self.finder)
        if face is None:
            out = FrameMeasure(0)
        else:
            sample = crop_and_normalise(frame, face, self.config)
            gray = cv2.cvtColor(frame.color_bgr, cv2.COLOR_BGR2GRAY)
            h, w = gray.shape
            x0, y0 = max(0, int(face.x0)), max(0, int(face.y0))
            x1, y1 = min(w, int(math.ceil(face.x1))), min(h, int(math.ceil(face.y1)))
            luma = float(gray[y0:y1, x0:x1].mean()) if x1 > x0 and y1 > y0 else math.nan
            out = FrameMeasure(len(boxes), sample.reference_mm / 1000.0, luma, sample.valid_fraction, sample.gate)
        self.measures.append(out)
        return out

    def summary(self) -> TakeSummary:
        found = [m for m in self.measures if m.faces]
        dist = np.array([m.distance_m for m in found if not math.isnan(m.distance_m)], np.float64)

        def median(values: Iterable[float]) -> float:
            arr = np.array([v for v in values if not math.isnan(v)], np.float64)
            return float(np.median(arr)) if arr.size else math.nan

        return TakeSummary(
            frames=len(self.measures), faces=len(found), several_faces=sum(m.faces > 1 for m in found),
            distance_m=(float(np.median(dist)), float(dist.min()), float(dist.max())) if dist.size else
            (math.nan, math.nan, math.nan),
            face_luma=median(m.face_luma for m in found), valid_depth=median(m.valid_depth for m in found),
            gated=dict(Counter(m.gate for m in found if m.gate)))


class FolderTakeWriter:
    """Frames into the folder format ``folder:`` reads; ``labels.csv`` is written last, so a take cut
    short by an error has no label file and is never read as data."""

    def __init__(self, folder: Path, info: SessionInfo) -> None:
        self.folder, self.info = folder, info
        (folder / "color").mkdir(parents=True)
        (folder / "depth").mkdir()
        self.rows: list[tuple[str, str, str, str, str]] = []

    def write(self, frame: RGBDFrame) -> None:
        index = len(self.rows)
        if index == 0:
            i = frame.intrinsics
            (self.folder / INTRINSICS_FILE).write_text(json.dumps(
                {"width": i.width, "height": i.height, "fx": i.fx, "fy": i.fy, "ppx": i.ppx, "ppy": i.ppy}) + "\n")
        color, depth = f"color/{index:06d}.png", f"depth/{index:06d}.png"
        mm = np.clip(np.rint(raw_depth_mm(frame.depth_raw, frame.depth_scale_m)), 0, 65535).astype(np.uint16)
        if not (cv2.imwrite(str(self.folder / color), frame.color_bgr) and cv2.imwrite(str(self.folder / depth), mm)):
            raise SourceError(f"cannot write frames into '{self.folder}'; check the disk and its permissions")
        self.rows.append((color, depth, self.info.label, self.info.pai, self.info.subject))

    def close(self) -> None:
        with (self.folder / LABELS_FILE).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS)
            writer.writerows(self.rows)


class TruthCheck:
    """For rendered sources, which know who and what is in view: one person, and the session's label."""

    def __init__(self, info: SessionInfo, spec: str) -> None:
        self.info, self.spec = info, spec
        self.subjects: set[str] = set()

    def check(self, frame: RGBDFrame) -> None:
        truth = frame.truth
        if truth is None or truth.label not in ("live", "spoof"):
            return
        self.subjects.add(str(truth.subject))
        if len(self.subjects) > 1:
            raise ConfigError(f"{self.spec} showed more than one person ({', '.join(sorted(self.subjects))}) in one "
                              f"take: one subject per session; collect each person into a session of their own")
        if (truth.label, truth.pai) != (self.info.label, self.info.pai):
            shows = truth.pai or truth.label
            raise ConfigError(f"{self.spec} shows {shows} frames but the session is labelled "
                              f"{self.info.presentation}; use --label {shows} or another source")


def next_take_name(info: SessionInfo) -> str:
    return f"take-{len(info.takes) + 1:02d}"


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def take_software(source: FrameSource, session_dir: Path, info: SessionInfo, frames: int, meter: TakeMeter,
                  note: str = "", on_frame: Callable[[int, FrameMeasure], None] | None = None
                  ) -> tuple[SessionInfo, TakeSummary]:
    """Write up to ``frames`` frames of a software source as a new folder take; returns the updated sidecar.

    A take that fails (a refused frame, a source error) leaves nothing behind; the sidecar is only
    written when the take is complete.
    """
    name = next_take_name(info)
    fresh = not Path(session_dir).exists()  # removed again if its first take fails
    folder = Path(session_dir) / name
    writer = FolderTakeWriter(folder, info)
    check = TruthCheck(info, source.spec)
    try:
        for frame in source:
            check.check(frame)
            writer.write(frame)
            measure = meter.measure(frame)
            if on_frame is not None:
                on_frame(len(writer.rows), measure)
            if len(writer.rows) >= frames:
                break
        if not writer.rows:
            raise SourceError(f"{source.spec} gave no frames; check the source with: edgefas probe {source.spec}")
        writer.close()
    except BaseException:
        shutil.rmtree(session_dir if fresh else folder, ignore_errors=True)
        raise
    return finish_take(session_dir, info, TakeRecord(name, "folder", source.spec, utc_now(), note), meter)


def measure_recording(recording: Path, meter: TakeMeter, frames: int | None = None,
                      on_frame: Callable[[int, FrameMeasure], None] | None = None) -> None:
    """Play a recording back through ``bag:`` (the dataset builder's path) and measure its frames."""
    with open_source(f"bag:{recording}", SourceOptions(max_frames=frames)) as source:
        for count, frame in enumerate(source, start=1):
            measure = meter.measure(frame)
            if on_frame is not None:
                on_frame(count, measure)


def finish_take(session_dir: Path, info: SessionInfo, record: TakeRecord,
                meter: TakeMeter) -> tuple[SessionInfo, TakeSummary]:
    summary = meter.summary()
    updated = replace(info, takes=info.takes + (replace(record, summary=summary.to_json()),))
    write_session(session_dir, updated)
    log.info("session %s: %s with %d frames, %d with a face", session_dir, record.name, summary.frames, summary.faces)
    return updated, summary


def take_camera(serial: str, session_dir: Path, info: SessionInfo, frames: int, meter: TakeMeter, note: str = "",
                fps: int = 30, on_record: Callable[[float], None] | None = None,
                on_frame: Callable[[int, FrameMeasure], None] | None = None) -> tuple[SessionInfo, TakeSummary]:
    """Record ``frames`` framesets (at ``fps``) raw from a camera as a new take, then measure the file.

    The recording is the take (:mod:`edge.capture.recorder`: ``.db3`` or ``.bag`` by the installed
    pyrealsense2); measuring plays it back through ``bag:``, as the dataset builder will.
    """
    from edge.capture.recorder import record_camera

    session_dir = Path(session_dir)
    session_dir.mkdir(parents=True, exist_ok=True)
    recorded = record_camera(serial, session_dir / next_take_name(info), frames / fps, fps=fps, progress=on_record)
    try:
        measure_recording(recorded.path, meter, on_frame=on_frame)
    except BaseException:
        recorded.path.unlink(missing_ok=True)
        raise
    record = TakeRecord(recorded.path.name, "recording", f"realsense:{recorded.serial}", utc_now(), note)
    return finish_take(session_dir, info, record, meter)
