"""Cross-modal fusion: recalibrate the RGB and depth streams from what both of them see (DESIGN §4).

Li et al. (AAAI 2023) describe a fusion module "which recalibrates both representations at multiple
stages"; its exact layers are not public, so this is a reconstruction in the squeeze-excitation
family (SE-Net, Hu et al., CVPR 2018; CBAM, Woo et al., ECCV 2018) extended across modalities:

* pool each stream (global average and global max), concatenate both streams' descriptors and run
  one shared MLP over the average and the max descriptor (CBAM's shared MLP), giving one weight per
  channel of each stream;
* optionally a spatial map per stream from both streams' channel-mean and channel-max (CBAM's
  7x7 spatial attention, here with four input maps and two outputs);
* applied residually, ``f' = f + f * tanh(w) * a``: each stream keeps its own features, the other
  modality can only re-weight them, and zero MLP output is exactly the identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CBAM_SPATIAL_KERNEL = 7  # Woo et al., ECCV 2018, §3.2: 7x7 beat 3x3 for the spatial attention map


def global_mean(x: torch.Tensor) -> torch.Tensor:
    """``x.mean(dim=(2, 3))`` as one GlobalAveragePool, which INT8 runs without leaving 8 bits."""
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


def global_max(x: torch.Tensor, side: int) -> torch.Tensor:
    """``x.amax(dim=(2, 3))`` of a ``side`` x ``side`` map as one MaxPool over all of it: an 8-bit op in
    INT8, unlike ReduceMax. ``side`` is given, not read from ``x``: a traced size would not export as a
    constant kernel."""
    if tuple(x.shape[2:]) != (side, side) and not torch.jit.is_tracing():
        raise ValueError(f"fusion expects {side}x{side} maps, got {tuple(x.shape[2:])}")
    return F.max_pool2d(x, kernel_size=side).flatten(1)


class CrossModalFusion(nn.Module):
    """Fuse two same-resolution feature maps ``[N,Cr,side,side]`` and ``[N,Cd,side,side]``; shapes are kept.

    The last MLP layer starts at zero so an untrained module is the identity and training learns
    the recalibration from there (ReZero-style start, Bachlechner et al., 2020).
    """

    def __init__(self, rgb_channels: int, depth_channels: int, reduction: int, spatial: bool, side: int) -> None:
        super().__init__()
        self.side = side  # the maps' height and width, fixed by the preset's input size
        self.rgb_channels = rgb_channels
        self.depth_channels = depth_channels
        total = rgb_channels + depth_channels
        hidden = max(total // reduction, 4)
        self.mlp = nn.Sequential(nn.Linear(total, hidden), nn.ReLU(inplace=False), nn.Linear(hidden, total))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)
        self.spatial = (
            nn.Conv2d(4, 2, CBAM_SPATIAL_KERNEL, padding=CBAM_SPATIAL_KERNEL // 2) if spatial else None
        )

    def channel_weights(self, f_rgb: torch.Tensor, f_depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel weights in (-1, 1) for each stream, ``[N,C,1,1]``."""
        avg = torch.cat([global_mean(f_rgb), global_mean(f_depth)], dim=1)
        peak = torch.cat([global_max(f_rgb, self.side), global_max(f_depth, self.side)], dim=1)
        gate = torch.tanh(self.mlp(avg) + self.mlp(peak))
        w_rgb, w_depth = torch.split(gate, [self.rgb_channels, self.depth_channels], dim=1)
        return w_rgb[:, :, None, None], w_depth[:, :, None, None]

    def spatial_maps(self, f_rgb: torch.Tensor, f_depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-pixel weights in (0, 1) for each stream, ``[N,1,H,W]``; all ones without the spatial branch."""
        if self.spatial is None:
            one = torch.ones_like(f_rgb[:, :1])
            return one, one
        stats = torch.cat(
            [f_rgb.mean(dim=1, keepdim=True), f_rgb.amax(dim=1, keepdim=True),
             f_depth.mean(dim=1, keepdim=True), f_depth.amax(dim=1, keepdim=True)],
            dim=1,
        )
        maps = torch.sigmoid(self.spatial(stats))
        return maps[:, :1], maps[:, 1:]

    def forward(self, f_rgb: torch.Tensor, f_depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.jit.is_tracing() and f_rgb.shape[2:] != f_depth.shape[2:]:
            raise ValueError(f"fusion inputs differ in size: rgb {tuple(f_rgb.shape)} depth {tuple(f_depth.shape)}")
        w_rgb, w_depth = self.channel_weights(f_rgb, f_depth)
        a_rgb, a_depth = self.spatial_maps(f_rgb, f_depth)
        return f_rgb + f_rgb * w_rgb * a_rgb, f_depth + f_depth * w_depth * a_depth
