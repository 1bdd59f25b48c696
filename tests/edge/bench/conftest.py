"""Fixtures for the bench tests: the ``edge`` preset exported (fp32) and quantised (INT8), and a short recording.

Weights are a fresh initialisation: the bench measures time and structure, never accuracy. The
recording is six frames of ``synthetic:live`` with the face pinned at 0.6 m so YuNet finds it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
YUNET_DIR = SHARED / "models"


@pytest.fixture(scope="session")
def yunet_dir() -> Path:
    if not (YUNET_DIR / "face_detection_yunet.onnx").is_file():
        pytest.skip(f"the YuNet model of the shared test data is missing ({YUNET_DIR})")
    return YUNET_DIR


@pytest.fixture(scope="session")
def edge_fp32(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch", reason="torch (edgefas[train]) is needed to export the test model")
    pytest.importorskip("onnx", reason="onnx (edgefas[train]) is needed to export the test model")
    from edge.face.preprocess import PreprocessConfig
    from engines.export import export_module
    from engines.metadata import ModelMetadata
    from train.model.network import build_model
    from train.model.presets import get_preset

    torch.set_num_threads(1)
    torch.manual_seed(0)
    contract = PreprocessConfig(size_px=128).to_metadata()
    metadata = ModelMetadata(preprocess=dict(contract), input_size=128, preset="edge", threshold=0.5,
                             threshold_target="test", alpha=0.5, model_sha256="0" * 64)
    out = tmp_path_factory.mktemp("bench-model") / "edge.onnx"
    export_module(build_model(get_preset("edge")).eval(), out, metadata, variant="score")
    return out


@pytest.fixture(scope="session")
def edge_int8(edge_fp32, tmp_path_factory) -> Path:
    from calibration.calibset import CalibItem, build_calibration_set
    from edge.face.preprocess import PreprocessConfig
    from engines.quantize import quantize_int8

    work = tmp_path_factory.mktemp("bench-int8")
    rng = np.random.default_rng(0)
    items = (CalibItem(rng.random((3, 128, 128), dtype=np.float32), rng.random((1, 128, 128), dtype=np.float32))
             for _ in range(8))
    calib = build_calibration_set(items, 8, "test:random", PreprocessConfig(size_px=128).to_metadata())
    return quantize_int8(edge_fp32, calib, work / "edge.int8.onnx").onnx_path


@pytest.fixture(scope="session")
def bench_cache(tmp_path_factory) -> Path:
    """A cache folder holding the six-frame recording that BENCH_FEED names (recorded on first use)."""
    pytest.importorskip("pyrealsense2", reason="pyrealsense2 (edgefas[realsense]) plays the bench recordings")
    from edge.bench.feed import prepare_feed

    cache = tmp_path_factory.mktemp("bench-cache")
    prepare_feed("synthetic:live", BENCH_FEED, cache)
    return cache


def _feed():
    from edge.bench.feed import FeedOptions

    return FeedOptions(seed=0, width=640, height=480, frames=6, distance_m=0.6)


BENCH_FEED = _feed()
# The six-frame recording loops; a loaded CI machine may take seconds to restart it, which is no bench
# test's subject, so their stall limit is generous (a stuck source still fails, after 60 s).
STALL_S = 60.0
