"""``folder:PATH``: a labels.csv folder dataset (DESIGN §8) as training/evaluation samples.

With a ``split`` column (train, dev or test per row) a split is its rows; without one the whole
folder is whatever split is asked for, so training refuses to calibrate its threshold on the same
folder (``train.run``: that would be calibrating on the training rows). Rows labelled ``none`` (no
face in view) are skipped: they carry no liveness label.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edge.capture.folder import LABELS_FILE, read_labels, read_pair
from edge.datasets.records import SPECIES, RawSample
from edge.errors import DatasetError


class FolderDataset:
    def __init__(self, root: Path, split: str) -> None:
        self.root = Path(root)
        self.split = split
        rows = [r for r in read_labels(self.root) if r.label != "none"]
        self.has_splits = any(r.split for r in rows)
        if self.has_splits:
            rows = [r for r in rows if r.split == split]
            if not rows:
                raise DatasetError(f"'{self.root / LABELS_FILE}' has no live or spoof rows with split={split}")
        self.rows = rows
        if not self.rows:
            raise DatasetError(f"'{self.root / LABELS_FILE}' has no live or spoof rows; nothing to train or "
                               f"evaluate on")
        self.spec = f"folder:{self.root}"

    def __len__(self) -> int:
        return len(self.rows)

    def describe(self) -> str:
        return f"folder path={self.root} split={self.split if self.has_splits else '(whole folder)'} rows={len(self.rows)}"

    def __iter__(self) -> Iterator[RawSample]:
        csv_path = self.root / LABELS_FILE
        for row in self.rows:
            color, depth = read_pair(row, csv_path)
            pai = row.pai if row.label == "spoof" else ""
            species = pai if pai in SPECIES or not pai else "other"
            kind = "mm" if depth.dtype == np.uint16 else "normalised8"
            yield RawSample(color_bgr=color, depth=depth, depth_kind=kind, precropped=kind == "normalised8",
                            label=row.label, pai=species, pai_code=pai, subject=row.subject,
                            path=f"{csv_path} row {row.row}", dataset="folder")


def open_folder_dataset(spec, split: str | None) -> FolderDataset:
    return FolderDataset(spec.root, split or "train")
