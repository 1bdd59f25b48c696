"""OpenCV's frontal-face Haar cascade: the always-available fallback finder.

It ships inside the opencv-python 4.x wheels (5.0 wheels do not; pyproject pins ``<5``). It gives a
box only; the five landmarks are placed at fixed proportions of the box (:data:`BOX_LANDMARKS`), so
they carry no pose and the relief gate's nose patch is approximate.
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

CASCADE_FILE = "haarcascade_frontalface_default.xml"

# Landmarks as (x, y) fractions of a frontal-cascade box: right eye, left eye, nose tip, right and left
# mouth corner. Measured: mean of YuNet's landmarks relative to the cascade's box on the two portrait
# photographs in shared/data/faces (astronaut, sergey), rounded and made left-right symmetric;
# tests/edge/face/test_face_finders.py re-checks them against YuNet on those photographs.
BOX_LANDMARKS = np.array([[0.29, 0.39], [0.71, 0.39], [0.49, 0.62], [0.29, 0.78], [0.69, 0.78]],
                         dtype=np.float32)

# detectMultiScale: scale step 1.1 is OpenCV's default; 5 neighbours is the OpenCV-Python face
# detection tutorial's value (fewer false positives than the default 3). The smallest face is the
# cascade's own 24 x 24 training window (<width>/<height> in the XML).
SCALE_FACTOR = 1.1
MIN_NEIGHBORS = 5

# The cascade accepts or rejects a window; it has no graded confidence. Accepted faces read 1.0.
ACCEPTED_SCORE = 1.0


class HaarFinder:
    """A :class:`~edge.face.finder.FaceFinder` over the frontal-face cascade; not thread-safe."""

    name = "haar"

    def __init__(self, detect_width_px: int = DEFAULT_DETECT_WIDTH_PX) -> None:
        self.detect_width_px = int(detect_width_px)
        data = getattr(cv2, "data", None)
        path = Path(getattr(data, "haarcascades", "")) / CASCADE_FILE
        if not hasattr(cv2, "CascadeClassifier") or not path.is_file():
            raise ModelError(
                f"this OpenCV ({cv2.__version__}) ships no {CASCADE_FILE}; install opencv-python-headless 4.x "
                f"(pip install 'opencv-python-headless>=4.9,<5') or install a YuNet model (`edgefas models`)"
            )
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ModelError(f"OpenCV could not load {path}; reinstall opencv-python-headless 4.x")
        self.cascade_path = path

    def detect(self, color_bgr: np.ndarray) -> list[FaceBox]:
        image, factor = downscale_for_detection(color_bgr, self.detect_width_px)
        return self.detect_downscaled(image, factor)

    def detect_downscaled(self, image: np.ndarray, factor: float) -> list[FaceBox]:
        """Faces in a detection image (or a window cut from one), its pixels multiplied by ``factor``."""
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        rects = self._cascade.detectMultiScale(gray, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS)
        faces = []
        for x, y, w, h in np.asarray(rects, dtype=np.float32).reshape(-1, 4):
            landmarks = (BOX_LANDMARKS * np.array([w, h], dtype=np.float32)
                         + np.array([x, y], dtype=np.float32)).astype(np.float32)
            face = FaceBox(float(x), float(y), float(x + w), float(y + h), ACCEPTED_SCORE, landmarks, self.name)
            faces.append(scale_face(face, factor))
        return faces
