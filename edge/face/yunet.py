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


class YuNetFinder:
    """A :class:`~edge.face.finder.FaceFinder` over one YuNet ONNX file; not thread-safe (one per thread)."""

    name = "yunet"

    def __init__(self, model_path: Path, detect_width_px: int = DEFAULT_DETECT_WIDTH_PX,
                 score_threshold: float = SCORE_THRESHOLD) -> None:
        from edge.face.model_store import identify_model

        self.model_path = Path(model_path)
        self.detect_width_px = int(detect_width_px)
        self.model = identify_model(self.model_path)
        try:
            self._detector = cv2.FaceDetectorYN.create(str(self.model_path), "", (320, 320),
                                                       score_threshold, NMS_THRESHOLD, TOP_K)
        except cv2.error as exc:
            raise ModelError(
                f"OpenCV cannot load the YuNet model {self.model_path} ({str(exc).strip().splitlines()[-1]}); "
                f"replace it with a release listed by `edgefas models`"
            ) from None
        self._input_size: tuple[int, int] = (320, 320)
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
        self._detector.setScoreThreshold(float(score))

    def detect_downscaled(self, image: np.ndarray, factor: float) -> list[FaceBox]:
        """Faces in ``image``, a detection image (:func:`downscale_for_detection`) or a window cut
        from one, in that image's pixels multiplied by ``factor``."""
        size = (image.shape[1], image.shape[0])
        if size != self._input_size:
            self._detector.setInputSize(size)
            self._input_size = size
        _, rows = self._detector.detect(image)
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
