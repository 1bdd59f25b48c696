"""The record every public-dataset reader yields, and the interface the readers share.

A reader turns one dataset's published layout into a stream of :class:`RawSample` records; the
lead's wiring turns each record into a model-ready ``FaceSample`` through the one preprocessing
module (``edge.face.preprocess``). Keeping the reader output this raw means the crop and depth
normalisation used in training is the same code the live path runs (DESIGN §2 "one preprocessing
module").

Two kinds of depth exist in the published sets and must never be confused:

- ``"mm"``: full-frame depth aligned to colour, uint16 millimetres, 0 = no data (what a RealSense
  gives; the face crop and the face-relative normalisation still have to happen);
- ``"normalised8"``: an already-cropped, already-normalised 8-bit face depth map, as CASIA-SURF,
  CeFA and the WMCA crops ship it. Preprocessing passes it through (resize only), because the
  millimetres it came from are gone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

LABELS: tuple[str, ...] = ("live", "spoof")

# Our attack species (DESIGN §8). Every dataset's own attack codes map onto these; the original
# code is kept beside it in ``RawSample.pai_code`` so per-attack results can still be reported in
# the dataset's own terms.
SPECIES: tuple[str, ...] = ("print", "replay", "mask", "cutout", "glasses", "wrapped", "silicone", "mannequin",
                             "other")

DEPTH_KINDS: tuple[str, ...] = ("mm", "normalised8")

SPLITS: tuple[str, ...] = ("train", "dev", "test")


@dataclass(frozen=True)
class RawSample:
    """One frame of a public dataset, as the dataset stores it.

    ``color_bgr`` is H x W x 3 uint8 in BGR order. ``depth`` is H x W: uint16 millimetres aligned to
    colour when ``depth_kind == "mm"``, uint8 when ``"normalised8"``. Pre-cropped sets
    (``precropped=True``) may store colour and depth crops of different sizes; full-frame depth must
    have the colour image's size. ``pai`` is one of :data:`SPECIES` for a spoof and ``""`` for a
    live sample; ``pai_code`` is the dataset's own code for it (``""`` when live or when the dataset
    hides it, e.g. anonymised dev folders). ``subject`` is ``""`` where the dataset hides identities.
    ``color_is_gray`` records that the set ships grayscale instead of colour (the three channels are
    then equal), so a user is never surprised by a silently different input.
    """

    color_bgr: np.ndarray
    depth: np.ndarray
    depth_kind: str
    precropped: bool
    label: str
    pai: str
    pai_code: str
    subject: str
    path: str  # where the frame came from, for error messages
    dataset: str = ""  # the registry prefix of the reader that made it
    color_is_gray: bool = False

    def __post_init__(self) -> None:
        color = self.color_bgr
        if not isinstance(color, np.ndarray) or color.dtype != np.uint8 or color.ndim != 3 or color.shape[2] != 3:
            raise ValueError(
                f"RawSample.color_bgr must be an H x W x 3 uint8 array, got "
                f"{getattr(color, 'dtype', type(color).__name__)} {getattr(color, 'shape', '')} ({self.path})"
            )
        if self.depth_kind not in DEPTH_KINDS:
            raise ValueError(f"RawSample.depth_kind must be one of {DEPTH_KINDS}, got {self.depth_kind!r}")
        expected_dtype = np.uint16 if self.depth_kind == "mm" else np.uint8
        depth = self.depth
        if not isinstance(depth, np.ndarray) or depth.dtype != expected_dtype or depth.ndim != 2:
            raise ValueError(
                f"RawSample.depth must be an H x W {np.dtype(expected_dtype).name} array for depth_kind "
                f"{self.depth_kind!r}, got {getattr(depth, 'dtype', type(depth).__name__)} "
                f"{getattr(depth, 'shape', '')} ({self.path})"
            )
        if not self.precropped and depth.shape != color.shape[:2]:
            raise ValueError(
                f"RawSample.depth has shape {depth.shape} but color_bgr is {color.shape[:2]}: full-frame "
                f"depth must be aligned to colour ({self.path})"
            )
        if self.label not in LABELS:
            raise ValueError(f"RawSample.label must be one of {LABELS}, got {self.label!r}")
        if self.label == "live" and self.pai:
            raise ValueError(f"RawSample.pai must be '' for a live sample, got {self.pai!r} ({self.path})")
        if self.label == "spoof" and self.pai not in SPECIES:
            raise ValueError(f"RawSample.pai must be one of {SPECIES} for a spoof, got {self.pai!r} ({self.path})")
        if not isinstance(self.subject, str):
            raise TypeError(f"RawSample.subject must be a str, got {type(self.subject).__name__}")


@runtime_checkable
class RawDataset(Protocol):
    """A public dataset opened at one split: iterating streams its frames in the list files' order.

    Iteration reads images lazily (one frame in memory at a time) and is repeatable: each
    ``iter()`` starts again from the first list entry. ``len()`` is the number of frames an
    iteration yields, counted from the list files and folder listings without decoding images.
    ``describe()`` is the one line logged when the dataset is opened.
    """

    spec: str
    split: str

    def __iter__(self) -> Iterator[RawSample]: ...

    def __len__(self) -> int: ...

    def describe(self) -> str: ...
