"""List files and the image files they point to, for the sets published as images plus text lists.

CASIA-SURF and CeFA both ship one text file per split with one sample per line, whitespace
separated, paths relative to the dataset folder. Reading them lives here so that every reader
reports a broken line or a missing image the same way: the file, the line number, what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.errors import DatasetError


@dataclass(frozen=True)
class ListLine:
    """One non-empty line of a list file: its 1-based number and its whitespace-separated tokens."""

    number: int
    tokens: tuple[str, ...]


def read_list(path: Path) -> list[ListLine]:
    """All non-empty lines of ``path`` in file order (the order every reader keeps).

    A list file holds one short line per frame or video, so it is read whole; the images it names
    are not (readers stay streaming).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DatasetError(f"cannot read list file {path}: {exc.strerror}; check the file's permissions") from None
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        tokens = tuple(raw.split())
        if tokens:
            lines.append(ListLine(number, tokens))
    return lines


def path_components(relative: str) -> tuple[str, ...]:
    """Split a list-file path on either separator (the lists were written on Windows and Linux)."""
    return tuple(part for part in relative.replace("\\", "/").split("/") if part)


def resolve(root: Path, relative: str) -> Path:
    return root.joinpath(*path_components(relative))


def read_color(path: Path, where: str) -> np.ndarray:
    """An 8-bit colour image as H x W x 3 BGR; ``where`` names the list line that pointed here."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"cannot read colour image {path} (listed in {where}); "
                           "check that the dataset was fully extracted")
    return image


def read_depth8(path: Path, where: str) -> np.ndarray:
    """An 8-bit depth map as H x W uint8.

    The pre-cropped sets store depth as 8-bit JPEGs, often with three identical channels; reading
    as grayscale keeps one plane and never mixes channels that are not there.
    """
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise DatasetError(f"cannot read depth image {path} (listed in {where}); "
                           "check that the dataset was fully extracted")
    return image
