"""The INT8 calibration set: preprocessed face crops in one compressed file, with their provenance.

INT8 ranges are only as good as the data they were measured on. The set therefore records where it
came from (source spec, time) and, above all, the preprocessing contract its crops were made with;
quantising a model with a set made under another contract (another crop scale, depth window or input
size) is the classic INT8 failure — every range is measured on inputs the model never sees — and is
refused by :func:`check_contract`.

File layout (``numpy.savez_compressed``, loadable without pickle):
``rgb`` [N,3,S,S] float16|float32 in [0,1]; ``depth`` [N,1,S,S] same dtype; optional ``is_attack``
int8 [N] (1 attack, 0 live, -1 unknown) and ``pai`` unicode [N]; ``provenance`` a 0-d unicode array
holding JSON (source, created_utc, contract, sha256 of the arrays, count).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from edge.errors import DatasetError, ModelError

STORAGE_DTYPES = (np.float16, np.float32)
# float16 halves the file; its 11-bit mantissa resolves [0,1] inputs to better than 1e-3, finer than
# one 8-bit camera level (1/255), so calibration ranges are unaffected.
DEFAULT_STORAGE = np.float16


@dataclass(frozen=True)
class CalibItem:
    """One preprocessed face for calibration: ``rgb`` [3,S,S] and ``depth`` [1,S,S] float32 in [0,1]."""

    rgb: np.ndarray
    depth: np.ndarray
    is_attack: bool | None = None  # None when the source carries no ground truth
    pai: str = ""


@dataclass(frozen=True)
class Provenance:
    source: str
    created_utc: str
    contract: Mapping[str, str]
    sha256: str
    count: int
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return {"source": self.source, "created_utc": self.created_utc, "contract": dict(self.contract),
                "sha256": self.sha256, "count": self.count, "note": self.note}


@dataclass(frozen=True)
class CalibrationSet:
    rgb: np.ndarray
    depth: np.ndarray
    provenance: Provenance
    is_attack: np.ndarray | None = None
    pai: np.ndarray | None = None
    path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        check_arrays(self.rgb, self.depth, self.is_attack, self.pai)

    @property
    def count(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def input_size(self) -> int:
        return int(self.rgb.shape[-1])

    @property
    def sha256(self) -> str:
        """The arrays' content hash (``provenance.sha256``), which an INT8 model records."""
        return self.provenance.sha256

    def check_contract(self, model_contract: Mapping[str, str], input_size: int, model_name: str) -> None:
        """:func:`check_contract` on this set: what ``engines.quantize`` asks of its calibration data."""
        check_contract(self, model_contract, input_size, model_name)

    def batches(self, batch_size: int, limit: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Consecutive float32 batches (the last may be short), at most ``limit`` samples in all."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        end = self.count if limit is None else min(limit, self.count)
        for start in range(0, end, batch_size):
            stop = min(start + batch_size, end)
            yield (np.ascontiguousarray(self.rgb[start:stop], dtype=np.float32),
                   np.ascontiguousarray(self.depth[start:stop], dtype=np.float32))


def check_arrays(rgb: np.ndarray, depth: np.ndarray, is_attack: np.ndarray | None, pai: np.ndarray | None) -> None:
    if rgb.dtype not in STORAGE_DTYPES or rgb.ndim != 4 or rgb.shape[1] != 3 or rgb.shape[2] != rgb.shape[3]:
        raise ValueError(f"CalibrationSet.rgb must be [N,3,S,S] float16/float32, got {rgb.dtype} {rgb.shape}")
    if depth.dtype != rgb.dtype or depth.shape != (rgb.shape[0], 1) + rgb.shape[2:]:
        raise ValueError(f"CalibrationSet.depth must be [N,1,S,S] {rgb.dtype} matching rgb, got "
                         f"{depth.dtype} {depth.shape}")
    if rgb.shape[0] == 0:
        raise ValueError("CalibrationSet holds no samples")
    for name, value in (("is_attack", is_attack), ("pai", pai)):
        if value is not None and value.shape != (rgb.shape[0],):
            raise ValueError(f"CalibrationSet.{name} must have shape [{rgb.shape[0]}], got {value.shape}")


def arrays_sha256(rgb: np.ndarray, depth: np.ndarray, is_attack: np.ndarray | None, pai: np.ndarray | None) -> str:
    """Content hash over dtype, shape and bytes of every array, independent of the file's compression."""
    digest = hashlib.sha256()
    for name, array in (("rgb", rgb), ("depth", depth), ("is_attack", is_attack), ("pai", pai)):
        if array is None:
            continue
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def build_calibration_set(items: Iterable[CalibItem], count: int, source: str, contract: Mapping[str, str],
                          storage: type = DEFAULT_STORAGE, note: str = "",
                          progress: Callable[[int], None] | None = None) -> CalibrationSet:
    """Take the first ``count`` items; fewer is a DatasetError (a short set calibrates badly).

    Labels are kept only if every item has one. ``progress`` is called with the number taken so far.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if storage not in STORAGE_DTYPES:
        raise ValueError(f"storage must be numpy.float16 or numpy.float32, got {storage}")
    rgb, depth, labels, pai = [], [], [], []
    for item in items:
        rgb.append(np.asarray(item.rgb, dtype=storage))
        depth.append(np.asarray(item.depth, dtype=storage))
        labels.append(-1 if item.is_attack is None else int(item.is_attack))
        pai.append(item.pai)
        if progress is not None:
            progress(len(rgb))
        if len(rgb) == count:
            break
    if len(rgb) < count:
        raise DatasetError(f"the source '{source}' gave {len(rgb)} usable faces, {count} were asked for; "
                           f"use a longer recording, a larger dataset or a smaller --count")
    rgb_a, depth_a = np.stack(rgb), np.stack(depth)
    labels_a = np.asarray(labels, dtype=np.int8) if min(labels) >= 0 else None
    pai_a = np.asarray(pai, dtype=np.str_) if labels_a is not None else None
    provenance = Provenance(source, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            MappingProxyType({str(k): str(v) for k, v in contract.items()}),
                            arrays_sha256(rgb_a, depth_a, labels_a, pai_a), len(rgb), note)
    return CalibrationSet(rgb_a, depth_a, provenance, labels_a, pai_a)


def save_calibration_set(calib: CalibrationSet, path: str | Path) -> Path:
    out = Path(path)
    if out.suffix != ".npz":
        raise ValueError(f"calibration set path must end in .npz, got '{out}'")
    out.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"rgb": calib.rgb, "depth": calib.depth,
              "provenance": np.asarray(json.dumps(calib.provenance.to_json(), sort_keys=True))}
    if calib.is_attack is not None:
        arrays["is_attack"] = calib.is_attack
    if calib.pai is not None:
        arrays["pai"] = calib.pai
    np.savez_compressed(out, **arrays)
    return out


def load_calibration_set(path: str | Path) -> CalibrationSet:
    """Read and verify a set; a missing, unreadable or edited file is a one-line DatasetError."""
    src = Path(path)
    if not src.is_file():
        raise DatasetError(f"calibration set '{src}' does not exist; make one with: edgefas calibrate collect")
    try:
        with np.load(src, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(str(arrays.pop("provenance")))
        provenance = Provenance(str(meta["source"]), str(meta["created_utc"]),
                                MappingProxyType(dict(meta["contract"])), str(meta["sha256"]),
                                int(meta["count"]), str(meta.get("note", "")))
        calib = CalibrationSet(arrays["rgb"], arrays["depth"], provenance, arrays.get("is_attack"),
                               arrays.get("pai"), path=src)
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(f"'{src}' is not a readable calibration set ({first}); "
                           f"make a new one with: edgefas calibrate collect") from None
    if arrays_sha256(calib.rgb, calib.depth, calib.is_attack, calib.pai) != provenance.sha256:
        raise DatasetError(f"calibration set '{src}' does not match its recorded sha256 (edited or damaged); "
                           f"make a new one with: edgefas calibrate collect")
    return calib


def check_contract(calib: CalibrationSet, model_contract: Mapping[str, str], input_size: int, model_name: str) -> None:
    """Refuse a set whose crops were made differently from what the model expects (ModelError)."""
    from engines.metadata import contract_differences

    diffs = contract_differences(model_contract, calib.provenance.contract)
    if calib.input_size != input_size:
        diffs.insert(0, f"input side: model={input_size} set={calib.input_size}")
    if diffs:
        raise ModelError(f"calibration set '{calib.path or calib.provenance.source}' was made under another "
                         f"preprocessing contract than {model_name} ({'; '.join(diffs)}); collect a new set "
                         f"with: edgefas calibrate collect --model {model_name}")
