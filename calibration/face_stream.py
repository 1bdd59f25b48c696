"""Preprocessed, labelled faces from any frame source: the input of calibration and threshold selection.

The crops go through the one preprocessing module (``edge.face.preprocess``) with the contract the
model carries, so calibration sees exactly what the live path will feed the model (DESIGN §2).
Frames without a face, and faces refused by a quality gate, are skipped and counted: a gated frame
is never "live" at run time, so it has no place in a threshold's statistics either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from calibration.calibset import CalibItem
from edge.errors import DatasetError


@dataclass
class StreamCounts:
    """How many frames were read and why some gave no sample (filled while iterating)."""

    frames: int = 0
    no_face: int = 0
    gated: dict[str, int] = field(default_factory=dict)
    unlabelled: int = 0

    @property
    def skipped(self) -> int:
        return self.no_face + sum(self.gated.values())


def labelled_faces(source_spec: str, contract: Mapping[str, str] | None = None, detector: str = "auto",
                   seed: int = 0, max_frames: int | None = None, counts: StreamCounts | None = None
                   ) -> Iterator[CalibItem]:
    """Yield one :class:`CalibItem` per frame with a face that passed the quality gates.

    ``contract`` is a model's ``PreprocessConfig.to_metadata()`` dict (None = the default config).
    Labels come from the frame's scene truth (synthetic and folder sources); frames of a source
    without truth (a camera, a recording) give ``is_attack=None``.
    """
    from edge.capture.source import SourceOptions, open_source
    from edge.face.finder import open_face_finder
    from edge.face.preprocess import PreprocessConfig, preprocess_frame

    config = PreprocessConfig.from_metadata(contract) if contract else PreprocessConfig()
    counts = counts if counts is not None else StreamCounts()
    finder = open_face_finder(detector, detect_width_px=config.detect_width_px)
    source = open_source(source_spec, SourceOptions(seed=seed, max_frames=max_frames))
    try:
        for frame in source:
            counts.frames += 1
            truth = frame.truth
            if truth is not None and truth.label == "none":
                counts.no_face += 1
                continue
            sample = preprocess_frame(frame, finder, config)
            if sample is None:
                counts.no_face += 1
                continue
            if not sample.passed:
                counts.gated[sample.gate] = counts.gated.get(sample.gate, 0) + 1
                continue
            is_attack = None if truth is None else truth.label == "spoof"
            counts.unlabelled += is_attack is None
            yield CalibItem(sample.rgb, sample.depth, is_attack, "" if truth is None else truth.pai)
    finally:
        source.close()


@dataclass(frozen=True)
class ScoredFaces:
    scores: np.ndarray  # float32 [N]
    is_attack: np.ndarray  # bool [N]
    species: tuple[str, ...]


def score_faces(runner, items: Iterator[CalibItem], batch_size: int = 16,
                progress: Callable[[int], None] | None = None) -> ScoredFaces:
    """Score labelled faces with a runner; an unlabelled face is a DatasetError (thresholds need truth)."""
    scores, labels, species, rgb, depth = [], [], [], [], []

    def flush() -> None:
        if rgb:
            scores.append(runner.run(np.stack(rgb), np.stack(depth)).score)
            rgb.clear()
            depth.clear()
            if progress is not None:
                progress(sum(s.size for s in scores))

    for item in items:
        if item.is_attack is None:
            raise DatasetError("the dataset has frames without a live/spoof label; threshold selection needs a "
                               "labelled dev set (folder:PATH with labels.csv, or synthetic:mixed)")
        rgb.append(item.rgb)
        depth.append(item.depth)
        labels.append(item.is_attack)
        species.append(item.pai or ("attack" if item.is_attack else ""))
        if len(rgb) == batch_size:
            flush()
    flush()
    if not scores:
        raise DatasetError("the dataset gave no usable faces (none found, or all gated); check the source "
                           "with: edgefas faces / edgefas live --preview")
    return ScoredFaces(np.concatenate(scores).astype(np.float32), np.asarray(labels, dtype=bool), tuple(species))


def collect_calibration_set(source_spec: str, count: int, out_path, model_path=None, detector: str = "auto",
                            seed: int = 0, progress: Callable[[int], None] | None = None):
    """Collect ``count`` gated-in faces from a source into a calibration set file.

    With ``model_path`` the crops follow that model's stored contract (the set then passes the
    model's contract check by construction); without it, the default ``PreprocessConfig``.
    Returns the saved :class:`calibration.calibset.CalibrationSet`.
    """
    from calibration.calibset import build_calibration_set, load_calibration_set, save_calibration_set
    from edge.face.preprocess import PreprocessConfig

    if model_path is not None:
        from engines.metadata import read_metadata

        contract = dict(read_metadata(model_path).preprocess)
    else:
        contract = PreprocessConfig().to_metadata()
    counts = StreamCounts()
    faces = labelled_faces(source_spec, contract, detector, seed, None, counts)
    try:
        calib = build_calibration_set(faces, count, source_spec, contract, progress=progress)
    finally:
        faces.close()
    note = f"frames read {counts.frames}, no face {counts.no_face}, gated {sum(counts.gated.values())}"
    calib = replace(calib, provenance=replace(calib.provenance, note=note))  # the sha covers arrays only
    return load_calibration_set(save_calibration_set(calib, out_path))
