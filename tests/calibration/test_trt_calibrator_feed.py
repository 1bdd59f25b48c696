"""The INT8 calibrator's batching and cache, with fake device memory (no GPU needed)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from calibration.calibset import CalibItem, build_calibration_set
from calibration.trt_calibrator import CalibrationCache, CalibrationFeed


class FakeDevice:
    """Device memory as a dict of pointer -> last array copied there."""

    def __init__(self) -> None:
        self.sizes: dict[int, int] = {}
        self.memory: dict[int, np.ndarray] = {}

    def allocate(self, nbytes: int) -> int:
        pointer = 0x1000 * (len(self.sizes) + 1)
        self.sizes[pointer] = nbytes
        return pointer

    def copy(self, pointer: int, array: np.ndarray) -> None:
        assert array.flags.c_contiguous and array.dtype == np.float32
        if array.nbytes != self.sizes[pointer]:
            raise AssertionError(f"copy of {array.nbytes} bytes into a {self.sizes[pointer]}-byte buffer")
        self.memory[pointer] = array.copy()


def calib_set(n: int = 7):
    rng = np.random.default_rng(3)
    items = (CalibItem(rng.random((3, 8, 8), dtype=np.float32), rng.random((1, 8, 8), dtype=np.float32))
             for _ in range(n))
    return build_calibration_set(items, n, "test", {"preprocess.size_px": "8"}, storage=np.float32)


def test_feed_serves_full_batches_in_order():
    calib, device = calib_set(7), FakeDevice()
    feed = CalibrationFeed(calib, 3, device.allocate, device.copy)
    assert feed.batches_total == 2
    first = feed.next_pointers(["depth", "rgb"])  # TensorRT may ask in any order
    assert len(first) == 2 and device.sizes[first[1]] == 3 * 3 * 8 * 8 * 4
    np.testing.assert_array_equal(device.memory[first[1]], calib.rgb[0:3])
    np.testing.assert_array_equal(device.memory[first[0]], calib.depth[0:3])
    second = feed.next_pointers(["rgb", "depth"])
    np.testing.assert_array_equal(device.memory[second[0]], calib.rgb[3:6])
    assert feed.next_pointers(["rgb", "depth"]) is None  # sample 7 would make a short batch
    assert feed.batches_served == 2


def test_feed_rejects_bad_requests():
    calib, device = calib_set(2), FakeDevice()
    with pytest.raises(ValueError, match="batch_size"):
        CalibrationFeed(calib, 3, device.allocate, device.copy)
    feed = CalibrationFeed(calib, 1, device.allocate, device.copy)
    with pytest.raises(ValueError, match="'image'"):
        feed.next_pointers(["image"])


def test_cache_round_trip(tmp_path):
    cache = CalibrationCache(tmp_path / "sub" / "calib.cache")
    assert cache.read() is None
    cache.write(memoryview(b"TRT-10-EntropyCalibration2\nrgb: 3c010a14\n"))
    assert cache.read() == b"TRT-10-EntropyCalibration2\nrgb: 3c010a14\n"


def test_entropy_calibration_refuses_a_set_of_another_contract(tmp_path):
    """The maker ``build_engine`` is handed checks the set against the model before TensorRT is touched."""
    from pathlib import Path

    from calibration.calibset import save_calibration_set
    from calibration.trt_calibrator import entropy_calibration
    from edge.errors import ModelError
    from engines.metadata import ModelMetadata
    from engines.tensorrt_build import BuildRequest

    path = save_calibration_set(calib_set(4), tmp_path / "c.npz")
    request = BuildRequest(Path("m.onnx"), "int8", tmp_path, calib_path=path)
    with pytest.raises(ModelError, match="preprocess.size_px: model=16 set=8"):
        entropy_calibration(request, ModelMetadata(input_size=8, preprocess={"preprocess.size_px": "16"}))


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None,
                    reason="needs TensorRT and pycuda (an NVIDIA GPU machine)")
@pytest.mark.hardware
def test_real_calibrator_subclass(tmp_path):
    from calibration.trt_calibrator import make_entropy_calibrator

    calibrator = make_entropy_calibrator(calib_set(4), tmp_path / "c.cache", batch_size=2)
    assert calibrator.get_batch_size() == 2
    assert len(calibrator.get_batch(["rgb", "depth"])) == 2
