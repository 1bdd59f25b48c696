"""Faces in image files: what ``edgefas faces`` shows, and the colour crops a model would be fed.

Photographs have no depth, so only the colour half of the crop applies; it is made by the same
:func:`~edge.face.crop.crop_window` as the live path, so what is written is what a model sees.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.errors import SourceError
from edge.face.crop import crop_color, crop_window
from edge.face.finder import FaceFinder
from edge.face.preprocess import PreprocessConfig
from edge.samples import FaceBox


@dataclass(frozen=True)
class ImageFaces:
    """The faces found in one image file; ``crop_paths`` lines up with ``faces`` when crops were asked for."""

    path: Path
    width_px: int
    height_px: int
    faces: tuple[FaceBox, ...]
    crop_paths: tuple[Path, ...] = ()


def read_color_image(path: Path):
    """An 8-bit BGR image; a file OpenCV cannot decode, or one that is not 8 bits per channel, is a
    :class:`SourceError` naming it. A 16-bit picture is refused rather than scaled down: in a colour
    column it is most often a depth map put in the wrong place, and a door must not judge that."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"no image file at '{path}'; check the path")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SourceError(f"cannot read '{path}' as an image; pass a PNG or JPEG file")
    if image.dtype != np.uint8:
        raise SourceError(f"'{path}' has {image.dtype} pixels; colour images must be 8 bits per channel "
                          f"(a 16-bit file here is usually a depth map in the wrong place)")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def find_faces_in_images(paths: Iterable[str | os.PathLike[str]], finder: FaceFinder,
                         config: PreprocessConfig, crops_dir: Path | None = None) -> list[ImageFaces]:
    """Detect faces in each file; with ``crops_dir``, write ``<stem>_face<i>.png`` crops (size_px square)."""
    results = []
    if crops_dir is not None:
        crops_dir.mkdir(parents=True, exist_ok=True)
    for raw in paths:
        path = Path(raw)
        image = read_color_image(path)
        faces = tuple(finder.detect(image))
        written: list[Path] = []
        if crops_dir is not None:
            for index, face in enumerate(faces):
                window = crop_window(face, config.crop_scale, config.size_px, config.align_roll)
                target = crops_dir / f"{path.stem}_face{index}.png"
                if not cv2.imwrite(str(target), crop_color(image, window)):
                    raise SourceError(f"cannot write '{target}'; check that the folder is writable")
                written.append(target)
        results.append(ImageFaces(path, image.shape[1], image.shape[0], faces, tuple(written)))
    return results
