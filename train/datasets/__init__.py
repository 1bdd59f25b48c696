"""Datasets for training and evaluation: public RGB-D PAD sets by their published layouts (DESIGN §8).

Readers yield :class:`~train.datasets.records.RawSample` records; ``open_dataset(spec, split)`` in
:mod:`train.datasets.registry` picks the reader from the spec string's prefix. Nothing here imports
torch, so listing or checking a dataset works without the training extra.
"""

from train.datasets.records import LABELS, SPECIES, SPLITS, RawDataset, RawSample
from train.datasets.registry import (
    DATASET_KINDS,
    DatasetKind,
    DatasetSpec,
    datasets_help,
    open_dataset,
    parse_dataset_spec,
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
    "datasets_help",
    "open_dataset",
    "parse_dataset_spec",
    "valid_dataset_forms",
]
