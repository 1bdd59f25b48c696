"""Preprocessed faces from any frame source (a camera, a recording, a folder, a rendered scenario): the
input of INT8 calibration sets (``edgefas calibrate collect``).

The crops go through the one preprocessing module (``edge.face.preprocess``) with the contract the
model carries, so calibration sees exactly what the live path will feed the model (DESIGN §2).
Frames without a face, and faces refused by a quality gate, are skipped and counted: a gated frame
is never given to the model at run time, so its activations have no place in the INT8 ranges.
Threshold selection reads labelled *datasets* instead (train/dev/test splits, every kind):
:mod:`calibration.operating_point`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from calibration.calibset import CalibItem


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
