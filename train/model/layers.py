"""Small building blocks shared by the generator, the fusion module and the discriminators.

Each block is plain Conv/BatchNorm/PReLU so that the graph exports with the legacy ONNX exporter
(opset 17) and quantises to INT8 without custom ops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engines.exposure import exposure_level_problem

# ITU-R BT.601-7 luma weights (Kr, Kb) and the analog YUV chroma ranges (Umax, Vmax) of the
# PAL/NTSC definition built on it (ITU-R BT.470-6): U = Umax (B - Y) / (1 - Kb), V = Vmax (R - Y) / (1 - Kr).
BT601_KR = 0.299
BT601_KB = 0.114
YUV_U_MAX = 0.436
YUV_V_MAX = 0.615


def rgb_to_yuv_matrix() -> torch.Tensor:
    """3x3 matrix taking RGB in [0, 1] to BT.601 YUV (Y in [0, 1], U in ±0.436, V in ±0.615)."""
    kr, kb = BT601_KR, BT601_KB
    kg = 1.0 - kr - kb
    y = torch.tensor([kr, kg, kb], dtype=torch.float64)
    u = YUV_U_MAX / (1.0 - kb) * (torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64) - y)
    v = YUV_V_MAX / (1.0 - kr) * (torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64) - y)
    return torch.stack([y, u, v]).float()


MAX_EXPOSURE_GAIN = 8.0  # three stops: the most ExposureLevel brightens a dark crop
MAX_CONTRAST_GAIN = 4.0  # the most ExposureLevel stretches a flat crop's contrast (a grey card stays grey)


class ExposureLevel(nn.Module):
    """RGB [N,3,H,W] in [0, 1] -> the same crops, each scaled so that its mean over all pixels and
    channels is ``mean`` (clipped to [0, 1]); with ``contrast``, then each levelled crop's deviations
    from its mean scaled so that their standard deviation (over pixels and channels) is ``contrast``,
    by at most :data:`MAX_CONTRAST_GAIN`, clipped to [0, 1] again.

    The encoder then cannot read how bright the camera exposed the face, which the rendered worlds tie
    to the class (docs/exposure-normalisation.md). The gain is at most :data:`MAX_EXPOSURE_GAIN`, so a
    black frame is not blown up into noise. ``mean`` 0 is the identity (colour as captured) and adds
    nothing to the exported graph. The contrast level undoes flat light and a washed-out picture in the
    same way (docs/exposure-normalisation.md); ``contrast`` 0 leaves the contrast as captured.
    """

    def __init__(self, mean: float = 0.0, contrast: float = 0.0) -> None:
        super().__init__()
        problem = exposure_level_problem(mean, contrast)
        if problem:
            raise ValueError(f"ExposureLevel: {problem}")
        self.mean = float(mean)
        self.contrast = float(contrast)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        if self.mean == 0.0:
            return rgb
        level = rgb.mean(dim=(1, 2, 3), keepdim=True).clamp(min=self.mean / MAX_EXPOSURE_GAIN)
        out = (rgb * (self.mean / level)).clamp(0.0, 1.0)
        if self.contrast == 0.0:
            return out
        centre = out.mean(dim=(1, 2, 3), keepdim=True)
        spread = (out - centre).square().mean(dim=(1, 2, 3), keepdim=True).sqrt()
        gain = self.contrast / spread.clamp(min=self.contrast / MAX_CONTRAST_GAIN)
        return (centre + (out - centre) * gain).clamp(0.0, 1.0)


class RgbYuvInput(nn.Module):
    """RGB [N,3,H,W] -> RGB+YUV [N,6,H,W] with one fixed 1x1 convolution.

    Done inside the model (not in preprocessing) so the ONNX input stays plain RGB (DESIGN §5) and
    the runtime cannot get the colour conversion wrong. The weights are a constant, not a parameter,
    and are not stored in checkpoints.
    """

    def __init__(self) -> None:
        super().__init__()
        weight = torch.cat([torch.eye(3), rgb_to_yuv_matrix()]).reshape(6, 3, 1, 1)
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return F.conv2d(rgb, self.weight)


ACTIVATIONS = ("prelu", "relu")


class ConvBnAct(nn.Sequential):
    """k x k conv without bias, BatchNorm, then PReLU (STDN's unit) or ReLU.

    ReLU is the edge preset's choice: ONNX Runtime and TensorRT fold Conv+BN+ReLU into one INT8
    kernel, while PReLU forces a dequantise/float/quantise round trip after every conv, which on
    CPU costs more than the INT8 conv saves (measured: docs/model-reconstruction.md).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, kernel_size: int = 3,
                 activation: str = "prelu") -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.PReLU(out_channels) if activation == "prelu" else nn.ReLU(inplace=False),
        )


def upsample(x: torch.Tensor, factor: int, mode: str = "nearest") -> torch.Tensor:
    """Integer up-sampling that exports as one ONNX Resize with constant scales."""
    if mode == "bilinear":
        return F.interpolate(x, scale_factor=float(factor), mode="bilinear", align_corners=False)
    return F.interpolate(x, scale_factor=float(factor), mode="nearest")
