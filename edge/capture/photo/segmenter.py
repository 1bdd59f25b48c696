"""Person segmentation for the photo world: MediaPipe's selfie-segmentation model under OpenCV's DNN.

The model (``selfie_segmentation.tflite``, 250 KB, Apache-2.0) ships inside the ``mediapipe`` wheel
up to the 0.10 series; ``tools/fetch_segmenter.py`` (run by ``make setup``) takes that one file out
of the wheel into the per-user model folder, so the product needs neither mediapipe nor its
dependencies. OpenCV's TFLite importer runs it (checked with OpenCV 4.14): input 256x256 RGB in
[0, 1] as NCHW, output a 256x256 person probability. ``cv2.grabCut`` seeded by the face box was the
alternative the issue names; on real photos it leaks the background into the person.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.errors import ModelError

SEGMENTER_FILE = "selfie_segmentation.tflite"
INPUT_PX = 256  # the model's fixed input size (MediaPipe selfie segmentation, general model)
FETCH_HINT = "run `python tools/fetch_segmenter.py` (make setup does) to install it"


def find_segmenter(extra_dirs: tuple[Path, ...] = ()) -> Path | None:
    from edge.face.model_store import model_dirs

    for directory in (*extra_dirs, *model_dirs()):
        candidate = Path(directory) / SEGMENTER_FILE
        if candidate.is_file():
            return candidate
    return None


class PersonSegmenter:
    """Probability that each pixel shows a person; not thread-safe (one per thread)."""

    def __init__(self, model_path: Path | None = None, extra_dirs: tuple[Path, ...] = ()) -> None:
        path = model_path or find_segmenter(extra_dirs)
        if path is None:
            raise ModelError(f"the photo world needs the person segmenter {SEGMENTER_FILE}; {FETCH_HINT}")
        try:
            self._net = cv2.dnn.readNetFromTFLite(str(path))
        except cv2.error as exc:
            raise ModelError(f"OpenCV cannot load {path} ({str(exc).strip().splitlines()[-1]}); {FETCH_HINT}") from None
        self.path = Path(path)

    def probability(self, color_bgr: np.ndarray) -> np.ndarray:
        """H x W float32 in [0, 1] for a BGR uint8 image."""
        h, w = color_bgr.shape[:2]
        x = cv2.resize(color_bgr, (INPUT_PX, INPUT_PX), interpolation=cv2.INTER_AREA)[:, :, ::-1]
        blob = (x.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()
        self._net.setInput(blob)
        out = self._net.forward().reshape(INPUT_PX, INPUT_PX)
        return np.clip(cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
