"""Checkpoints: the weights plus everything needed to rebuild, resume and ship a model.

A checkpoint is one ``torch.save`` file of plain types (dicts, lists, strings, numbers, tensors),
loaded with ``torch.load(weights_only=True)`` so that opening a file from elsewhere cannot run code.
It stores the model config (so the network is rebuilt from the file alone), the train config, the
step, the preprocessing contract (``PreprocessConfig.to_metadata()``, DESIGN §2: the artifact
carries its preprocessing), the score's ``alpha`` (a model buffer) and the decision threshold, and
optionally the trainer's optimiser and RNG state for resuming. Writes are atomic (temporary file,
then rename), so a crash or a diverged step never leaves a half-written or poisoned "last good"
checkpoint behind. :func:`export_checkpoint` ships one: the ONNX file through
:func:`engines.export.export_module`, with the metadata of :func:`checkpoint_metadata`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from edge.digest import file_sha256
from edge.errors import ModelError
from engines.export import ExportResult, export_module
from engines.metadata import ModelMetadata
from train.model.network import SpoofTraceNet, build_model
from train.model.objective import TrainConfig
from train.model.presets import ModelConfig, get_preset

CHECKPOINT_FORMAT = "edgefas-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class CheckpointExtra:
    """Optional parts of a checkpoint: preprocessing contract, threshold, trainer state for resume."""

    preprocess: Mapping[str, str] = field(default_factory=dict)
    threshold: float = math.nan  # NaN until `edgefas calibrate` chooses one
    trainer_state: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about itself (everything but the weights)."""

    preset: str
    model_config: ModelConfig
    train_config: TrainConfig
    step: int
    preprocess: dict[str, str]
    alpha: float
    threshold: float
    modalities: tuple[str, ...]


def save_checkpoint(
    path: str | Path,
    model: SpoofTraceNet,
    model_config: ModelConfig,
    train_config: TrainConfig,
    step: int,
    extra: CheckpointExtra | None = None,
) -> Path:
    """Write ``model`` and its metadata to ``path`` atomically; returns the path written."""
    if not isinstance(model, SpoofTraceNet):
        raise TypeError(f"save_checkpoint needs a SpoofTraceNet, got {type(model).__name__}")
    extra = extra or CheckpointExtra()
    bad = {k: v for k, v in extra.preprocess.items() if not isinstance(k, str) or not isinstance(v, str)}
    if bad:
        raise TypeError(f"CheckpointExtra.preprocess must map str to str, got {bad}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "preset": model_config.name,
        "model_config": model_config.to_dict(),
        "train_config": train_config.to_dict(),
        "step": int(step),
        "preprocess": dict(extra.preprocess),
        "threshold": float(extra.threshold),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "trainer_state": dict(extra.trainer_state) if extra.trainer_state is not None else None,
    }
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelError(f"no checkpoint at {path}; pass the .pt file written by 'edgefas train'")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a foreign or truncated file
        raise ModelError(f"{path} is not a readable checkpoint ({type(exc).__name__}); re-copy it or retrain") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{path} is not an edgefas checkpoint; pass the .pt file written by 'edgefas train'")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ModelError(f"{path} has checkpoint version {payload.get('version')}, this edgefas reads {CHECKPOINT_VERSION}; use a matching edgefas")
    return payload


def load_checkpoint(path: str | Path, expect: str | ModelConfig | None = None) -> tuple[SpoofTraceNet, CheckpointInfo]:
    """Rebuild the model stored at ``path`` (eval mode, CPU) and describe it.

    ``expect`` (a preset name or config) refuses a checkpoint of another architecture with a
    ModelError instead of failing later on mismatched weights.
    """
    path = Path(path)
    payload = _read(path)
    config = ModelConfig.from_dict(payload["model_config"])
    if expect is not None:
        wanted = get_preset(expect) if isinstance(expect, str) else expect
        if wanted != config:
            differ = ", ".join(f"{name} {getattr(config, name)} not {getattr(wanted, name)}"
                               for name in (f.name for f in fields(config))
                               if getattr(config, name) != getattr(wanted, name))
            raise ModelError(
                f"{path} holds a '{config.name}' model ({config.input_size_px}px) but '{wanted.name}' "
                f"({wanted.input_size_px}px) was asked for ({differ}); use preset '{config.name}' or another checkpoint"
            )
    model = build_model(config)
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelError(f"{path}: weights do not fit the '{config.name}' architecture ({first}); the file is damaged or from another edgefas") from None
    model.eval()
    info = CheckpointInfo(
        preset=str(payload["preset"]),
        model_config=config,
        train_config=TrainConfig.from_dict(payload["train_config"]),
        step=int(payload["step"]),
        preprocess={str(k): str(v) for k, v in payload["preprocess"].items()},
        alpha=float(model.alpha),
        threshold=float(payload["threshold"]),
        modalities=model.modalities,
    )
    return model, info


def load_trainer_state(path: str | Path) -> Mapping[str, Any] | None:
    """The optimiser/RNG state saved for resuming, or None for an export-only checkpoint."""
    return _read(Path(path)).get("trainer_state")


def checkpoint_metadata(info: CheckpointInfo, checkpoint_sha256: str) -> ModelMetadata:
    """The ONNX metadata of a checkpoint (threshold NaN = not chosen yet)."""
    threshold = float(info.threshold)
    chosen = math.isfinite(threshold)
    return ModelMetadata(
        preprocess={str(k): str(v) for k, v in dict(info.preprocess).items()},
        input_size=int(info.model_config.input_size_px),
        preset=str(info.preset),
        threshold=threshold if chosen else None,
        threshold_target="checkpoint" if chosen else "",
        alpha=float(info.alpha),
        model_sha256=checkpoint_sha256,
        exposure_mean=float(info.model_config.exposure_mean),
        exposure_contrast=float(info.model_config.exposure_contrast),
    )


def export_checkpoint(checkpoint_path: str | Path, out_path: str | Path, variant: str = "score") -> ExportResult:
    """Export a training checkpoint to ONNX with its preprocessing contract, alpha, threshold and preset."""
    path = Path(checkpoint_path)
    if not path.is_file():
        raise ModelError(f"checkpoint '{path}' does not exist; train one with: edgefas train")
    model, info = load_checkpoint(path)
    return export_module(model, out_path, checkpoint_metadata(info, file_sha256(path)), variant)
