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
from torch import nn

CBAM_SPATIAL_KERNEL = 7  # Woo et al., ECCV 2018, §3.2: 7x7 beat 3x3 for the spatial attention map


class CrossModalFusion(nn.Module):
    """Fuse two same-resolution feature maps ``[N,Cr,H,W]`` and ``[N,Cd,H,W]``; shapes are kept.

    The last MLP layer starts at zero so an untrained module is the identity and training learns
    the recalibration from there (ReZero-style start, Bachlechner et al., 2020).
    """

    def __init__(self, rgb_channels: int, depth_channels: int, reduction: int, spatial: bool) -> None:
        super().__init__()
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
        avg = torch.cat([f_rgb.mean(dim=(2, 3)), f_depth.mean(dim=(2, 3))], dim=1)
        peak = torch.cat([f_rgb.amax(dim=(2, 3)), f_depth.amax(dim=(2, 3))], dim=1)
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
