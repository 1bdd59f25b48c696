"""Face finding, crop, depth normalisation and quality gates: the one preprocessing path (DESIGN §2-3).

Training, calibration, evaluation and the live pipeline all reach faces through this package, so a
model is always served crops made exactly the way it was trained on. The contract lives in
:class:`PreprocessConfig`, which a model artifact stores and the runtime reads back.
"""

from __future__ import annotations

from edge.face.finder import DETECTOR_NAMES, FaceFinder, open_face_finder, primary_face
from edge.face.preprocess import PreprocessConfig, crop_and_normalise, preprocess_frame
from edge.face.tracker import FaceTracker, box_iou

__all__ = [
    "DETECTOR_NAMES",
    "FaceFinder",
    "FaceTracker",
    "PreprocessConfig",
    "box_iou",
    "crop_and_normalise",
    "open_face_finder",
    "preprocess_frame",
    "primary_face",
]
