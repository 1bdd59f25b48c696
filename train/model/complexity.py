"""Compute and size of a network: multiply-accumulates counted with forward hooks.

Why our own counter: the budget in DESIGN §4 ("a few hundred MMACs" for ``edge``) is a contract the
test suite checks, and it must not depend on a third-party profiler's conventions. Counted: every
``Conv2d``, ``ConvTranspose2d`` and ``Linear`` (one MAC = one multiply and one add); not counted:
BatchNorm, activations, pooling, resizing and element-wise arithmetic, which are memory-bound and
fold into neighbouring layers in ONNX Runtime / TensorRT.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from train.model.presets import ModelConfig, get_preset


def _conv_macs(module: nn.Conv2d, output: torch.Tensor) -> int:
    kh, kw = module.kernel_size
    return output.numel() * (module.in_channels // module.groups) * kh * kw


def _conv_transpose_macs(module: nn.ConvTranspose2d, inputs: torch.Tensor) -> int:
    kh, kw = module.kernel_size
    return inputs.numel() * (module.out_channels // module.groups) * kh * kw


def count_macs(model: nn.Module, config: ModelConfig, fused_only: bool = False) -> tuple[int, int]:
    """``(MACs per sample, parameter count)`` of ``model.forward`` at ``config.input_size_px``.

    ``fused_only`` counts ``model.forward_fused`` instead (the ``score`` export while alpha is 0,
    docs/score-graph.md); the parameter count is then that of the modules the pass ran.
    Runs one eval-mode forward on a zero batch of one; the model's train/eval mode is restored.
    """
    size = config.input_size_px
    total = [0]
    ran: set[nn.Module] = set()

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        ran.add(module)
        if isinstance(module, nn.Conv2d):
            total[0] += _conv_macs(module, output)
        elif isinstance(module, nn.ConvTranspose2d):
            total[0] += _conv_transpose_macs(module, inputs[0])
        elif isinstance(module, nn.Linear):
            total[0] += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            forward = model.forward_fused if fused_only else model
            forward(torch.zeros(1, 3, size, size), torch.zeros(1, 1, size, size))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if fused_only:
        return total[0], sum(p.numel() for m in ran for p in m.parameters(recurse=False))
    return total[0], sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class ModelSummary:
    """What ``edgefas`` shows about a preset: its input, compute and size."""

    preset: str
    input_size_px: int
    macs_per_sample: int
    params: int

    @property
    def gmacs_per_sample(self) -> float:
        return self.macs_per_sample / 1e9

    def as_line(self) -> str:
        return (f"{self.preset}: {self.input_size_px}x{self.input_size_px} RGB-D, "
                f"{self.gmacs_per_sample:.3f} GMACs/sample, {self.params / 1e6:.2f} M parameters")


def summarise_preset(name: str) -> ModelSummary:
    """Build preset ``name`` on the CPU and count it; an unknown name raises ModelError."""
    from train.model.network import build_model

    config = get_preset(name)
    macs, params = count_macs(build_model(config), config)
    return ModelSummary(config.name, config.input_size_px, macs, params)
