"""The two-stream spoof-trace disentanglement network and its output contracts (DESIGN §4, §5).

``forward(rgb, depth)`` is the inference graph that is exported to ONNX: inputs ``rgb`` [N,3,S,S]
float in [0, 1], RGB order, and ``depth`` [N,1,S,S] in [0, 1] (face-relative, nearer = brighter,
0 = no data); outputs :class:`ModelOutputs`. ``forward_train`` runs the same layers and returns
everything the losses need (:class:`TrainOutputs`). A network with ``config.exposure_mean`` first
levels each crop's colour (``layers.ExposureLevel``); its traces are then traces of the levelled crop.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from train.model.fusion import CrossModalFusion
from train.model.generator import (
    CrossModalAggregation,
    EarlySpoofRegressor,
    StreamEncoder,
    TraceDecoder,
    TraceElements,
    compose_trace,
)
from train.model.guard import GUARD_OFFSET_OFF, DepthGuard
from train.model.layers import ExposureLevel, RgbYuvInput
from train.model.presets import ModelConfig

MODALITIES: tuple[str, ...] = ("rgb", "depth")


class ModelOutputs(NamedTuple):
    """Inference outputs; ``score`` is higher for a more likely attack (DESIGN §4)."""

    score: torch.Tensor  # [N]
    spoof_map: torch.Tensor  # [N,1,S/8,S/8], the fused map M_f
    trace_rgb: torch.Tensor  # [N,3,S,S]
    trace_depth: torch.Tensor  # [N,1,S,S]


class ScoreOutputs(NamedTuple):
    """What a door needs: the score and the fused map (the ``score`` export variant)."""

    score: torch.Tensor  # [N]
    spoof_map: torch.Tensor  # [N,1,S/8,S/8]


class TrainOutputs(NamedTuple):
    """Everything training needs from one forward pass; tensors keep their graph."""

    score: torch.Tensor  # [N]
    spoof_map: torch.Tensor  # [N,1,S/8,S/8] fused map M_f
    trace_rgb: torch.Tensor  # [N,3,S,S]
    trace_depth: torch.Tensor  # [N,1,S,S]
    elements_rgb: TraceElements
    elements_depth: TraceElements
    live_rgb: torch.Tensor  # rgb - trace_rgb (rgb at the network's exposure level, when it has one)
    live_depth: torch.Tensor  # depth - trace_depth
    esr_rgb: torch.Tensor  # [N,1,S/8,S/8] per-stream ESR map
    esr_depth: torch.Tensor  # [N,1,S/8,S/8]
    guard: torch.Tensor | None = None  # [N,1,S/16,S/16] depth guard logits (None without a guard)


class SpoofTraceNet(nn.Module):
    """Two STDN-style generators (RGB+YUV, depth) fused after every encoder stage.

    Buffers stored with the weights: ``alpha`` (trace weight in the score, set by calibration) and
    ``depth_enabled`` (1 for RGB-D, 0 for the RGB-only ablation: the depth input and the depth
    trace are multiplied by it, so the graph, its inputs and its cost stay identical), and with
    ``config.depth_guard`` the guard's ``guard_offset`` (set by calibration, :meth:`set_guard_offset`).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.exposure = ExposureLevel(config.exposure_mean, config.exposure_contrast)
        self.rgb_input = RgbYuvInput()
        self.encoder_rgb = StreamEncoder(6, config)
        self.encoder_depth = StreamEncoder(1, config)
        self.fusions = nn.ModuleList(
            CrossModalFusion(width, width, config.fusion_reduction, config.fusion_spatial,
                             side=config.input_size_px >> (stage + 1))  # stage outputs: 1/2, 1/4, 1/8
            for stage, width in enumerate(config.stage_channels)
        )
        self.decoder_rgb = TraceDecoder(3, config)
        self.decoder_depth = TraceDecoder(1, config)
        self.esr_rgb = EarlySpoofRegressor(config)
        self.esr_depth = EarlySpoofRegressor(config)
        self.aggregation = CrossModalAggregation(config)
        self.register_buffer("alpha", torch.tensor(float(config.alpha_init)))
        self.register_buffer("depth_enabled", torch.tensor(1.0))
        self.guard = DepthGuard() if config.depth_guard else None
        if self.guard is not None:
            self.register_buffer("guard_offset", torch.tensor(GUARD_OFFSET_OFF))

    # -- configuration -------------------------------------------------------------------------
    def set_alpha(self, alpha: float) -> None:
        """Trace weight of the score, chosen on dev data (DESIGN §4); stored in checkpoints."""
        if not alpha >= 0.0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha.fill_(float(alpha))

    def set_modalities(self, modalities: tuple[str, ...]) -> None:
        """``("rgb", "depth")`` or ``("rgb",)``; the RGB-only ablation zeroes the depth stream."""
        if tuple(modalities) not in (("rgb", "depth"), ("rgb",)):
            raise ValueError(f"modalities must be ('rgb', 'depth') or ('rgb',), got {modalities}")
        self.depth_enabled.fill_(1.0 if "depth" in modalities else 0.0)

    def set_guard_offset(self, offset: float) -> None:
        """The depth guard's place in the score: ``max(score, guard + offset)`` (train.model.guard)."""
        if self.guard is None:
            raise ValueError("this network has no depth guard")
        self.guard_offset.fill_(float(offset))

    def guard_scores(self, depth: torch.Tensor) -> torch.Tensor:
        """The depth guard's own score ``[N]`` in [0, 1] (what calibration places against the threshold)."""
        if self.guard is None:
            raise ValueError("this network has no depth guard")
        return DepthGuard.score(self.guard(depth * self.depth_enabled))

    def _guarded(self, score: torch.Tensor, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``score``, raised to the depth guard's offset score where that is higher; and the guard's logits."""
        if self.guard is None:
            return score, None
        logits = self.guard(depth)
        return torch.maximum(score, DepthGuard.score(logits) + self.guard_offset), logits

    @property
    def modalities(self) -> tuple[str, ...]:
        return MODALITIES if float(self.depth_enabled) > 0.5 else ("rgb",)

    # -- graph ---------------------------------------------------------------------------------
    def _check_inputs(self, rgb: torch.Tensor, depth: torch.Tensor) -> None:
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return
        size = self.config.input_size_px
        if rgb.ndim != 4 or tuple(rgb.shape[1:]) != (3, size, size):
            raise ValueError(f"rgb must be [N,3,{size},{size}], got {tuple(rgb.shape)}")
        if depth.ndim != 4 or tuple(depth.shape) != (rgb.shape[0], 1, size, size):
            raise ValueError(f"depth must be [N,1,{size},{size}] matching rgb, got {tuple(depth.shape)}")

    def _encode(self, rgb: torch.Tensor, depth: torch.Tensor):
        """Both encoders, fused after every stage: the masked depth and each stream's features f0..f3."""
        depth = depth * self.depth_enabled
        f_rgb = self.encoder_rgb.stem(self.rgb_input(rgb))
        f_depth = self.encoder_depth.stem(depth)
        feats_rgb, feats_depth = [f_rgb], [f_depth]
        for stage_rgb, stage_depth, fusion in zip(self.encoder_rgb.stages, self.encoder_depth.stages, self.fusions):
            f_rgb, f_depth = fusion(stage_rgb(f_rgb), stage_depth(f_depth))
            feats_rgb.append(f_rgb)
            feats_depth.append(f_depth)
        return depth, feats_rgb, feats_depth

    def _fused_map(self, feats_rgb: list[torch.Tensor], feats_depth: list[torch.Tensor]):
        """Both streams' ESR features and the fused spoof map M_f from the encoder features."""
        hidden_rgb = self.esr_rgb.hidden(*feats_rgb[1:])
        hidden_depth = self.esr_depth.hidden(*feats_depth[1:])
        return hidden_rgb, hidden_depth, self.aggregation(hidden_rgb, hidden_depth)

    def _streams(self, rgb: torch.Tensor, depth: torch.Tensor):
        self._check_inputs(rgb, depth)
        rgb = self.exposure(rgb)
        depth, feats_rgb, feats_depth = self._encode(rgb, depth)
        elements_rgb = self.decoder_rgb(*feats_rgb)
        elements_depth = self.decoder_depth(*feats_depth)
        trace_rgb = compose_trace(elements_rgb, rgb)
        trace_depth = compose_trace(elements_depth, depth) * self.depth_enabled
        hidden_rgb, hidden_depth, fused = self._fused_map(feats_rgb, feats_depth)
        trace_energy = trace_rgb.abs().mean(dim=(1, 2, 3)) + trace_depth.abs().mean(dim=(1, 2, 3))
        score, guard = self._guarded(fused.mean(dim=(1, 2, 3)) + self.alpha * trace_energy, depth)
        return depth, elements_rgb, elements_depth, trace_rgb, trace_depth, hidden_rgb, hidden_depth, fused, score, guard

    @property
    def score_needs_traces(self) -> bool:
        """False while alpha is 0: the score is then the fused map's mean and the decoders add nothing to it."""
        return float(self.alpha) != 0.0

    def forward_fused(self, rgb: torch.Tensor, depth: torch.Tensor) -> ScoreOutputs:
        """The fused map and its mean, without the trace decoders: the score whenever alpha is 0.

        With alpha = 0 (the calibrated value of the bundled model) the decoders are about two thirds
        of the inference cost and change nothing the door decides, so the ``score`` export and the
        eager runner call this instead of ``forward`` after checking :attr:`score_needs_traces`
        (outside tracing, so an export has no decoder in its graph at all).
        """
        self._check_inputs(rgb, depth)
        depth, feats_rgb, feats_depth = self._encode(self.exposure(rgb), depth)
        _, _, fused = self._fused_map(feats_rgb, feats_depth)
        score, _ = self._guarded(fused.mean(dim=(1, 2, 3)), depth)
        return ScoreOutputs(score, fused)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> ModelOutputs:
        _, _, _, trace_rgb, trace_depth, _, _, fused, score, _ = self._streams(rgb, depth)
        return ModelOutputs(score, fused, trace_rgb, trace_depth)

    def forward_train(self, rgb: torch.Tensor, depth: torch.Tensor) -> TrainOutputs:
        depth, el_rgb, el_depth, trace_rgb, trace_depth, h_rgb, h_depth, fused, score, guard = self._streams(rgb, depth)
        return TrainOutputs(
            score=score,
            spoof_map=fused,
            trace_rgb=trace_rgb,
            trace_depth=trace_depth,
            elements_rgb=el_rgb,
            elements_depth=el_depth,
            live_rgb=rgb - trace_rgb,
            live_depth=depth - trace_depth,
            esr_rgb=self.esr_rgb.head(h_rgb),
            esr_depth=self.esr_depth.head(h_depth),
            guard=guard,
        )


class TrainingView(nn.Module):
    """``forward`` = ``model.forward_train``: what DistributedDataParallel wraps.

    DDP synchronises gradients only for work done through its own ``forward``; this view shares
    the model's parameters and routes the training pass through it.
    """

    def __init__(self, model: SpoofTraceNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> TrainOutputs:
        return self.model.forward_train(rgb, depth)


def build_model(config: ModelConfig) -> SpoofTraceNet:
    """A freshly initialised network for ``config`` (seed torch first for reproducible weights)."""
    if not isinstance(config, ModelConfig):
        raise TypeError(f"build_model needs a ModelConfig, got {type(config).__name__}")
    return SpoofTraceNet(config)
