"""Calibration set file: round trip, provenance, tamper detection, contract refusal."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.calibset import (
    CalibItem,
    build_calibration_set,
    check_contract,
    load_calibration_set,
    save_calibration_set,
)
from edge.errors import DatasetError, ModelError

CONTRACT = {"preprocess.size_px": "16", "preprocess.depth_window_mm": "100.0"}


def items(n: int, labelled: bool = True, seed: int = 0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        yield CalibItem(rng.random((3, 16, 16), dtype=np.float32), rng.random((1, 16, 16), dtype=np.float32),
                        (i % 2 == 1) if labelled else None, "print" if (labelled and i % 2) else "")


def test_round_trip(tmp_path):
    calib = build_calibration_set(items(6), 5, "synthetic:mixed", CONTRACT)
    path = save_calibration_set(calib, tmp_path / "calib.npz")
    back = load_calibration_set(path)
    assert back.count == 5 and back.input_size == 16 and back.rgb.dtype == np.float16
    np.testing.assert_array_equal(back.rgb, calib.rgb)
    np.testing.assert_array_equal(back.depth, calib.depth)
    assert back.is_attack.tolist() == [0, 1, 0, 1, 0] and back.pai.tolist() == ["", "print", "", "print", ""]
    assert back.provenance.source == "synthetic:mixed" and dict(back.provenance.contract) == CONTRACT
    assert back.provenance.sha256 == calib.provenance.sha256 and len(back.provenance.sha256) == 64
    first = next(back.batches(4))
    assert first[0].dtype == np.float32 and first[0].shape == (4, 3, 16, 16)
    assert [b[0].shape[0] for b in back.batches(2)] == [2, 2, 1]


def test_float16_is_close_to_source():
    source = list(items(3))
    calib = build_calibration_set(iter(source), 3, "x", CONTRACT)
    assert np.abs(calib.rgb.astype(np.float32) - np.stack([s.rgb for s in source])).max() < 1e-3


def test_unlabelled_set_has_no_labels(tmp_path):
    calib = build_calibration_set(items(2, labelled=False), 2, "bag:x.bag", CONTRACT)
    back = load_calibration_set(save_calibration_set(calib, tmp_path / "c.npz"))
    assert back.is_attack is None and back.pai is None


def test_short_source_is_dataset_error():
    with pytest.raises(DatasetError, match="gave 3 usable faces, 10 were asked"):
        build_calibration_set(items(3), 10, "synthetic:live", CONTRACT)


def test_edited_file_is_refused(tmp_path):
    calib = build_calibration_set(items(4), 4, "x", CONTRACT)
    path = save_calibration_set(calib, tmp_path / "c.npz")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["rgb"][0, 0, 0, 0] += 0.5
    np.savez_compressed(path, **arrays)
    with pytest.raises(DatasetError, match="sha256"):
        load_calibration_set(path)


def test_garbage_and_missing_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a readable calibration set") as info:
        load_calibration_set(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(DatasetError, match="calibrate collect"):
        load_calibration_set(tmp_path / "absent.npz")


def test_contract_mismatch_names_keys():
    calib = build_calibration_set(items(2), 2, "x", CONTRACT)
    check_contract(calib, CONTRACT, 16, "m.onnx")  # same contract: accepted
    with pytest.raises(ModelError) as info:
        check_contract(calib, CONTRACT | {"preprocess.depth_window_mm": "150.0"}, 16, "m.onnx")
    assert "preprocess.depth_window_mm: model=150.0 set=100.0" in str(info.value)
    with pytest.raises(ModelError, match="input side: model=32 set=16"):
        check_contract(calib, CONTRACT, 32, "m.onnx")
