"""ONNX metadata round trip and contract comparison."""

from __future__ import annotations

import json

import pytest

from tiny_pad_model import CONTRACT, SIZE
from edge.errors import ModelError
from engines.metadata import ModelMetadata, contract_differences, metadata_from_props, read_metadata, write_metadata

pytest.importorskip("onnx", reason="the onnx package (edgefas[train]) is needed to write metadata")


def test_round_trip_with_threshold(tmp_path, tiny_onnx):
    meta = read_metadata(tiny_onnx).with_threshold(0.4242, "eer", {"eer": 0.1, "n_live": 4})
    out = write_metadata(tiny_onnx, meta, tmp_path / "with_threshold.onnx")
    back = read_metadata(out)
    assert back == meta
    assert back.threshold == 0.4242 and json.loads(back.threshold_metrics)["n_live"] == 4
    assert dict(back.preprocess) == CONTRACT and back.input_size == SIZE


def test_props_are_prefixed_and_complete():
    props = ModelMetadata(preprocess={"preprocess.size_px": "128"}, input_size=128, preset="edge", threshold=0.3).to_props()
    assert props["edgefas.preprocess.size_px"] == "128"
    assert props["edgefas.score_polarity"] == "higher_is_attack"
    assert props["edgefas.threshold"] == "0.3" and props["edgefas.input_size"] == "128"
    assert all(k.startswith("edgefas.") for k in props)


def test_wrong_polarity_refused():
    props = ModelMetadata(input_size=8).to_props() | {"edgefas.score_polarity": "higher_is_live"}
    with pytest.raises(ModelError, match="higher_is_live"):
        metadata_from_props(props, "x.onnx")


def test_corrupt_file_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07\x12garbage" * 10)
    with pytest.raises(ModelError) as info:
        read_metadata(bad)
    assert "bad.onnx" in str(info.value) and "\n" not in str(info.value)


def test_contract_differences_lists_keys():
    diffs = contract_differences({"preprocess.size_px": "128", "preprocess.depth_window_mm": "100.0"},
                                 {"preprocess.size_px": "128", "preprocess.depth_window_mm": "150.0",
                                  "preprocess.crop_scale": "1.5"})
    assert diffs == ["preprocess.crop_scale: model=<absent> set=1.5",
                     "preprocess.depth_window_mm: model=100.0 set=150.0"]


def test_contract_keys_must_be_preprocess_keys():
    with pytest.raises(ValueError, match="'size' must start with 'preprocess.'"):
        ModelMetadata(preprocess={"size": "128"}, input_size=128).to_props()


def test_contract_round_trips_into_preprocess_config(tiny_onnx):
    from edge.face.preprocess import PreprocessConfig

    config = PreprocessConfig.from_metadata(read_metadata(tiny_onnx).preprocess)
    assert config.size_px == SIZE and config == PreprocessConfig(size_px=SIZE)
