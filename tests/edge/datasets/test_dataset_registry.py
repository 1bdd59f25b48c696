"""Dataset spec parsing, the kinds table, the RawSample contract, and one contract test over every reader."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dataset_fixture_loader import REPO, load_fixture_writer
from edge.datasets import (
    DATASET_KINDS,
    RawDataset,
    RawSample,
    check_dataset_spec,
    datasets_help,
    open_dataset,
    parse_dataset_spec,
    parse_dataset_specs,
)
from edge.errors import DatasetError, DatasetSpecError

fixtures = load_fixture_writer()


def test_unknown_prefix_lists_every_valid_form():
    with pytest.raises(DatasetError) as info:
        parse_dataset_spec("oulu:/data/oulu")
    message = str(info.value)
    assert "unknown dataset kind 'oulu'" in message
    for kind in DATASET_KINDS:
        assert kind.form in message


def test_spec_without_prefix_lists_the_forms():
    with pytest.raises(DatasetError, match="no kind prefix.*casia-surf:PATH"):
        parse_dataset_spec("/data/CASIA-SURF")


def test_spec_without_folder_is_refused():
    with pytest.raises(DatasetError, match="nothing after 'wmca:'"):
        parse_dataset_spec("wmca:#grandtest")


def test_spec_parts():
    spec = parse_dataset_spec("cefa:/data/CeFA/phase1#4@1")
    assert (spec.kind, spec.root, spec.selector) == ("cefa", Path("/data/CeFA/phase1"), "4@1")


@pytest.mark.parametrize("spec,says", [
    ("synthetic:live", "write synthetic:COUNT[#PROTOCOL], e.g. synthetic:400"),  # frame-source form of the world
    ("photo:print", "write photo:COUNT[#PROTOCOL]"),
    ("synthetic:4k", "COUNT must be a whole number, as in synthetic:400"),
    ("bag:/data/take.db3", "is a frame source, not a labelled dataset"),
    ("realsense:123", "is a frame source, not a labelled dataset"),
])
def test_frame_source_specs_and_bad_counts_say_what_to_write(spec, says):
    with pytest.raises(DatasetSpecError) as info:
        parse_dataset_spec(spec)
    assert says in str(info.value) and "\n" not in str(info.value)


def test_joined_specs_parse_every_part_before_anything_is_read():
    parts = parse_dataset_specs("synthetic:40 + photo:20#LOO_print+folder:/data/f")
    assert [(p.kind, p.argument, p.selector) for p in parts] == [
        ("synthetic", "40", ""), ("photo", "20", "LOO_print"), ("folder", "/data/f", "")]
    with pytest.raises(DatasetSpecError, match="empty part around '\\+'"):
        parse_dataset_specs("synthetic:40++photo:20")
    with pytest.raises(DatasetSpecError, match="unknown dataset kind 'oulu'"):
        parse_dataset_specs("synthetic:40+oulu:/x")  # the second part fails at once, not after the first is made


def test_a_users_spec_error_names_the_option_and_exits_2():
    assert check_dataset_spec("synthetic:8+photo:4", "--dev-dataset") == "synthetic:8+photo:4"
    with pytest.raises(DatasetSpecError) as info:
        check_dataset_spec("synthetic:live", "--dev-dataset")
    assert str(info.value).startswith("--dev-dataset: 'synthetic:live'") and info.value.exit_code == 2
    assert isinstance(info.value, DatasetError), "callers that catch DatasetError still do"


def test_help_renders_every_kind_from_the_table():
    text = datasets_help()
    for kind in DATASET_KINDS:
        assert kind.form in text and kind.summary in text


def test_missing_folder_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(f"casia-surf:{tmp_path / 'absent'}", "train")


def test_bad_split_is_a_one_line_dataset_error(tmp_path):
    # a split is often a user's value (`edgefas eval --split`): a DatasetError, not a traceback
    with pytest.raises(DatasetError, match="split must be one of train, dev, test, got 'validation'") as err:
        open_dataset(f"casia-surf:{tmp_path}", "validation")
    assert "\n" not in str(err.value)


def _sample(**overrides) -> RawSample:
    fields = dict(color_bgr=np.zeros((4, 4, 3), np.uint8), depth=np.zeros((4, 4), np.uint16), depth_kind="mm",
                  precropped=False, label="spoof", pai="print", pai_code="x", subject="s", path="p")
    fields.update(overrides)
    return RawSample(**fields)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"label": "live"}, "must be '' for a live sample"),
        ({"pai": ""}, "must be one of"),
        ({"pai": "deepfake"}, "must be one of"),
        ({"label": "real", "pai": ""}, "label must be one of"),
        ({"depth": np.zeros((4, 4), np.uint8)}, "uint16"),
        ({"depth_kind": "normalised8"}, "uint8"),
        ({"depth": np.zeros((3, 4), np.uint16)}, "aligned to colour"),
        ({"color_bgr": np.zeros((4, 4), np.uint8)}, "H x W x 3 uint8"),
    ],
)
def test_raw_sample_refuses_inconsistent_records(overrides, message):
    with pytest.raises(ValueError, match=message):
        _sample(**overrides)


def test_precropped_records_may_differ_in_size():
    sample = _sample(depth=np.zeros((3, 5), np.uint8), depth_kind="normalised8", precropped=True)
    assert sample.depth.shape != sample.color_bgr.shape[:2]


@pytest.fixture(scope="module")
def every_reader(tmp_path_factory):
    folders = fixtures.write_all(tmp_path_factory.mktemp("all"))
    return [("casia-surf", f"casia-surf:{folders['casia-surf']}"),
            ("cefa", f"cefa:{folders['cefa']}#{fixtures.CEFA_PROTOCOL}"),
            ("wmca", f"wmca:{folders['wmca']}#grandtest"),
            ("wmca", f"wmca:{folders['hqwmca']}#grand_test")]


@pytest.mark.parametrize("index", range(4))
@pytest.mark.parametrize("split", ["train", "dev"])
def test_every_reader_honours_the_raw_dataset_contract(every_reader, index, split):
    prefix, spec = every_reader[index]
    dataset = open_dataset(spec, split)
    assert isinstance(dataset, RawDataset)
    assert dataset.split == split and dataset.spec == spec
    assert split in dataset.describe()
    first = list(dataset)
    second = list(dataset)
    assert len(first) == len(dataset) > 0
    assert [s.path for s in first] == [s.path for s in second]  # repeatable, deterministic
    assert all(isinstance(s, RawSample) and s.dataset == prefix for s in first)
    assert {s.label for s in first} == {"live", "spoof"}


def test_importing_the_readers_does_not_import_torch():
    code = ("import sys, edge.datasets, edge.datasets.casia_surf, edge.datasets.cefa, edge.datasets.wmca, "
            "edge.datasets.sampleset; print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
