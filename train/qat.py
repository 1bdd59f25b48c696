"""Quantisation-aware fine-tuning: train with the rounding error the INT8 build will add.

``edgefas calibrate int8`` quantises an fp32 export after training (ONNX Runtime's static
quantisation, engines/quantize.py). A model whose scores move too far in 8 bits fails the accuracy
gate there; the `edge-wide` retrains did (docs/experiments.md, fifteenth and sixteenth sessions):
median |Δscore| 0.0125-0.023 against the 0.01 allowed, every calibration method tried. Trained with
the same rounding in its forward passes, a network learns weights and activations that rounding does
not move (quantisation-aware training; Jacob et al., "Quantization and Training of Neural Networks for
Efficient Integer-Arithmetic-Only Inference", CVPR 2018).

What is simulated, for each flavour of :data:`engines.quantize.INT8_TARGETS`:

* weights of every convolution the INT8 build quantises: per output channel, symmetric, on ONNX Runtime's
  grid for the flavour (onnxruntime.quantization.quant_utils: integers -64..64 with ``reduce_range``, the
  ``cpu`` flavour; -127..127 symmetric, ``tensorrt``). BatchNorm is folded into the convolution
  at export, which multiplies each output channel by one factor: a per-channel symmetric grid scales
  with it, so rounding the unfolded weight per channel is rounding the folded one.
* the output of every Conv-BatchNorm-activation block: per tensor, 8 bits, over a running min/max of the
  training batches (the ranges the calibration's min/max method will measure); asymmetric (uint8) for
  ``cpu``, symmetric for ``tensorrt``.

Gradients pass the rounding unchanged (the straight-through estimator of ``torch.fake_quantize_*``). The
parts the INT8 build keeps in fp32 by default (engines.quantize.DEFAULT_FP32_PARTS: the depth stream
before it meets colour, the depth trace decoder) are left exact. The simulation is on only inside
:meth:`QuantisationNoise.active` (the trainer's steps): checkpoints, the weight average, batch-norm
recalibration and export see the plain network. The running ranges are not checkpointed: a resumed run
measures them again from its first batch.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from train.model.layers import ConvBnAct

# the flavours of engines.quantize.INT8_TARGETS: (largest weight integer, symmetric activations); ONNX
# Runtime's ranges (quant_utils.ONNX_INT_TYPE_REDUCED_RANGE / ONNX_INT_TYPE_SYMMETRIC_RANGE for INT8)
QAT_TARGETS = {"cpu": (64, False), "tensorrt": (127, True)}
# modules of SpoofTraceNet the INT8 build keeps in fp32 by default (engines.quantize.DEFAULT_FP32_PARTS):
# depth-entry = the depth stem and first stage (nothing from colour has joined yet), depth-decoder
# and guard = the depth guard (train/model/guard.py), depth-only throughout
FP32_MODULES = ("encoder_depth.stem", "encoder_depth.stages.0", "decoder_depth", "guard")
RANGE_MOMENTUM = 0.9  # running min/max of activations (torch.ao's MovingAverageMinMaxObserver uses 0.99 over longer runs)


def _kept_fp32(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in FP32_MODULES)


def fake_quantize_weight(weight: torch.Tensor, levels: int) -> torch.Tensor:
    """``weight`` rounded to a symmetric per-output-channel grid of integers -levels..levels (straight-through)."""
    scale = weight.detach().abs().amax(dim=tuple(range(1, weight.ndim))).clamp_min(1e-8) / levels
    zero = torch.zeros(weight.shape[0], dtype=torch.int32, device=weight.device)
    return torch.fake_quantize_per_channel_affine(weight, scale.float(), zero, 0, -levels, levels)


def fake_quantize_activation(x: torch.Tensor, low: float, high: float, symmetric: bool) -> torch.Tensor:
    """``x`` rounded to 8 bits over ``[low, high]`` (which holds 0), as the INT8 build will (straight-through)."""
    if symmetric:
        bound = max(abs(low), abs(high), 1e-8)
        return torch.fake_quantize_per_tensor_affine(x, bound / 127.0, 0, -127, 127)
    low, high = min(low, 0.0), max(high, 0.0)
    scale = max(high - low, 1e-8) / 255.0
    zero = int(round(-low / scale))
    return torch.fake_quantize_per_tensor_affine(x, scale, min(max(zero, 0), 255), 0, 255)


class QuantisationNoise:
    """The INT8 build's rounding, switched on around a training step (module docstring).

    ``model`` is the network being trained (not a copy: its convolutions are patched in place while
    :meth:`active` is entered). ``target`` is ``cpu`` or ``tensorrt``.
    """

    def __init__(self, model: nn.Module, target: str) -> None:
        if target not in QAT_TARGETS:
            raise ValueError(f"QAT target must be one of {', '.join(QAT_TARGETS)}, got {target!r}")
        self.target = target
        self.weight_levels, self.symmetric = QAT_TARGETS[target]
        self.convs = [(name, m) for name, m in model.named_modules()
                      if isinstance(m, nn.Conv2d) and not _kept_fp32(name)]
        self.blocks = [(name, m) for name, m in model.named_modules()
                       if isinstance(m, ConvBnAct) and not _kept_fp32(name)]
        if not self.convs:
            raise ValueError("the model has no convolution to quantise")
        self.ranges: dict[str, tuple[float, float]] = {}

    def _observe(self, name: str, x: torch.Tensor) -> tuple[float, float]:
        low, high = float(x.detach().amin()), float(x.detach().amax())
        if name in self.ranges:
            old_low, old_high = self.ranges[name]
            low = RANGE_MOMENTUM * old_low + (1 - RANGE_MOMENTUM) * low
            high = RANGE_MOMENTUM * old_high + (1 - RANGE_MOMENTUM) * high
        self.ranges[name] = (low, high)
        return low, high

    @contextmanager
    def active(self, observe: bool = True) -> Iterator[None]:
        """Rounding on for every forward pass inside; ``observe`` updates the activation ranges."""
        levels, symmetric = self.weight_levels, self.symmetric
        handles = []

        def conv_forward(conv: nn.Conv2d):
            def forward(x: torch.Tensor) -> torch.Tensor:
                return conv._conv_forward(x, fake_quantize_weight(conv.weight, levels), conv.bias)
            return forward

        def block_hook(name: str):
            def hook(module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
                if observe and module.training:
                    low, high = self._observe(name, output)
                else:
                    low, high = self.ranges.get(name) or (float(output.detach().amin()), float(output.detach().amax()))
                return fake_quantize_activation(output, low, high, symmetric)
            return hook

        try:
            for _, conv in self.convs:
                conv.forward = conv_forward(conv)  # instance attribute: shadows nn.Conv2d.forward
            for name, block in self.blocks:
                handles.append(block.register_forward_hook(block_hook(name)))
            yield
        finally:
            for _, conv in self.convs:
                conv.__dict__.pop("forward", None)
            for handle in handles:
                handle.remove()
