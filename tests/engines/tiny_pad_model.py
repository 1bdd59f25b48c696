"""A tiny torch module with the model's forward contract, for the engines and calibration tests.

The module mirrors ``train.model``'s contract (``forward(rgb, depth) -> (score, spoof_map, trace_rgb,
trace_depth)``) with conv + BatchNorm + PReLU blocks like the real encoder, so export, quantisation
and the runners meet the same op types; it is small enough to export in about a second.
"""

from __future__ import annotations

import pytest

from edge.face.preprocess import PreprocessConfig

SIZE = 32
CONTRACT = PreprocessConfig(size_px=SIZE).to_metadata()  # the real contract, at the tiny input side


def make_tiny_module(seed: int = 0):
    torch = pytest.importorskip("torch", reason="torch (edgefas[train]) is needed to build the test model")
    from collections import namedtuple

    nn = torch.nn
    Outputs = namedtuple("Outputs", "score spoof_map trace_rgb trace_depth")

    def block(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.PReLU(cout))

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rgb = block(3, 8)
            self.depth = block(1, 8)
            self.fuse = block(16, 8)
            self.head = nn.Sequential(nn.Conv2d(8, 1, 1), nn.BatchNorm2d(1, momentum=None))
            self.trace_rgb_head = nn.Conv2d(3, 3, 3, padding=1)
            self.trace_depth_head = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, rgb, depth):
            fused = self.fuse(torch.cat([self.rgb(rgb), self.depth(depth)], dim=1))
            spoof_map = torch.sigmoid(4.0 * self.head(fused))
            trace_rgb = 0.1 * torch.tanh(self.trace_rgb_head(rgb))
            trace_depth = 0.1 * torch.tanh(self.trace_depth_head(depth))
            score = spoof_map.mean(dim=(1, 2, 3)) + 0.5 * (trace_rgb.abs().mean(dim=(1, 2, 3))
                                                          + trace_depth.abs().mean(dim=(1, 2, 3)))
            return Outputs(score, spoof_map, trace_rgb, trace_depth)

    torch.manual_seed(seed)
    module = Tiny()
    randomise_batchnorm(module)
    with torch.no_grad():
        head_bn = module.head[1]
        head_bn.reset_running_stats()
        head_bn.train()  # measure the head's statistics on sample_batch so that scores spread over (0, 1)
        module(*sample_batch(64, seed=seed + 1, torch_tensors=True))
    return module.eval()


def randomise_batchnorm(module) -> None:
    """Non-trivial BatchNorm statistics, as after training (fresh ones are 0 and 1, which hide mistakes)."""
    torch = pytest.importorskip("torch", reason="torch (edgefas[train]) is needed to build the test model")
    with torch.no_grad():
        for bn in (m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)


def sample_batch(n: int, seed: int = 0, torch_tensors: bool = False):
    """Inputs whose brightness varies per sample (rgb bright = depth dark), so the tiny model's scores
    spread instead of clustering; numpy float32 unless ``torch_tensors``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    level = np.linspace(0.0, 1.0, n, dtype=np.float32).reshape(n, 1, 1, 1)
    rgb = np.clip(level + 0.1 * rng.standard_normal((n, 3, SIZE, SIZE)), 0, 1).astype(np.float32)
    depth = np.clip(1 - level + 0.1 * rng.standard_normal((n, 1, SIZE, SIZE)), 0, 1).astype(np.float32)
    if torch_tensors:
        import torch

        return torch.from_numpy(rgb), torch.from_numpy(depth)
    return rgb, depth


def tiny_metadata(threshold: float | None = 0.5):
    from engines.metadata import ModelMetadata

    return ModelMetadata(preprocess=dict(CONTRACT), input_size=SIZE, preset="tiny-test", threshold=threshold,
                         threshold_target="test" if threshold is not None else "", alpha=0.5,
                         model_sha256="0" * 64)
