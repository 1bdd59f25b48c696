"""BatchNorm running statistics must describe real batches: the extra step leaves them alone, and a
finished model's statistics are recomputed from balanced real data before calibration."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch (edgefas[train])")

from train.model.network import build_model  # noqa: E402
from train.model.presets import get_preset  # noqa: E402
from train.trainer import keep_batchnorm_statistics  # noqa: E402


def norms(model):
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def test_extra_pass_does_not_move_running_statistics():
    torch.manual_seed(0)
    model = build_model(get_preset("edge")).train()
    before = [m.running_mean.clone() for m in norms(model)]
    with keep_batchnorm_statistics(model), torch.no_grad():
        model(torch.rand(2, 3, 128, 128) * 5, torch.rand(2, 1, 128, 128))
    assert all(torch.equal(a, m.running_mean) for a, m in zip(before, norms(model)))
    assert all(m.momentum == 0.1 for m in norms(model))  # restored
    with torch.no_grad():
        model(torch.rand(2, 3, 128, 128) * 5, torch.rand(2, 1, 128, 128))
    assert not all(torch.equal(a, m.running_mean) for a, m in zip(before, norms(model)))


def random_samples(n: int, size: int):
    """``n`` random faces of ``size`` px, live and print alternating."""
    from edge.datasets.sampleset import SampleSet

    rng = np.random.default_rng(0)
    return SampleSet(rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8),
                     rng.integers(0, 65536, (n, 1, size, size), dtype=np.uint16),
                     np.array([0, 1] * (n // 2), np.int8), np.array(["", "print"] * (n // 2)),
                     np.array(["s"] * n), np.array([""] * n))


def test_recalibration_replaces_skewed_statistics():
    from train.run import recalibrate_batchnorm

    torch.manual_seed(0)
    model = build_model(get_preset("edge")).train()
    with torch.no_grad():  # skew the statistics with inputs unlike the data
        model(torch.full((2, 3, 128, 128), 0.99), torch.full((2, 1, 128, 128), 0.99))
    n = 16
    samples = random_samples(n, 128)
    recalibrate_batchnorm(model, samples, batches=3, batch_size=4)
    first = norms(model)[0]
    # the stem's input statistics now follow the random uniform data (mean ~0.5 per channel) ...
    assert not model.training
    assert first.momentum == 0.1
    rgb, depth = samples.arrays(slice(0, n))
    with torch.no_grad():
        eval_out = model(torch.from_numpy(rgb), torch.from_numpy(depth)).score
        model.train()
        train_out = model(torch.from_numpy(rgb), torch.from_numpy(depth)).score
    # ... so eval mode behaves like train mode on the same kind of data
    assert torch.allclose(eval_out, train_out, atol=0.05)


def test_recalibration_of_a_small_set_stops_after_two_passes():
    """40 unaugmented batches of a 4-face set only repeat it (and cost a test ~40 s of CPU)."""
    from train.run import recalibrate_batchnorm

    calls = []

    class Counting(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = torch.nn.BatchNorm2d(3)

        def forward(self, rgb, depth):
            calls.append(rgb.shape[0])
            return self.norm(rgb)

    samples = random_samples(4, 8)
    recalibrate_batchnorm(Counting(), samples, batches=40, batch_size=4)
    assert len(calls) == 2
