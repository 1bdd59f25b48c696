"""Training-only critics: multi-scale PatchGAN discriminators with two heads per modality (DESIGN §4).

Per modality one :class:`MultiScaleDiscriminator`; each scale is a PatchGAN trunk (Isola et al.,
CVPR 2017, "Image-to-Image Translation with Conditional Adversarial Networks": 4x4 stride-2 convs,
LeakyReLU 0.2) seen at 1, 1/2 and 1/4 of the input (pix2pixHD's three scales, Wang et al., CVPR
2018). Two heads share the trunk, as in STDN's two adversarial tasks (Liu et al., ECCV 2020):

* ``live`` head: real live faces vs the generator's reconstructed live faces;
* ``spoof`` head: real spoof faces vs synthesised spoofs (a spoof's trace on a live face).

InstanceNorm instead of BatchNorm: no running statistics to keep in step across DDP ranks, and
real and fake batches are normalised independently of each other's statistics.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from train.model.presets import ModelConfig

LEAKY_SLOPE = 0.2  # pix2pix / DCGAN discriminator slope (Radford et al., ICLR 2016)


class PatchTrunk(nn.Sequential):
    """Three 4x4 stride-2 convs (width c, 2c, 4c) and one 3x3: a patch critic at 1/8 resolution."""

    def __init__(self, in_channels: int, width: int) -> None:
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(LEAKY_SLOPE)]
        previous = width
        for factor in (2, 4):
            layers += [
                nn.Conv2d(previous, width * factor, 4, stride=2, padding=1),
                nn.InstanceNorm2d(width * factor),
                nn.LeakyReLU(LEAKY_SLOPE),
            ]
            previous = width * factor
        layers += [nn.Conv2d(previous, previous, 3, padding=1), nn.InstanceNorm2d(previous), nn.LeakyReLU(LEAKY_SLOPE)]
        super().__init__(*layers)


class MultiScaleDiscriminator(nn.Module):
    """``forward(live_inputs, spoof_inputs)`` -> per-scale patch logits of each head.

    Both inputs are ``[N,K,S,S]`` images of one modality (K = 3 or 1); the outputs are lists (one per
    scale, finest first) of ``[N,1,S/(8*2^i),S/(8*2^i)]``.
    """

    def __init__(self, image_channels: int, config: ModelConfig) -> None:
        super().__init__()
        width = config.discriminator_channels
        self.trunks = nn.ModuleList(PatchTrunk(image_channels, width) for _ in range(config.discriminator_scales))
        self.live_heads = nn.ModuleList(nn.Conv2d(4 * width, 1, 3, padding=1) for _ in self.trunks)
        self.spoof_heads = nn.ModuleList(nn.Conv2d(4 * width, 1, 3, padding=1) for _ in self.trunks)

    def forward(self, live_inputs: torch.Tensor, spoof_inputs: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        n = live_inputs.shape[0]
        x = torch.cat([live_inputs, spoof_inputs], dim=0)
        live_maps: list[torch.Tensor] = []
        spoof_maps: list[torch.Tensor] = []
        for scale, (trunk, live_head, spoof_head) in enumerate(zip(self.trunks, self.live_heads, self.spoof_heads)):
            if scale:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            features = trunk(x)
            live_maps.append(live_head(features[:n]))
            spoof_maps.append(spoof_head(features[n:]))
        return live_maps, spoof_maps


class CriticOutputs(NamedTuple):
    """Patch logits per modality and head; each a list over scales."""

    live_rgb: list[torch.Tensor]
    spoof_rgb: list[torch.Tensor]
    live_depth: list[torch.Tensor]
    spoof_depth: list[torch.Tensor]


class Critics(nn.Module):
    """Both modalities' discriminators behind one ``forward`` (one DDP wrapper, one optimiser)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.rgb = MultiScaleDiscriminator(3, config)
        self.depth = MultiScaleDiscriminator(1, config)

    def forward(
        self,
        live_rgb: torch.Tensor,
        spoof_rgb: torch.Tensor,
        live_depth: torch.Tensor,
        spoof_depth: torch.Tensor,
    ) -> CriticOutputs:
        lr, sr = self.rgb(live_rgb, spoof_rgb)
        ld, sd = self.depth(live_depth, spoof_depth)
        return CriticOutputs(lr, sr, ld, sd)


def build_critics(config: ModelConfig) -> Critics:
    """Fresh discriminators for ``config`` (training only; never exported)."""
    return Critics(config)
