"""One modality's half of the network: encoder, trace decoder and early spoof regressor (DESIGN §4).

The structure follows STDN's generator (Liu et al., ECCV 2020, "On Disentangling Spoof Trace for
Generic Face Anti-Spoofing", Fig. 3): a U-Net whose decoder produces the trace elements

* ``s``, ``b``: one scale and one bias per image channel, from the globally pooled deepest features;
* ``C``: low-frequency content at 1/4 resolution;
* ``T``: full-resolution texture;

composed as ``trace = s * I + b + up(C) + T`` and an early spoof regressor (ESR) that reads the
encoder's multi-scale features at 1/8 resolution. The encoder is driven stage by stage by
:mod:`train.model.network` because the fusion module sits between the stages.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from train.model.layers import ConvBnAct, upsample
from train.model.presets import ModelConfig

CONTENT_FACTOR = 4  # C lives at 1/4 of the input resolution (DESIGN §4, after STDN)


class TraceElements(NamedTuple):
    """The four trace elements of one modality; ``K`` is the image's channel count (3 or 1)."""

    scale: torch.Tensor  # [N,K,1,1]
    bias: torch.Tensor  # [N,K,1,1]
    content: torch.Tensor  # [N,K,H/4,W/4]
    texture: torch.Tensor  # [N,K,H,W]


def compose_trace(elements: TraceElements, image: torch.Tensor) -> torch.Tensor:
    """``trace = s * I + b + up(C) + T`` with ``I`` the modality's image ``[N,K,H,W]``.

    ``up`` is bilinear so that C stays a smooth, low-frequency layer at full resolution.
    """
    content = upsample(elements.content, CONTENT_FACTOR, mode="bilinear")
    return elements.scale * image + elements.bias + content + elements.texture


class StreamEncoder(nn.Module):
    """Stem at full resolution, then three stages that each end with a stride-2 conv.

    Outputs of ``stem`` and ``stages[i]`` are at 1, 1/2, 1/4 and 1/8 of the input; widths
    ``config.stem_channels`` and ``config.stage_channels``.
    """

    def __init__(self, in_channels: int, config: ModelConfig) -> None:
        super().__init__()
        self.stem = ConvBnAct(in_channels, config.stem_channels, activation=config.activation)
        stages = []
        previous = config.stem_channels
        for width in config.stage_channels:
            layers: list[nn.Module] = []
            for _ in range(config.convs_per_stage):
                layers.append(ConvBnAct(previous, width, activation=config.activation))
                previous = width
            layers.append(ConvBnAct(previous, width, stride=2, activation=config.activation))
            previous = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)


class TraceDecoder(nn.Module):
    """U-Net decoder from the (fused) encoder features ``f0..f3`` to :class:`TraceElements`."""

    def __init__(self, image_channels: int, config: ModelConfig) -> None:
        super().__init__()
        c0 = config.stem_channels
        c1, c2, c3 = config.stage_channels
        d_quarter, d_half, d_full = config.decoder_channels
        self.image_channels = image_channels
        self.global_head = nn.Linear(c3, 2 * image_channels)
        self.block_quarter = ConvBnAct(c3 + c2, d_quarter, activation=config.activation)
        self.content_head = nn.Conv2d(d_quarter, image_channels, 1)
        self.block_half = ConvBnAct(d_quarter + c1, d_half, activation=config.activation)
        self.block_full = ConvBnAct(d_half + c0, d_full, activation=config.activation)
        self.texture_head = nn.Conv2d(d_full, image_channels, 3, padding=1)

    def forward(self, f0: torch.Tensor, f1: torch.Tensor, f2: torch.Tensor, f3: torch.Tensor) -> TraceElements:
        k = self.image_channels
        scale_bias = self.global_head(f3.mean(dim=(2, 3)))
        scale = scale_bias[:, :k, None, None]
        bias = scale_bias[:, k:, None, None]
        quarter = self.block_quarter(torch.cat([upsample(f3, 2), f2], dim=1))
        content = self.content_head(quarter)
        half = self.block_half(torch.cat([upsample(quarter, 2), f1], dim=1))
        full = self.block_full(torch.cat([upsample(half, 2), f0], dim=1))
        texture = self.texture_head(full)
        return TraceElements(scale, bias, content, texture)


class EarlySpoofRegressor(nn.Module):
    """STDN's ESR: the three encoder stages pooled to 1/8 resolution, concatenated, regressed to a map.

    Split in two so that the cross-modal aggregation can read the ``hidden`` features of both
    streams while each stream's own ``head`` gives its per-stream map for training.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c1, c2, c3 = config.stage_channels
        self.pool_half = nn.AvgPool2d(4)  # 1/2 -> 1/8
        self.pool_quarter = nn.AvgPool2d(2)  # 1/4 -> 1/8
        self.body = ConvBnAct(c1 + c2 + c3, config.esr_channels, activation=config.activation)
        self.head = nn.Conv2d(config.esr_channels, 1, 3, padding=1)

    def hidden(self, f1: torch.Tensor, f2: torch.Tensor, f3: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([self.pool_half(f1), self.pool_quarter(f2), f3], dim=1))


class CrossModalAggregation(nn.Module):
    """Both streams' ESR features -> the fused spoof map ``M_f`` ``[N,1,H/8,W/8]`` (Li et al., AAAI 2023)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.body = ConvBnAct(2 * config.esr_channels, config.esr_channels, activation=config.activation)
        self.head = nn.Conv2d(config.esr_channels, 1, 3, padding=1)

    def forward(self, hidden_rgb: torch.Tensor, hidden_depth: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(torch.cat([hidden_rgb, hidden_depth], dim=1)))
