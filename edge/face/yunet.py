"""YuNet through OpenCV's ``cv2.FaceDetectorYN``: box, five landmarks and a score per face.

The default finder wherever its model file is installed (see :mod:`edge.face.model_store`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from edge.errors import ModelError
from edge.face.detection_image import DEFAULT_DETECT_WIDTH_PX, downscale_for_detection, scale_face
from edge.samples import FaceBox

log = logging.getLogger(__name__)

# cv2.FaceDetectorYN.create defaults (OpenCV objdetect API, face.hpp): keep faces scoring >= 0.9,
# suppress overlaps above IoU 0.3, keep at most 5000 candidates before NMS.
SCORE_THRESHOLD = 0.9
NMS_THRESHOLD = 0.3
TOP_K = 5000
# input sizes with a network of their own: the full detection image and the face-first windows (sides in
# 32 px steps between about 96 and 256 at 640x480)
MAX_SIZES = 6


class YuNetFinder:
    """A :class:`~edge.face.finder.FaceFinder` over one YuNet ONNX file; not thread-safe (one per thread)."""

    name = "yunet"

    def __init__(self, model_path: Path, detect_width_px: int = DEFAULT_DETECT_WIDTH_PX,
                 score_threshold: float = SCORE_THRESHOLD) -> None:
        from edge.face.model_store import identify_model

        self.model_path = Path(model_path)
        self.detect_width_px = int(detect_width_px)
        self.model = identify_model(self.model_path)
        self._score = float(score_threshold)
        # one network per input size, kept: setInputSize re-plans OpenCV's network (0.5-1 ms), and the
        # face-first finder alternates full scans with windows of a few sizes (docs/face-first-speed.md)
        self._detectors: dict[tuple[int, int], tuple[cv2.FaceDetectorYN, float]] = {}
        self._create((320, 320))
        if self.model.known:
            log.info("face finder=yunet model=%s release=%s detect_width=%d", self.model_path,
                     self.model.release, self.detect_width_px)
        else:
            log.warning("face finder=yunet model=%s has sha256 %s, which matches no known YuNet release; "
                        "using it as given", self.model_path, self.model.sha256)

    def detect(self, color_bgr: np.ndarray) -> list[FaceBox]:
        image, factor = downscale_for_detection(color_bgr, self.detect_width_px)
        return self.detect_downscaled(image, factor)

    def set_score_threshold(self, score: float) -> None:
        """Keep candidates scoring at least ``score`` (the face-first finder lowers it for tracked
        windows and applies its own rule, edge.face.face_first)."""
        self._score = float(score)

    def _create(self, size: tuple[int, int]) -> cv2.FaceDetectorYN:
        if len(self._detectors) >= MAX_SIZES:  # the least recently used size's network is re-planned
            detector, score = self._detectors.pop(next(iter(self._detectors)))
            detector.setInputSize(size)
            if score != self._score:
                detector.setScoreThreshold(self._score)
        else:
            try:
                detector = cv2.FaceDetectorYN.create(str(self.model_path), "", size, self._score, NMS_THRESHOLD,
                                                     TOP_K)
            except cv2.error as exc:
                raise ModelError(
                    f"OpenCV cannot load the YuNet model {self.model_path} "
                    f"({str(exc).strip().splitlines()[-1]}); replace it with a release listed by `edgefas models`"
                ) from None
        self._detectors[size] = (detector, self._score)
        return detector

    def _detector_for(self, size: tuple[int, int]) -> cv2.FaceDetectorYN:
        entry = self._detectors.pop(size, None)
        if entry is None:
            return self._create(size)
        detector, score = entry
        if score != self._score:
            detector.setScoreThreshold(self._score)
        self._detectors[size] = (detector, self._score)  # most recently used last
        return detector

    def detect_downscaled(self, image: np.ndarray, factor: float) -> list[FaceBox]:
        """Faces in ``image``, a detection image (:func:`downscale_for_detection`) or a window cut
        from one, in that image's pixels multiplied by ``factor``."""
        detector = self._detector_for((image.shape[1], image.shape[0]))
        _, rows = detector.detect(image)
        if rows is None:
            return []
        faces = []
        for row in np.asarray(rows, dtype=np.float32):
            x, y, w, h = (float(v) for v in row[:4])
            # Row layout (cv::FaceDetectorYN::detect): x, y, w, h, 5 landmark (x, y) pairs, score.
            landmarks = row[4:14].reshape(5, 2).astype(np.float32)
            face = FaceBox(x, y, x + w, y + h, float(row[14]), landmarks, self.name)
            faces.append(scale_face(face, factor))
        return faces
