"""``folder:`` datasets: an optional split column, and no threshold calibrated on a folder's own training rows."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import DatasetError


def _folder(root: Path, splits: list[str] | None) -> Path:
    root.mkdir(parents=True)
    rows = []
    for i in range(6):
        cv2.imwrite(str(root / f"c{i}.png"), np.full((32, 32, 3), 100, np.uint8))
        cv2.imwrite(str(root / f"d{i}.png"), np.full((32, 32), 600, np.uint16))
        label, pai = ("live", "") if i % 2 == 0 else ("spoof", "print")
        rows.append(f"c{i}.png,d{i}.png,{label},{pai},p{i // 2}" + (f",{splits[i]}" if splits else ""))
    header = "color,depth,label,pai,subject" + (",split" if splits else "")
    (root / "labels.csv").write_text("\n".join([header] + rows) + "\n")
    return root


def test_split_column_selects_rows(tmp_path):
    from edge.datasets.folder import FolderDataset

    root = _folder(tmp_path / "f", ["train", "train", "dev", "dev", "test", "test"])
    assert len(FolderDataset(root, "train")) == 2 and len(FolderDataset(root, "dev")) == 2
    assert {r.split for r in FolderDataset(root, "test").rows} == {"test"}


def test_without_split_column_the_whole_folder_is_any_split(tmp_path):
    from edge.datasets.folder import FolderDataset

    root = _folder(tmp_path / "f", None)
    assert len(FolderDataset(root, "dev")) == 6 and not FolderDataset(root, "dev").has_splits


def test_bad_split_value_names_row_and_column(tmp_path):
    from edge.capture.folder import read_labels

    root = _folder(tmp_path / "f", ["train", "train", "dev", "validation", "test", "test"])
    with pytest.raises(DatasetError, match="row 4, column split: 'validation'"):
        read_labels(root)


def test_training_refuses_to_calibrate_on_its_own_rows(tmp_path):
    from train.run import refuse_calibrating_on_training_rows

    plain = _folder(tmp_path / "plain", None)
    with pytest.raises(DatasetError, match="no split column.*--dev-dataset"):
        refuse_calibrating_on_training_rows(f"synthetic:8+folder:{plain}")
    refuse_calibrating_on_training_rows(f"folder:{_folder(tmp_path / 'split', ['train'] * 2 + ['dev'] * 4)}")


def test_train_command_refusal_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from edge.cli.app import app

    plain = _folder(tmp_path / "plain", None)
    result = CliRunner().invoke(app, ["train", "--dataset", f"folder:{plain}", "--out", str(tmp_path / "run"),
                                      "--steps", "1"])
    assert isinstance(result.exception, DatasetError), "an EdgefasError: main() prints it as one line, exit 2"
    assert "no split column" in str(result.exception) and "\n" not in str(result.exception)
    assert not (tmp_path / "run" / "last.pt").exists(), "refused before any training"
