"""Labelled datasets for training, evaluation and threshold calibration (DESIGN §8).

Readers yield :class:`~edge.datasets.records.RawSample` records; ``open_dataset(spec, split)`` in
:mod:`edge.datasets.registry` picks the reader from the spec string's prefix, and
:func:`edge.datasets.sampleset.prepare_samples` turns a spec and a split into cached, preprocessed
faces through the runtime's own preprocessing. The package lives under ``edge`` because training
(``train``) and threshold calibration (``calibration``, which may not import ``train``) read the
same datasets the same way. It imports edge core only (capture, face, frames, samples, errors):
never torch, engines, calibration or train, so listing or checking a dataset works on a device.
"""

from edge.datasets.records import LABELS, SPECIES, SPLITS, RawDataset, RawSample
from edge.datasets.registry import (
    DATASET_KINDS,
    DatasetKind,
    DatasetSpec,
    check_dataset_spec,
    check_split,
    datasets_help,
    open_dataset,
    parse_dataset_spec,
    parse_dataset_specs,
    valid_dataset_forms,
)

__all__ = [
    "DATASET_KINDS",
    "LABELS",
    "SPECIES",
    "SPLITS",
    "DatasetKind",
    "DatasetSpec",
    "RawDataset",
    "RawSample",
    "check_dataset_spec",
    "check_split",
    "datasets_help",
    "open_dataset",
    "parse_dataset_spec",
    "parse_dataset_specs",
    "valid_dataset_forms",
]
