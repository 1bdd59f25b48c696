"""The preprocessing contract and operating point stored inside an ONNX file (DESIGN §2, §5).

A model trained on crops made one way and served crops made another way is the most common way
these systems fail in the field, so the artifact carries its own contract as ONNX ``metadata_props``
(string key/value pairs that every ONNX tool preserves and ONNX Runtime exposes through
``session.get_modelmeta().custom_metadata_map``). The runtime reads it from there and never from a
second copy in a config file.

Keys (all prefixed ``edgefas.``):

- ``edgefas.preprocess.*`` — the dict from ``PreprocessConfig.to_metadata()`` (whose keys start with
  ``preprocess.``), stored opaquely as ``"edgefas." + key`` and returned with the same keys;
- ``edgefas.input_size``, ``edgefas.channel_order`` (``RGB``), ``edgefas.score_polarity``
  (``higher_is_attack``), ``edgefas.preset``, ``edgefas.variant``, ``edgefas.precision``;
- ``edgefas.calibration_sha256`` (INT8 models: the calibration set's content hash);
- ``edgefas.threshold`` (+ ``edgefas.threshold.target``, ``edgefas.threshold.metrics`` JSON),
  ``edgefas.alpha``, ``edgefas.model_sha256`` (of the checkpoint the file came from);
- ``edgefas.exposure_mean`` (only in a model that levels each crop's brightness itself) and
  ``edgefas.exposure_contrast`` (only in one that levels its contrast too).

Writing needs the ``onnx`` package; reading needs only ONNX Runtime.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from edge.errors import ModelError, import_optional
from edge.face.preprocess import METADATA_PREFIX
from engines.exposure import exposure_level_problem
from engines.ort_session import CPU, load_session
from engines.outputs import SCORE_POLARITY

PREFIX = "edgefas."
CONTRACT_PREFIX = METADATA_PREFIX  # keys of PreprocessConfig.to_metadata() (edge/face/preprocess.py)
PREPROCESS_PREFIX = PREFIX + CONTRACT_PREFIX

# The score is the mean of a sigmoid spoof map, in [0, 1], plus alpha times the trace energy: the mean
# |trace| of the RGB stream plus that of the depth stream (train/model/network.py). A spoof trace is what
# turns the live face into the input, both images in [0, 1] (DESIGN §4), so each mean |trace| is at most 1
# and the score lies in [0, 1 + TRACE_ENERGY_MAX * alpha]. A stored threshold above that range is never
# reached (every attack would pass as live), one below 0 makes every face an attack: both are a damaged or
# hand-edited file, refused when the model is opened.
TRACE_ENERGY_MAX = 2.0


@dataclass(frozen=True)
class ModelMetadata:
    """Everything a runtime needs to feed a model and read its score."""

    preprocess: Mapping[str, str] = field(default_factory=dict)
    input_size: int = 0
    preset: str = ""
    variant: str = "score"
    precision: str = "fp32"
    threshold: float | None = None
    threshold_target: str = ""
    threshold_metrics: str = ""  # JSON of the PadReport that justifies the threshold
    alpha: float | None = None
    model_sha256: str = ""
    calibration_sha256: str = ""  # content hash of the INT8 calibration set (int8 models only)
    # INT8 weight width: 7 (the cpu flavour's reduce_range) or 8; None for fp32 files and INT8 files made
    # before it was recorded (engines.ort_runner warns about 8-bit weights on x86 CPUs without VNNI)
    int8_weight_bits: int | None = None
    score_polarity: str = SCORE_POLARITY
    channel_order: str = "RGB"
    # > 0: the graph scales each crop's colour to this mean brightness itself (ModelConfig.exposure_mean);
    # written only then, so files without it read as before
    exposure_mean: float = 0.0
    # > 0: the graph also scales each levelled crop's contrast to this (ModelConfig.exposure_contrast)
    exposure_contrast: float = 0.0

    def to_props(self) -> dict[str, str]:
        for key in self.preprocess:
            if not key.startswith(CONTRACT_PREFIX):
                raise ValueError(f"ModelMetadata.preprocess key '{key}' must start with '{CONTRACT_PREFIX}' "
                                 f"(PreprocessConfig.to_metadata() keys)")
        props = {PREFIX + k: str(v) for k, v in self.preprocess.items()}
        props.update({
            "edgefas.input_size": str(self.input_size),
            "edgefas.preset": self.preset,
            "edgefas.variant": self.variant,
            "edgefas.precision": self.precision,
            "edgefas.score_polarity": self.score_polarity,
            "edgefas.channel_order": self.channel_order,
            "edgefas.model_sha256": self.model_sha256,
        })
        if self.calibration_sha256:
            props["edgefas.calibration_sha256"] = self.calibration_sha256
        if self.int8_weight_bits is not None:
            props["edgefas.int8.weight_bits"] = str(int(self.int8_weight_bits))
        if self.threshold is not None:
            props["edgefas.threshold"] = repr(float(self.threshold))
            props["edgefas.threshold.target"] = self.threshold_target
            props["edgefas.threshold.metrics"] = self.threshold_metrics
        if self.alpha is not None:
            props["edgefas.alpha"] = repr(float(self.alpha))
        if self.exposure_mean:
            props["edgefas.exposure_mean"] = repr(float(self.exposure_mean))
        if self.exposure_contrast:
            props["edgefas.exposure_contrast"] = repr(float(self.exposure_contrast))
        return props

    def with_threshold(self, threshold: float, target: str, metrics: Mapping[str, object]) -> ModelMetadata:
        return replace(self, threshold=float(threshold), threshold_target=target,
                       threshold_metrics=json.dumps(dict(metrics), sort_keys=True))


def metadata_from_props(props: Mapping[str, str], source: str = "model", check_threshold: bool = True) -> ModelMetadata:
    """Parse ``metadata_props``; a file without the edgefas keys is a ModelError naming ``source``."""
    if "edgefas.input_size" not in props:
        raise ModelError(f"{source} carries no edgefas metadata (no preprocessing contract); "
                         f"export it with: edgefas export")
    polarity = props.get("edgefas.score_polarity", SCORE_POLARITY)
    if polarity != SCORE_POLARITY:
        raise ModelError(f"{source} has score polarity '{polarity}' but edgefas expects "
                         f"'{SCORE_POLARITY}'; re-export it with: edgefas export")
    try:
        metadata = ModelMetadata(
            preprocess=MappingProxyType({k[len(PREFIX):]: v for k, v in props.items()
                                         if k.startswith(PREPROCESS_PREFIX)}),
            input_size=int(props["edgefas.input_size"]),
            preset=props.get("edgefas.preset", ""),
            variant=props.get("edgefas.variant", "score"),
            precision=props.get("edgefas.precision", "fp32"),
            threshold=float(props["edgefas.threshold"]) if props.get("edgefas.threshold") else None,
            threshold_target=props.get("edgefas.threshold.target", ""),
            threshold_metrics=props.get("edgefas.threshold.metrics", ""),
            alpha=float(props["edgefas.alpha"]) if props.get("edgefas.alpha") else None,
            model_sha256=props.get("edgefas.model_sha256", ""),
            calibration_sha256=props.get("edgefas.calibration_sha256", ""),
            int8_weight_bits=int(props["edgefas.int8.weight_bits"]) if props.get("edgefas.int8.weight_bits") else None,
            score_polarity=polarity,
            channel_order=props.get("edgefas.channel_order", "RGB"),
            exposure_mean=float(props.get("edgefas.exposure_mean") or 0.0),
            exposure_contrast=float(props.get("edgefas.exposure_contrast") or 0.0),
        )
    except ValueError as exc:
        raise ModelError(f"{source} has unreadable edgefas metadata ({exc}); re-export it with: edgefas export") \
            from None
    problem = exposure_level_problem(metadata.exposure_mean, metadata.exposure_contrast)
    if problem:
        raise ModelError(f"{source} has edgefas.{problem}; re-export it with: edgefas export")
    check_operating_point(metadata, source, check_threshold)
    return metadata


def check_operating_point(metadata: ModelMetadata, source: str = "model", check_threshold: bool = True) -> None:
    """Refuse an alpha that is not a finite number >= 0 and a threshold outside the score's range
    (see :data:`TRACE_ENERGY_MAX`) with one line naming ``source``.

    ``check_threshold`` False leaves the stored threshold alone: for ``calibrate threshold``, which
    replaces it (the refusal tells the user to run that command, so it must not refuse in turn).
    """
    alpha = metadata.alpha
    if alpha is not None and not (math.isfinite(alpha) and alpha >= 0.0):
        raise ModelError(f"{source} has edgefas.alpha {alpha} but the trace weight must be a finite number >= 0; "
                         f"re-export it with: edgefas export")
    if metadata.threshold is None or not check_threshold:
        return
    high = 1.0 + TRACE_ENERGY_MAX * (alpha or 0.0)
    if not (math.isfinite(metadata.threshold) and 0.0 <= metadata.threshold <= high):
        raise ModelError(f"{source} has decision threshold {metadata.threshold} outside its score range "
                         f"[0, {high:g}], so it would decide every face the same way; choose a new one with: "
                         "edgefas calibrate threshold --model MODEL --dataset SPEC")


def load_onnx(path: Path):  # -> onnx.ModelProto
    """Load an ONNX file with the onnx package; a corrupt file is a one-line ModelError naming it."""
    onnx = import_optional("onnx", "train", "editing ONNX model metadata")
    if not Path(path).is_file():
        raise ModelError(f"ONNX file '{path}' does not exist; export one with: edgefas export")
    from google.protobuf.message import DecodeError  # onnx depends on protobuf

    try:
        return onnx.load(str(path))
    except (DecodeError, ValueError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"'{path}' is not a readable ONNX file ({first}); re-export it with: edgefas export") \
            from None


def read_metadata(path: str | Path, check_threshold: bool = True) -> ModelMetadata:
    """Read through ONNX Runtime (a base dependency), so a Jetson without the onnx package can too.

    ``check_threshold`` as in :func:`check_operating_point`.
    """
    if not Path(path).is_file():
        raise ModelError(f"ONNX file '{path}' does not exist; export one with: edgefas export")
    props = load_session(Path(path), [CPU]).get_modelmeta().custom_metadata_map
    return metadata_from_props(props, f"'{path}'", check_threshold)


def set_metadata(model, metadata: ModelMetadata) -> None:
    """Replace every ``edgefas.*`` entry of an in-memory ``onnx.ModelProto``; other keys are kept."""
    kept = [(p.key, p.value) for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    for key, value in kept + sorted(metadata.to_props().items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def write_metadata(path: str | Path, metadata: ModelMetadata, out_path: str | Path | None = None) -> Path:
    """Store ``metadata`` in the ONNX file at ``path`` (in place, or into ``out_path``)."""
    onnx = import_optional("onnx", "train", "editing ONNX model metadata")
    model = load_onnx(Path(path))
    set_metadata(model, metadata)
    out = Path(out_path or path)
    onnx.save(model, str(out))
    return out


def contract_differences(expected: Mapping[str, str], actual: Mapping[str, str],
                         expected_name: str = "model", actual_name: str = "set") -> list[str]:
    """Keys whose values differ between two preprocessing contracts, with both values, sorted."""
    keys = sorted(set(expected) | set(actual))
    return [f"{k}: {expected_name}={expected.get(k, '<absent>')} {actual_name}={actual.get(k, '<absent>')}"
            for k in keys if expected.get(k) != actual.get(k)]
