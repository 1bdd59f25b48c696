"""TensorRT's implicit INT8 entropy calibrator over a calibration set, with a persisted cache.

TensorRT 10.1 deprecates implicit calibration in favour of Q/DQ models (``edgefas calibrate int8``),
but JetPack 6's TensorRT 10 still runs it, and some layer mixes quantise better that way. The
TensorRT subclass is created lazily (tensorrt and pycuda are imported only when it is built); the
batching and the cache are plain Python in :class:`CalibrationFeed` and :class:`CalibrationCache`,
so they are tested without a GPU by handing them fake ``allocate``/``copy_to_device`` functions.
:func:`entropy_calibration` is what ``engines.tensorrt_build.build_engine`` is handed to calibrate
with (engines never imports this package; the command line joins the two).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from calibration.calibset import CalibrationSet, check_contract, load_calibration_set
from edge.errors import import_optional
from engines.metadata import ModelMetadata
from engines.tensorrt_build import BuildRequest, Int8Calibration
from engines.tensorrt_runner import require_tensorrt

log = logging.getLogger(__name__)

Allocate = Callable[[int], int]  # nbytes -> device pointer
CopyToDevice = Callable[[int, np.ndarray], None]  # (device pointer, contiguous host array)


class CalibrationFeed:
    """Hands out full batches of the set in order, copied to device buffers allocated once.

    TensorRT asks for exactly ``batch_size`` samples per call, so a short final batch is dropped
    (at most ``batch_size - 1`` samples); ``next_pointers`` returns None when the set is exhausted.
    """

    def __init__(self, calib: CalibrationSet, batch_size: int, allocate: Allocate, copy_to_device: CopyToDevice) -> None:
        if not 1 <= batch_size <= calib.count:
            raise ValueError(f"batch_size must be in [1, {calib.count}] for this set, got {batch_size}")
        self.batch_size = batch_size
        self._calib = calib
        self._copy = copy_to_device
        self._index = 0
        side = calib.input_size
        self._nbytes = {"rgb": batch_size * 3 * side * side * 4, "depth": batch_size * side * side * 4}
        self._pointers = {name: allocate(n) for name, n in self._nbytes.items()}

    @property
    def batches_total(self) -> int:
        return self._calib.count // self.batch_size

    @property
    def batches_served(self) -> int:
        return self._index // self.batch_size

    def next_pointers(self, names: Sequence[str]) -> list[int] | None:
        stop = self._index + self.batch_size
        if stop > self._calib.count:
            return None
        arrays = {"rgb": np.ascontiguousarray(self._calib.rgb[self._index:stop], dtype=np.float32),
                  "depth": np.ascontiguousarray(self._calib.depth[self._index:stop], dtype=np.float32)}
        self._index = stop
        pointers = []
        for name in names:
            if name not in arrays:
                raise ValueError(f"TensorRT asked for input '{name}'; the calibration set has rgb and depth")
            self._copy(self._pointers[name], arrays[name])
            pointers.append(self._pointers[name])
        return pointers


class CalibrationCache:
    """The calibrator's scale table on disk: a rebuild with the same set skips calibration."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> bytes | None:
        if self.path.is_file() and self.path.stat().st_size > 0:
            log.info("using INT8 calibration cache %s", self.path)
            return self.path.read_bytes()
        return None

    def write(self, data: bytes | memoryview) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(bytes(data))


def make_entropy_calibrator(calib: CalibrationSet, cache_path: str | Path, batch_size: int = 1):
    """A ``tensorrt.IInt8EntropyCalibrator2`` feeding ``calib`` through pycuda device buffers."""
    trt = require_tensorrt("INT8 calibration")
    cuda = import_optional("pycuda.driver", "tensorrt", "INT8 calibration")
    buffers = []

    def allocate(nbytes: int) -> int:
        buffers.append(cuda.mem_alloc(nbytes))  # kept alive as long as the calibrator
        return int(buffers[-1])

    def copy_to_device(pointer: int, array: np.ndarray) -> None:
        cuda.memcpy_htod(pointer, array)

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)  # TensorRT's Python API requires the explicit call
            self.feed = CalibrationFeed(calib, batch_size, allocate, copy_to_device)
            self.cache = CalibrationCache(cache_path)
            self._buffers = buffers

        def get_batch_size(self) -> int:
            return self.feed.batch_size

        def get_batch(self, names):
            return self.feed.next_pointers(names)

        def read_calibration_cache(self):
            return self.cache.read()

        def write_calibration_cache(self, cache) -> None:
            self.cache.write(cache)

    return EntropyCalibrator()


def entropy_calibration(request: BuildRequest, metadata: ModelMetadata) -> Int8Calibration:
    """The INT8 calibration of one engine build (``engines.tensorrt_build.MakeInt8Calibration``).

    Loads the set at ``request.calib_path``, refuses it when it was made under another preprocessing
    contract than the model's (a ModelError naming the differences), and feeds it through
    :func:`make_entropy_calibrator` with the request's calibration cache and optimisation batch.
    """
    if request.calib_path is None:
        raise ValueError("entropy_calibration needs a request with calib_path (the calibration set)")
    calib = load_calibration_set(request.calib_path)
    check_contract(calib, metadata.preprocess, metadata.input_size, str(request.onnx_path))
    calibrator = make_entropy_calibrator(calib, request.calibration_cache_path, batch_size=request.opt_batch)
    return Int8Calibration(calibrator, calib.provenance.sha256)
