"""Model presets: the named architectures the CLI, the trainer and checkpoints refer to (DESIGN §4).

A preset is a frozen :class:`ModelConfig`; a checkpoint stores the config it was built from, so a
model can always be rebuilt from its checkpoint alone. Add a preset by adding one entry to
:data:`PRESETS`; nothing else keys on the names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from edge.errors import ModelError
from engines.exposure import exposure_level_problem


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the two-stream network. Widths are channel counts, sizes are pixels.

    ``stage_channels`` are the three encoder stages (features at 1/2, 1/4, 1/8 of the input);
    ``decoder_channels`` are the decoder blocks at 1/4, 1/2 and full resolution. ``alpha_init`` is
    the trace weight in the score before a calibration run replaces it (DESIGN §4: "α chosen on dev
    data"); 0 means "fused map only" until calibrated.
    """

    name: str
    input_size_px: int
    stem_channels: int
    stage_channels: tuple[int, int, int]
    convs_per_stage: int  # 3x3 convs before each stage's stride-2 conv
    decoder_channels: tuple[int, int, int]
    esr_channels: int
    fusion_reduction: int  # squeeze ratio of the fusion MLP (SE-Net's r, Hu et al. CVPR 2018: 16)
    fusion_spatial: bool
    discriminator_channels: int
    discriminator_scales: int
    alpha_init: float = 0.0
    activation: str = "prelu"  # "relu" where INT8 inference speed matters (see layers.ConvBnAct)
    # a depth-only guard beside the two streams, OR-ed into the score (train.model.guard; docs/depth-guard.md)
    depth_guard: bool = False
    # > 0: each crop's colour scaled to this mean brightness inside the network (layers.ExposureLevel;
    # docs/exposure-normalisation.md); 0: colour as captured
    exposure_mean: float = 0.0
    # > 0 (with exposure_mean): the levelled crop's contrast, its standard deviation over pixels and channels,
    # scaled to this about its mean (layers.ExposureLevel); 0: contrast as captured
    exposure_contrast: float = 0.0

    def __post_init__(self) -> None:
        if self.input_size_px <= 0 or self.input_size_px % 8:
            raise ValueError(f"ModelConfig.input_size_px must be a positive multiple of 8, got {self.input_size_px}")
        for name in ("stage_channels", "decoder_channels"):
            value = getattr(self, name)
            if len(value) != 3 or min(value) <= 0:
                raise ValueError(f"ModelConfig.{name} needs three positive widths, got {value}")
        if self.convs_per_stage < 0 or self.discriminator_scales < 1 or self.fusion_reduction < 1:
            raise ValueError("ModelConfig.convs_per_stage >= 0, discriminator_scales >= 1, fusion_reduction >= 1")
        problem = exposure_level_problem(self.exposure_mean, self.exposure_contrast)
        if problem:
            raise ValueError(f"ModelConfig.{problem}")

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so a checkpoint loads with ``torch.load(weights_only=True)``."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        if not self.depth_guard:  # written only when on: a model without one stays readable by older edgefas
            del data["depth_guard"]
        if not self.exposure_mean:  # likewise: a model that keeps the captured colour reads in older edgefas
            del data["exposure_mean"]
        if not self.exposure_contrast:
            del data["exposure_contrast"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(f"model config has unknown fields {unknown}; the checkpoint is from a newer edgefas, upgrade it")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"model config in checkpoint is invalid ({exc}); re-export it from its training run") from None


# `paper` runs at STDN's 256x256 input (Liu et al., ECCV 2020, "On Disentangling Spoof Trace for
# Generic Face Anti-Spoofing") with 64-channel full-resolution features; its widths were tuned with
# count_macs to DESIGN §4's ~25 GMACs for both streams (STDN's exact layer tables were not at hand).
# `edge` is sized to DESIGN §4's "a few hundred MMACs" at 128x128 (0.415 GMACs), for 30 fps on two
# CPU cores through ONNX Runtime; measurements in docs/model-reconstruction.md.
# `edge-wide` is the INT8 preset: the same 128x128 network with every width a multiple of 16 and
# >= 16 (the INT8 convolution kernels' fast path) and two convs per stage, so that convolutions, which
# INT8 speeds up, dominate the fusion module's element-wise work, which it does not. About 7x the
# score graph's compute of `edge`; INT8 ~2.05x faster than fp32 on an AVX512-VNNI CPU (docs/int8.md).
EDGE = ModelConfig(
    name="edge",
    input_size_px=128,
    stem_channels=12,
    stage_channels=(16, 32, 48),
    convs_per_stage=1,
    decoder_channels=(32, 16, 12),
    esr_channels=32,
    fusion_reduction=4,
    fusion_spatial=True,
    discriminator_channels=16,
    discriminator_scales=3,
    activation="relu",
)

PRESETS: dict[str, ModelConfig] = {
    "paper": ModelConfig(
        name="paper",
        input_size_px=256,
        stem_channels=64,
        stage_channels=(64, 96, 128),
        convs_per_stage=1,
        decoder_channels=(96, 64, 64),
        esr_channels=96,
        fusion_reduction=16,
        fusion_spatial=True,
        discriminator_channels=64,
        discriminator_scales=3,
    ),
    "edge": EDGE,
    "edge-wide": replace(EDGE, name="edge-wide", stem_channels=16, stage_channels=(32, 64, 96), convs_per_stage=2,
                         esr_channels=64),
}


def file_config(metadata) -> ModelConfig:
    """The architecture a model file was exported from: its metadata's preset (``metadata.preset``)
    with its exposure level (``exposure_mean``, ``exposure_contrast``), which has no weights."""
    return replace(get_preset(metadata.preset), exposure_mean=metadata.exposure_mean,
                   exposure_contrast=metadata.exposure_contrast)


def get_preset(name: str) -> ModelConfig:
    """The preset called ``name``; an unknown name is a user error listing the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ModelError(f"unknown model preset {name!r}; choose one of: {', '.join(sorted(PRESETS))}") from None
