"""The ``FaceFinder`` interface, the table of detectors and the kiosk's choice of face.

Detectors are looked up by name in :data:`DETECTORS` (name -> opener), the one table that also
renders every command's ``--detector`` help (:func:`detectors_help`) and the one-line error for
a name not in it (:func:`check_detector`).

A finder takes a BGR frame and returns every face in it as a :class:`~edge.samples.FaceBox` in that
frame's pixel coordinates with five landmarks (right eye, left eye, nose tip, right mouth corner,
left mouth corner: the subject's right, which is the image's left). Finders detect on a copy
downscaled to ``detect_width_px`` and map boxes and landmarks back, because detection cost grows with
pixel count while a kiosk face is large (DESIGN §3); that shared piece is
:mod:`edge.face.detection_image`, so the finders never import this module back.

Finders hold an OpenCV model that is not thread-safe: use one finder per thread.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from edge.errors import ModelError, check_choice
from edge.face.detection_image import DEFAULT_DETECT_WIDTH_PX
from edge.samples import FaceBox

log = logging.getLogger(__name__)


@runtime_checkable
class FaceFinder(Protocol):
    """Finds faces in one colour image; ``name`` is written into every ``FaceBox.detector``."""

    name: str

    def detect(self, color_bgr: np.ndarray) -> list[FaceBox]: ...


def primary_face(boxes: Sequence[FaceBox], frame_shape: tuple[int, ...]) -> FaceBox | None:
    """The face a kiosk serves: the largest, discounted by its distance from the frame centre.

    key = area x (1 - d / half-diagonal), with d the distance of the box centre from the image centre,
    so a face at the very edge counts for nothing and among central faces the nearest (largest) wins;
    bystanders are typically smaller and off-centre. ``frame_shape`` is ``color_bgr.shape``.
    """
    if not boxes:
        return None
    height, width = int(frame_shape[0]), int(frame_shape[1])
    half_diagonal = 0.5 * math.hypot(width, height)

    def key(face: FaceBox) -> float:
        cx, cy = face.center
        distance = math.hypot(cx - 0.5 * width, cy - 0.5 * height)
        centrality = max(0.0, 1.0 - distance / half_diagonal)
        return max(0.0, face.width) * max(0.0, face.height) * centrality

    return max(boxes, key=key)


ModelDir = str | os.PathLike[str] | None


def _open_yunet(model_dir: ModelDir, detect_width_px: int) -> FaceFinder:
    """YuNet by name: without its file, an error that lists where it looked and where to get it."""
    from edge.face.model_store import YUNET_FILE_NAMES, YUNET_SOURCE, find_yunet, model_dirs
    from edge.face.yunet import YuNetFinder

    path = find_yunet(model_dir)
    if path is None:
        looked = ", ".join(str(d) for d in model_dirs(model_dir))
        raise ModelError(
            f"no YuNet model ({YUNET_FILE_NAMES[0]}) in {looked}; get it from {YUNET_SOURCE}, "
            f"put it in one of those folders (or pass --model-dir / set EDGEFAS_MODEL_DIR), "
            f"or use --detector haar"
        )
    return YuNetFinder(path, detect_width_px=detect_width_px)


def _open_haar(model_dir: ModelDir, detect_width_px: int) -> FaceFinder:
    from edge.face.haar import HaarFinder

    log.info("face finder=haar detect_width=%d", detect_width_px)
    return HaarFinder(detect_width_px=detect_width_px)


def _open_auto(model_dir: ModelDir, detect_width_px: int) -> FaceFinder:
    """YuNet when its file is found; else the Haar cascade, said at WARNING because its boxes are
    coarser and its landmarks are only estimated."""
    from edge.face.haar import HaarFinder
    from edge.face.model_store import find_yunet

    if find_yunet(model_dir) is not None:
        return _open_yunet(model_dir, detect_width_px)
    log.warning("face finder=haar: no YuNet model found (see `edgefas models`); the Haar cascade finds "
                "frontal faces only, its landmarks are estimated from the box and give no pose")
    return HaarFinder(detect_width_px=detect_width_px)


@dataclass(frozen=True)
class DetectorKind:
    name: str
    summary: str  # one phrase for --help
    opener: Callable[[ModelDir, int], FaceFinder]  # (model_dir, detect_width_px) -> finder


DETECTORS: tuple[DetectorKind, ...] = (
    DetectorKind("auto", "YuNet when its model is installed, else Haar (with a warning)", _open_auto),
    DetectorKind("yunet", "OpenCV's YuNet CNN with five landmarks (model file: see `edgefas models`)", _open_yunet),
    DetectorKind("haar", "OpenCV's Haar cascade, built in: frontal faces, landmarks estimated from the box",
                 _open_haar),
)
DETECTOR_NAMES: tuple[str, ...] = tuple(kind.name for kind in DETECTORS)


def detectors_help() -> str:
    """Help text for a ``--detector`` option, rendered from :data:`DETECTORS`."""
    return "Face detector: " + "; ".join(f"{k.name} = {k.summary}" for k in DETECTORS) + "."


def check_detector(name: str, option: str = "--detector") -> DetectorKind:
    """The detector called ``name``; any other name is a one-line ChoiceError naming ``option`` and the choices."""
    check_choice(name, DETECTOR_NAMES, option)
    return next(kind for kind in DETECTORS if kind.name == name)


def open_face_finder(name: str = "auto", model_dir: ModelDir = None,
                     detect_width_px: int = DEFAULT_DETECT_WIDTH_PX) -> FaceFinder:
    """Build the detector named ``name`` (a :data:`DETECTORS` entry: ``auto``, ``yunet``, ``haar``)."""
    return check_detector(name).opener(model_dir, detect_width_px)
