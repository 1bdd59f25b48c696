"""``folder:PATH``: colour/depth image pairs listed in a ``labels.csv`` (DESIGN §8).

Columns ``color,depth,label,pai,subject``; paths are relative to the CSV. Colour is an 8-bit image;
depth is a 16-bit PNG in millimetres (0 = no data). Pre-cropped sets that ship 8-bit normalised
depth are datasets, not frame sources: they are read by the training datasets, which pass their
depth through unchanged. Labels are ``live``, ``spoof``, or ``none`` for frames without a face.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.capture.source import ClosesOnExit, SourceOptions
from edge.errors import DatasetError, SourceError
from edge.face.image_files import read_color_image
from edge.frames import FrameMeta, Intrinsics, RGBDFrame, SceneTruth

LABELS_FILE = "labels.csv"
COLUMNS = ("color", "depth", "label", "pai", "subject")
SPLIT_COLUMN = "split"  # optional: train, dev or test per row (subject-disjoint splits are the writer's job)
SPLIT_VALUES = ("train", "dev", "test")
LABELS = ("live", "spoof", "none")
INTRINSICS_FILE = "intrinsics.json"  # optional: the colour camera's intrinsics, librealsense field names


@dataclass(frozen=True)
class LabelRow:
    row: int  # 1-based data row number (the header is row 0), as a user counts in a spreadsheet
    color_path: Path
    depth_path: Path
    label: str
    pai: str
    subject: str
    split: str = ""  # "" when the file has no split column


def read_labels(folder: Path) -> list[LabelRow]:
    """Read and check ``labels.csv``: a missing file/column or a bad label names the file and row."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"folder '{folder}' does not exist; give a folder that holds {LABELS_FILE}")
    csv_path = folder / LABELS_FILE
    if not csv_path.is_file():
        raise DatasetError(f"'{csv_path}' is missing; a folder dataset needs {LABELS_FILE} with columns "
                           f"{','.join(COLUMNS)}")
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(f"'{csv_path}' lacks column(s) {', '.join(missing)}; expected header "
                               f"{','.join(COLUMNS)}")
        rows = []
        for number, rec in enumerate(reader, start=1):
            label = (rec["label"] or "").strip()
            if label not in LABELS:
                raise DatasetError(f"'{csv_path}' row {number}, column label: '{label}' is not one of "
                                   f"{', '.join(LABELS)}")
            pai = (rec["pai"] or "").strip()
            if label == "spoof" and not pai:
                raise DatasetError(f"'{csv_path}' row {number}, column pai: a spoof needs its attack species")
            for column in ("color", "depth"):
                if not (rec[column] or "").strip():
                    raise DatasetError(f"'{csv_path}' row {number}, column {column}: empty path")
            split = (rec.get(SPLIT_COLUMN) or "").strip()
            if SPLIT_COLUMN in (reader.fieldnames or []) and split not in SPLIT_VALUES:
                raise DatasetError(f"'{csv_path}' row {number}, column split: '{split}' is not one of "
                                   f"{', '.join(SPLIT_VALUES)}")
            rows.append(LabelRow(number, folder / rec["color"].strip(), folder / rec["depth"].strip(), label, pai,
                                 (rec["subject"] or "").strip(), split))
    if not rows:
        raise DatasetError(f"'{csv_path}' has a header but no rows; add samples or pick another folder")
    return rows


def read_pair(row: LabelRow, csv_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Load one row's colour (BGR uint8) and depth (uint16 mm, or uint8 normalised) images."""
    try:
        color = read_color_image(row.color_path)
    except SourceError as exc:
        raise DatasetError(f"'{csv_path}' row {row.row}, column color: {exc}") from None
    depth = cv2.imread(str(row.depth_path), cv2.IMREAD_ANYDEPTH)
    if depth is None:
        raise DatasetError(f"'{csv_path}' row {row.row}, column depth: cannot read image '{row.depth_path}'")
    if depth.dtype not in (np.uint16, np.uint8) or depth.ndim != 2:
        raise DatasetError(f"'{csv_path}' row {row.row}, column depth: '{row.depth_path}' must be a single-channel "
                           f"16-bit PNG in millimetres (or 8-bit normalised), got {depth.dtype} {depth.shape}")
    if depth.shape != color.shape[:2]:
        raise DatasetError(f"'{csv_path}' row {row.row}: depth {depth.shape[::-1]} and color "
                           f"{color.shape[1::-1]} differ in size; depth must be aligned to color")
    return color, depth


def _intrinsics(folder: Path, width: int, height: int) -> Intrinsics:
    path = folder / INTRINSICS_FILE
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            return Intrinsics(int(data["width"]), int(data["height"]), float(data["fx"]), float(data["fy"]),
                              float(data["ppx"]), float(data["ppy"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"'{path}' is not valid intrinsics JSON ({exc}); fields width, height, fx, fy, "
                               f"ppx, ppy") from None
    # No calibration shipped: assume a D435 colour camera's field of view at this size.
    return Intrinsics(640, 480, 613.20, 613.20, 320.0, 240.0).scaled(width, height)


class FolderSource(ClosesOnExit):
    """Frames from a folder dataset in row order; each frame carries its row's label as truth."""

    def __init__(self, folder: Path, options: SourceOptions) -> None:
        self.folder = Path(folder)
        self.spec = f"folder:{folder}"
        self.options = options
        self.rows = read_labels(self.folder)
        self._closed = False

    def describe(self) -> str:
        return f"path={self.folder} rows={len(self.rows)}"

    def __iter__(self) -> Iterator[RGBDFrame]:
        csv_path = self.folder / LABELS_FILE
        count = 0
        while True:
            for row in self.rows:
                if self._closed or (self.options.max_frames is not None and count >= self.options.max_frames):
                    return
                color, depth = read_pair(row, csv_path)
                if depth.dtype != np.uint16:
                    raise DatasetError(f"'{csv_path}' row {row.row}, column depth: 8-bit normalised depth is a "
                                       f"pre-cropped training set, not a frame source; use it as --dataset")
                intr = _intrinsics(self.folder, color.shape[1], color.shape[0])
                pai = row.pai if row.label == "spoof" else ""
                truth = SceneTruth(row.label, pai, _subject_number(row.subject), "folder")
                t_ms = count * 1000.0 / self.options.fps
                yield RGBDFrame(color, depth, 0.001, intr, t_ms, count, self.spec, FrameMeta(count, count), truth)
                count += 1
            if not self.options.loop:
                return

    def close(self) -> None:
        self._closed = True



def _subject_number(subject: str) -> int:
    try:
        return int(subject)
    except ValueError:
        return -1


def open_folder(argument: str, options: SourceOptions) -> FolderSource:
    path = Path(argument).expanduser()
    if not path.exists():
        raise SourceError(f"folder '{path}' does not exist; write one with 'edgefas synth --out {path}'")
    try:
        return FolderSource(path, options)
    except DatasetError as err:
        raise SourceError(str(err)) from None
